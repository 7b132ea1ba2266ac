public struct TrainingError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A prompt with its reference answer.
public struct TaskSample: Codable, Equatable, Sendable {
    public var prompt: String
    public var answer: String?
    /// Where it came from (`file:line` for a JSONL example), for error messages.
    public var source: String?
    public init(prompt: String, answer: String? = nil, source: String? = nil) { self.prompt = prompt; self.answer = answer; self.source = source }
}

public struct TrainingError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A prompt with its reference answer.
public struct TaskSample: Codable, Equatable, Sendable {
    public var prompt: String
    public var answer: String?
    public init(prompt: String, answer: String? = nil) { self.prompt = prompt; self.answer = answer }
}

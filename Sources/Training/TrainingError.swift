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
    /// An agent run's episode: the environment's seed (the prompt is then the environment's own).
    public var environmentSeed: UInt64?
    /// The user's message as written, when the prompt is one (what a pair file's `prompt` holds).
    public var question: String?
    public init(prompt: String, answer: String? = nil, source: String? = nil, environmentSeed: UInt64? = nil, question: String? = nil) {
        self.prompt = prompt; self.answer = answer; self.source = source; self.environmentSeed = environmentSeed; self.question = question
    }
}

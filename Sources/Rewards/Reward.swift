/// What a reward function sees: the prompt, the response and the reference answer.
public struct RewardInput: Sendable {
    public var prompt: String
    public var response: String
    /// The reference answer (for verifiable tasks).
    public var answer: String?
    /// Response length in tokens (for length shaping).
    public var responseTokens: Int
    /// Whether generation was cut at the length limit.
    public var truncated: Bool
    /// The sampling policy's log-probability of each response token (temperature 1), and the UTF-8
    /// byte offset in `response` at which each token ends (past its end for a token the text drops,
    /// such as EOS); empty when the caller has no tokens (the `confidence` term then gives 0).
    public var tokenLogprobs: [Double]
    public var tokenEnds: [Int]
    /// The optimizer steps taken before the response was sampled (0 outside training): what
    /// curricula such as `length_budget` read.
    public var step: Int

    public init(prompt: String = "", response: String, answer: String? = nil, responseTokens: Int = 0, truncated: Bool = false,
                tokenLogprobs: [Double] = [], tokenEnds: [Int] = [], step: Int = 0) {
        self.prompt = prompt; self.response = response; self.answer = answer
        self.responseTokens = responseTokens; self.truncated = truncated
        self.tokenLogprobs = tokenLogprobs; self.tokenEnds = tokenEnds; self.step = step
    }
}

/// A reward at a position of the response: `offset` counts UTF-8 bytes of the response up to the
/// end of the step (the trainer maps it to the token that covers it).
public struct StepScore: Codable, Equatable, Sendable {
    public var offset: Int
    public var reward: Double
    public init(offset: Int, reward: Double) { self.offset = offset; self.reward = reward }
}

public struct RewardScore: Codable, Equatable, Sendable {
    /// The scalar outcome reward.
    public var value: Double
    /// Named parts (for metrics), e.g. "correct", "format", "length".
    public var components: [String: Double]
    /// Process rewards at steps of the response (for PURE and other process-reward methods).
    public var steps: [StepScore]

    public init(value: Double, components: [String: Double] = [:], steps: [StepScore] = []) {
        self.value = value; self.components = components; self.steps = steps
    }
}

/// A reward function. Users write their own by conforming to this protocol.
public protocol RewardFunction: Sendable {
    /// The name its value has in metrics.
    var name: String { get }
    /// Whether `score` reports process rewards (`RewardScore.steps`); methods that read step
    /// rewards are refused in training when it does not.
    var givesStepRewards: Bool { get }
    func score(_ input: RewardInput) -> RewardScore
    /// `score`, or the error of a reward that can fail (an external command); training and
    /// evaluation call this one.
    func checkedScore(_ input: RewardInput) throws -> RewardScore
}

extension RewardFunction {
    public var givesStepRewards: Bool { false }
    public func checkedScore(_ input: RewardInput) throws -> RewardScore { score(input) }
}

public struct RewardError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

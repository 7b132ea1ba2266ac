import Foundation

/// 1 (`correct`) when the extracted answer matches the reference, else `incorrect`.
public struct CorrectnessReward: RewardFunction {
    public enum Match: String, Codable, Sendable, CaseIterable { case numeric, exact }
    public var extractor: AnswerExtractor
    public var match: Match
    public var tolerance: Double
    public var correct: Double
    public var incorrect: Double
    public var name: String { "correct" }

    public init(extractor: AnswerExtractor = .lastNumber, match: Match = .numeric, tolerance: Double = 1e-6,
                correct: Double = 1, incorrect: Double = 0) {
        self.extractor = extractor; self.match = match; self.tolerance = tolerance; self.correct = correct; self.incorrect = incorrect
    }

    public func isCorrect(_ input: RewardInput) -> Bool {
        guard let reference = input.answer, let given = extractor.extract(input.response) else { return false }
        switch match {
        case .numeric: return Answers.numericEqual(given, reference, tolerance: tolerance)
        case .exact: return Answers.exactEqual(given, reference)
        }
    }

    public func score(_ input: RewardInput) -> RewardScore {
        RewardScore(value: isCorrect(input) ? correct : incorrect)
    }
}

/// 1 when the response gives an answer in the expected form (the extractor finds one), else 0.
public struct FormatReward: RewardFunction {
    public var extractor: AnswerExtractor
    public var name: String { "format" }
    public init(extractor: AnswerExtractor = .answerTag) { self.extractor = extractor }
    public func score(_ input: RewardInput) -> RewardScore { RewardScore(value: extractor.extract(input.response) == nil ? 0 : 1) }
}

/// −per_token for every response token beyond `budget`.
public struct LengthPenalty: RewardFunction {
    public var budget: Int
    public var perToken: Double
    public var name: String { "length" }
    public init(budget: Int, perToken: Double) { self.budget = budget; self.perToken = perToken }
    public func score(_ input: RewardInput) -> RewardScore {
        RewardScore(value: -perToken * Double(Swift.max(0, input.responseTokens - budget)))
    }
}

/// DAPO's Soft Overlong Punishment (arXiv:2503.14476, ALGORITHMS.md §4), with L = response tokens:
///   0 for L ≤ L_max − L_cache;  ((L_max − L_cache) − L)/L_cache for L_max − L_cache < L ≤ L_max;  −1 beyond,
/// times `factor`.
public struct OverlongShaping: RewardFunction {
    public var maxLength: Int
    public var cache: Int
    public var factor: Double
    public var name: String { "overlong" }
    public init(maxLength: Int, cache: Int, factor: Double = 1) { self.maxLength = maxLength; self.cache = cache; self.factor = factor }

    public func score(_ input: RewardInput) -> RewardScore {
        let l = input.responseTokens, soft = maxLength - cache
        let v: Double = l <= soft ? 0 : l <= maxLength ? Double(soft - l) / Double(cache) : -1
        return RewardScore(value: v * factor)
    }
}

/// A weighted sum of rewards; components keep each part's name, step rewards are weighted too.
public struct CompositeReward: RewardFunction {
    public var terms: [(weight: Double, reward: RewardFunction)]
    public var name: String { "reward" }
    public var givesStepRewards: Bool { terms.contains { $0.weight != 0 && $0.reward.givesStepRewards } }

    public init(_ terms: [(weight: Double, reward: RewardFunction)]) { self.terms = terms }

    public func score(_ input: RewardInput) -> RewardScore { (try? checkedScore(input)) ?? RewardScore(value: .nan) }

    public func checkedScore(_ input: RewardInput) throws -> RewardScore {
        var total = 0.0, components: [String: Double] = [:], steps: [StepScore] = []
        for (w, r) in terms {
            let s = try r.checkedScore(input)
            total += w * s.value
            components[r.name, default: 0] += s.value
            // A term's own parts (an external reward's `correct`, countdown's valid steps) keep their names.
            for (k, v) in s.components where k != r.name { components[k, default: 0] += v }
            steps += s.steps.map { StepScore(offset: $0.offset, reward: w * $0.reward) }
        }
        return RewardScore(value: total, components: components, steps: steps.sorted { $0.offset < $1.offset })
    }
}

import Foundation

/// CRew, "Confidence as a Reward: Transforming LLMs into Reward Models" (arXiv:2510.13501 §3.1): a
/// training-free reward, the mean probability the policy gave the tokens of its final answer,
///     c = (1/|A|) Σ_{t ∈ A} π(y_t | x, y_<t),
/// A the tokens that overlap the answer `extractor` finds (for MATH, the content of `\boxed{}`).
/// No code was released; the paper states the mean of probabilities (its formula writes the answer's
/// conditional probability, read here as the prose does). A response without an answer, or a
/// caller without per-token logprobs, scores 0 (the paper does not say; training always gives them).
public struct ConfidenceReward: RewardFunction {
    public var extractor: AnswerExtractor
    public var name: String { "confidence" }
    public init(extractor: AnswerExtractor = .lastNumber) { self.extractor = extractor }

    /// The indices of the response tokens that overlap the answer, in order.
    public func answerTokens(_ input: RewardInput) -> [Int] {
        guard !input.tokenEnds.isEmpty, let span = extractor.byteSpan(input.response), !span.isEmpty else { return [] }
        var start = 0, out = [Int]()
        for (k, end) in input.tokenEnds.enumerated() {
            if start < span.upperBound && end > span.lowerBound && end > start { out.append(k) }
            start = end
        }
        return out
    }

    public func score(_ input: RewardInput) -> RewardScore {
        let tokens = answerTokens(input).filter { $0 < input.tokenLogprobs.count }
        guard !tokens.isEmpty else { return RewardScore(value: 0) }
        return RewardScore(value: tokens.map { Foundation.exp(input.tokenLogprobs[$0]) }.reduce(0, +) / Double(tokens.count))
    }
}

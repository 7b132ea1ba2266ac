import Foundation

/// "Train Long, Think Short: Curriculum Learning for Efficient Reasoning" (arXiv:2508.08940,
/// §3.3–3.4): a token budget that shrinks as training goes on, and a length reward that peaks at it.
///     B(t) = max(1, ⌊B₀·γ^⌊t/T⌋⌋)                       (`budget` B₀, `decay` γ, `every` T)
///     R(ℓ) = R_max·ℓ/B            for ℓ ≤ B
///            R_max·(1 − (ℓ − B)/B) for B < ℓ ≤ 2B, 0 beyond  (`shape: triangular`)
///     R(ℓ) = R_max for ℓ ≤ B, then the same fall           (`shape: band`, the paper's ablation)
/// with ℓ the response's tokens and t the steps trained before the response was sampled
/// (`RewardInput.step`). Defaults are the paper's main run: 256 → 179 → 125 → 87 tokens at steps
/// 0, 150, 300 and 450 (γ 0.7, T 150; the paper's figures give 87 at the end, hence the floor).
/// The paper states neither R_max nor its main run's term weights; R_max is 1 and the weights are
/// the reward's `weight`s (its ablations: 0.3 correctness + 0.6 length, and 0.6 + 0.3). No
/// released code was reachable, so this follows the paper's text. The paper also writes the
/// budget into the prompt; this term does not.
public struct LengthBudgetReward: RewardFunction {
    public enum Shape: String, Sendable, CaseIterable { case triangular, band }
    public var budget: Int
    public var decay: Double
    public var every: Int
    public var peak: Double
    public var shape: Shape
    public var name: String { "length_budget" }

    public init(budget: Int = 256, decay: Double = 0.7, every: Int = 150, peak: Double = 1, shape: Shape = .triangular) throws {
        guard budget >= 1 else { throw RewardError("reward term ('length_budget'): 'budget' must be at least 1, got \(budget)") }
        guard decay > 0 && decay <= 1 else { throw RewardError("reward term ('length_budget'): 'decay' must be in (0, 1], got \(decay)") }
        guard every >= 1 else { throw RewardError("reward term ('length_budget'): 'every' must be at least 1 step, got \(every)") }
        guard peak.isFinite && peak > 0 else { throw RewardError("reward term ('length_budget'): 'peak' must be positive, got \(peak)") }
        self.budget = budget; self.decay = decay; self.every = every; self.peak = peak; self.shape = shape
    }

    /// B(t) for `step` steps trained.
    public func budget(at step: Int) -> Int {
        Swift.max(1, Int((Double(budget) * pow(decay, Double(Swift.max(step, 0) / every))).rounded(.down)))
    }

    public func reward(length l: Int, budget b: Int) -> Double {
        let (l, b) = (Double(l), Double(b))
        if l <= b { return shape == .band ? peak : peak * l / b }
        return l <= 2 * b ? peak * (1 - (l - b) / b) : 0
    }

    /// The reward, and the budget it was measured against (metric `reward_budget`).
    public func score(_ input: RewardInput) -> RewardScore {
        let b = budget(at: input.step)
        return RewardScore(value: reward(length: input.responseTokens, budget: b), components: ["budget": Double(b)])
    }
}

import Foundation

/// PURE — "Stop Summation: Min-Form Credit Assignment Is All Process Reward Model Needs for
/// Reasoning" (arXiv:2504.15275), ALGORITHMS.md §14. Process rewards PR_k arrive as `step_rewards`
/// at each step's last token.
///   w_k = softmax_k(−PR_k / temperature) over the response's steps,  r̃_k = w_k·PR_k
///   (Σ_k r̃_k → min_k PR_k as temperature → 0; `weighted: false` uses uniform weights).
/// Leave-one-out baselines over the group: `baseline: step` subtracts from every step reward the
/// mean over the other responses of (Σ_k r̃_k)/num_steps; `baseline: token` subtracts, at each step,
/// the others' pooled reward per token Σ_{j≠i} Σ_k r̃_{j,k} / Σ_{j≠i} L_j times the step's token
/// count (its tokens before its last one, as the released code counts them).
/// The verifiable reward VR = R − 1, RLOO-centred, × `verifiable_coef`, is added at the last token;
/// `kl_coef` subtracts kl_coef·kl_t from every token. Advantage = right-to-left sum of token rewards,
/// then 0 on each step's last token and on the response's last token (`mask_separators: true`, the
/// released code's default; `false` is its `--nomask_separator_adv`).
/// The softmax spans the whole response (as the released code), so steps after the minimum get a
/// return near 0. Follows CJReinforce/PURE @41f9363 (openrlhf/trainer/ppo_utils/experience_maker.py,
/// openrlhf/utils/utils.py); a one-response group (which the released code rejects) gets baseline 0.
/// Reduces to outcome-only RLOO when the only step reward is R on the last token,
/// `verifiable_coef` is 0 and `mask_separators` is false.
public enum PURE {
    public enum Baseline: String, Codable, Sendable, CaseIterable { case step, token }

    public struct Params: Encodable, Equatable, Sendable {
        public var temperature = 0.1
        public var baseline: Baseline = .step
        public var verifiableCoef = 1.0
        public var weighted = true
        public var klCoef = 0.0
        public var maskSeparators = true

        public init(temperature: Double = 0.1, baseline: Baseline = .step, verifiableCoef: Double = 1,
                    weighted: Bool = true, klCoef: Double = 0, maskSeparators: Bool = true) {
            self.temperature = temperature; self.baseline = baseline; self.verifiableCoef = verifiableCoef
            self.weighted = weighted; self.klCoef = klCoef; self.maskSeparators = maskSeparators
        }

        init(_ r: ParamReader) throws {
            temperature = try r.value("temperature", 0.1)
            baseline = try r.choice("baseline", Baseline.step)
            verifiableCoef = try r.value("verifiable_coef", 1.0)
            weighted = try r.value("weighted", true)
            klCoef = try r.value("kl_coef", 0.0)
            maskSeparators = try r.value("mask_separators", true)
            try r.check("temperature", temperature > 0, "must be > 0, got \(temperature)")
        }

        enum CodingKeys: String, CodingKey {
            case temperature, baseline, verifiableCoef = "verifiable_coef", weighted, klCoef = "kl_coef"
            case maskSeparators = "mask_separators"
        }
    }

    /// Min-form transformed step rewards r̃_k of one response, in index order.
    public static func transform(_ rewards: [Double], temperature: Double, weighted: Bool = true) -> [Double] {
        guard !rewards.isEmpty else { return [] }
        guard weighted else { return rewards.map { $0 / Double(rewards.count) } }
        let logits = rewards.map { -$0 / temperature }
        let m = logits.max()!
        let e = logits.map { Foundation.exp($0 - m) }
        let z = e.reduce(0, +)
        return zip(e, rewards).map { $0 / z * $1 }
    }

    /// Leave-one-out mean of `x` for each member (0 for a one-member group).
    static func leaveOneOut(_ x: [Double]) -> [Double] {
        guard x.count > 1, let x0 = x.first else { return x.map { _ in 0 } }
        // Shifted by x0 so that equal values give exactly x0.
        let s = x.reduce(0) { $0 + ($1 - x0) }, n = Double(x.count - 1)
        return x.map { x0 + (s - ($0 - x0)) / n }
    }

    /// Σ_{j≠i} x_j / Σ_{j≠i} n_j for each member (0 when the others have no tokens).
    static func pooledLeaveOneOut(_ x: [Double], _ n: [Double]) -> [Double] {
        let sx = x.reduce(0, +), sn = n.reduce(0, +)
        return zip(x, n).map { sn - $1 > 0 ? (sx - $0) / (sn - $1) : 0 }
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { params.klCoef != 0 ? [.stepRewards, .kl] : [.stepRewards] }

        func validate(_ batch: CreditBatch) throws {
            try Validation.requireKL(batch, "pure", coef: params.klCoef)
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            for (g, group) in batch.groups.enumerated() {
                let steps = group.trajectories.map { ($0.stepRewards ?? []).sorted { $0.index < $1.index } }
                let transformed = steps.map { PURE.transform($0.map(\.reward), temperature: params.temperature, weighted: params.weighted) }
                let totals = transformed.map { $0.reduce(0, +) }
                let perStep = zip(totals, steps).map { $1.isEmpty ? 0 : $0 / Double($1.count) }
                let lengths = group.trajectories.map { Double($0.count) }
                let stepBase = PURE.leaveOneOut(perStep), tokenBase = PURE.pooledLeaveOneOut(totals, lengths)
                let vr = group.trajectories.map { $0.reward - 1 }
                let vrCentred = group.trajectories.count > 1 ? zip(vr, PURE.leaveOneOut(vr)).map { $0 - $1 } : vr
                for (i, t) in group.trajectories.enumerated() where t.count > 0 {
                    var rewards = t.klPenalty(params.klCoef)
                    var previousEnd = -1
                    for (k, s) in steps[i].enumerated() {
                        let base = params.baseline == .step ? stepBase[i] : tokenBase[i] * Double(s.index - previousEnd - 1)
                        rewards[s.index] += transformed[i][k] - base
                        previousEnd = s.index
                    }
                    rewards[t.count - 1] += params.verifiableCoef * vrCentred[i]
                    var returns = Stats.discountedReturns(rewards, gamma: 1)
                    if params.maskSeparators {
                        for s in steps[i] { returns[s.index] = 0 }
                        returns[t.count - 1] = 0
                    }
                    result.advantages[g][i] = returns
                }
            }
        }
    }
}

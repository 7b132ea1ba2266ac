import Foundation

/// PURE — "Stop Summation: Min-Form Credit Assignment Is All Process Reward Model Needs for
/// Reasoning" (arXiv:2504.15275), ALGORITHMS.md §14. Process rewards PR_k arrive as `step_rewards`
/// at each step's last token.
///   w_k = softmax_k(−PR_k / temperature) over the response's steps,  r̃_k = w_k·PR_k
///   (Σ_k r̃_k → min_k PR_k as temperature → 0; `weighted: false` uses uniform weights).
/// Leave-one-out baselines over the group: `baseline: step` subtracts from every step reward the
/// mean over the other responses of (Σ_k r̃_k)/num_steps; `baseline: token` subtracts, at each
/// step, the others' mean reward per token × the step's token count.
/// The verifiable reward VR = R − 1, RLOO-centred, × `verifiable_coef`, is added at the last token;
/// `kl_coef` subtracts kl_coef·kl_t from every token. Advantage = right-to-left sum of token rewards.
/// The softmax spans the whole response (as the released code), so steps after the minimum get a
/// return near 0. Reduces to outcome-only RLOO when the only step reward is R on the last token
/// and `verifiable_coef` is 0.
public enum PURE {
    public enum Baseline: String, Codable, Sendable, CaseIterable { case step, token }

    public struct Params: Encodable, Equatable, Sendable {
        public var temperature = 0.1
        public var baseline: Baseline = .step
        public var verifiableCoef = 1.0
        public var weighted = true
        public var klCoef = 0.0

        public init(temperature: Double = 0.1, baseline: Baseline = .step, verifiableCoef: Double = 1,
                    weighted: Bool = true, klCoef: Double = 0) {
            self.temperature = temperature; self.baseline = baseline; self.verifiableCoef = verifiableCoef
            self.weighted = weighted; self.klCoef = klCoef
        }

        init(_ r: ParamReader) throws {
            temperature = try r.value("temperature", 0.1)
            baseline = try r.choice("baseline", Baseline.step)
            verifiableCoef = try r.value("verifiable_coef", 1.0)
            weighted = try r.value("weighted", true)
            klCoef = try r.value("kl_coef", 0.0)
            try r.check("temperature", temperature > 0, "must be > 0, got \(temperature)")
        }

        enum CodingKeys: String, CodingKey {
            case temperature, baseline, verifiableCoef = "verifiable_coef", weighted, klCoef = "kl_coef"
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
                let perToken = zip(totals, group.trajectories).map { $1.count == 0 ? 0 : $0 / Double($1.count) }
                let stepBase = PURE.leaveOneOut(perStep), tokenBase = PURE.leaveOneOut(perToken)
                let vr = group.trajectories.map { $0.reward - 1 }
                let vrCentred = group.trajectories.count > 1 ? zip(vr, PURE.leaveOneOut(vr)).map { $0 - $1 } : vr
                for (i, t) in group.trajectories.enumerated() where t.count > 0 {
                    var rewards = t.klPenalty(params.klCoef)
                    var previousEnd = -1
                    for (k, s) in steps[i].enumerated() {
                        let base = params.baseline == .step ? stepBase[i] : tokenBase[i] * Double(s.index - previousEnd)
                        rewards[s.index] += transformed[i][k] - base
                        previousEnd = s.index
                    }
                    rewards[t.count - 1] += params.verifiableCoef * vrCentred[i]
                    result.advantages[g][i] = Stats.discountedReturns(rewards, gamma: 1)
                }
            }
        }
    }
}

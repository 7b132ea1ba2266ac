/// REINFORCE++ — "REINFORCE++: A Simple and Efficient Approach for Aligning Large Language Models"
/// (arXiv:2501.03262), ALGORITHMS.md §6.
/// - `baseline: none`: token rewards r_t = 1[t = last]·R − kl_coef·kl_t, A_t = Σ_{s≥t} γ^{s−t} r_s.
/// - `baseline: group` (REINFORCE++-baseline): A_t = (R − mean_G R) − kl_coef·Σ_{s≥t} γ^{s−t} kl_s.
/// Then global batch whitening over every token: (A − μ)/sqrt(max(σ², 1e-8)), biased σ
/// (`std_normalize: false` only subtracts μ). Reduces to GRPO when the whitening is replaced by the
/// per-group std.
public enum ReinforcePP {
    public enum Baseline: String, Codable, Sendable, CaseIterable { case none, group }

    public struct Params: Encodable, Equatable, Sendable {
        public var baseline: Baseline = .group
        public var gamma = 1.0
        public var klCoef = 0.0
        public var stdNormalize = true

        public init(baseline: Baseline = .group, gamma: Double = 1, klCoef: Double = 0, stdNormalize: Bool = true) {
            self.baseline = baseline; self.gamma = gamma; self.klCoef = klCoef; self.stdNormalize = stdNormalize
        }

        init(_ r: ParamReader) throws {
            baseline = try r.choice("baseline", Baseline.group)
            gamma = try r.value("gamma", 1.0)
            klCoef = try r.value("kl_coef", 0.0)
            stdNormalize = try r.value("std_normalize", true)
            try r.check("gamma", (0...1).contains(gamma), "must be in [0, 1], got \(gamma)")
        }

        enum CodingKeys: String, CodingKey { case baseline, gamma, klCoef = "kl_coef", stdNormalize = "std_normalize" }
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { params.klCoef != 0 ? [.kl] : [] }

        func validate(_ batch: CreditBatch) throws {
            try Validation.requireKL(batch, "reinforce_pp", coef: params.klCoef)
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            for (g, group) in batch.groups.enumerated() {
                let r = group.trajectories.map(\.reward)
                let mean = r.count > 1 ? Stats.mean(r) : 0
                for (i, t) in group.trajectories.enumerated() where t.count > 0 {
                    let penalty = t.klPenalty(params.klCoef)
                    switch params.baseline {
                    case .none:
                        var rewards = penalty
                        rewards[t.count - 1] += t.reward
                        result.advantages[g][i] = Stats.discountedReturns(rewards, gamma: params.gamma)
                    case .group:
                        let shaped = Stats.discountedReturns(penalty, gamma: params.gamma)
                        result.advantages[g][i] = shaped.map { $0 + t.reward - mean }
                    }
                }
            }
            result.whiten(kind: .biased, subtractMeanOnly: !params.stdNormalize)
        }
    }
}

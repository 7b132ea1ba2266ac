/// GAE — "High-Dimensional Continuous Control Using Generalized Advantage Estimation"
/// (Schulman et al., arXiv:1506.02438), with the outcome reward on the last token:
///   r_t = 1[t = last]·R − kl_coef·kl_t,   δ_t = r_t + γ·V_{t+1} − V_t (V_L = 0),
///   A_t = δ_t + γλ·A_{t+1}.
/// Needs per-token critic `values`. `whiten: true` whitens over the batch (unbiased σ, as verl).
/// With λ = 1, γ = 1, V ≡ 0 and no KL it is REINFORCE's return: A_t = R for every token.
public enum GAE {
    public struct Params: Encodable, Equatable, Sendable {
        public var gamma = 1.0
        public var lam = 0.95
        public var klCoef = 0.0
        public var whiten = false

        public init(gamma: Double = 1, lam: Double = 0.95, klCoef: Double = 0, whiten: Bool = false) {
            self.gamma = gamma; self.lam = lam; self.klCoef = klCoef; self.whiten = whiten
        }

        init(_ r: ParamReader) throws {
            gamma = try r.value("gamma", 1.0)
            lam = try r.value("lam", 0.95)
            klCoef = try r.value("kl_coef", 0.0)
            whiten = try r.value("whiten", false)
            try r.check("gamma", (0...1).contains(gamma), "must be in [0, 1], got \(gamma)")
            try r.check("lam", (0...1).contains(lam), "must be in [0, 1], got \(lam)")
        }

        enum CodingKeys: String, CodingKey { case gamma, lam, klCoef = "kl_coef", whiten }
    }

    /// Advantages of one response.
    static func advantages(rewards: [Double], values: [Double], gamma: Double, lam: Double) -> [Double] {
        var adv = [Double](repeating: 0, count: rewards.count)
        var next = 0.0, nextValue = 0.0
        for t in stride(from: rewards.count - 1, through: 0, by: -1) {
            let delta = rewards[t] + gamma * nextValue - values[t]
            next = delta + gamma * lam * next
            adv[t] = next
            nextValue = values[t]
        }
        return adv
    }

    /// The returns a critic learns from, A_t + V_t with A unwhitened (verl's `returns`).
    public static func returns(_ t: Trajectory, _ p: Params) -> [Double] {
        guard t.count > 0, let values = t.values else { return [] }
        var rewards = t.klPenalty(p.klCoef)
        rewards[t.count - 1] += t.reward
        return zip(advantages(rewards: rewards, values: values, gamma: p.gamma, lam: p.lam), values).map { $0 + $1 }
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { params.klCoef != 0 ? [.values, .kl] : [.values] }

        func validate(_ batch: CreditBatch) throws {
            try Validation.require(batch, "gae", "values") { $0.values != nil }
            try Validation.requireKL(batch, "gae", coef: params.klCoef)
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            for (g, group) in batch.groups.enumerated() {
                for (i, t) in group.trajectories.enumerated() where t.count > 0 {
                    var rewards = t.klPenalty(params.klCoef)
                    rewards[t.count - 1] += t.reward
                    result.advantages[g][i] = GAE.advantages(rewards: rewards, values: t.values!, gamma: params.gamma, lam: params.lam)
                }
            }
            if params.whiten { result.whiten(kind: .unbiased) }
        }
    }
}

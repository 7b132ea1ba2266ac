/// GAE — "High-Dimensional Continuous Control Using Generalized Advantage Estimation"
/// (Schulman et al., arXiv:1506.02438), with the outcome reward on the last token:
///   r_t = 1[t = last]·R − kl_coef·kl_t,   δ_t = r_t + γ·V_{t+1} − V_t (V_L = 0),
///   A_t = δ_t + γλ·A_{t+1}.
/// Needs per-token critic `values`. `whiten: true` whitens over the batch (unbiased σ, as verl).
/// With λ = 1, γ = 1, V ≡ 0 and no KL it is REINFORCE's return: A_t = R for every token.
///
/// `macro: fixed` is MA-RLHF (Chai et al., arXiv:2410.02743, ernie-research/MA-RLHF @807551d,
/// `ppo_trainer.py`): the response splits into macro actions of `macro_n` tokens (the last token
/// always alone, so the outcome reward is not averaged in), each macro's value and reward are the
/// means of its tokens' (`value_function: equal`), GAE runs over the macros with the same γ and λ,
/// and every token of a macro takes its advantage and return. `macro_n: 1` is token-level GAE.
///
/// `token_rewards: true` is RTO ("DPO Meets PPO: Reinforced Token Optimization", Zhong et al.,
/// arXiv:2404.18922; zkshan2002/RTO @f2c1294 `_compute_dpo_rewards`, `compute_reward`): each token
/// also earns clip(β₁·(log π_dpo(y_t) − log π_ref(y_t)), ±c), the implicit token reward of a
/// preference-trained model (`token_rewards`), with β₁ = `token_reward_scale` and c =
/// `token_reward_clip` (0: no clip); the released script's 0.05 and 0.05 are the defaults. This is
/// also "From r to Q*"'s dense reward β·Δ_t, with no clip.
public enum GAE {
    /// How a response splits into macro actions (`none`: every token is one).
    public enum Macro: String, Codable, Sendable, CaseIterable { case none, fixed }
    /// How a macro's value and reward weigh its tokens (the official `value_function`): `equal`
    /// means, `unit` the last token's, `position` weights ∝ 1/(i + 1) for its i-th token.
    public enum MacroValue: String, Codable, Sendable, CaseIterable { case equal, unit, position }

    public struct Params: Encodable, Equatable, Sendable {
        public var gamma = 1.0
        public var lam = 0.95
        public var klCoef = 0.0
        public var whiten = false
        public var macro = Macro.none
        /// Tokens per macro action under `macro: fixed` (the official script's 5).
        public var macroN = 5
        /// The official script's `--value_function equal`.
        public var macroValue = MacroValue.equal
        /// RTO's dense token rewards (read from `token_rewards`), their scale β₁ and clip c.
        public var tokenRewards = false
        public var tokenRewardScale = 0.05
        public var tokenRewardClip = 0.05

        public init(gamma: Double = 1, lam: Double = 0.95, klCoef: Double = 0, whiten: Bool = false, macro: Macro = .none, macroN: Int = 5,
                    macroValue: MacroValue = .equal) {
            self.gamma = gamma; self.lam = lam; self.klCoef = klCoef; self.whiten = whiten; self.macro = macro; self.macroN = macroN
            self.macroValue = macroValue
        }

        /// One token's RTO reward: β₁·Δ, clipped at ±c when c > 0 (the official order: scale, then clip).
        public func shaped(_ delta: Double) -> Double {
            let r = tokenRewardScale * delta
            return tokenRewardClip > 0 ? Swift.min(Swift.max(r, -tokenRewardClip), tokenRewardClip) : r
        }

        init(_ r: ParamReader) throws {
            gamma = try r.value("gamma", 1.0)
            lam = try r.value("lam", 0.95)
            klCoef = try r.value("kl_coef", 0.0)
            whiten = try r.value("whiten", false)
            macro = try r.choice("macro", Macro.none)
            macroN = try r.value("macro_n", 5)
            macroValue = try r.choice("macro_value", MacroValue.equal)
            tokenRewards = try r.value("token_rewards", false)
            tokenRewardScale = try r.value("token_reward_scale", 0.05)
            tokenRewardClip = try r.value("token_reward_clip", 0.05)
            // The official code leaves rewards unscaled for a scale ≤ 0; here such a scale is refused instead.
            try r.check("token_reward_scale", tokenRewardScale > 0 && tokenRewardScale.isFinite, "must be positive and finite, got \(tokenRewardScale)")
            try r.check("token_reward_clip", tokenRewardClip >= 0 && tokenRewardClip.isFinite, "must be ≥ 0 and finite (0: no clip), got \(tokenRewardClip)")
            for key in ["token_reward_scale", "token_reward_clip"] where !tokenRewards && r.has(key) { try r.check(key, false, "applies only with 'token_rewards: true'") }
            try r.check("gamma", (0...1).contains(gamma), "must be in [0, 1], got \(gamma)")
            try r.check("lam", (0...1).contains(lam), "must be in [0, 1], got \(lam)")
            try r.check("macro_n", (1...4096).contains(macroN), "must be 1…4096, got \(macroN)")
            for key in ["macro_n", "macro_value"] where macro == .none && r.has(key) { try r.check(key, false, "applies only with 'macro: fixed'") }
        }

        enum CodingKeys: String, CodingKey {
            case gamma, lam, klCoef = "kl_coef", whiten, macro, macroN = "macro_n", macroValue = "macro_value"
            case tokenRewards = "token_rewards", tokenRewardScale = "token_reward_scale", tokenRewardClip = "token_reward_clip"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(gamma, forKey: .gamma)
            try c.encode(lam, forKey: .lam)
            try c.encode(klCoef, forKey: .klCoef)
            try c.encode(whiten, forKey: .whiten)
            try c.encode(macro, forKey: .macro)
            if macro != .none {
                try c.encode(macroN, forKey: .macroN)
                try c.encode(macroValue, forKey: .macroValue)
            }
            if tokenRewards {
                try c.encode(tokenRewards, forKey: .tokenRewards)
                try c.encode(tokenRewardScale, forKey: .tokenRewardScale)
                try c.encode(tokenRewardClip, forKey: .tokenRewardClip)
            }
        }
    }

    /// MA-RLHF's fixed n-gram macro actions of a response of `count` tokens: runs of `n` from the
    /// first token, the remainder shorter, and the last token a macro of its own.
    public static func macros(count: Int, n: Int) -> [Range<Int>] {
        guard count > 0 else { return [] }
        var starts = Array(stride(from: 0, to: count - 1, by: n))
        starts.append(count - 1)
        return zip(starts, starts.dropFirst() + [count]).map { $0..<$1 }
    }

    /// Per-token advantages and returns (A + V, A unwhitened) of one response with `values`.
    static func perToken(_ t: Trajectory, values: [Double], _ p: Params) -> (advantages: [Double], returns: [Double]) {
        var rewards = t.klPenalty(p.klCoef)
        rewards[t.count - 1] += t.reward
        if p.tokenRewards, let dense = t.tokenRewards {
            for (k, d) in dense.enumerated() where t.actionMask?[k] ?? true { rewards[k] += p.shaped(d) }
        }
        guard p.macro == .fixed else {
            let a = advantages(rewards: rewards, values: values, gamma: p.gamma, lam: p.lam, mask: t.actionMask)
            return (a, zip(a, values).map { $0 + $1 })
        }
        let parts = macros(count: t.count, n: p.macroN)
        func pool(_ x: [Double], _ r: Range<Int>) -> Double {
            switch p.macroValue {
            case .equal: return x[r].reduce(0, +) / Double(r.count)
            case .unit: return x[r.upperBound - 1]
            case .position:
                let w = (0..<r.count).map { 1 / Double($0 + 1) }, total = w.reduce(0, +)
                return zip(x[r], w).reduce(0) { $0 + $1.0 * $1.1 } / total
            }
        }
        let v = parts.map { pool(values, $0) }
        let a = advantages(rewards: parts.map { pool(rewards, $0) }, values: v, gamma: p.gamma, lam: p.lam)
        var adv = [Double](repeating: 0, count: t.count), ret = adv
        for (k, r) in parts.enumerated() { for i in r { adv[i] = a[k]; ret[i] = a[k] + v[k] } }
        return (adv, ret)
    }

    /// Advantages of one response. Tokens outside `mask` (an agent's observations) are skipped, as
    /// verl's `response_mask`: the recursion runs from action token to action token, and a skipped
    /// token keeps the advantage of the action after it.
    static func advantages(rewards: [Double], values: [Double], gamma: Double, lam: Double, mask: [Bool]? = nil) -> [Double] {
        var adv = [Double](repeating: 0, count: rewards.count)
        var next = 0.0, nextValue = 0.0
        for t in stride(from: rewards.count - 1, through: 0, by: -1) {
            if mask?[t] ?? true {
                let delta = rewards[t] + gamma * nextValue - values[t]
                next = delta + gamma * lam * next
                nextValue = values[t]
            }
            adv[t] = next
        }
        return adv
    }

    /// The returns a critic learns from, A_t + V_t with A unwhitened (verl's `returns`).
    public static func returns(_ t: Trajectory, _ p: Params) -> [Double] {
        guard t.count > 0, let values = t.values else { return [] }
        return perToken(t, values: values, p).returns
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { Set<CreditInput>([.values]).union(params.klCoef != 0 ? [.kl] : []).union(params.tokenRewards ? [.tokenRewards] : []) }

        func validate(_ batch: CreditBatch) throws {
            try Validation.require(batch, "gae", "values") { $0.values != nil }
            if params.tokenRewards { try Validation.require(batch, "gae", "token_rewards") { $0.tokenRewards != nil } }
            try Validation.requireKL(batch, "gae", coef: params.klCoef)
            if params.macro == .fixed, let (g, i) = batch.allIndices.first(where: { batch.groups[$0.g].trajectories[$0.i].actionMask != nil }) {
                throw CreditError("gae: group \(g) trajectory \(i): 'macro: fixed' splits one response into n-grams, and this one interleaves observations (an action mask); use macro: none")
            }
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            for (g, group) in batch.groups.enumerated() {
                for (i, t) in group.trajectories.enumerated() where t.count > 0 {
                    result.advantages[g][i] = GAE.perToken(t, values: t.values!, params).advantages
                }
            }
            if params.whiten { result.whiten(kind: .unbiased) }
        }
    }
}

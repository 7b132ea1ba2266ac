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

        public init(gamma: Double = 1, lam: Double = 0.95, klCoef: Double = 0, whiten: Bool = false, macro: Macro = .none, macroN: Int = 5,
                    macroValue: MacroValue = .equal) {
            self.gamma = gamma; self.lam = lam; self.klCoef = klCoef; self.whiten = whiten; self.macro = macro; self.macroN = macroN
            self.macroValue = macroValue
        }

        init(_ r: ParamReader) throws {
            gamma = try r.value("gamma", 1.0)
            lam = try r.value("lam", 0.95)
            klCoef = try r.value("kl_coef", 0.0)
            whiten = try r.value("whiten", false)
            macro = try r.choice("macro", Macro.none)
            macroN = try r.value("macro_n", 5)
            macroValue = try r.choice("macro_value", MacroValue.equal)
            try r.check("gamma", (0...1).contains(gamma), "must be in [0, 1], got \(gamma)")
            try r.check("lam", (0...1).contains(lam), "must be in [0, 1], got \(lam)")
            try r.check("macro_n", (1...4096).contains(macroN), "must be 1…4096, got \(macroN)")
            for key in ["macro_n", "macro_value"] where macro == .none && r.has(key) { try r.check(key, false, "applies only with 'macro: fixed'") }
        }

        enum CodingKeys: String, CodingKey { case gamma, lam, klCoef = "kl_coef", whiten, macro, macroN = "macro_n", macroValue = "macro_value" }

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
        var inputs: Set<CreditInput> { params.klCoef != 0 ? [.values, .kl] : [.values] }

        func validate(_ batch: CreditBatch) throws {
            try Validation.require(batch, "gae", "values") { $0.values != nil }
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

/// Every choice of a policy-gradient loss, each independent of the others (names as in YAML, CLI
/// and JSON). Formulas: ALGORITHMS.md §1, §7, §8, §9.4, §12, §17.
public struct PolicyLossConfig: Equatable, Sendable {
    /// Importance-ratio level.
    public enum Ratio: String, Codable, Sendable, CaseIterable {
        case token, sequence
        case gspoToken = "gspo_token"
        case hybrid
        case prefixMin = "prefix_min"
        case turn

        /// GSPO's ratios: one value per sequence (`gspo_token` in value), so the loss is a mean over sequences.
        public var isSequenceLevel: Bool { self == .sequence || self == .gspoToken }
    }

    public enum Aggregation: String, Codable, Sendable, CaseIterable {
        case tokenMean = "token_mean"
        case seqMeanTokenMean = "seq_mean_token_mean"
        case seqMeanTokenSum = "seq_mean_token_sum"
        case seqMeanTokenSumNorm = "seq_mean_token_sum_norm"
    }

    public enum KLEstimator: String, Codable, Sendable, CaseIterable { case k1, k2, k3 }

    /// MinPRO surrogate (arXiv:2601.22718; no code released, the method section not readable here).
    /// `preceding` (default): the token-level clipped surrogate times sg(min_{k<t} ρ_k), 1 at the first
    /// token — the abstract's "minimum token-level ratio observed in the preceding prefix" standing in
    /// for the prefix ratio Π_{k<t} ρ_k of the state before token t. `weighted`: times sg(m_t/ρ_t) with
    /// the inclusive m_t = min_{k≤t} ρ_k; `direct`: m_t itself is clipped (its gradient reaches the
    /// arg-min token). The last two are earlier readings, kept selectable.
    public enum PrefixMinVariant: String, Codable, Sendable, CaseIterable { case preceding, weighted, direct }

    /// HAPO's asymmetric adaptive clipping (§9.4).
    public struct AdaptiveClip: Codable, Equatable, Sendable {
        public var alpha = 1.0
        public var entropyPivot = 0.8
        public var signFix = true

        public init(alpha: Double = 1, entropyPivot: Double = 0.8, signFix: Bool = true) {
            self.alpha = alpha; self.entropyPivot = entropyPivot; self.signFix = signFix
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case alpha, entropyPivot = "entropy_pivot", signFix = "sign_fix" }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self, in: "adaptive_clip")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            alpha = try c.decodeIfPresent(Double.self, forKey: .alpha) ?? 1
            entropyPivot = try c.decodeIfPresent(Double.self, forKey: .entropyPivot) ?? 0.8
            signFix = try c.decodeIfPresent(Bool.self, forKey: .signFix) ?? true
        }
    }

    /// HAPO's Differential Advantage Redistribution (§9.5), applied in the loss as the released code
    /// does (starriver030515/HAPO @7671dde, `compute_policy_loss` → `ada_advantage`): with the live
    /// ratio ρ and ĥ of the live entropies of each micro-batch, A^ent = A(1 + βĥ); ĥ > 0 keeps A
    /// inside the neutral zone (1 − ε_l/2, 1 + ε_h/2) and takes A^ent outside it, ĥ ≤ 0 the reverse.
    public struct AdaptiveAdvantage: Codable, Equatable, Sendable {
        public var beta = 1.0
        public var entropyPivot = 0.8
        public var signFix = true

        public init(beta: Double = 1, entropyPivot: Double = 0.8, signFix: Bool = true) {
            self.beta = beta; self.entropyPivot = entropyPivot; self.signFix = signFix
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case beta, entropyPivot = "entropy_pivot", signFix = "sign_fix" }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self, in: "adaptive_advantage")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? 1
            entropyPivot = try c.decodeIfPresent(Double.self, forKey: .entropyPivot) ?? 0.8
            signFix = try c.decodeIfPresent(Bool.self, forKey: .signFix) ?? true
        }
    }

    /// DHPO's mixing of token and sequence ratios (arXiv:2601.05607; no code released, UNVERIFIED
    /// reconstruction). `entropy` mixing weighs the token branch by a stop-gradient entropy
    /// normalised per sequence: `minmax` (H − min H)/(max H − min H), the one reading of the paper's
    /// equations reported to us, or `max` H / max H, our earlier reconstruction.
    public struct Hybrid: Codable, Equatable, Sendable {
        public enum Mixing: String, Codable, Sendable, CaseIterable { case average, entropy }
        public enum Space: String, Codable, Sendable, CaseIterable { case linear, log }
        public enum EntropyNorm: String, Codable, Sendable, CaseIterable { case minmax, max }
        public var mixing: Mixing = .average
        public var space: Space = .linear
        /// Weight of the token branch for `average` mixing.
        public var tokenWeight = 0.5
        public var entropyNorm: EntropyNorm = .minmax

        public init(mixing: Mixing = .average, space: Space = .linear, tokenWeight: Double = 0.5, entropyNorm: EntropyNorm = .minmax) {
            self.mixing = mixing; self.space = space; self.tokenWeight = tokenWeight; self.entropyNorm = entropyNorm
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case mixing, space, tokenWeight = "token_weight", entropyNorm = "entropy_norm" }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self, in: "hybrid")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            mixing = try c.choice(.mixing, in: "hybrid") as Mixing? ?? .average
            space = try c.choice(.space, in: "hybrid") as Space? ?? .linear
            tokenWeight = try c.decodeIfPresent(Double.self, forKey: .tokenWeight) ?? 0.5
            entropyNorm = try c.choice(.entropyNorm, in: "hybrid") as EntropyNorm? ?? .minmax
            // Each option belongs to one mixing; the other's would be accepted and ignored.
            if mixing == .entropy, c.contains(.tokenWeight) { throw ObjectiveError("hybrid: 'token_weight' is for mixing 'average' (mixing is 'entropy')") }
            if mixing == .average, c.contains(.entropyNorm) { throw ObjectiveError("hybrid: 'entropy_norm' is for mixing 'entropy' (mixing is 'average')") }
        }

        /// Only the options of the chosen mixing, so that the config reads back.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(mixing, forKey: .mixing)
            try c.encode(space, forKey: .space)
            switch mixing {
            case .average: try c.encode(tokenWeight, forKey: .tokenWeight)
            case .entropy: try c.encode(entropyNorm, forKey: .entropyNorm)
            }
        }
    }

    /// Train/inference mismatch correction from the rollout engine's logprobs (§17).
    public struct Mismatch: Codable, Equatable, Sendable {
        public enum Mode: String, Codable, Sendable, CaseIterable {
            case none, tis, icepop
            case seqMaskTIS = "seq_mask_tis"
        }
        public var mode: Mode = .none
        public var low = 0.5
        public var high = 5.0
        public var cap = 2.0

        public init(mode: Mode = .none, low: Double = 0.5, high: Double = 5, cap: Double = 2) {
            self.mode = mode; self.low = low; self.high = high; self.cap = cap
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case mode, low, high, cap }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self, in: "mismatch")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            mode = try c.choice(.mode, in: "mismatch") as Mode? ?? .none
            low = try c.decodeIfPresent(Double.self, forKey: .low) ?? 0.5
            high = try c.decodeIfPresent(Double.self, forKey: .high) ?? 5
            cap = try c.decodeIfPresent(Double.self, forKey: .cap) ?? 2
        }
    }

    public var ratio: Ratio = .token
    public var epsLow = 0.2
    public var epsHigh = 0.2
    public var seqEpsLow = 3e-4
    public var seqEpsHigh = 4e-4
    /// PPO clipping on (false: plain importance-weighted policy gradient, −ρA).
    public var clip = true
    public var dualClip: Double?
    public var adaptiveClip: AdaptiveClip?
    public var adaptiveAdvantage: AdaptiveAdvantage?
    public var hybrid: Hybrid?
    public var prefixMinVariant: PrefixMinVariant = .preceding
    public var mismatch = Mismatch()
    /// The loss aggregation; unset, the ratio's own: `seq_mean_token_mean` for GSPO's sequence
    /// ratios (verl's compute_policy_loss_gspo forces it), else `token_mean`.
    public var aggregation: Aggregation {
        get { aggregationChoice ?? (ratio.isSequenceLevel ? .seqMeanTokenMean : .tokenMean) }
        set { aggregationChoice = newValue }
    }
    /// The aggregation as set (nil: the ratio's default), which is what a config file records.
    public var aggregationChoice: Aggregation?
    public var normConstant: Double?
    public var klCoef = 0.0
    public var klEstimator: KLEstimator = .k3
    public var entropyCoef = 0.0
    /// Log-ratios are clamped to ±this before exp (verl, OpenRLHF: 20).
    public var logRatioClamp = 20.0

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case ratio, clip, hybrid, mismatch, aggregation
        case epsLow = "eps_low", epsHigh = "eps_high", seqEpsLow = "seq_eps_low", seqEpsHigh = "seq_eps_high"
        case dualClip = "dual_clip", adaptiveClip = "adaptive_clip", adaptiveAdvantage = "adaptive_advantage", prefixMinVariant = "prefix_min_variant"
        case normConstant = "norm_constant", klCoef = "kl_coef", klEstimator = "kl_estimator"
        case entropyCoef = "entropy_coef", logRatioClamp = "log_ratio_clamp"
    }

    /// Rejects combinations the loss cannot honour, naming the key.
    public func validate() throws {
        for (name, v) in [("eps_low", epsLow), ("eps_high", epsHigh), ("seq_eps_low", seqEpsLow), ("seq_eps_high", seqEpsHigh)] {
            guard v >= 0, v.isFinite else { throw ObjectiveError("objective: '\(name)' must be >= 0, got \(v)") }
        }
        guard epsLow < 1, seqEpsLow < 1 else { throw ObjectiveError("objective: 'eps_low' and 'seq_eps_low' must be below 1") }
        if let c = dualClip, !(c > 1) { throw ObjectiveError("objective: 'dual_clip' must be > 1, got \(c)") }
        if hybrid != nil && ratio != .hybrid {
            throw ObjectiveError("objective: 'hybrid' is set but 'ratio' is '\(ratio.rawValue)' (use ratio: hybrid)")
        }
        if let h = hybrid, !(0...1).contains(h.tokenWeight) {
            throw ObjectiveError("objective: 'hybrid.token_weight' must be in [0, 1], got \(h.tokenWeight)")
        }
        if adaptiveClip != nil && ![.token, .prefixMin, .turn, .hybrid].contains(ratio) {
            throw ObjectiveError("objective: 'adaptive_clip' needs a token-level ratio, not '\(ratio.rawValue)'")
        }
        if adaptiveClip != nil && !clip { throw ObjectiveError("objective: 'adaptive_clip' needs 'clip: true'") }
        if adaptiveAdvantage != nil && ![.token, .prefixMin, .turn, .hybrid].contains(ratio) {
            throw ObjectiveError("objective: 'adaptive_advantage' needs a token-level ratio, not '\(ratio.rawValue)'")
        }
        if let a = adaptiveAdvantage, let c = adaptiveClip, a.entropyPivot != c.entropyPivot || a.signFix != c.signFix {
            throw ObjectiveError("objective: 'adaptive_advantage' and 'adaptive_clip' share one entropy score: give them the same 'entropy_pivot' and 'sign_fix'")
        }
        if mismatch.mode != .none && !(mismatch.low < mismatch.high) {
            throw ObjectiveError("objective: 'mismatch.low' (\(mismatch.low)) must be below 'mismatch.high' (\(mismatch.high))")
        }
        if mismatch.mode == .tis && !(mismatch.cap > 0) { throw ObjectiveError("objective: 'mismatch.cap' must be > 0") }
        if normConstant != nil && aggregation != .seqMeanTokenSumNorm {
            throw ObjectiveError("objective: 'norm_constant' only applies to aggregation 'seq_mean_token_sum_norm'")
        }
        if let c = normConstant, !(c > 0) { throw ObjectiveError("objective: 'norm_constant' must be > 0, got \(c)") }
        guard logRatioClamp > 0 else { throw ObjectiveError("objective: 'log_ratio_clamp' must be > 0") }
        for (name, v) in [("kl_coef", klCoef), ("entropy_coef", entropyCoef), ("log_ratio_clamp", logRatioClamp)] where !v.isFinite {
            throw ObjectiveError("objective: '\(name)' must be finite, got \(v)")
        }
        if ratio.isSequenceLevel && aggregation != .seqMeanTokenMean {
            throw ObjectiveError("objective: ratio '\(ratio.rawValue)' (GSPO) is a sequence-level objective and needs aggregation "
                + "'seq_mean_token_mean' (the default for it; verl's compute_policy_loss_gspo forces it), not '\(aggregation.rawValue)'")
        }
    }
}

extension PolicyLossConfig: Codable {
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ratio, forKey: .ratio)
        try c.encode(epsLow, forKey: .epsLow)
        try c.encode(epsHigh, forKey: .epsHigh)
        try c.encode(seqEpsLow, forKey: .seqEpsLow)
        try c.encode(seqEpsHigh, forKey: .seqEpsHigh)
        try c.encode(clip, forKey: .clip)
        try c.encodeIfPresent(dualClip, forKey: .dualClip)
        try c.encodeIfPresent(adaptiveClip, forKey: .adaptiveClip)
        try c.encodeIfPresent(adaptiveAdvantage, forKey: .adaptiveAdvantage)
        try c.encodeIfPresent(hybrid, forKey: .hybrid)
        try c.encode(prefixMinVariant, forKey: .prefixMinVariant)
        try c.encode(mismatch, forKey: .mismatch)
        try c.encodeIfPresent(aggregationChoice, forKey: .aggregation)
        try c.encodeIfPresent(normConstant, forKey: .normConstant)
        try c.encode(klCoef, forKey: .klCoef)
        try c.encode(klEstimator, forKey: .klEstimator)
        try c.encode(entropyCoef, forKey: .entropyCoef)
        try c.encode(logRatioClamp, forKey: .logRatioClamp)
    }

    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self, in: "objective")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ratio = try c.choice(.ratio, in: "objective") as Ratio? ?? .token
        epsLow = try c.decodeIfPresent(Double.self, forKey: .epsLow) ?? 0.2
        epsHigh = try c.decodeIfPresent(Double.self, forKey: .epsHigh) ?? 0.2
        seqEpsLow = try c.decodeIfPresent(Double.self, forKey: .seqEpsLow) ?? 3e-4
        seqEpsHigh = try c.decodeIfPresent(Double.self, forKey: .seqEpsHigh) ?? 4e-4
        clip = try c.decodeIfPresent(Bool.self, forKey: .clip) ?? true
        dualClip = try c.decodeIfPresent(Double.self, forKey: .dualClip)
        adaptiveClip = try c.decodeIfPresent(AdaptiveClip.self, forKey: .adaptiveClip)
        adaptiveAdvantage = try c.decodeIfPresent(AdaptiveAdvantage.self, forKey: .adaptiveAdvantage)
        hybrid = try c.decodeIfPresent(Hybrid.self, forKey: .hybrid)
        if ratio == .hybrid && hybrid == nil { hybrid = Hybrid() }
        prefixMinVariant = try c.choice(.prefixMinVariant, in: "objective") as PrefixMinVariant? ?? .preceding
        mismatch = try c.decodeIfPresent(Mismatch.self, forKey: .mismatch) ?? Mismatch()
        aggregationChoice = try c.choice(.aggregation, in: "objective") as Aggregation?
        normConstant = try c.decodeIfPresent(Double.self, forKey: .normConstant)
        klCoef = try c.decodeIfPresent(Double.self, forKey: .klCoef) ?? 0
        klEstimator = try c.choice(.klEstimator, in: "objective") as KLEstimator? ?? .k3
        entropyCoef = try c.decodeIfPresent(Double.self, forKey: .entropyCoef) ?? 0
        logRatioClamp = try c.decodeIfPresent(Double.self, forKey: .logRatioClamp) ?? 20
        try validate()
    }
}

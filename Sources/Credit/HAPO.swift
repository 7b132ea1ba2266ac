import Foundation

/// HAPO — "Heterogeneous Adaptive Policy Optimization" (arXiv:2509.16591), ALGORITHMS.md §9.
/// - ĥ (§9.1): e = log(max(H, 1e-8)); m = q-quantile of e (q = `entropy_pivot`, nearest);
///   h = (e − m)/s with s the RMS deviation around m; positive h scaled by max h, negative by
///   |min h| (`sign_fix: true`, the paper's intent) or by the signed min (released code: ĥ ≥ 0).
/// - TLGA (§9.3, `tlga: true`): per group, token-weighted mean μ = Σ L_i R_i / Σ L_i and biased
///   σ; A_i = (R_i − μ)/(σ + 1e-6); a group with any |A_i| ≥ 5 falls back to GRPO.
///   `tlga: false` uses GRPO's advantage (unbiased std, eps 1e-6).
/// - Differential Advantage Redistribution (§9.5, `redistribution: true`, for `tokenwise credit`
///   with given `ratios`): with the (adaptive, §9.4) clip range ε_l,t, ε_h,t, the neutral zone
///   N = (1 − ε_l,t/2, 1 + ε_h,t/2) and A^ent = A(1 + β ĥ):
///   ĥ > 0: A' = A if ρ ∈ N else A^ent;   ĥ ≤ 0: A' = A^ent if ρ ∈ N else A.
///   The released code (starriver030515/HAPO @7671dde) applies it in the loss with each
///   mini-batch's live ratio, which is `objective.adaptive_advantage` in training; so it is off here
///   by default, and training refuses it (the ratio at credit time is always 1).
/// Reduces to GRPO with `tlga: false` and `redistribution: false`.
public enum HAPO {
    public struct Params: Encodable, Equatable, Sendable {
        public var entropyPivot = 0.8
        public var signFix = true
        public var tlga = true
        public var redistribution = false
        public var advBeta = 1.0
        public var stdNormalize = true
        public var clipLow = 0.2
        public var clipHigh = 0.2
        public var clipAlpha = 1.0
        public var adaptiveClip = true

        public init(entropyPivot: Double = 0.8, signFix: Bool = true, tlga: Bool = true, redistribution: Bool = false,
                    advBeta: Double = 1, stdNormalize: Bool = true, clipLow: Double = 0.2, clipHigh: Double = 0.2,
                    clipAlpha: Double = 1, adaptiveClip: Bool = true) {
            self.entropyPivot = entropyPivot; self.signFix = signFix; self.tlga = tlga
            self.redistribution = redistribution; self.advBeta = advBeta; self.stdNormalize = stdNormalize
            self.clipLow = clipLow; self.clipHigh = clipHigh; self.clipAlpha = clipAlpha; self.adaptiveClip = adaptiveClip
        }

        init(_ r: ParamReader) throws {
            entropyPivot = try r.value("entropy_pivot", 0.8)
            signFix = try r.value("sign_fix", true)
            tlga = try r.value("tlga", true)
            redistribution = try r.value("redistribution", false)
            advBeta = try r.value("adv_beta", 1.0)
            stdNormalize = try r.value("std_normalize", true)
            clipLow = try r.value("clip_low", 0.2)
            clipHigh = try r.value("clip_high", 0.2)
            clipAlpha = try r.value("clip_alpha", 1.0)
            adaptiveClip = try r.value("adaptive_clip", true)
            try r.check("entropy_pivot", (0...1).contains(entropyPivot), "must be in [0, 1], got \(entropyPivot)")
        }

        enum CodingKeys: String, CodingKey {
            case entropyPivot = "entropy_pivot", signFix = "sign_fix", tlga, redistribution, advBeta = "adv_beta"
            case stdNormalize = "std_normalize", clipLow = "clip_low", clipHigh = "clip_high"
            case clipAlpha = "clip_alpha", adaptiveClip = "adaptive_clip"
        }
    }

    /// The batch statistics behind ĥ; also what Adaptive Temperature Sampling (§9.2) reuses at the
    /// next rollout.
    public struct EntropyStatistics: Equatable, Sendable, Codable {
        public var pivot: Double
        public var scale: Double
        public var positiveMax: Double
        public var negativeMin: Double
        public var signFix: Bool

        /// Statistics over every given entropy (the batch's valid tokens).
        public init(entropies: [Double], pivotQuantile: Double = 0.8, signFix: Bool = true) {
            let e = entropies.map { Foundation.log(Swift.max($0, 1e-8)) }
            let m = Stats.quantileNearest(e, pivotQuantile)
            let s = Swift.max((Stats.mean(e.map { ($0 - m) * ($0 - m) })).squareRoot(), (1e-8).squareRoot())
            let h = e.map { ($0 - m) / s }
            pivot = m
            scale = s
            positiveMax = Swift.max(h.filter { $0 > 0 }.max() ?? 0, 1e-8)
            negativeMin = Swift.min(h.filter { $0 < 0 }.min() ?? 0, -1e-8)
            self.signFix = signFix
        }

        /// ĥ of one entropy value.
        public func normalized(_ entropy: Double) -> Double {
            let h = (Foundation.log(Swift.max(entropy, 1e-8)) - pivot) / scale
            if h > 0 { return h / positiveMax }
            return signFix ? h / Swift.abs(negativeMin) : h / negativeMin
        }
    }

    /// Token-Level Group Average advantages of one group (nil → fall back to GRPO).
    static func tlga(rewards: [Double], lengths: [Int], stdNormalize: Bool) -> [Double]? {
        let total = Double(lengths.reduce(0, +))
        guard total > 0 else { return rewards.map { _ in 0 } }
        let mu = Stats.weightedMean(rewards, lengths.map(Double.init))
        let sigma = (zip(rewards, lengths).reduce(0) { $0 + Double($1.1) * ($1.0 - mu) * ($1.0 - mu) } / total).squareRoot()
        let adv = rewards.map { stdNormalize ? ($0 - mu) / (sigma + 1e-6) : $0 - mu }
        return adv.contains { Swift.abs($0) >= 5 } ? nil : adv
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { params.redistribution ? [.entropies, .ratios] : [] }

        func validate(_ batch: CreditBatch) throws {
            if params.redistribution {
                try Validation.require(batch, "hapo", "entropies") { $0.entropies != nil }
                try Validation.require(batch, "hapo", "ratios (live importance ratios, for redistribution)") { $0.ratios != nil }
            }
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            let grpo = GRPO.advantages(batch, GRPO.Params(stdNormalize: params.stdNormalize))
            var fallbacks = 0
            for (g, group) in batch.groups.enumerated() {
                var adv = grpo[g]
                if params.tlga {
                    if let a = HAPO.tlga(rewards: group.trajectories.map(\.reward), lengths: group.trajectories.map(\.count),
                                         stdNormalize: params.stdNormalize) {
                        adv = a
                    } else {
                        fallbacks += 1
                    }
                }
                for i in adv.indices { result.fill(g, i, adv[i]) }
            }
            result.diagnostics["hapo_tlga_fallback_groups"] = Double(fallbacks)
            guard params.redistribution else { return }
            let all = batch.groups.flatMap { $0.trajectories.flatMap { $0.entropies! } }
            let stats = EntropyStatistics(entropies: all, pivotQuantile: params.entropyPivot, signFix: params.signFix)
            var changed = 0, total = 0
            for (g, group) in batch.groups.enumerated() {
                for (i, t) in group.trajectories.enumerated() {
                    for k in 0..<t.count {
                        let hh = stats.normalized(t.entropies![k])
                        let rho = t.ratios?[k] ?? 1
                        var epsLow = params.clipLow, epsHigh = params.clipHigh
                        if params.adaptiveClip {
                            if hh <= 0 { epsLow *= 1 - params.clipAlpha * hh } else { epsHigh *= 1 + params.clipAlpha * hh }
                        }
                        let neutral = rho > 1 - epsLow / 2 && rho < 1 + epsHigh / 2
                        let a = result.advantages[g][i][k]
                        let amplified = a * (1 + params.advBeta * hh)
                        let out = hh > 0 ? (neutral ? a : amplified) : (neutral ? amplified : a)
                        if out != a { changed += 1 }
                        total += 1
                        result.advantages[g][i][k] = out
                    }
                }
            }
            result.diagnostics["hapo_entropy_pivot"] = stats.pivot
            result.diagnostics["hapo_entropy_scale"] = stats.scale
            result.diagnostics["hapo_redistributed_token_fraction"] = total == 0 ? 0 : Double(changed) / Double(total)
        }
    }
}

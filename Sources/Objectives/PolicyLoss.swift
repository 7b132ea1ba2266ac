import Credit
import Foundation
import Torch

/// The policy-gradient loss: importance ratio × clipping × mismatch correction × Credit's token
/// weights × aggregation, plus KL and entropy regularisers. Per token (ALGORITHMS.md §1.1):
///   ℓ = max(−r·A, −clip(r, 1 − ε_low, 1 + ε_high)·A),  dual clip: ℓ = min(ℓ, −c·A) where A < 0,
/// with r chosen by `ratio`:
/// - `token` (PPO/GRPO): ρ_t = exp(logp − old)
/// - `sequence` (GSPO, arXiv:2507.18071): s_i = exp(mean_t(logp − old)), one clip per sequence, `seq_eps_*`
/// - `gspo_token`: exp(logp − sg(logp) + sg(log s_i)) — value s_i, gradient s_i·A per token, `seq_eps_*`
/// - `hybrid` (DHPO, arXiv:2601.05607, UNVERIFIED): each branch clipped in its own range, then mixed
///   r = w·ρ + (1 − w)·s (or geometrically); w = `token_weight`, or a stop-gradient entropy per
///   sequence, min-max normalised (`entropy_norm: minmax`) or H / max H (`max`)
/// - `prefix_min` (MinPRO, arXiv:2601.22718, UNVERIFIED): `preceding` scales the token surrogate by
///   sg(min_{k < t} ρ_k), `weighted` by sg(m_t/ρ_t) with m_t = min_{k ≤ t} ρ_k, `direct` clips m_t
/// - `turn` (ST-PPO turn-level, arXiv:2511.20718): exp(mean of logp − old over the token's turn)
/// HAPO's `adaptive_clip` (arXiv:2509.16591 §9.4) widens ε_low on low-entropy and ε_high on
/// high-entropy tokens. Reduces to GRPO's token loss with `ratio: token`, symmetric ε and no extras.
public struct PolicyLoss {
    public let config: PolicyLossConfig

    public init(_ config: PolicyLossConfig) throws {
        try config.validate()
        self.config = config
    }

    /// Per-batch tensors every part of the loss reads.
    struct Terms {
        let mask: Tensor          // [B, T] valid tokens
        let lossMask: Tensor      // valid and not given weight 0 by Credit
        let tokenWeights: Tensor  // Credit's weights on loss tokens
        let logp: Tensor
        var A: Tensor             // advantages, constant (HAPO's redistribution replaces them)
        let logRatio: Tensor      // clamped, 0 on padding
        let rho: Tensor
        let lengths: Tensor       // [B, 1], at least 1
        let seqLogRatio: Tensor   // [B, 1], mean log-ratio, ≤ 10
        let seqLogRatioRaw: Tensor  // [B, 1], the mean of the unclamped token log-ratios (GSPO's, as verl)

        init(_ b: PolicyBatch, clamp: Double) {
            mask = b.mask
            let keep = b.weights.map { b.mask * ($0 .> 0).to(dtype: b.mask.dtype) } ?? b.mask
            lossMask = keep
            tokenWeights = b.weights.map { $0 * keep } ?? keep
            logp = b.logprobs
            A = b.advantages.detached()
            logRatio = (b.logprobs - b.oldLogprobs.detached()).clamp(min: -clamp, max: clamp) * b.mask
            rho = logRatio.exp()
            lengths = b.mask.sum(dim: 1, keepDim: true).clamp(min: 1)
            // verl's GSPO averages unclamped token log-ratios, then clamps the sequence one at 10.
            seqLogRatioRaw = ((b.logprobs - b.oldLogprobs.detached()) * b.mask).sum(dim: 1, keepDim: true) / lengths
            seqLogRatio = seqLogRatioRaw.clamp(max: 10)
        }
    }

    /// Clip bounds: scalars, or per-token tensors under HAPO's adaptive clipping.
    struct ClipRange {
        var lo: Tensor?, hi: Tensor?
        var loS = 0.0, hiS = 0.0

        func apply(_ r: Tensor) -> Tensor {
            if let lo, let hi { return r.maximum(lo).minimum(hi) }
            return r.clamp(min: loS, max: hiS)
        }
    }

    func clipRange(_ low: Double, _ high: Double, _ hhat: Tensor?) -> ClipRange {
        guard let hhat, let a = config.adaptiveClip else { return ClipRange(loS: 1 - low, hiS: 1 + high) }
        // ĥ ≤ 0: ε_l(1 − αĥ); ĥ > 0: ε_h(1 + αĥ).
        let neg = hhat.clamp(max: 0), pos = hhat.clamp(min: 0)
        return ClipRange(lo: 1 - low * (1 - a.alpha * neg), hi: 1 + high * (1 + a.alpha * pos))
    }

    /// ĥ per token over the batch's unmasked entropies (HAPO §9.1), as a tensor, when adaptive
    /// clipping or advantage redistribution reads it (they share one pivot and sign rule).
    func normalizedEntropy(_ b: PolicyBatch, _ mask: Tensor) throws -> Tensor? {
        let c = config
        guard let (pivot, signFix) = c.adaptiveClip.map({ ($0.entropyPivot, $0.signFix) }) ?? c.adaptiveAdvantage.map({ ($0.entropyPivot, $0.signFix) }) else {
            return nil
        }
        let entropies = try Self.need(b.entropies, "entropies", c.adaptiveClip != nil ? "adaptive_clip" : "adaptive_advantage")
        let h = try entropies.to(.cpu, dtype: .float64).doubles(), m = try mask.to(.cpu, dtype: .float64).doubles()
        let stats = HAPO.EntropyStatistics(entropies: zip(h, m).filter { $0.1 > 0 }.map(\.0), pivotQuantile: pivot, signFix: signFix)
        return Tensor(h.map(stats.normalized), shape: entropies.shape).to(entropies.device, dtype: entropies.dtype)
    }

    /// HAPO's Differential Advantage Redistribution with the live token ratio (constant).
    func redistributed(_ x: Terms, _ hhat: Tensor, _ range: ClipRange, beta: Double) -> Tensor {
        let rho = x.rho.detached()
        let lo = range.lo.map { (1 + $0) / 2 }, hi = range.hi.map { (1 + $0) / 2 }
        let above = lo.map { rho .> $0 } ?? (rho .> (1 + range.loS) / 2)
        let below = hi.map { rho .< $0 } ?? (rho .< (1 + range.hiS) / 2)
        let neutral = above.logicalAnd(below)
        let amplified = x.A * (1 + beta * hhat)
        return Tensor.where(hhat .> 0, Tensor.where(neutral, x.A, amplified), Tensor.where(neutral, amplified, x.A)).detached()
    }

    static func need(_ t: Tensor?, _ name: String, _ why: String) throws -> Tensor {
        guard let t else { throw ObjectiveError("objective: \(why) needs '\(name)'") }
        return t
    }

    /// The per-token surrogate before dual clipping: the ratio it reports, the unclipped and clipped
    /// losses (ℓ = max of the two), and MinPRO's constant factor.
    func surrogate(_ b: PolicyBatch, _ x: Terms, _ tokenRange: ClipRange) throws -> (ratio: Tensor, unclipped: Tensor, clipped: Tensor, factor: Tensor?) {
        let c = config
        let seqRange = clipRange(c.seqEpsLow, c.seqEpsHigh, nil)
        func clipped(_ r: Tensor, _ range: ClipRange) -> Tensor { c.clip ? -range.apply(r) * x.A : -r * x.A }
        switch c.ratio {
        case .token:
            return (x.rho, -x.rho * x.A, clipped(x.rho, tokenRange), nil)
        case .sequence:
            let s = x.seqLogRatio.exp().expanded(to: x.rho.shape)
            return (s, -s * x.A, clipped(s, seqRange), nil)
        case .gspoToken:
            // As verl's compute_policy_loss_gspo: the clamp at 10 acts on the combined log-ratio, so
            // a token whose sequence is past it gets no gradient.
            let r = (x.logp - x.logp.detached() + x.seqLogRatioRaw.detached()).clamp(max: 10).exp()
            return (r, -r * x.A, clipped(r, seqRange), nil)
        case .turn:
            let r = try turnRatio(try Self.need(b.turns, "turns", "ratio 'turn'"), x)
            return (r, -r * x.A, clipped(r, tokenRange), nil)
        case .prefixMin:
            // Running minimum over unmasked tokens (padding → +∞ so it never wins).
            let m = x.rho.maskedFill(x.mask .== 0, value: .infinity).cummin(dim: 1).values.maskedFill(x.mask .== 0, value: 1)
            switch c.prefixMinVariant {
            case .preceding:
                // min over k < t: the inclusive minimum shifted one token right, 1 before the first.
                let ones = Tensor.ones([m.size(0), 1], dtype: m.dtype, device: m.device)
                let before = Tensor.cat([ones, m.sliced(dim: 1, end: m.size(1) - 1)], dim: 1)
                return (x.rho, -x.rho * x.A, clipped(x.rho, tokenRange), before.detached())
            case .weighted:
                return (x.rho, -x.rho * x.A, clipped(x.rho, tokenRange), (m / x.rho).detached())
            case .direct:
                return (m, -m * x.A, clipped(m, tokenRange), nil)
            }
        case .hybrid:
            return try hybrid(b, x, tokenRange, seqRange)
        }
    }

    /// ST-PPO's turn ratio: exp of the mean log-ratio over each token's turn.
    func turnRatio(_ turns: Tensor, _ x: Terms) throws -> Tensor {
        // Padding gets turn 0; its log-ratio is 0 and its mask 0, so it adds nothing.
        let ids = turns.to(dtype: .int64) * x.mask.to(dtype: .int64)
        guard try ids.amin().item() >= 0 else { throw ObjectiveError("objective: 'turns' must be >= 0") }
        let k = Swift.max(1, Int(try ids.amax().item()) + 1)
        let zeros = Tensor.zeros([x.rho.size(0), k], dtype: x.rho.dtype, device: x.rho.device)
        let sums = zeros.scattered(dim: 1, index: ids, source: x.logRatio, add: true)
        let counts = zeros.scattered(dim: 1, index: ids, source: x.mask, add: true).clamp(min: 1)
        return (sums / counts).gather(dim: 1, index: ids).exp()
    }

    /// DHPO: each branch clipped in its own range, then mixed with the token weight w.
    func hybrid(_ b: PolicyBatch, _ x: Terms, _ tokenRange: ClipRange, _ seqRange: ClipRange) throws
        -> (ratio: Tensor, unclipped: Tensor, clipped: Tensor, factor: Tensor?)
    {
        let c = config, h = c.hybrid ?? PolicyLossConfig.Hybrid()
        let s = x.seqLogRatio.exp().expanded(to: x.rho.shape)
        let w: Tensor
        switch h.mixing {
        case .average:
            w = Tensor.full([], value: h.tokenWeight, dtype: x.rho.dtype, device: x.rho.device)
        case .entropy:
            let ent = try Self.need(b.entropies, "entropies", "hybrid entropy mixing").detached() * x.mask
            let top = ent.maskedFill(x.mask .== 0, value: -.infinity).amax(dims: [1], keepDim: true)
            switch h.entropyNorm {
            case .max:
                w = (ent / top.clamp(min: 1e-12)).detached()
            case .minmax:
                let low = ent.maskedFill(x.mask .== 0, value: .infinity).amin(dims: [1], keepDim: true)
                w = ((ent - low) / (top - low).clamp(min: 1e-12) * x.mask).detached()
            }
        }
        let rhoC = c.clip ? tokenRange.apply(x.rho) : x.rho, sC = c.clip ? seqRange.apply(s) : s
        let ratio: Tensor, mixedClipped: Tensor
        switch h.space {
        case .linear:
            ratio = w * x.rho + (1 - w) * s
            mixedClipped = w * rhoC + (1 - w) * sC
        case .log:
            ratio = (w * x.logRatio + (1 - w) * x.seqLogRatio.expanded(to: x.rho.shape)).exp()
            mixedClipped = (w * rhoC.log() + (1 - w) * sC.log()).exp()
        }
        return (ratio, -ratio * x.A, -mixedClipped * x.A, nil)
    }

    /// Train/inference mismatch: a constant factor per token (masked tokens stay in denominators).
    func mismatchFactor(_ b: PolicyBatch, _ x: Terms) throws -> Tensor? {
        let m = config.mismatch
        guard m.mode != .none else { return nil }
        let rollout = try Self.need(b.rolloutLogprobs, "rollout_logprobs", "mismatch correction '\(m.mode.rawValue)'")
        let logK = ((b.oldLogprobs - rollout).clamp(min: -config.logRatioClamp, max: config.logRatioClamp) * x.mask).detached()
        let k = logK.exp()
        switch m.mode {
        case .tis: return k.clamp(max: m.cap)
        case .icepop: return Tensor.where((k .>= m.low).logicalAnd(k .<= m.high), k, Tensor.zeros(like: k))
        case .seqMaskTIS:
            let geo = (logK.sum(dim: 1, keepDim: true) / x.lengths).exp()
            return k * (geo .>= m.low).logicalAnd(geo .<= m.high).to(dtype: k.dtype)
        case .none: return nil
        }
    }

    /// The loss and its metrics. Errors name a missing or mis-shaped input.
    public func callAsFunction(_ batch: PolicyBatch) throws -> (loss: Tensor, metrics: [String: Double]) {
        try batch.validate()
        let c = config
        var x = Terms(batch, clamp: c.logRatioClamp)
        let hhat = try normalizedEntropy(batch, x.mask)
        let tokenRange = clipRange(c.epsLow, c.epsHigh, hhat)
        var redistributedShare: Tensor? = nil
        if let a = c.adaptiveAdvantage, let hhat {
            let adapted = redistributed(x, hhat, tokenRange, beta: a.beta)
            redistributedShare = maskedMean((adapted .!= x.A).to(dtype: x.mask.dtype), x.lossMask)
            x.A = adapted
        }
        let (ratio, unclipped, clipped, factor) = try surrogate(batch, x, tokenRange)
        var perToken = unclipped.maximum(clipped)
        if let dc = c.dualClip { perToken = Tensor.where(x.A .< 0, perToken.minimum(-dc * x.A), perToken) }
        if let factor { perToken = perToken * factor }
        let mismatch = try mismatchFactor(batch, x)
        if let mismatch { perToken = perToken * mismatch }

        func agg(_ v: Tensor) -> Tensor { aggregate(v, mask: x.lossMask, c.aggregation, normConstant: c.normConstant) }
        let pgLoss = agg(perToken * x.tokenWeights)
        var loss = pgLoss
        var kl: Tensor? = nil, entropy: Tensor? = nil
        // Credit's weights scale a token's whole loss, its KL and entropy terms too (TW-GRPO's
        // official trainer weights (policy − β·KL) together); weights of 0 and 1 change nothing here.
        if c.klCoef != 0 {
            let ref = try Self.need(batch.refLogprobs, "ref_logprobs", "kl_coef")
            kl = agg(KL.estimate(logprobs: x.logp, refLogprobs: ref.detached(), c.klEstimator) * x.tokenWeights)
            loss = loss + c.klCoef * kl!
        }
        if c.entropyCoef != 0 {
            entropy = agg(try Self.need(batch.entropies, "entropies", "entropy_coef") * x.tokenWeights)
            loss = loss - c.entropyCoef * entropy!
        }
        var metrics = try self.metrics(x, ratio: ratio, unclipped: unclipped, clipped: clipped, mismatch: mismatch)
        try withNoGrad {
            metrics["pg_loss"] = try pgLoss.item()
            if let kl { metrics["kl"] = try kl.item() }
            if let h = batch.entropies { metrics["entropy"] = try maskedMean(h.detached(), x.lossMask).item() }
            if let redistributedShare { metrics["redistributed_token_fraction"] = try redistributedShare.item() }
        }
        return (loss, metrics)
    }

    func metrics(_ x: Terms, ratio: Tensor, unclipped: Tensor, clipped: Tensor, mismatch: Tensor?) throws -> [String: Double] {
        try withNoGrad {
            var m: [String: Double] = [:]
            let lossMask = x.lossMask, dt = x.mask.dtype
            let n = try lossMask.sum().item(), valid = try x.mask.sum().item()
            let active = (clipped .> unclipped).to(dtype: dt) * lossMask
            m["clip_fraction_high"] = try maskedMean(active * (x.A .> 0).to(dtype: dt), lossMask).item()
            m["clip_fraction_low"] = try maskedMean(active * (x.A .< 0).to(dtype: dt), lossMask).item()
            if let dc = config.dualClip {
                let dual = (x.A .< 0).logicalAnd(unclipped.maximum(clipped) .> -dc * x.A).to(dtype: dt)
                m["dual_clip_fraction"] = try maskedMean(dual, lossMask).item()
            }
            let r = ratio.detached()
            m["ratio_mean"] = try maskedMean(r, lossMask).item()
            m["ratio_min"] = n > 0 ? try r.maskedFill(lossMask .== 0, value: .infinity).amin().item() : 0
            m["ratio_max"] = n > 0 ? try r.maskedFill(lossMask .== 0, value: -.infinity).amax().item() : 0
            // k2 estimate of KL(π_old ‖ π_θ).
            m["approx_kl"] = try maskedMean(0.5 * x.logRatio.detached().square(), lossMask).item()
            let kept = mismatch.map { lossMask * ($0 .> 0).to(dtype: dt) } ?? lossMask
            m["masked_fraction"] = valid > 0 ? 1 - (try kept.sum().item()) / valid : 0
            m["tokens"] = n
            if let mismatch { m["mismatch_weight_mean"] = try maskedMean(mismatch, lossMask).item() }
            return m
        }
    }
}

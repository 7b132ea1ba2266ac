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
///   r = w·ρ + (1 − w)·s (or geometrically); w = `token_weight`, or sg(H_t / max_t H) per sequence
/// - `prefix_min` (MinPRO, arXiv:2601.22718, UNVERIFIED): m_t = min_{k ≤ t} ρ_k; `weighted` scales the
///   token surrogate by sg(m_t/ρ_t), `direct` clips m_t itself
/// - `turn` (ST-PPO turn-level, arXiv:2511.20718): exp(mean of logp − old over the token's turn)
/// HAPO's `adaptive_clip` (arXiv:2509.16591 §9.4) widens ε_low on low-entropy and ε_high on
/// high-entropy tokens. Reduces to GRPO's token loss with `ratio: token`, symmetric ε and no extras.
public struct PolicyLoss {
    public let config: PolicyLossConfig

    public init(_ config: PolicyLossConfig) throws {
        try config.validate()
        self.config = config
    }

    /// The ratio in use, its clip bounds, and (hybrid) a separately clipped ratio.
    struct RatioTerms {
        var unclipped: Tensor
        var clipped: Tensor
    }

    func clipRange(_ low: Double, _ high: Double, _ hhat: Tensor?) -> (lo: Tensor?, hi: Tensor?, loS: Double, hiS: Double) {
        guard let hhat, let a = config.adaptiveClip else { return (nil, nil, 1 - low, 1 + high) }
        // ĥ ≤ 0: ε_l(1 − αĥ); ĥ > 0: ε_h(1 + αĥ).
        let neg = hhat.clamp(max: 0), pos = hhat.clamp(min: 0)
        return (1 - low * (1 - a.alpha * neg), 1 + high * (1 + a.alpha * pos), 0, 0)
    }

    func clamp(_ r: Tensor, _ range: (lo: Tensor?, hi: Tensor?, loS: Double, hiS: Double)) -> Tensor {
        if let lo = range.lo, let hi = range.hi { return r.maximum(lo).minimum(hi) }
        return r.clamp(min: range.loS, max: range.hiS)
    }

    /// ĥ per token over the batch's unmasked entropies (HAPO §9.1), as a tensor.
    func normalizedEntropy(_ entropies: Tensor, _ mask: Tensor) throws -> Tensor {
        let a = config.adaptiveClip!
        let h = try entropies.to(.cpu, dtype: .float64).doubles(), m = try mask.to(.cpu, dtype: .float64).doubles()
        let stats = HAPO.EntropyStatistics(entropies: zip(h, m).filter { $0.1 > 0 }.map(\.0),
                                           pivotQuantile: a.entropyPivot, signFix: a.signFix)
        return Tensor(h.map(stats.normalized), shape: entropies.shape).to(entropies.device, dtype: entropies.dtype)
    }

    /// The loss and its metrics. Errors name a missing or mis-shaped input.
    public func callAsFunction(_ batch: PolicyBatch) throws -> (loss: Tensor, metrics: [String: Double]) {
        try batch.validate()
        let c = config
        func need(_ t: Tensor?, _ name: String, _ why: String) throws -> Tensor {
            guard let t else { throw ObjectiveError("objective: \(why) needs '\(name)'") }
            return t
        }
        let mask = batch.mask
        // Tokens in the loss: valid and not given weight 0 by Credit.
        let lossMask = batch.weights.map { mask * ($0 .> 0).to(dtype: mask.dtype) } ?? mask
        let tokenWeights = batch.weights.map { $0 * lossMask } ?? lossMask
        let logp = batch.logprobs
        let A = batch.advantages.detached()
        let logRatio = (logp - batch.oldLogprobs.detached()).clamp(min: -c.logRatioClamp, max: c.logRatioClamp) * mask
        let rho = logRatio.exp()
        let lengths = mask.sum(dim: 1, keepDim: true).clamp(min: 1)          // [B, 1]
        let seqLogRatio = (logRatio.sum(dim: 1, keepDim: true) / lengths).clamp(max: 10)   // [B, 1]

        let hhat = c.adaptiveClip != nil ? try normalizedEntropy(try need(batch.entropies, "entropies", "adaptive_clip"), mask) : nil
        let tokenRange = clipRange(c.epsLow, c.epsHigh, hhat)
        let seqRange = clipRange(c.seqEpsLow, c.seqEpsHigh, nil)

        var ratio: Tensor                 // the ratio whose value the metrics report
        var unclippedLoss: Tensor, clippedLoss: Tensor
        var extraFactor: Tensor? = nil    // MinPRO weighted: sg(m/ρ)
        switch c.ratio {
        case .token, .sequence, .gspoToken, .turn, .prefixMin:
            var range = tokenRange
            switch c.ratio {
            case .token:
                ratio = rho
            case .sequence:
                ratio = seqLogRatio.exp().expanded(to: rho.shape)
                range = seqRange
            case .gspoToken:
                ratio = (logp - logp.detached() + seqLogRatio.detached()).exp()
                range = seqRange
            case .turn:
                let turns = try need(batch.turns, "turns", "ratio 'turn'")
                // Padding gets turn 0; its log-ratio is 0 and its mask 0, so it adds nothing.
                let ids = turns.to(dtype: .int64) * mask.to(dtype: .int64)
                guard try ids.amin().item() >= 0 else { throw ObjectiveError("objective: 'turns' must be >= 0") }
                let k = Swift.max(1, Int(try ids.amax().item()) + 1)
                let zeros = Tensor.zeros([rho.size(0), k], dtype: rho.dtype, device: rho.device)
                let sums = zeros.scattered(dim: 1, index: ids, source: logRatio, add: true)
                let counts = zeros.scattered(dim: 1, index: ids, source: mask, add: true).clamp(min: 1)
                ratio = (sums / counts).gather(dim: 1, index: ids).exp()
            default:  // prefix minimum over unmasked tokens (padding → +∞ so it never wins)
                let running = rho.maskedFill(mask .== 0, value: .infinity).cummin(dim: 1).values.maskedFill(mask .== 0, value: 1)
                if c.prefixMinVariant == .weighted {
                    ratio = rho
                    extraFactor = (running / rho).detached()
                } else {
                    ratio = running
                }
            }
            unclippedLoss = -ratio * A
            clippedLoss = c.clip ? -clamp(ratio, range) * A : unclippedLoss
        case .hybrid:
            let h = c.hybrid ?? PolicyLossConfig.Hybrid()
            let s = seqLogRatio.exp().expanded(to: rho.shape)
            let w: Tensor
            switch h.mixing {
            case .average:
                w = Tensor.full([], value: h.tokenWeight, dtype: rho.dtype, device: rho.device)
            case .entropy:
                let ent = try need(batch.entropies, "entropies", "hybrid entropy mixing").detached() * mask
                w = (ent / ent.amax(dims: [1], keepDim: true).clamp(min: 1e-12)).detached()
            }
            let rhoC = c.clip ? clamp(rho, tokenRange) : rho, sC = c.clip ? clamp(s, seqRange) : s
            switch h.space {
            case .linear:
                ratio = w * rho + (1 - w) * s
                clippedLoss = -(w * rhoC + (1 - w) * sC) * A
            case .log:
                ratio = (w * logRatio + (1 - w) * seqLogRatio.expanded(to: rho.shape)).exp()
                clippedLoss = -(w * rhoC.log() + (1 - w) * sC.log()).exp() * A
            }
            unclippedLoss = -ratio * A
        }
        var perToken = unclippedLoss.maximum(clippedLoss)
        if let dc = c.dualClip { perToken = Tensor.where(A .< 0, perToken.minimum(-dc * A), perToken) }
        if let f = extraFactor { perToken = perToken * f }

        // Train/inference mismatch: a detached factor per token (masked tokens stay in denominators).
        var mismatchFactor: Tensor? = nil
        if c.mismatch.mode != .none {
            let rollout = try need(batch.rolloutLogprobs, "rollout_logprobs", "mismatch correction '\(c.mismatch.mode.rawValue)'")
            let logK = ((batch.oldLogprobs - rollout).clamp(min: -c.logRatioClamp, max: c.logRatioClamp) * mask).detached()
            let k = logK.exp()
            switch c.mismatch.mode {
            case .tis: mismatchFactor = k.clamp(max: c.mismatch.cap)
            case .icepop: mismatchFactor = Tensor.where((k .>= c.mismatch.low).logicalAnd(k .<= c.mismatch.high), k, Tensor.zeros(like: k))
            case .seqMaskTIS:
                let geo = (logK.sum(dim: 1, keepDim: true) / lengths).exp()
                let keep = (geo .>= c.mismatch.low).logicalAnd(geo .<= c.mismatch.high).to(dtype: k.dtype)
                mismatchFactor = k * keep
            case .none: break
            }
            perToken = perToken * mismatchFactor!
        }

        let pgLoss = aggregate(perToken * tokenWeights, mask: lossMask, c.aggregation, normConstant: c.normConstant)
        var loss = pgLoss
        var metrics: [String: Double] = [:]
        var klValue: Tensor? = nil
        if c.klCoef != 0 {
            let ref = try need(batch.refLogprobs, "ref_logprobs", "kl_coef")
            let k = KL.estimate(logprobs: logp, refLogprobs: ref.detached(), c.klEstimator)
            klValue = aggregate(k, mask: lossMask, c.aggregation, normConstant: c.normConstant)
            loss = loss + c.klCoef * klValue!
        }
        var entropyValue: Tensor? = nil
        if c.entropyCoef != 0 {
            let h = try need(batch.entropies, "entropies", "entropy_coef")
            entropyValue = aggregate(h, mask: lossMask, c.aggregation, normConstant: c.normConstant)
            loss = loss - c.entropyCoef * entropyValue!
        }

        try withNoGrad {
            let n = try lossMask.sum().item()
            let valid = try mask.sum().item()
            let active = (clippedLoss .> unclippedLoss).to(dtype: mask.dtype) * lossMask
            metrics["pg_loss"] = try pgLoss.item()
            metrics["clip_fraction_high"] = try maskedMean(active * (A .> 0).to(dtype: mask.dtype), lossMask).item()
            metrics["clip_fraction_low"] = try maskedMean(active * (A .< 0).to(dtype: mask.dtype), lossMask).item()
            if let dc = c.dualClip {
                let dual = ((A .< 0).logicalAnd(unclippedLoss.maximum(clippedLoss) .> -dc * A)).to(dtype: mask.dtype)
                metrics["dual_clip_fraction"] = try maskedMean(dual, lossMask).item()
            }
            let r = ratio.detached()
            metrics["ratio_mean"] = try maskedMean(r, lossMask).item()
            metrics["ratio_min"] = n > 0 ? try r.maskedFill(lossMask .== 0, value: .infinity).amin().item() : 0
            metrics["ratio_max"] = n > 0 ? try r.maskedFill(lossMask .== 0, value: -.infinity).amax().item() : 0
            // k2 estimate of KL(π_old ‖ π_θ).
            metrics["approx_kl"] = try maskedMean(0.5 * logRatio.detached().square(), lossMask).item()
            let kept = mismatchFactor.map { lossMask * ($0 .> 0).to(dtype: mask.dtype) } ?? lossMask
            metrics["masked_fraction"] = valid > 0 ? 1 - (try kept.sum().item()) / valid : 0
            metrics["tokens"] = n
            if let klValue { metrics["kl"] = try klValue.item() }
            if let h = batch.entropies { metrics["entropy"] = try maskedMean(h.detached(), lossMask).item() }
            if let f = mismatchFactor { metrics["mismatch_weight_mean"] = try maskedMean(f, lossMask).item() }
        }
        return (loss, metrics)
    }
}

import Credit
import Foundation
import Objectives
import Torch

/// Supplies GAE's `values`: the critic's V(s_t) before every trained token at rollout time, without
/// gradients (kept for the value loss's clipping too).
struct CriticValues: InputProvider {
    let critic: Critic
    let microBatch: Int

    func provide(_ inputs: inout StepInputs) throws {
        let responses = inputs.rowResponses
        let (unique, owner) = ResponseForward.distinct(inputs.rowPrompts)
        let values = try withTorchErrors {
            try withNoGrad {
                try critic.active {
                    let prefix = try critic.model.sharedPrefix(unique)
                    return try ResponseForward.rowValues(responses: responses, microBatch: microBatch) { part in
                        try critic.values(prefix: prefix, owner: Array(owner[part]), responses: Array(responses[part]))
                    }
                }
            }
        }
        inputs.values = values
        var row = 0
        inputs.fill { t, _ in
            t.values = values[row]
            row += 1
        }
    }
}

/// The critic's optimisation over a step's rows, partitioned as the policy's (epochs ×
/// mini-batches × micro-batches): PPO's clipped value loss on GAE's returns (verl's
/// `compute_value_loss`): ½·max((V − R)², (V_old + clip(V − V_old, ±vf_clip) − R)²), token-mean over
/// the response tokens of each mini-batch.
struct CriticUpdate {
    let critic: Critic
    let config: RunConfig
    let step: Int

    struct Rows {
        let prompts: [[Int]], responses: [[Int]]
        let old: Tensor, returns: Tensor, mask: Tensor
        var count: Int { responses.count }
    }

    /// `returns[n]` per token of row n (R = unwhitened GAE advantage + V_old).
    func run(_ inputs: StepInputs, returns: [[Double]]) throws -> [String: Double] {
        guard let old = inputs.values else { throw TrainingError("critic: the step has no rollout-time values") }
        var metrics = Self.statistics(values: old, returns: returns)
        try withTorchErrors {
            let device = critic.model.device
            let (oldT, mask) = padded(old, device: device)
            let rows = Rows(prompts: inputs.rowPrompts, responses: inputs.rowResponses, old: oldT, returns: padded(returns, device: device).values, mask: mask)
            let parts = Swift.min(config.train.miniBatches, rows.count)
            let bounds = (0...parts).map { $0 * rows.count / parts }
            for _ in 0..<config.train.epochs {
                for mb in 0..<parts { metrics.merge(try miniBatch(Array(bounds[mb]..<bounds[mb + 1]), rows)) { $1 } }
            }
        }
        return metrics
    }

    func miniBatch(_ range: [Int], _ rows: Rows) throws -> [String: Double] {
        let (unique, owners) = ResponseForward.distinct(range.map { rows.prompts[$0] })
        let owner = Dictionary(uniqueKeysWithValues: zip(range, owners))
        let micro = config.train.microBatch > 0 ? config.train.microBatch : range.count
        // Rows of similar length together, as the policy's update: each micro-batch pads to its own longest.
        let order = micro >= range.count ? range : range.sorted { (rows.responses[$0].count, $0) < (rows.responses[$1].count, $1) }
        let total = Double(range.reduce(0) { $0 + rows.responses[$1].count })
        guard total > 0 else { return [:] }
        var loss = 0.0, clipped = 0.0
        try critic.active {
            let prefix = try critic.model.sharedPrefix(unique)
            let leaves = prefix.leaves()
            for a in stride(from: 0, to: order.count, by: micro) {
                let r = Array(order[a..<Swift.min(order.count, a + micro)])
                let pick = Tensor(r.map(Int64.init)).to(critic.model.device)
                let v = try critic.values(prefix: leaves, owner: r.map { owner[$0]! }, responses: r.map { rows.responses[$0] },
                                          width: rows.old.size(1))
                let (l, frac) = Self.valueLoss(v, old: rows.old.indexSelect(dim: 0, index: pick), returns: rows.returns.indexSelect(dim: 0, index: pick),
                                               mask: rows.mask.indexSelect(dim: 0, index: pick), clip: critic.config.vfClip)
                // Each micro-batch's token sum over the mini-batch's tokens: the token mean of the whole.
                (l / total).backward()
                loss += try l.item() / total
                clipped += try frac.item() / total
            }
            prefix.backward(from: leaves)
        }
        let norm = Torch.clipGradNorm(critic.parameters, maxNorm: config.optim.maxGradNorm)
        guard loss.isFinite, norm.isFinite else {
            critic.optimizer.zeroGrad()
            throw TrainingError("training diverged at step \(step): the critic's value loss (\(loss)) or gradient norm (\(norm)) is not finite, "
                + "so this update was not applied; lower critic.lr, or resume from the last checkpoint")
        }
        critic.optimizer.step()
        critic.optimizer.zeroGrad()
        return ["critic/vf_loss": loss, "critic/vf_clipfrac": clipped, "critic/grad_norm": norm]
    }

    /// The token sums of ½·max((V − R)², (V_clipped − R)²) and of the clipped branch's indicator.
    static func valueLoss(_ v: Tensor, old: Tensor, returns: Tensor, mask: Tensor, clip: Double) -> (Tensor, Tensor) {
        let clippedV = old + (v - old).clamp(min: -clip, max: clip)
        let a = (v - returns) * (v - returns), b = (clippedV - returns) * (clippedV - returns)
        let loss = (a.maximum(b) * mask).sum() * 0.5
        let frac = ((b .> a).to(dtype: mask.dtype) * mask).sum()
        return (loss, frac)
    }

    /// verl's critic metrics over the step's tokens: mean value and return, and the explained
    /// variance 1 − Var(R − V)/Var(R) of the rollout-time values.
    static func statistics(values: [[Double]], returns: [[Double]]) -> [String: Double] {
        let v = values.flatMap { $0 }, r = returns.flatMap { $0 }
        guard !r.isEmpty else { return [:] }
        func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }
        func variance(_ x: [Double]) -> Double { let m = mean(x); return mean(x.map { ($0 - m) * ($0 - m) }) }
        let varR = variance(r), residual = variance(zip(r, v).map { $0 - $1 })
        return ["critic/value_mean": mean(v), "critic/returns_mean": mean(r),
                "critic/explained_variance": varR > 0 ? 1 - residual / varR : 0]
    }
}

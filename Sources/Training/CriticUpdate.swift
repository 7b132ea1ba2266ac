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
        let (unique, owner) = ResponseForward.distinct(inputs.rowPrompts)
        let values = try critic.rowValues(prompts: unique, owner: owner, responses: inputs.rowResponses, microBatch: microBatch)
        inputs.values = values
        var row = 0
        inputs.fill { t, _ in
            t.values = values[row]
            row += 1
        }
    }
}

/// The critic's optimisation over a step's rows, partitioned as the policy's (epochs ×
/// mini-batches × micro-batches), times `vf_coef`:
/// - target `gae`: PPO's clipped value loss (`ValueLoss.clipped`) on GAE's returns, aggregated as the
///   policy loss (`objective.aggregation`);
/// - target `tvm`: TVM's squared error (`ValueLoss.squared`) on its labels at every prefix length
///   0…R, summed over tokens and averaged over responses (OVM's reduction).
struct CriticUpdate {
    let critic: Critic
    let config: RunConfig
    let step: Int
    /// The process group this update runs across (nil: one process).
    var dp: DataParallel? = nil

    /// What the step's critic metrics are computed from, per row.
    struct Statistics: Codable { var values: [[Double]], returns: [[Double]], actions: [[Double]]? }

    struct Rows {
        /// The responses the critic reads: under TVM with one more position (the value after the last token).
        let prompts: [[Int]], responses: [[Int]]
        let old: Tensor?, targets: Tensor, mask: Tensor
        /// Per row, the tokens the loss covers (an agent's action tokens).
        let lossTokens: [Int]
        /// The longest response on any rank: `seq_mean_token_sum_norm`'s constant when the config
        /// sets none (one process's padded width).
        var width: Int? = nil
        var count: Int { responses.count }
    }

    /// The step's targets per row: GAE's returns (one per token) or TVM's labels (one per prefix length).
    func targets(_ inputs: StepInputs) throws -> [[Double]] {
        switch critic.config.target {
        case .gae:
            guard let gae = config.credit.gaeParams else { throw TrainingError("critic: the credit method reads no values") }
            return inputs.groups.flatMap { $0.trajectories.map { GAE.returns($0, gae) } }
        case .tvm:
            return try inputs.members.flatMap { m in
                TVM.labels(m.map { inputs.rollouts.rolled[$0].completion.tokens }, correct: try TVM.correctness(m.map { inputs.rollouts.scores[$0] }))
            }
        }
    }

    func run(_ inputs: StepInputs) throws -> [String: Double] {
        guard let old = inputs.values else { throw TrainingError("critic: the step has no rollout-time values") }
        let targets = try targets(inputs)
        // Statistics over the whole step's rows: every rank's gathered in a data-parallel run.
        var rows = Statistics(values: old, returns: zip(targets, old).map { Array($0.prefix($1.count)) }, actions: inputs.actionMasks)
        if let dp {
            let all = try dp.gather(rows)
            rows = Statistics(values: all.flatMap(\.values), returns: all.flatMap(\.returns),
                              actions: all.allSatisfy { $0.actions != nil } ? all.flatMap { $0.actions! } : nil)
        }
        var metrics = Self.statistics(values: rows.values, returns: rows.returns, actions: rows.actions)
        try withTorchErrors {
            var rows = self.rows(inputs, targets: targets, old: old)
            let layout = try RowLayout(lossTokens: rows.lossTokens, width: rows.targets.size(1), dp: dp)
            rows.width = layout.width
            for _ in 0..<config.train.epochs {
                for mb in layout.miniBatches(config.train.miniBatches) { metrics.merge(try miniBatch(mb.local, all: mb.all, rows)) { $1 } }
            }
        }
        return metrics
    }

    /// The step's rows as tensors on the critic's device. An agent's observation tokens are
    /// context, not states the policy acted in: out of the mask, so no value loss there (verl's
    /// `response_mask`).
    func rows(_ inputs: StepInputs, targets: [[Double]], old: [[Double]]) -> Rows {
        let device = critic.model.device, tvm = critic.config.target == .tvm, actions = inputs.actionMasks
        let (target, all) = padded(targets, device: device)
        return Rows(prompts: inputs.rowPrompts, responses: inputs.rowResponses.map { tvm ? $0 + [0] : $0 },
                    old: tvm ? nil : padded(old, device: device).values, targets: target,
                    mask: actions.map { padded($0, device: device).values } ?? all,
                    lossTokens: actions?.map { $0.filter { $0 > 0 }.count } ?? targets.map(\.count))
    }

    /// The loss of a micro-batch's values `v` and its clipped share, under the critic's target.
    func loss(_ v: Tensor, _ rows: Rows, _ pick: Tensor) -> (Tensor, Tensor) {
        let target = rows.targets.indexSelect(dim: 0, index: pick), mask = rows.mask.indexSelect(dim: 0, index: pick)
        guard let old = rows.old else { return (ValueLoss.squared(v, targets: target, mask: mask), Tensor.zeros([])) }
        return ValueLoss.clipped(v, old: old.indexSelect(dim: 0, index: pick), returns: target, mask: mask, clip: critic.config.vfClip ?? .infinity,
                                 aggregation: config.objective.aggregation, normConstant: config.objective.normConstant ?? rows.width.map(Double.init))
    }

    /// One optimizer step of the critic over the mini-batch whose rows here are `range` (possibly
    /// none) and which holds `all` loss tokens and rows on every rank.
    func miniBatch(_ range: [Int], all: (tokens: Int, rows: Int), _ rows: Rows) throws -> [String: Double] {
        guard all.tokens > 0 else { return [:] }
        var sums = range.isEmpty ? [:] : try backward(range, all: all, rows)
        if let dp { sums = try dp.finishBackward(critic.parameters, metrics: sums) }
        let loss = sums["critic/vf_loss"] ?? 0
        let norm = Torch.clipGradNorm(critic.parameters, maxNorm: config.optim.maxGradNorm)
        guard loss.isFinite, norm.isFinite else {
            critic.optimizer.zeroGrad()
            throw TrainingError("training diverged at step \(step): the critic's value loss (\(loss)) or gradient norm (\(norm)) is not finite, "
                + "so this update was not applied; lower critic.lr, or resume from the last checkpoint")
        }
        critic.optimizer.step()
        critic.optimizer.zeroGrad()
        sums["critic/grad_norm"] = norm
        if rows.old == nil { sums["critic/vf_clipfrac"] = nil }
        return sums
    }

    /// Accumulates the critic's gradients over `range`'s rows; returns their parts of the loss and clip fraction.
    func backward(_ range: [Int], all: (tokens: Int, rows: Int), _ rows: Rows) throws -> [String: Double] {
        let (unique, owners) = ResponseForward.distinct(range.map { rows.prompts[$0] })
        let owner = Dictionary(uniqueKeysWithValues: zip(range, owners))
        let micro = config.train.microBatch > 0 ? config.train.microBatch : range.count
        // Rows of similar length together, as the policy's update: each micro-batch pads to its own longest.
        let order = micro >= range.count ? range : range.sorted { (rows.responses[$0].count, $0) < (rows.responses[$1].count, $1) }
        func counts(_ r: [Int]) -> (tokens: Int, rows: Int) { (r.reduce(0) { $0 + rows.lossTokens[$1] }, r.filter { rows.lossTokens[$0] > 0 }.count) }
        // TVM's reduction averages over responses, as seq_mean_token_sum does.
        let aggregation = rows.old == nil ? .seqMeanTokenSum : config.objective.aggregation
        var loss = 0.0, clipped = 0.0
        try critic.active {
            let prefix = try critic.model.sharedPrefix(unique)
            let leaves = prefix.leaves()
            for a in stride(from: 0, to: order.count, by: micro) {
                let r = Array(order[a..<Swift.min(order.count, a + micro)]), part = counts(r)
                let pick = Tensor(r.map(Int64.init)).to(critic.model.device)
                let v = try critic.values(prefix: leaves, owner: r.map { owner[$0]! }, responses: r.map { rows.responses[$0] },
                                          width: rows.targets.size(1))
                let (l, frac) = self.loss(v, rows, pick)
                // Each micro-batch's aggregate weighted by its share: the mini-batch's aggregate and gradient.
                let share = aggregation.share(tokens: part.tokens, rows: part.rows, ofTokens: all.tokens, rows: all.rows)
                (l * (share * critic.config.vfCoef)).backward()
                loss += try l.item() * share
                clipped += try frac.item() * Double(part.tokens) / Double(all.tokens)
            }
            prefix.backward(from: leaves)
        }
        return ["critic/vf_loss": loss, "critic/vf_clipfrac": clipped]
    }

    /// verl's critic metrics over the step's (action) tokens: mean value and return, and the explained
    /// variance 1 − Var(R − V)/Var(R) of the rollout-time values.
    static func statistics(values: [[Double]], returns: [[Double]], actions: [[Double]]? = nil) -> [String: Double] {
        func kept(_ rows: [[Double]]) -> [Double] {
            guard let actions else { return rows.flatMap { $0 } }
            return zip(rows, actions).flatMap { row, m in zip(row, m).filter { $1 > 0 }.map(\.0) }
        }
        let v = kept(values), r = kept(returns)
        guard !r.isEmpty else { return [:] }
        func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }
        func variance(_ x: [Double]) -> Double { let m = mean(x); return mean(x.map { ($0 - m) * ($0 - m) }) }
        let varR = variance(r), residual = variance(zip(r, v).map { $0 - $1 })
        return ["critic/value_mean": mean(v), "critic/returns_mean": mean(r),
                "critic/explained_variance": varR > 0 ? 1 - residual / varR : 0]
    }
}

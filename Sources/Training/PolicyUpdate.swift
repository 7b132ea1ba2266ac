import Credit
import Models
import Objectives
import Torch

/// A step's optimisation over its trained rows: epochs × mini-batches (one optimizer step each) ×
/// micro-batches (gradients accumulated). Each prompt of a mini-batch runs once with autograd; its
/// rows' responses attend to its keys and values through leaf copies, which backpropagate through
/// the prompts once after the last micro-batch.
struct PolicyUpdate {
    let forward: ResponseForward
    let optimizer: AdamW
    let config: RunConfig
    /// The step's number, for messages.
    let step: Int
    /// The process group this update runs across (nil: one process).
    var dp: DataParallel? = nil

    /// The rows in row order with what the loss reads, `[N, W]` right-padded.
    struct Rows {
        let prompts: [[Int]]
        let responses: [[Int]]
        let old: Tensor, mask: Tensor, advantages: Tensor, weights: Tensor
        let ref: Tensor?
        /// The rollout engine's logprobs, when it is not the learner.
        let rollout: Tensor?
        /// Each token's turn (agent rows; ST-PPO's turn ratio).
        let turns: Tensor?
        /// Loss tokens (weight > 0) of each row: the aggregation's counts.
        let lossTokens: [Int]
        /// LaSeR's loss inputs, once it has started: z, which rows end with EOS, and `[N]` targets,
        /// weights and reference terms.
        let laser: SelfReward?
        typealias SelfReward = (config: LaSeRConfig, token: Int, finished: [Bool], targets: Tensor, weights: Tensor, reference: Tensor)
        var count: Int { responses.count }
        var width: Int { mask.size(1) }

        init(_ inputs: StepInputs, _ credit: CreditResult, device: Device, laser config: LaSeRConfig? = nil) {
            let rolled = inputs.rollouts.rolled, rows = inputs.rows
            prompts = inputs.rowPrompts
            responses = inputs.rowResponses
            let (old, valid) = padded(inputs.oldLogprobs ?? rows.map { rolled[$0].completion.logprobs }, device: device)
            self.old = old
            rollout = inputs.rolloutLogprobs.map { padded($0, device: device).values }
            // An agent's observation tokens are context: out of the mask, so no loss, ratio, KL or entropy term sees them.
            let actions = inputs.actionMasks
            mask = actions.map { valid * padded($0, device: device).values } ?? valid
            turns = inputs.turnIds.map { padded($0, device: device).values }
            let flatWeights = zip(credit.weights.flatMap { $0 }, actions ?? rows.map { _ in [] }).map { w, a in
                a.isEmpty ? w : zip(w, a).map { $0 * $1 }
            }
            advantages = padded(credit.advantages.flatMap { $0 }, device: device).values
            weights = padded(flatWeights, device: device).values
            ref = inputs.refLogprobs.map { padded($0, device: device).values }
            lossTokens = flatWeights.map { $0.filter { $0 > 0 }.count }
            if let c = config, let s = inputs.selfReward {
                laser = (c, s.token, s.finished, Tensor(s.targets).to(device, dtype: .float32), Tensor(s.weights).to(device, dtype: .float32),
                         Tensor(s.reference).to(device, dtype: .float32))
            } else {
                laser = nil
            }
        }
    }

    /// Runs the update; returns the last mini-batch's loss metrics and gradient norm.
    func run(_ inputs: StepInputs, _ credit: CreditResult) throws -> [String: Double] {
        var metrics: [String: Double] = [:]
        try withTorchErrors {
            let rows = Rows(inputs, credit, device: forward.model.device, laser: config.laser)
            let layout = try RowLayout(lossTokens: rows.lossTokens, width: rows.width, dp: dp)
            var objective = config.objective
            if objective.aggregation == .seqMeanTokenSumNorm && objective.normConstant == nil { objective.normConstant = Double(layout.width) }
            let loss = try PolicyLoss(objective)
            for _ in 0..<config.train.epochs {
                for mb in layout.miniBatches(config.train.miniBatches) { metrics.merge(try miniBatch(mb.local, all: mb.all, size: mb.size, rows, loss)) { $1 } }
            }
        }
        return metrics
    }

    /// One optimizer step over the mini-batch whose rows here are `range` (possibly none on this
    /// rank) and which holds `all` loss tokens and rows on every rank: micro-batches of rows of
    /// similar length (each pads only to its own longest response), each weighted by its share of
    /// the aggregation; gradients are summed over ranks before clipping. `size`: the mini-batch's
    /// rows on every rank (LaSeR's loss is their mean).
    func miniBatch(_ range: [Int], all: (tokens: Int, rows: Int), size: Int, _ rows: Rows, _ loss: PolicyLoss) throws -> [String: Double] {
        // Nothing to learn from (Credit weighted every token 0): no optimizer step, so weight
        // decay and Adam's momentum do not move the weights either.
        guard all.tokens > 0 else { return ["loss": 0, "grad_norm": 0, "tokens": 0] }
        var sums = range.isEmpty ? [:] : try backward(range, all: all, size: size, rows, loss)
        if let dp { sums = try dp.finishBackward(optimizer.parameters, metrics: sums) }
        if let n = sums.removeValue(forKey: "self_reward_rows"), n > 0 { sums["self_reward_accuracy"] = (sums.removeValue(forKey: "self_reward_right") ?? 0) / n }
        // The score's mean over the right and over the wrong finished responses: how far apart it tells them.
        for (side, name) in [("pos", "right"), ("neg", "wrong")] {
            if let n = sums.removeValue(forKey: "self_reward_\(side)_rows"), let total = sums.removeValue(forKey: "self_reward_\(side)_sum"), n > 0 {
                sums["self_reward_score_\(name)_mean"] = total / n
            }
        }
        sums["grad_norm"] = Torch.clipGradNorm(optimizer.parameters, maxNorm: config.optim.maxGradNorm)
        // A non-finite loss or gradient never reaches the weights.
        guard let loss = sums["loss"], loss.isFinite, let norm = sums["grad_norm"], norm.isFinite else {
            optimizer.zeroGrad()
            throw TrainingError("training diverged at step \(step): the loss (\(sums["loss"] ?? .nan)) or the gradient norm (\(sums["grad_norm"] ?? .nan)) is not finite, "
                + "so this update was not applied; lower optim.lr or optim.max_grad_norm, or resume from the last checkpoint")
        }
        optimizer.step()
        optimizer.zeroGrad()
        return sums
    }

    /// Accumulates the gradients of `range`'s rows; returns their parts of the mini-batch's metrics.
    func backward(_ range: [Int], all: (tokens: Int, rows: Int), size: Int, _ rows: Rows, _ loss: PolicyLoss) throws -> [String: Double] {
        let (unique, owners) = ResponseForward.distinct(range.map { rows.prompts[$0] })
        let owner = Dictionary(uniqueKeysWithValues: zip(range, owners))
        let prefix = try forward.model.sharedPrefix(unique)
        let leaves = prefix.leaves()
        let micro = config.train.microBatch > 0 ? config.train.microBatch : range.count
        let order = micro >= range.count ? range : range.sorted { (rows.responses[$0].count, $0) < (rows.responses[$1].count, $1) }
        func counts(_ r: [Int]) -> (tokens: Int, rows: Int) { (r.reduce(0) { $0 + rows.lossTokens[$1] }, r.filter { rows.lossTokens[$0] > 0 }.count) }
        var sums: [String: Double] = [:]
        for a in stride(from: 0, to: order.count, by: micro) {
            let r = Array(order[a..<Swift.min(order.count, a + micro)]), part = counts(r)
            let (b, lpz) = try batch(r, rows, leaves, owner)
            let (l, m) = try loss(b)
            let share = loss.config.aggregation.share(tokens: part.tokens, rows: part.rows, ofTokens: all.tokens, rows: all.rows)
            if let lpz, let laser = rows.laser {
                let aux = try selfRewardLoss(lpz, r, laser, size: size, sums: &sums)
                (l * share + aux * laser.config.lossCoef).backward()
            } else {
                (l * share).backward()
            }
            let tokenShare = Double(part.tokens) / Double(all.tokens)
            sums["loss", default: 0] += try l.item() * share
            for (k, v) in m {
                switch k {
                case "tokens": sums[k, default: 0] += v
                case "pg_loss", "kl": sums[k, default: 0] += v * share   // aggregated as the loss is
                case _ where k.hasSuffix("_max"): if part.tokens > 0 { sums[k] = Swift.max(sums[k] ?? -.infinity, v) }
                case _ where k.hasSuffix("_min"): if part.tokens > 0 { sums[k] = Swift.min(sums[k] ?? .infinity, v) }
                default: sums[k, default: 0] += v * tokenShare
                }
            }
        }
        prefix.backward(from: leaves)
        return sums
    }

    /// LaSeR's loss over rows `r`: Σ w_i·(β·(log π(z) − c_i) − r_i)² / `size` (the mini-batch's
    /// mean); adds its value and the finished rows' predictions (score > ½ against the target) to `sums`.
    func selfRewardLoss(_ lpz: Tensor, _ r: [Int], _ laser: Rows.SelfReward, size: Int, sums: inout [String: Double]) throws -> Tensor {
        let pick = Tensor(r.map(Int64.init)).to(forward.model.device)
        let target = laser.targets.indexSelect(dim: 0, index: pick), weight = laser.weights.indexSelect(dim: 0, index: pick)
        let (loss, score) = LaSeR.loss(lpz: lpz, reference: laser.reference.indexSelect(dim: 0, index: pick), targets: target, weights: weight,
                                       beta: laser.config.beta, size: size)
        sums["self_reward_loss", default: 0] += try loss.item()
        let s = try score.detached().to(.cpu, dtype: .float64).doubles(), t = try target.to(.cpu, dtype: .float64).doubles()
        for (k, i) in r.enumerated() where laser.finished[i] {
            sums["self_reward_rows", default: 0] += 1
            if (s[k] > 0.5) == (t[k] == 1) { sums["self_reward_right", default: 0] += 1 }
            let side = t[k] == 1 ? "pos" : "neg"
            sums["self_reward_\(side)_rows", default: 0] += 1
            sums["self_reward_\(side)_sum", default: 0] += s[k]
        }
        return loss
    }

    /// The loss's inputs for rows `r`: new logprobs and entropies from the policy, the rest picked
    /// from the step's tensors; with LaSeR, also log π(z | x, y) of each row (z after each finished
    /// response, in the same forward; an unfinished row's value is its last token's, weighted 0).
    func batch(_ r: [Int], _ rows: Rows, _ prefix: SharedPrefix, _ owner: [Int: Int]) throws -> (PolicyBatch, Tensor?) {
        let device = forward.model.device, pick = Tensor(r.map(Int64.init)).to(device)
        let whole = r == Array(0..<rows.count)
        func rowsOf(_ t: Tensor) -> Tensor { whole ? t : t.indexSelect(dim: 0, index: pick) }
        let plain = r.map { rows.responses[$0] }
        let lp: Tensor, ent: Tensor
        var lpz: Tensor? = nil
        if let laser = rows.laser {
            let extended = zip(r, plain).map { i, y in laser.finished[i] ? y + [laser.token] : y }
            let (all, allEnt) = try ResponseForward.logprobs(forward.model, prefix: prefix, owner: r.map { owner[$0]! }, responses: extended, width: rows.width + 1)
            // The loss's columns repeat each response's last value past its end, as without z.
            let idx = ResponseForward.columns(lengths: plain.map(\.count), width: rows.width, device: device)
            (lp, ent) = (all.gather(dim: 1, index: idx), allEnt.gather(dim: 1, index: idx))
            let at = Tensor(zip(r, plain).map { i, y in Int64(laser.finished[i] ? y.count : Swift.max(y.count, 1) - 1) }, shape: [r.count, 1]).to(device)
            lpz = all.gather(dim: 1, index: at).squeezed(dim: 1)
        } else {
            (lp, ent) = try ResponseForward.logprobs(forward.model, prefix: prefix, owner: r.map { owner[$0]! }, responses: plain, width: rows.width)
        }
        let b = PolicyBatch(logprobs: lp, oldLogprobs: rowsOf(rows.old), advantages: rowsOf(rows.advantages), mask: rowsOf(rows.mask),
                            rolloutLogprobs: rows.rollout.map(rowsOf), refLogprobs: rows.ref.map(rowsOf), weights: rowsOf(rows.weights), entropies: ent, turns: rows.turns.map(rowsOf))
        return (b, lpz)
    }
}

import Credit
import Foundation
import Models
import Torch

/// Supplies `turn_rewards` (iStar) from the run's `ImplicitPRM`, then updates the model once on the
/// step's episodes. The loss's gradient is taken through a surrogate Σ_i g_i·Q_i with g_i = ∂L/∂Q_i
/// from a first, gradient-free pass, so micro-batches and ranks give one process's update.
final class ImplicitStepRewards: InputProvider {
    let prm: ImplicitPRM
    let microBatch: Int
    var dataParallel: DataParallel?

    init(prm: ImplicitPRM, microBatch: Int) { self.prm = prm; self.microBatch = microBatch }

    /// Each turn's token span (the first turn also takes the tokens before its mark) restricted to the
    /// action tokens.
    static func turns(_ t: Trajectory) -> [[Int]] {
        let starts = (t.states ?? []).map(\.index), mask = t.actionMask ?? Array(repeating: true, count: t.count)
        return starts.indices.map { k in
            let lo = k == 0 ? 0 : starts[k], hi = k + 1 < starts.count ? starts[k + 1] : t.count
            return (lo..<Swift.max(lo, hi)).filter { mask[$0] }
        }
    }

    func provide(_ inputs: inout StepInputs) throws {
        let c = prm.config, rows = inputs.rows, trajectories = inputs.groups.flatMap(\.trajectories)
        let old = inputs.oldLogprobs ?? rows.map { inputs.rollouts.rolled[$0].completion.logprobs }
        let turns = trajectories.map(Self.turns)
        let lp = try prm.active { try ResponseForward.rowLogprobs(prm.model, prompts: inputs.rowPrompts, responses: inputs.rowResponses, microBatch: microBatch).logprobs }
        // β·q per turn, from the model as it is before this step's update.
        let raw = turns.indices.map { i in turns[i].map { span in c.beta * span.reduce(0) { $0 + lp[i][$1] - old[i][$1] } } }
        let localMax = raw.flatMap { $0 }.map(abs).max() ?? 0
        let scale = c.normalize == .none ? 1 : (try dataParallel.map { try $0.gather(localMax).max()! } ?? localMax) + 1e-6
        var row = 0
        inputs.fill { t, _ in t.turnRewards = raw[row].map { $0 / scale }; row += 1 }
        let turnCount = raw.reduce(0) { $0 + $1.count }
        inputs.metrics["istar_turn_reward_mean"] = raw.flatMap { $0 }.reduce(0, +) / Double(Swift.max(turnCount, 1))
        inputs.metrics["istar_turn_reward_scale"] = scale
        guard c.training == .trained else { return }
        inputs.metrics.merge(try update(inputs, trajectories: trajectories, turns: turns, raw: raw)) { $1 }
    }

    /// Σ over each group's (success, failure) pairs of −log σ(Q_s − Q_f), the pair count, and the
    /// sum's gradient in each Q_i.
    static func bradleyTerry(_ q: [Double], success: [Bool], groups: [Range<Int>]) -> (loss: Double, pairs: Int, gradient: [Double]) {
        var g = [Double](repeating: 0, count: q.count), loss = 0.0, pairs = 0
        for members in groups {
            for s in members where success[s] {
                for f in members where !success[f] {
                    let d = q[s] - q[f]
                    loss += d > 0 ? log1p(exp(-d)) : -d + log1p(exp(d))   // −log σ(d), stable both ways
                    let w = 1 / (1 + exp(d))                                // σ(−d)
                    g[s] -= w
                    g[f] += w
                    pairs += 1
                }
            }
        }
        return (loss, pairs, g)
    }

    /// One step of the trajectory-level Bradley–Terry loss over the step's groups.
    func update(_ inputs: StepInputs, trajectories: [Trajectory], turns: [[[Int]]], raw: [[Double]]) throws -> [String: Double] {
        let q = raw.map { $0.isEmpty ? 0 : $0.reduce(0, +) / Double($0.count) }   // Q_i: the mean of β·q over the episode's turns
        var groups = [Range<Int>](), first = 0
        for group in inputs.groups { groups.append(first..<(first + group.trajectories.count)); first += group.trajectories.count }
        // Success is the environment's verdict (a return can be positive without one, e.g. Sokoban's shaped
        // rewards, or below 0 with one, after invalid-move penalties); a row without an episode falls back to return > 0.
        let success = zip(inputs.rows, trajectories).map { row, t in inputs.rollouts.rolled[row].episode?.success ?? (t.reward > 0) }
        let (lossSum, pairs, g) = Self.bradleyTerry(q, success: success, groups: groups)
        let total = try dataParallel.map { try $0.group.sum([lossSum, Double(pairs)]) } ?? [lossSum, Double(pairs)]
        var m = ["istar_prm_pairs": total[1], "istar_prm_loss": total[1] > 0 ? total[0] / total[1] : 0]
        guard total[1] > 0 else { return m }
        // ∂L/∂lp_φ(t) = g_i·β/K_i/P on each action token of episode i.
        let weights = trajectories.indices.map { i -> [Double] in
            var w = [Double](repeating: 0, count: trajectories[i].count)
            let k = Double(Swift.max(turns[i].count, 1))
            for span in turns[i] { for t in span { w[t] = g[i] * prm.config.beta / k / total[1] } }
            return w
        }
        try withTorchErrors {
            try prm.active {
                let (unique, owner) = ResponseForward.distinct(inputs.rowPrompts)
                // Micro-batches backpropagate into the prefix's leaves; the prefix's own graph runs once after them.
                let prefix = try prm.model.sharedPrefix(unique), leaves = prefix.leaves(), responses = inputs.rowResponses
                let step = microBatch > 0 ? microBatch : responses.count
                for start in stride(from: 0, to: responses.count, by: step) {
                    let part = start..<Swift.min(responses.count, start + step)
                    let longest = Swift.max(1, part.map { responses[$0].count }.max() ?? 1)
                    let (lp, _) = try ResponseForward.logprobs(prm.model, prefix: leaves, owner: Array(owner[part]), responses: Array(responses[part]), width: longest)
                    let w = Tensor(part.flatMap { i in weights[i] + Array(repeating: 0, count: longest - weights[i].count) }, shape: [part.count, longest])
                    (lp * w.to(lp.device, dtype: lp.dtype)).sum().backward()
                }
                prefix.backward(from: leaves)
            }
            if let dp = dataParallel { try dp.sumGradients(prm.optimizer.parameters) }
            m["istar_prm_grad_norm"] = Torch.clipGradNorm(prm.optimizer.parameters, maxNorm: prm.config.maxGradNorm)
            prm.optimizer.step()
            prm.optimizer.zeroGrad()
        }
        return m
    }
}

import Models
import Rollout
import Torch

/// What LaSeR's loss and advantage mix read for each trained row of a step (row order).
struct SelfRewardInputs {
    /// z's id.
    let token: Int
    /// The response ended with EOS, so z follows it (only these rows have a self-reward).
    let finished: [Bool]
    /// The verifier's reward: 1 when the reward's `correct` term passed, else 0.
    let targets: [Double]
    /// m_i · w_i: the class weight of a finished row, 0 for an unfinished one.
    let weights: [Double]
    /// c_i: the configured constant, or log π_ref(z | x, y) (0 for an unfinished row).
    let reference: [Double]
    /// β·(log π_old(z | x, y) − c_i) of each finished row (nil: unfinished), when this step mixes
    /// the advantages.
    var scores: [Double?]?
}

/// LaSeR's inputs for a step (see `LaSeRConfig`): each row's target and class weight, the
/// reference term, and, once the mix is on, the self-reward scores of the policy before the
/// update, from a forward pass over each finished response with z after its EOS.
struct SelfRewards {
    let config: LaSeRConfig
    let token: Int
    let forward: ResponseForward
    /// Rows per forward pass.
    let microBatch: Int

    /// log π(z | x, y) under `m` for each of `rows` (indices into the step's rows), z after the
    /// whole response.
    func tokenLogprobs(_ m: CausalLM, _ inputs: StepInputs, rows: [Int]) throws -> [Double] {
        guard !rows.isEmpty else { return [] }
        let prompts = inputs.rowPrompts, responses = inputs.rowResponses
        let (lp, _) = try ResponseForward.rowLogprobs(m, prompts: rows.map { prompts[$0] }, responses: rows.map { responses[$0] + [token] },
                                                      microBatch: microBatch)
        return lp.map { $0.last! }
    }

    /// Fills `inputs.selfReward` for step `step`; the class counts are over every rank's rows.
    func provide(_ inputs: inout StepInputs, step: Int, dp: DataParallel?) throws {
        let rolled = inputs.rollouts.rolled, rows = inputs.rows
        let finished = rows.map { rolled[$0].completion.finishReason == .eos }
        let targets = try rows.map { try inputs.rollouts.passed($0, reader: "laser fits the self-reward score to the verifier's 0/1 reward") ? 1.0 : 0.0 }
        let done = finished.indices.filter { finished[$0] }
        // Every rank's counts: the class weights and the metrics are the whole step's.
        var counts: (positive: Int, negative: Int)? = nil, rowsAll = rows.count
        if let dp {
            let mine = [done.filter { targets[$0] == 1 }.count, done.filter { targets[$0] != 1 }.count, rows.count]
            let all = try dp.gather(mine)
            counts = (all.reduce(0) { $0 + $1[0] }, all.reduce(0) { $0 + $1[1] })
            rowsAll = all.reduce(0) { $0 + $1[2] }
        }
        let weights = LaSeR.classWeights(targets: targets, finished: finished, balanced: config.balanced, counts: counts)
        var reference = [Double](repeating: config.referenceConstant ?? 0, count: rows.count)
        if config.referenceConstant == nil {
            let ref = try forward.withReference { try tokenLogprobs($0, inputs, rows: done) }
            for (k, r) in done.enumerated() { reference[r] = ref[k] }
        }
        var scores: [Double?]? = nil
        if config.mixActive(at: step) {
            let old = try withNoGrad { try tokenLogprobs(forward.model, inputs, rows: done) }
            var s = [Double?](repeating: nil, count: rows.count)
            for (k, r) in done.enumerated() { s[r] = config.beta * (old[k] - reference[r]) }
            scores = s
            let given = s.compactMap { $0 }, all = try dp.map { try $0.gather([given.reduce(0, +), Double(given.count)]) } ?? [[given.reduce(0, +), Double(given.count)]]
            let n = all.reduce(0) { $0 + $1[1] }
            if n > 0 { inputs.metrics["self_reward_score_mean"] = all.reduce(0) { $0 + $1[0] } / n }
        }
        let finishedAll = counts.map { $0.positive + $0.negative } ?? done.count
        inputs.metrics["self_reward_finished_fraction"] = rowsAll == 0 ? 0 : Double(finishedAll) / Double(rowsAll)
        inputs.selfReward = SelfRewardInputs(token: token, finished: finished, targets: targets, weights: weights, reference: reference, scores: scores)
    }

    /// The step's advantages with the self-reward advantages mixed in (unchanged before the mix
    /// starts); adds how many groups were mixed to `metrics`.
    static func mix(_ advantages: [[[Double]]], _ inputs: StepInputs, _ config: LaSeRConfig, metrics: inout [String: Double]) -> [[[Double]]] {
        guard let scores = inputs.selfReward?.scores else { return advantages }
        var grouped = [[Double?]](), row = 0
        for m in inputs.members {
            grouped.append(Array(scores[row..<(row + m.count)]))
            row += m.count
        }
        let (out, mixed) = LaSeR.mix(advantages, scores: grouped, coef: config.advantageCoef, stdMin: config.advantageStdMin)
        metrics["groups_self_reward_mixed"] = Double(mixed)
        return out
    }
}

/// Turns a batch of grouped trajectories into per-token advantages and weights.
/// Every method takes the same input and returns the same output, so no caller branches on a name.
public protocol AdvantageEstimator: Sendable {
    func estimate(_ batch: CreditBatch) throws -> CreditResult
}

/// One step of a credit pipeline: a base advantage, or a modifier of advantages and weights
/// (token weights, selection, redistribution) applied on top of the previous stages.
protocol CreditStage: Sendable {
    /// The inputs this stage reads with its parameters as set (declared by every stage, so a new
    /// method cannot silently go without them in training).
    var inputs: Set<CreditInput> { get }
    /// Checks that the batch carries the inputs this stage needs.
    func validate(_ batch: CreditBatch) throws
    func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws
}

extension CreditStage {
    func validate(_ batch: CreditBatch) throws {}
}

/// Stages run in order over one result; a method is a pipeline, so compositions (TW-GRPO weights on
/// GRPO advantages, D³S selection on any estimator) reuse stages instead of copying them.
struct Pipeline: AdvantageEstimator {
    let stages: [CreditStage]

    func estimate(_ batch: CreditBatch) throws -> CreditResult {
        try Validation.common(batch)
        for s in stages { try s.validate(batch) }
        var result = CreditResult(shapedLike: batch)
        for s in stages { try s.apply(batch, &result) }
        result.summarise(batch)
        return result
    }
}

/// Location of a trajectory in error messages.
func here(_ batch: CreditBatch, _ g: Int, _ i: Int) -> String {
    "group '\(batch.groups[g].id)', trajectory \(i)"
}

enum Validation {
    /// Checks what every method relies on: finite rewards, per-token arrays of the response's
    /// length with finite values, and indices inside the response.
    static func common(_ batch: CreditBatch) throws {
        guard batch.progress.isFinite, (0...1).contains(batch.progress) else {
            throw CreditError("progress must be in [0, 1], got \(batch.progress)")
        }
        var ids = Set<String>()
        for (g, group) in batch.groups.enumerated() {
            guard ids.insert(group.id).inserted else { throw CreditError("group id '\(group.id)' appears twice") }
            for (i, t) in group.trajectories.enumerated() {
                let at = here(batch, g, i)
                guard t.reward.isFinite else { throw CreditError("\(at): reward is not finite (\(t.reward))") }
                let n = t.count
                for (name, values) in [("logprobs", t.logprobs), ("entropies", t.entropies), ("values", t.values),
                                       ("kl", t.kl), ("ratios", t.ratios), ("token_rewards", t.tokenRewards)] {
                    guard let values else { continue }
                    guard values.count == n else {
                        throw CreditError("\(at): '\(name)' has \(values.count) values but the response has \(n) tokens")
                    }
                    if let k = values.firstIndex(where: { !$0.isFinite }) {
                        throw CreditError("\(at): '\(name)'[\(k)] is not finite (\(values[k]))")
                    }
                }
                if let mask = t.actionMask, mask.count != n {
                    throw CreditError("\(at): 'action_mask' has \(mask.count) entries but the response has \(n) tokens")
                }
                for (k, s) in (t.stepRewards ?? []).enumerated() {
                    guard (0..<n).contains(s.index) else {
                        throw CreditError("\(at): 'step_rewards'[\(k)].index \(s.index) is outside the response (\(n) tokens)")
                    }
                    guard s.reward.isFinite else { throw CreditError("\(at): 'step_rewards'[\(k)].reward is not finite (\(s.reward))") }
                }
                for (k, s) in (t.states ?? []).enumerated() {
                    guard (0..<Swift.max(n, 1)).contains(s.index) else {
                        throw CreditError("\(at): 'states'[\(k)].index \(s.index) is outside the response (\(n) tokens)")
                    }
                    if k > 0, s.index <= t.states![k - 1].index {
                        throw CreditError("\(at): 'states' must have increasing indices ('states'[\(k)].index \(s.index))")
                    }
                }
                if let r = t.turnRewards {
                    guard r.count == (t.states?.count ?? 0) else {
                        throw CreditError("\(at): 'turn_rewards' has \(r.count) values but the trajectory has \(t.states?.count ?? 0) turns ('states')")
                    }
                    if let k = r.firstIndex(where: { !$0.isFinite }) { throw CreditError("\(at): 'turn_rewards'[\(k)] is not finite (\(r[k]))") }
                }
                if let v = t.segmentValues, let k = v.firstIndex(where: { !$0.isFinite }) {
                    throw CreditError("\(at): 'segment_values'[\(k)] is not finite (\(v[k]))")
                }
                for (k, p) in (t.planning ?? []).enumerated() where !(0..<n).contains(p) {
                    throw CreditError("\(at): 'planning'[\(k)] = \(p) is outside the response (\(n) tokens)")
                }
            }
        }
    }

    /// KL reward shaping needs per-token `kl` whenever its coefficient is not 0.
    static func requireKL(_ batch: CreditBatch, _ method: String, coef: Double) throws {
        if coef != 0 { try require(batch, method, "kl") { $0.kl != nil } }
    }

    /// Fails unless every trajectory has the field `name`.
    static func require(_ batch: CreditBatch, _ method: String, _ name: String,
                        _ has: (Trajectory) -> Bool) throws {
        for (g, group) in batch.groups.enumerated() {
            for (i, t) in group.trajectories.enumerated() where !has(t) {
                throw CreditError("\(here(batch, g, i)): method '\(method)' needs '\(name)'")
            }
        }
    }
}

extension CreditResult {
    /// Batch-level diagnostics every method reports.
    mutating func summarise(_ batch: CreditBatch) {
        var tokens = 0, kept = 0.0, sum = 0.0, absSum = 0.0, wsum = 0.0
        for g in advantages.indices { for i in advantages[g].indices { for t in advantages[g][i].indices {
            tokens += 1
            let w = weights[g][i][t]
            if w > 0 { kept += 1 }
            sum += w * advantages[g][i][t]
            absSum += w * Swift.abs(advantages[g][i][t])
            wsum += w
        } } }
        let rewards = batch.groups.flatMap { $0.trajectories.map(\.reward) }
        diagnostics["tokens"] = Double(tokens)
        diagnostics["trajectories"] = Double(rewards.count)
        diagnostics["groups"] = Double(batch.groups.count)
        diagnostics["reward_mean"] = Stats.mean(rewards)
        diagnostics["reward_std"] = Stats.std(rewards, .biased)
        diagnostics["kept_token_fraction"] = tokens == 0 ? 0 : kept / Double(tokens)
        diagnostics["advantage_mean"] = wsum == 0 ? 0 : sum / wsum
        diagnostics["advantage_abs_mean"] = wsum == 0 ? 0 : absSum / wsum
        let degenerate = batch.groups.filter { g in g.trajectories.count > 1 && Set(g.trajectories.map(\.reward)).count == 1 }
        diagnostics["equal_reward_group_fraction"] = batch.groups.isEmpty ? 0 : Double(degenerate.count) / Double(batch.groups.count)
    }
}

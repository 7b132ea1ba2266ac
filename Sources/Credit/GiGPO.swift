/// GiGPO — "Group-in-Group Policy Optimization for LLM Agent Training" (arXiv:2505.10978),
/// ALGORITHMS.md §15. A trajectory is one episode; `states` mark where each turn starts and which
/// environment state (anchor) it answers; a turn's step reward is the sum of its `step_rewards`.
///   episode:  A^E = (R − mean) / F over the group's turns (each episode's return counted once per
///             turn with `cross_steps`, else once per episode); F = std + eps (`norm: mean_std`) or 1.
///   step:     R_k = r_k + γ·R_{k+1};  turns of the group with the same state key form a step group;
///             A^S = (R_k − mean_step_group) / F;  a one-turn step group has A^S = 0.
///   A = A^E + step_weight · A^S on every token of the turn.
/// Standard deviations are unbiased. A group of one sample has mean 0 and std 1, as verl-agent's
/// code: a one-turn episode alone gets R/(1 + eps), a lone episode of several turns gets 0.
/// Reduces to GRPO (episode level) with `step_weight: 0` or when every state is unique.
public enum GiGPO {
    public enum Norm: String, Codable, Sendable, CaseIterable {
        case meanStd = "mean_std", mean
    }

    public struct Params: Encodable, Equatable, Sendable {
        public var gamma = 0.95
        public var stepWeight = 1.0
        public var norm: Norm = .meanStd
        public var eps = 1e-6
        public var crossSteps = true

        public init(gamma: Double = 0.95, stepWeight: Double = 1, norm: Norm = .meanStd, eps: Double = 1e-6,
                    crossSteps: Bool = true) {
            self.gamma = gamma; self.stepWeight = stepWeight; self.norm = norm; self.eps = eps; self.crossSteps = crossSteps
        }

        init(_ r: ParamReader) throws {
            gamma = try r.value("gamma", 0.95)
            stepWeight = try r.value("step_weight", 1.0)
            norm = try r.choice("norm", Norm.meanStd)
            eps = try r.value("eps", 1e-6)
            crossSteps = try r.value("cross_steps", true)
            try r.check("gamma", (0...1).contains(gamma), "must be in [0, 1], got \(gamma)")
        }

        enum CodingKeys: String, CodingKey {
            case gamma, stepWeight = "step_weight", norm, eps, crossSteps = "cross_steps"
        }
    }

    /// Token ranges of the turns of a trajectory (the first turn also takes tokens before its mark).
    static func turns(_ t: Trajectory) -> [Range<Int>] {
        let starts = t.states!.map(\.index)
        return starts.indices.map { k in
            let lo = k == 0 ? 0 : starts[k], hi = k + 1 < starts.count ? starts[k + 1] : t.count
            return lo..<Swift.max(lo, hi)
        }
    }

    struct Stage: CreditStage {
        let params: Params
        // Step rewards are optional: without them every turn's step return is 0.
        var inputs: Set<CreditInput> { [.states] }

        func validate(_ batch: CreditBatch) throws {
            try Validation.require(batch, "gigpo", "states") { $0.states.map { !$0.isEmpty } ?? false }
        }

        /// verl-agent's `episode_norm_reward` / `build_step_group`: a lone episode sample takes mean 0
        /// and std 1; a lone step sample gets 0.
        func normalised(_ x: Double, _ values: [Double], singletonZero: Bool) -> Double {
            if values.count < 2 { return singletonZero ? 0 : (params.norm == .meanStd ? x / (1 + params.eps) : x) }
            let m = Stats.mean(values)
            return params.norm == .meanStd ? (x - m) / (Stats.std(values, .unbiased) + params.eps) : x - m
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            var stepGroups = 0, singletons = 0, members = 0
            for (g, group) in batch.groups.enumerated() {
                let turns = group.trajectories.map(GiGPO.turns)
                // Step returns per turn.
                var returns = [[Double]]()
                for (i, t) in group.trajectories.enumerated() {
                    var r = [Double](repeating: 0, count: turns[i].count)
                    for s in t.stepRewards ?? [] {
                        if let k = turns[i].lastIndex(where: { $0.lowerBound <= s.index }) { r[k] += s.reward }
                    }
                    returns.append(Stats.discountedReturns(r, gamma: params.gamma))
                }
                let episodeSample = params.crossSteps
                    ? group.trajectories.indices.flatMap { i in Array(repeating: group.trajectories[i].reward, count: turns[i].count) }
                    : group.trajectories.map(\.reward)
                var byState: [String: [Double]] = [:]
                for (i, t) in group.trajectories.enumerated() {
                    for (k, mark) in t.states!.enumerated() { byState[mark.key, default: []].append(returns[i][k]) }
                }
                stepGroups += byState.count
                singletons += byState.values.filter { $0.count == 1 }.count
                members += byState.values.reduce(0) { $0 + $1.count }
                for (i, t) in group.trajectories.enumerated() {
                    let ae = normalised(t.reward, episodeSample, singletonZero: false)
                    for (k, mark) in t.states!.enumerated() {
                        let aS = normalised(returns[i][k], byState[mark.key]!, singletonZero: true)
                        for tok in turns[i][k] { result.advantages[g][i][tok] = ae + params.stepWeight * aS }
                    }
                }
            }
            result.diagnostics["gigpo_step_groups"] = Double(stepGroups)
            result.diagnostics["gigpo_step_group_size_mean"] = stepGroups == 0 ? 0 : Double(members) / Double(stepGroups)
            result.diagnostics["gigpo_singleton_step_group_fraction"] = stepGroups == 0 ? 0 : Double(singletons) / Double(stepGroups)
        }
    }
}

/// iStar — "Agentic Reinforcement Learning with Implicit Step Rewards" (arXiv:2509.19199, first
/// titled OPRL; Tongyi-ConvAI/Tongyi-Character @dfee104, `CharacterRL-iStar/istar/core_istar.py`
/// `compute_istar_rloo_advantage`). A trajectory is one episode; `states` mark its turns and
/// `turn_rewards` give each turn's implicit step reward (β·Σ log π_φ/π_old over the turn's tokens,
/// from the run's online process reward model). With N episodes in the group:
///   episode: A^E_i = N/(N − 1)·(R_i − mean_j R_j)            (RLOO; a lone episode keeps R_i)
///   step:    A^S_ik = M/(M − 1)·(r_ik − m)                   (a lone sample keeps r_ik)
///   A = A^E + step_weight·A^S on every token of turn k.
/// `step_mean: first` takes m over each episode's first turn (M = N), as the released code's
/// de-duplication of (group, trajectory) pairs does; `all` over every turn of the group (M turns).
/// Reduces to RLOO over episodes with `step_weight: 0`.
public enum ISTAR {
    public enum StepMean: String, Codable, Sendable, CaseIterable { case first, all }

    public struct Params: Encodable, Equatable, Sendable {
        public var stepWeight = 1.0
        public var stepMean = StepMean.first

        public init(stepWeight: Double = 1, stepMean: StepMean = .first) { self.stepWeight = stepWeight; self.stepMean = stepMean }

        init(_ r: ParamReader) throws {
            stepWeight = try r.value("step_weight", 1.0)
            stepMean = try r.choice("step_mean", StepMean.first)
        }

        enum CodingKeys: String, CodingKey { case stepWeight = "step_weight", stepMean = "step_mean" }
    }

    /// (N/(N − 1))·(x − mean) over `sample`, or x for a sample of one.
    static func leaveOneOut(_ x: Double, _ sample: [Double]) -> Double {
        let n = Double(sample.count)
        return sample.count > 1 ? n / (n - 1) * (x - Stats.mean(sample)) : x
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { [.states, .turnRewards] }

        func validate(_ batch: CreditBatch) throws {
            try Validation.require(batch, "istar", "states") { $0.states.map { !$0.isEmpty } ?? false }
            try Validation.require(batch, "istar", "turn_rewards") { $0.turnRewards != nil }
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            for (g, group) in batch.groups.enumerated() {
                let rewards = group.trajectories.map(\.reward)
                let turnRewards = group.trajectories.map { $0.turnRewards! }
                let sample = params.stepMean == .first ? turnRewards.compactMap(\.first) : turnRewards.flatMap { $0 }
                for (i, t) in group.trajectories.enumerated() {
                    let ae = leaveOneOut(t.reward, rewards)
                    for (k, span) in GiGPO.turns(t).enumerated() {
                        let a = ae + params.stepWeight * leaveOneOut(turnRewards[i][k], sample)
                        for tok in span { result.advantages[g][i][tok] = a }
                    }
                }
            }
        }
    }
}

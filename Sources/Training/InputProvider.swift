import Credit
import Rollout

/// Supplies one kind of input a credit method or the loss reads (tree structure, Monte-Carlo
/// values, position scores, process rewards, reference logprobs …). The trainer runs the providers
/// its `InputPlan` chose; none of them is run for a method that does not read its input.
protocol InputProvider {
    func provide(_ inputs: inout StepInputs) throws
}

/// The trained rollouts of a step grouped by prompt, and the inputs the providers add to them for
/// credit and for the loss.
struct StepInputs {
    let rollouts: StepRollouts
    /// Indices into `rollouts.rolled` of each trained group's members; credit groups, loss rows and
    /// credit results share this order.
    let members: [[Int]]
    /// The credit groups: tokens, rewards, sampling logprobs and entropies, plus what providers add.
    var groups: [Credit.Group]
    /// The reference policy's logprob of every token of each trained row (row order).
    var refLogprobs: [[Double]]?
    /// The critic's V(s_t) before every token of each trained row at rollout time (row order).
    var values: [[Double]]?
    /// With a rollout engine apart from the learner: the learner's float32 logprobs (the loss's
    /// old logprobs) and the engine's own (`rollout_logprobs`), row order; nil: the sampler's
    /// logprobs are the learner's.
    var oldLogprobs: [[Double]]?
    var rolloutLogprobs: [[Double]]?
    /// LaSeR's targets, weights and scores (`laser` runs once its loss has started).
    var selfReward: SelfRewardInputs?
    /// Step metrics the providers report.
    var metrics: [String: Double] = [:]
    /// The step's sampling settings (its seed included).
    let sampling: SamplingConfig
    let progress: Double

    /// Group ids are the prompts' indices among the whole step's (`StepRollouts.groupOf`: a
    /// data-parallel rank's share starts past the others').
    init(_ rollouts: StepRollouts, sampling: SamplingConfig, progress: Double) {
        self.rollouts = rollouts
        self.sampling = sampling
        self.progress = progress
        members = rollouts.kept.map { rollouts.rolloutsOf[$0] }
        groups = zip(members, rollouts.kept).map { members, p in
            Credit.Group(id: "p\(rollouts.groupOf[p])", trajectories: members.map { i in
                let c = rollouts.rolled[i].completion
                // An episode brings its turns: a state mark and the environment's reward for each.
                return rollouts.rolled[i].episode?.trajectory
                    ?? Trajectory(tokens: c.tokens, reward: rollouts.scores[i].value, logprobs: c.logprobs, entropies: c.entropies)
            })
        }
    }

    /// Rollout indices of the trained rows, in row order.
    var rows: [Int] { members.flatMap { $0 } }

    /// The prompt tokens of rollout `i`.
    func prompt(of i: Int) -> [Int] { rollouts.prompts[rollouts.rolled[i].completion.promptIndex] }

    /// The trained rows' prompt and response tokens, in row order (what every forward over them reads).
    var rowPrompts: [[Int]] { rows.map { prompt(of: $0) } }
    var rowResponses: [[Int]] { rows.map { rollouts.rolled[$0].completion.tokens } }

    /// Calls `body` with each trained rollout's credit trajectory, to fill in, and its rollout
    /// index, in row order.
    mutating func fill(_ body: (inout Trajectory, Int) throws -> Void) rethrows {
        for (g, m) in members.enumerated() { for (k, i) in m.enumerated() { try body(&groups[g].trajectories[k], i) } }
    }

    var creditBatch: CreditBatch { CreditBatch(groups: groups, progress: progress) }

    /// An agent run's rows: 1 on the model's action tokens, 0 on the observations between them
    /// (context, never trained); nil for one-turn rows.
    var actionMasks: [[Double]]? { episodes?.map { $0.actionMask.map { $0 ? 1 : 0 } } }

    /// Each row's turn index per token (ST-PPO's turn ratio), for agent rows.
    var turnIds: [[Double]]? { episodes?.map { $0.turnIds.map(Double.init) } }

    /// The trained rows' episodes, in row order, when every row is one (an agent run).
    var episodes: [Episode]? {
        let episodes = rows.compactMap { rollouts.rolled[$0].episode }
        return !episodes.isEmpty && episodes.count == rows.count ? episodes : nil
    }
}

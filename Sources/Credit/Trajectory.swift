/// A reward attached to one response token (a process/step reward, usually at a step's last token).
public struct StepReward: Codable, Equatable, Sendable {
    public var index: Int
    public var reward: Double
    public init(index: Int, reward: Double) { self.index = index; self.reward = reward }
}

/// The start of an agent turn: from token `index` on, the action answers environment state `key`.
public struct StateMark: Codable, Equatable, Sendable {
    public var index: Int
    public var key: String
    public init(index: Int, key: String) { self.index = index; self.key = key }
}

/// One sampled response and everything credit assignment may need about it. Per-token arrays,
/// when present, have one entry per response token.
public struct Trajectory: Codable, Equatable, Sendable {
    /// Response token ids (prompt excluded).
    public var tokens: [Int]
    /// Scalar outcome reward.
    public var reward: Double
    /// Log-probabilities of the sampled tokens under the sampling (old) policy.
    public var logprobs: [Double]?
    /// Entropy of the policy's next-token distribution at each position.
    public var entropies: [Double]?
    /// Critic values V(s_t) before each token.
    public var values: [Double]?
    /// Per-token KL estimates to the reference policy, for reward shaping (`kl_coef`).
    public var kl: [Double]?
    /// Current importance ratios π/π_old (HAPO redistribution); 1 at rollout time when absent.
    public var ratios: [Double]?
    /// Process/step rewards at token indices.
    public var stepRewards: [StepReward]?
    /// Segment boundaries: SPO-chain cut points (−1 = the bare prompt), or the token start of each
    /// node of `treePath`.
    public var segments: [Int]?
    /// Monte-Carlo values of the SPO-chain cut points in `segments`.
    public var segmentValues: [Double]?
    /// Agent turns: where each starts and which environment state it answers.
    public var states: [StateMark]?
    /// Rollout-tree node ids from the root's child down to this leaf (SPO-tree).
    public var treePath: [String]?
    /// Indices of planning tokens (HICRA), in addition to those found from `grams`.
    public var planning: [Int]?
    /// Dense per-token rewards before scaling: RTO's implicit reward log π_dpo(y_t) − log π_ref(y_t).
    public var tokenRewards: [Double]?
    /// One reward per turn (`states` mark): iStar's implicit step rewards.
    public var turnRewards: [Double]?
    /// Which tokens the policy wrote (nil: all of them). The others, an agent's observations, are
    /// context: weight 0 (out of the loss and of whitening), and GAE passes over them.
    public var actionMask: [Bool]?

    public init(tokens: [Int], reward: Double, logprobs: [Double]? = nil, entropies: [Double]? = nil,
                values: [Double]? = nil, kl: [Double]? = nil, ratios: [Double]? = nil,
                stepRewards: [StepReward]? = nil, segments: [Int]? = nil, segmentValues: [Double]? = nil,
                states: [StateMark]? = nil, treePath: [String]? = nil, planning: [Int]? = nil) {
        self.tokens = tokens; self.reward = reward; self.logprobs = logprobs; self.entropies = entropies
        self.values = values; self.kl = kl; self.ratios = ratios; self.stepRewards = stepRewards
        self.segments = segments; self.segmentValues = segmentValues; self.states = states
        self.treePath = treePath; self.planning = planning
    }

    public var count: Int { tokens.count }

    /// Per-token KL reward shaping −coef·kl_t (zeros without `kl`).
    func klPenalty(_ coef: Double) -> [Double] {
        (kl ?? Array(repeating: 0, count: count)).map { -coef * $0 }
    }
}

/// The trajectories sampled for one prompt.
public struct Group: Codable, Equatable, Sendable {
    public var id: String
    public var trajectories: [Trajectory]
    /// TW-GRPO's per-position divergence scores K_t of this group (see `TWGRPO.positionScores`).
    public var positionScores: [Double]?

    public init(id: String, trajectories: [Trajectory], positionScores: [Double]? = nil) {
        self.id = id
        self.trajectories = trajectories
        self.positionScores = positionScores
    }
}

/// What every estimator takes: groups of trajectories, and how far training has progressed
/// (0…1, for schedules such as D³S's).
public struct CreditBatch: Equatable, Sendable {
    public var groups: [Group]
    public var progress: Double

    public init(groups: [Group], progress: Double = 0) {
        self.groups = groups
        self.progress = progress
    }

    /// Every (group, trajectory) index pair, in order.
    var allIndices: [(g: Int, i: Int)] {
        groups.indices.flatMap { g in groups[g].trajectories.indices.map { (g, $0) } }
    }
}

/// Per-token advantages and weights (0 = excluded from the loss) for every trajectory, in the
/// batch's order, plus named scalar diagnostics.
public struct CreditResult: Equatable, Sendable {
    public var advantages: [[[Double]]]
    public var weights: [[[Double]]]
    public var diagnostics: [String: Double]

    /// A result with zero advantages and unit weights shaped like `batch`.
    public init(shapedLike batch: CreditBatch) {
        advantages = batch.groups.map { $0.trajectories.map { [Double](repeating: 0, count: $0.count) } }
        weights = batch.groups.map { $0.trajectories.map { t in t.actionMask?.map { $0 ? 1 : 0 } ?? [Double](repeating: 1, count: t.count) } }
        diagnostics = [:]
    }

    /// Sets every token of trajectory (g, i) to `value`.
    mutating func fill(_ g: Int, _ i: Int, _ value: Double) {
        for t in advantages[g][i].indices { advantages[g][i][t] = value }
    }
}

/// A credit-assignment error; the message names the group, trajectory and field at fault.
public struct CreditError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

import Credit
import Foundation

/// What credit read for one rollout beyond the record's tokens, reward, logprobs and entropies, so
/// that `tokenwise credit --compare` can score the very same rollouts with other methods. Inputs
/// the run never computed (a critic's values when it had no critic) are absent, and a method that
/// reads them is refused there, not fed a stand-in.
public struct RecordedCreditInputs: Codable, Equatable, Sendable {
    /// Credit's reward, logprobs and entropies where they differ from the record's own (an agent's
    /// episode return; the learner's logprobs when a low-precision copy sampled).
    public var reward: Double?
    public var logprobs: [Double]?
    public var entropies: [Double]?
    public var values: [Double]?
    public var kl: [Double]?
    /// RTO's unscaled implicit token rewards log π_dpo − log π_ref.
    public var tokenRewards: [Double]?
    /// iStar's implicit step rewards, one per turn.
    public var turnRewards: [Double]?
    /// The reward function's process rewards, recorded whenever it gives them (any method).
    public var stepRewards: [StepReward]?
    public var segments: [Int]?
    public var segmentValues: [Double]?
    public var states: [StateMark]?
    public var treePath: [String]?
    public var planning: [Int]?
    /// The group's TW-GRPO position scores (the same on every record of the group).
    public var positionScores: [Double]?
    /// How many rollouts the group has: a side-by-side scores whole groups only.
    public var groupSize: Int
    /// The step's training progress (0…1), which scheduled parameters read.
    public var progress: Double

    enum CodingKeys: String, CodingKey {
        case reward, logprobs, entropies, values, kl, segments, states, planning, progress
        case stepRewards = "step_rewards", segmentValues = "segment_values", treePath = "tree_path"
        case positionScores = "position_scores", groupSize = "group_size", tokenRewards = "token_rewards", turnRewards = "turn_rewards"
    }

    /// The inputs of trajectory `t` of `group` (the record holds `record`'s fields already).
    /// `stepRewards`: the reward function's, nil when it gives none (an empty list is a response
    /// with no step, which PURE scores as such).
    init(_ t: Trajectory, group: Credit.Group, record: SampleRecord, stepRewards: [StepReward]?, progress: Double) {
        reward = t.reward == record.reward ? nil : t.reward
        logprobs = t.logprobs == record.logprobs ? nil : t.logprobs
        entropies = t.entropies == nil || t.entropies == record.entropies ? nil : t.entropies
        values = t.values; kl = t.kl; tokenRewards = t.tokenRewards; turnRewards = t.turnRewards
        self.stepRewards = t.stepRewards ?? stepRewards
        segments = t.segments; segmentValues = t.segmentValues; states = t.states; treePath = t.treePath
        planning = t.planning; positionScores = group.positionScores
        groupSize = group.trajectories.count
        self.progress = progress
    }

    /// Whether these inputs supply `input` (logprobs and entropies come with every record).
    func has(_ input: CreditInput) -> Bool {
        switch input {
        case .logprobs, .entropies: true
        case .values: values != nil
        case .kl: kl != nil
        case .ratios: false
        case .stepRewards: stepRewards != nil
        case .segmentValues: segments != nil && segmentValues != nil
        case .tree: treePath != nil && segments != nil
        case .states: states != nil
        case .planning: planning != nil
        case .positionScores: positionScores != nil
        case .tokenRewards: tokenRewards != nil
        case .turnRewards: turnRewards != nil
        }
    }
}

extension SampleRecord {
    /// The trajectory credit scored, rebuilt from the record.
    public var trajectory: Trajectory {
        let c = credit
        var t = Trajectory(tokens: tokens, reward: c?.reward ?? reward, logprobs: c?.logprobs ?? logprobs,
                           entropies: c?.entropies ?? entropies, values: c?.values, kl: c?.kl, stepRewards: c?.stepRewards,
                           segments: c?.segments, segmentValues: c?.segmentValues, states: c?.states, treePath: c?.treePath,
                           planning: c?.planning)
        t.actionMask = actionMask
        t.tokenRewards = c?.tokenRewards
        t.turnRewards = c?.turnRewards
        return t
    }

    /// The records of whole groups, in order, until at least `count` are taken: credit is relative
    /// within a group, so a cut group could not be scored again.
    static func wholeGroups(_ records: [SampleRecord], atLeast count: Int) -> [SampleRecord] {
        var taken = [SampleRecord]()
        for r in records {
            if taken.count >= count, taken.last?.group != r.group { break }
            taken.append(r)
        }
        return count == 0 ? [] : taken
    }
}

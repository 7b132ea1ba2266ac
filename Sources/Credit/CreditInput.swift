/// An input a credit method reads besides each response's tokens and outcome reward. Methods
/// declare the kinds they read (`CreditConfig.inputs`); a trainer supplies each kind from one
/// provider, or refuses the method before it trains. The raw value names the JSON field.
public enum CreditInput: String, CaseIterable, Comparable, Sendable {
    /// `logprobs`: the sampling policy's log-probability of each sampled token.
    case logprobs
    /// `entropies`: the policy's next-token entropy at each position.
    case entropies
    /// `values`: a critic's value V(s_t) before each token.
    case values
    /// `kl`: a per-token KL estimate to the reference policy (KL reward shaping).
    case kl
    /// `ratios`: live importance ratios π/π_old of each token (HAPO's redistribution at credit time).
    case ratios
    /// `step_rewards`: process rewards at token indices.
    case stepRewards = "step_rewards"
    /// `segments` with `segment_values`: SPO-chain cut points and their Monte-Carlo values.
    case segmentValues = "segment_values"
    /// `tree_path` with `segments`: the rollout-tree nodes a response passes through and their starts.
    case tree = "tree_path"
    /// `states`: where each agent turn starts and which environment state it answers.
    case states
    /// `planning`: indices of planning tokens.
    case planning
    /// A group's `position_scores`: per-position divergence between its responses (TW-GRPO).
    case positionScores = "position_scores"
    /// `token_rewards`: a dense reward per token, the implicit reward log π_dpo − log π_ref of a
    /// preference-trained model (RTO).
    case tokenRewards = "token_rewards"
    /// `turn_rewards`: one reward per agent turn (its `states` mark), iStar's implicit step
    /// rewards from an online process reward model.
    case turnRewards = "turn_rewards"

    /// What the input is, for error messages.
    public var summary: String {
        switch self {
        case .logprobs: "sampling logprobs ('logprobs')"
        case .entropies: "token entropies ('entropies')"
        case .values: "critic values ('values')"
        case .kl: "per-token KL to the reference ('kl')"
        case .ratios: "live importance ratios ('ratios')"
        case .stepRewards: "process rewards ('step_rewards')"
        case .segmentValues: "Monte-Carlo values of cut points ('segments', 'segment_values')"
        case .tree: "tree rollouts ('tree_path', 'segments')"
        case .states: "environment states, one per agent turn ('states')"
        case .planning: "planning-token marks ('planning')"
        case .positionScores: "per-position divergence scores ('position_scores')"
        case .tokenRewards: "per-token rewards from a preference-trained model ('token_rewards')"
        case .turnRewards: "implicit step rewards, one per agent turn ('turn_rewards')"
        }
    }

    public static func < (a: CreditInput, b: CreditInput) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

extension CreditConfig {
    /// Every input the method reads with its parameters as set: the union over its pipeline's
    /// stages (a composite such as `d3s` over a base declares both).
    public var inputs: Set<CreditInput> { stages.reduce(into: []) { $0.formUnion($1.inputs) } }
}

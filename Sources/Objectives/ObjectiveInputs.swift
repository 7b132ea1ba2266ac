/// An input a policy loss reads besides the new and old logprobs, advantages and mask. Options
/// declare what they read (`PolicyLossConfig.requirements`); a trainer supplies each kind or
/// refuses the option before it trains. The raw value names the `PolicyBatch` / JSON field.
public enum PolicyInput: String, CaseIterable, Sendable {
    /// Per-token entropies of the current policy.
    case entropies
    /// The frozen reference policy's logprobs of the sampled tokens.
    case refLogprobs = "ref_logprobs"
    /// The rollout engine's own logprobs of the sampled tokens (when it is not the trainer).
    case rolloutLogprobs = "rollout_logprobs"
    /// The agent turn of every token.
    case turns

    public var summary: String {
        switch self {
        case .entropies: "token entropies ('entropies')"
        case .refLogprobs: "reference-policy logprobs ('ref_logprobs')"
        case .rolloutLogprobs: "rollout-engine logprobs ('rollout_logprobs')"
        case .turns: "turn ids ('turns')"
        }
    }
}

extension PolicyLossConfig {
    /// Each option that is on, with the input it reads (the option as written in a config).
    public var requirements: [(option: String, input: PolicyInput)] {
        var r: [(String, PolicyInput)] = []
        if klCoef != 0 { r.append(("objective.kl_coef \(klCoef)", .refLogprobs)) }
        if entropyCoef != 0 { r.append(("objective.entropy_coef \(entropyCoef)", .entropies)) }
        if adaptiveClip != nil { r.append(("objective.adaptive_clip", .entropies)) }
        if adaptiveAdvantage != nil { r.append(("objective.adaptive_advantage", .entropies)) }
        if ratio == .hybrid, (hybrid ?? Hybrid()).mixing == .entropy { r.append(("objective.hybrid.mixing entropy", .entropies)) }
        if ratio == .turn { r.append(("objective.ratio turn", .turns)) }
        if mismatch.mode != .none { r.append(("objective.mismatch \(mismatch.mode.rawValue)", .rolloutLogprobs)) }
        return r
    }

    /// Every input the loss reads as configured.
    public var inputs: Set<PolicyInput> { Set(requirements.map(\.input)) }
}

/// An input a preference loss reads besides the policy's and the reference's logprobs.
public enum PreferenceInput: String, CaseIterable, Sendable {
    /// Per-token KL(π_ref ‖ π_θ) over the vocabulary.
    case kl
    /// A frozen token-reward model's logprobs.
    case rmLogprobs = "rm_logprobs"
    /// Per-token weights (weighted DPO) or reward masks m^u (SparsePO) of each response.
    case weights
    /// SparsePO's masks from the reference model's activations (computed in training).
    case activationMasks = "activation_masks"
    /// F-DPO's per-response hallucination labels (the pair file's `h_w`, `h_l`).
    case hallucinated
    /// T-REG's self-generated token rewards from the reference under contrastive revision prompts.
    case revisionRewards = "revision_rewards"
}

extension PreferenceLoss.Config {
    /// Every input the loss reads (SparsePO's KL masks `kl_weights` are optional: they default to `weights`).
    public var inputs: Set<PreferenceInput> {
        switch name {
        case .dpo, .ipo: []
        case .tdpo1, .tdpo2: [.kl]
        case .tgdpo: [.rmLogprobs]
        case .sparsepo: mask == .file ? [.kl, .weights] : [.kl, .activationMasks]
        case .weightedDPO: [.weights]
        case .fdpo: [.hallucinated]
        case .treg: [.revisionRewards]
        }
    }
}

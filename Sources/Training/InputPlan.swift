import Credit
import Objectives
import Rewards
import Rollout

/// What supplies each input the configured credit method and loss read, decided from the config
/// alone (and the reward function, when known), before anything is loaded. An input with no
/// supplier in training is an error naming the method or option, the input, and what would supply it.
struct InputPlan: Equatable {
    /// The providers a step runs, besides the rollouts themselves (which give sampling logprobs and
    /// entropies, and the training forward's entropies).
    enum Provider: String, CaseIterable, Comparable {
        case learnerLogprobs, treeRollouts, monteCarloValues, processRewards, referenceLogprobs, tokenRewards, positionScores, criticValues, implicitStepRewards
        static func < (a: Provider, b: Provider) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
    }

    let providers: Set<Provider>
    /// Credit reads per-token KL (reward shaping), so the reference provider fills `kl` too.
    let klForCredit: Bool

    /// The plan for `config`; `reward` (when known) decides whether process rewards exist.
    init(_ config: RunConfig, reward: RewardFunction?) throws {
        let method = config.credit.method.rawValue
        let name: String
        if case .d3s(let p) = config.credit { name = "credit.method d3s (base \(p.base.method.rawValue))" } else { name = "credit.method \(method)" }
        var providers = Set<Provider>()
        for input in config.credit.inputs.sorted() {
            if let p = try Self.supplier(of: input, for: name, config, reward) { providers.insert(p) }
        }
        for (option, input) in config.objective.requirements where !(input == .turns && config.agent != nil) {
            if let p = try Self.supplier(of: input, for: option, config) { providers.insert(p) }
        }
        // A rollout engine apart from the learner: the learner recomputes the old logprobs always.
        if config.rollout.weights != .fp32 || config.rollout.engine == .remote { providers.insert(.learnerLogprobs) }
        if config.rollout.engine == .remote { try Self.checkRemote(config, providers) }
        self.providers = providers
        klForCredit = config.credit.inputs.contains(.kl)
    }

    /// The provider of a credit input (nil: the rollouts give it), or the refusal.
    static func supplier(of input: CreditInput, for name: String, _ config: RunConfig, _ reward: RewardFunction?) throws -> Provider? {
        func refuse(_ why: String) -> TrainingError { TrainingError("config: \(name) needs \(input.summary), \(why)") }
        switch input {
        case .logprobs, .entropies: return nil
        case .kl: return .referenceLogprobs
        case .segmentValues: return .monteCarloValues
        case .tree: return .treeRollouts
        case .positionScores: return .positionScores
        case .stepRewards where config.agent != nil, .states where config.agent != nil:
            return nil   // an agent's episodes carry each turn's state and reward
        case .stepRewards:
            if let reward, !reward.givesStepRewards {
                throw refuse("but the reward '\(reward.name)' gives none: use a reward with steps (such as the countdown task's) or another method")
            }
            return .processRewards
        case .values:
            guard config.critic != nil else {
                throw refuse("from a learned critic: add a 'critic:' section (its LoRA adapters and value head on the policy's base; "
                    + "preset 'ppo' sets one up), use a method without values (grpo, rloo, reinforce_pp, tempo), "
                    + "or compute advantages from your own values with `tokenwise credit`")
            }
            return .criticValues
        case .states:
            throw refuse("which only multi-turn episodes give: add an 'agent:' section (an environment; preset 'frozenlake-gigpo'). One-turn "
                + "rollouts have a single state each, which makes its step groups its episode groups (GRPO); or give your own states to `tokenwise credit`")
        case .planning:
            throw refuse("and training has no provider of planning marks: give token n-grams in 'grams' instead")
        case .tokenRewards:
            guard config.model.tokenRewardModel != nil else {
                throw refuse("from a preference-trained model: set 'model.token_reward_model' to the model/ folder of a DPO run "
                    + "(tokenwise train with objective {name: dpo} on pairs) from the same base, or give your own 'token_rewards' to `tokenwise credit`")
            }
            return .tokenRewards
        case .turnRewards:
            guard config.agent != nil, config.istar != nil else {
                throw refuse("from iStar's online process reward model over an agent's turns: add an 'agent:' section (an environment) and an "
                    + "'istar:' section (its adapters, beta, lr), or give your own 'turn_rewards' to `tokenwise credit`")
            }
            return .implicitStepRewards
        case .ratios:
            throw refuse("which exist only inside the loss: set the credit param 'redistribution' false and objective.adaptive_advantage "
                + "(the released code redistributes in the loss with each mini-batch's live ratio; preset 'hapo' sets it up)")
        }
    }

    /// The provider of a loss input (nil: the training forward gives it), or the refusal.
    static func supplier(of input: PolicyInput, for option: String, _ config: RunConfig) throws -> Provider? {
        func refuse(_ why: String) -> TrainingError { TrainingError("config: \(option) needs \(input.summary), \(why)") }
        switch input {
        case .entropies: return nil
        case .refLogprobs: return .referenceLogprobs
        case .rolloutLogprobs:
            guard config.rollout.weights != .fp32 || config.rollout.engine == .remote else {
                throw refuse("which differ from the learner's only with a rollout engine apart from it; rollout.weights fp32 samples with the "
                    + "learner's own weights, so the correction would be exactly 1: set rollout.weights bf16 or int8 (a low-precision "
                    + "rollout copy), or objective.mismatch.mode none")
            }
            return .learnerLogprobs
        case .turns:
            throw refuse("which only multi-turn episodes give: add an 'agent:' section (an environment); a one-turn response's turn ratio is its "
                + "sequence ratio (objective.ratio sequence)")
        }
    }

    /// What a remote engine cannot do: it samples flat, one-turn rollouts of the policy's adapter.
    static func checkRemote(_ config: RunConfig, _ providers: Set<Provider>) throws {
        func refuse(_ what: String) -> TrainingError { TrainingError("config: rollout.engine remote \(what); use rollout.engine local for it") }
        if config.agent != nil { throw refuse("samples one-turn completions, not an agent's episodes") }
        if providers.contains(.treeRollouts) { throw refuse("samples flat rollouts, not the trees credit.method \(config.credit.method.rawValue) needs") }
        if providers.contains(.monteCarloValues) { throw refuse("has no continuations of partial responses for spo_chain's Monte-Carlo values") }
        if config.rollout.weights != .fp32 { throw refuse("samples with the server's own weights: rollout.weights must be fp32 (the server's --weights sets its precision)") }
        if config.rollout.temperatureSchedule.name != .constant { throw refuse("samples at a constant temperature (rollout.temperature_schedule adaptive)") }
        if config.rollout.repetitionPenalty != 1 { throw refuse("does not send repetition_penalty") }
        if config.model.lora == nil { throw refuse("sends LoRA adapters after each step; full fine-tuning (model.lora null) would need a full weight reload") }
    }

    /// One line for each option that is set but cannot change this run (printed at the start).
    static func warnings(_ config: RunConfig) -> [String] {
        let inputs = config.credit.inputs, t = config.train
        var w = [String]()
        if inputs.contains(.tree), t.samplesPerPrompt != RunConfig.TrainSection().samplesPerPrompt {
            w.append("train.samples_per_prompt is not used with tree rollouts: each group is one tree's leaves (train.tree.max_leaves \(t.tree.maxLeaves))")
        }
        if !inputs.contains(.tree), t.tree != TreeConfig() {
            w.append("train.tree is set but credit.method \(config.credit.method.rawValue) samples no trees; it has no effect")
        }
        if !inputs.contains(.segmentValues), t.spoContinuations != RunConfig.TrainSection().spoContinuations {
            w.append("train.spo_continuations is set but credit.method \(config.credit.method.rawValue) reads no Monte-Carlo values; it has no effect")
        }
        return w
    }
}

import Credit
import Foundation
import Models
import Objectives
import Rewards
import Rollout
import Torch

/// One RL step, top to bottom: collect rollouts → run the input providers the method and loss
/// need → credit → policy update. The policy trains LoRA adapters (or every weight); the KL
/// reference is the base model with LoRA switched off (a frozen copy only for full fine-tuning).
public final class Trainer {
    public let model: CausalLM
    public let tokenizer: Tokenizer
    public let reward: RewardFunction
    public let config: RunConfig
    public let optimizer: AdamW
    /// PPO's value model, when the config has a `critic` section.
    public let critic: Critic?
    let forward: ResponseForward
    let plan: InputPlan
    let source: RolloutSource
    let providers: [InputProvider]
    let sampler: Sampler
    /// LaSeR's inputs, when the config has a `laser` section.
    let selfRewards: SelfRewards?
    /// AEPO's reward shaping, when the config has an `aepo` section.
    let aepo: AEPOShaping?
    /// Optimizer steps taken, those before a resume included (warm-ups and curricula count them).
    public internal(set) var stepsDone = 0
    /// The last step's trained rollouts with their per-token advantages, in group order.
    public private(set) var lastRecords: [SampleRecord] = []
    /// The last step's credit inputs (what the providers supplied), for inspection.
    private(set) var lastInputs: StepInputs?
    /// Entropy statistics of the last step's rollouts, which drive the adaptive temperature of the
    /// next step's sampling (saved with checkpoints).
    public var entropyStatistics: HAPO.EntropyStatistics?
    /// The process group when this trainer is one rank of a data-parallel run: each step then
    /// samples this rank's share of the prompts (see `DataParallel`).
    public var dataParallel: DataParallel? { didSet { stepRewards?.dataParallel = dataParallel } }
    /// iStar's process reward model and the provider that scores turns with it and trains it.
    var prm: ImplicitPRM? { stepRewards?.prm }
    var stepRewards: ImplicitStepRewards?

    /// Checks the config (and that every input its method and loss read has a provider: the
    /// reward's process rewards included) before attaching adapters.
    /// An agent run (`config.agent`) renders its dialogues with `chat`.
    public init(model: CausalLM, tokenizer: Tokenizer, reward: RewardFunction, config: RunConfig, chat: ChatTemplate? = nil) throws {
        try config.validate()
        plan = try InputPlan(config, reward: reward)
        self.model = model
        self.tokenizer = tokenizer
        self.reward = reward
        self.config = config
        // RTO's token rewards are log-ratios to the reference too.
        let needsReference = plan.providers.contains(.referenceLogprobs) || plan.providers.contains(.tokenRewards)
            || (config.laser.map { $0.referenceConstant == nil } ?? false)
        let (forward, params) = try ResponseForward.attach(model, lora: config.model.lora, seed: config.rollout.seed, reference: needsReference)
        self.forward = forward
        if config.laser != nil, reward.score(RewardInput(response: "", answer: "0")).components["correct"] == nil {
            throw TrainingError("laser fits the self-reward score to the verifier's 0/1 reward from the reward's 'correct' term, and this reward has none; add one (reward: {terms: [{type: correct}]})")
        }
        if config.aepo != nil, reward.score(RewardInput(response: "", answer: "0")).components["correct"] == nil {
            throw TrainingError("aepo buckets each prompt by its pass rate and shapes right and wrong responses apart, from the reward's 'correct' term, and this reward has none; add one (reward: {terms: [{type: correct}]})")
        }
        aepo = config.aepo.map { AEPOShaping(config: $0, tokenizer: tokenizer) }
        selfRewards = try config.laser.map {
            SelfRewards(config: $0, token: try $0.resolvedToken(tokenizer: tokenizer, vocabSize: model.config.vocabSize, ends: Set(config.rollout.stopTokenIds)), forward: forward,
                        microBatch: config.train.microBatch)
        }
        optimizer = try AdamW(parameters: params, options: .init(lr: config.optim.lr, weightDecay: config.optim.weightDecay))
        let critic = try config.critic.map { try Critic.make(policy: model, tokenizer: tokenizer, run: config, section: $0) }
        self.critic = critic
        // A rollout engine apart from the learner: a low-precision copy (LoRA merged) that each step refreshes.
        let copy = config.rollout.weights == .fp32 ? nil : try RolloutWeights(model, precision: config.rollout.weights)
        let sampler = Sampler(model: model, tokenizer: tokenizer, weights: copy), plan = plan
        self.sampler = sampler
        let tree = TreeRollouts(sampler: sampler, tree: config.train.tree)
        if let agent = config.agent {
            guard let chat else { throw TrainingError("agent: the trainer needs the model's chat template to render the dialogues") }
            guard agent.context <= model.config.maxPositionEmbeddings else {
                throw TrainingError("config: 'agent.context' (\(agent.context)) exceeds the model's context (\(model.config.maxPositionEmbeddings) positions)")
            }
            source = EpisodeRollouts(runner: EpisodeRunner(sampler: sampler, chat: chat, capacity: agent.context, endOnInvalid: agent.endOnInvalid),
                                     agent: agent, n: config.train.samplesPerPrompt)
        } else if config.rollout.engine == .remote, let remote = config.rollout.remote {
            source = try RemoteRollouts(remote: remote, model: model, tokenizer: tokenizer, n: config.train.samplesPerPrompt)
        } else {
            source = plan.providers.contains(.treeRollouts) ? tree : FlatRollouts(sampler: sampler, n: config.train.samplesPerPrompt)
        }
        providers = try plan.providers.sorted().map { p -> InputProvider in
            switch p {
            case .learnerLogprobs: LearnerLogprobs(forward: forward, microBatch: config.train.microBatch, mismatch: config.objective.mismatch)
            case .treeRollouts: tree
            case .monteCarloValues:
                MonteCarloValues(sampler: sampler, tokenizer: tokenizer, reward: reward, params: config.credit.spoChainParams ?? .init(),
                                 m: config.train.spoContinuations)
            case .processRewards: ProcessRewards(tokenizer: tokenizer)
            case .referenceLogprobs: ReferenceLogprobs(forward: forward, microBatch: config.train.microBatch, klForCredit: plan.klForCredit)
            case .tokenRewards: try TokenRewards(path: config.model.tokenRewardModel!, policy: model, tokenizer: tokenizer, forward: forward,
                                                 microBatch: config.train.microBatch)
            case .positionScores: PositionScores(model: model)
            case .criticValues: CriticValues(critic: critic!, microBatch: config.train.microBatch)
            case .implicitStepRewards: try ImplicitStepRewards(prm: ImplicitPRM(policy: model, run: config, config: config.istar!), microBatch: config.train.microBatch)
            }
        }
        stepRewards = providers.compactMap { $0 as? ImplicitStepRewards }.first
    }

    /// The temperature schedule of the next rollouts: HAPO's adaptive temperature once a step's
    /// entropy statistics exist, else the configured constant.
    var schedule: TemperatureSchedule {
        let s = config.rollout.temperatureSchedule
        guard s.name == .adaptive, let stats = entropyStatistics else { return ConstantTemperature() }
        return AdaptiveTemperature(tau: s.tau) { stats.normalized($0) }
    }

    /// One step on `samples` (their prompts already in chat form). `progress` (0…1) drives
    /// schedules such as D³S's; `seed` (default: the rollout config's) seeds this step's sampling.
    /// With dynamic sampling on, groups whose rewards are all equal are dropped and `more(n)` is
    /// asked for n further prompts, up to `max_refills` times. Returns the step's metrics; the
    /// rollouts with their advantages are in `lastRecords`.
    public func step(_ samples: [TaskSample], progress: Double = 0, seed: UInt64? = nil,
                     more: ((Int) -> [TaskSample])? = nil) throws -> [String: Double] {
        guard !samples.isEmpty else { throw TrainingError("train: a step needs at least one prompt") }
        let dp = dataParallel, episodes = source as? EpisodeRollouts
        defer { sampler.priorRepeats = [:]; episodes?.firstEpisode = 0 }
        let start = DispatchTime.now().uptimeNanoseconds
        func seconds(_ from: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - from) / 1e9 }
        var sampling = config.rollout
        if let seed { sampling.seed = seed }
        // The rollout copy follows the learner's weights as they are now (after the last update or a resume).
        let refreshStart = DispatchTime.now().uptimeNanoseconds
        try sampler.weights?.refresh(from: model)
        let refreshSeconds = seconds(refreshStart)
        let collection = StepRollouts.Plan(source: source, tokenizer: tokenizer, reward: reward,
                                           dynamicSampling: config.train.dynamicSampling, maxRefills: config.train.maxRefills,
                                           dars: config.train.dars, dp: dp, step: stepsDone) { [self] batch, share in
            // The prompts of the ranks before this one, for the sampler's repeat count.
            sampler.priorRepeats = batch[..<share.lowerBound].reduce(into: [:]) { $0[tokenizer.encode($1.prompt), default: 0] += 1 }
            episodes?.firstEpisode = share.lowerBound * config.train.samplesPerPrompt
        }
        var rollouts = try StepRollouts.collect(samples, collection, sampling: sampling, schedule: schedule, more: more)
        // Data-parallel dynamic sampling: the rollout metrics are over everything the ranks sampled,
        // then each rank takes its share of the kept groups in one process's order.
        var sampled: [String: Double] = [:], keptGroups = rollouts.kept.count
        if let dp, config.train.dynamicSampling {
            sampled = try dp.mergeStep(rollouts.metrics, rollouts: rollouts.rolled.count)
            keptGroups = try rollouts.spread(dp)
        } else if let dp, config.train.dars != nil {
            // DARS drops groups rank by rank (in one process's order already): whether any rank kept one.
            keptGroups = Int(try dp.group.sum([Double(rollouts.kept.count)])[0])
        }
        let shaping = try aepo?.shape(&rollouts, dp: dp) ?? [:]
        var metrics = (sampled.isEmpty ? rollouts.metrics : sampled).merging(shaping) { $1 }
        metrics["lr"] = optimizer.learningRate
        if let copy = sampler.weights {
            metrics["rollout_copy_mb"] = Double(copy.bytes) / 1e6
            metrics["rollout_refresh_seconds"] = refreshSeconds
        }
        stepsDone += 1
        lastRecords = []
        lastInputs = nil
        guard keptGroups > 0 else {
            // Every group agreed: nothing to learn from this step.
            metrics["step_seconds"] = seconds(start)
            return metrics
        }
        if rollouts.rolled.contains(where: { $0.completion.logprobs.contains { !$0.isFinite } }) {
            throw TrainingError("training diverged at step \(stepsDone): the policy's logprobs are not finite (its weights are NaN or infinite); "
                + "lower optim.lr and start again from the last checkpoint")
        }
        var inputs = StepInputs(rollouts, sampling: sampling, progress: progress)
        let inputsStart = DispatchTime.now().uptimeNanoseconds
        for p in providers { try p.provide(&inputs) }
        if let selfRewards, selfRewards.config.lossActive(at: stepsDone) { try selfRewards.provide(&inputs, step: stepsDone, dp: dp) }
        metrics.merge(inputs.metrics) { $1 }
        // An episode's observation tokens were not sampled: no KL penalty in their rewards.
        let rolled = inputs.rollouts.rolled
        inputs.fill { t, i in
            if let e = rolled[i].episode, let kl = t.kl { t.kl = zip(kl, e.actionMask).map { $1 ? $0 : 0 } }
        }
        metrics["inputs_seconds"] = seconds(inputsStart)
        var credit = try dp?.credit(inputs.creditBatch, config.credit.estimator) ?? config.credit.estimator.estimate(inputs.creditBatch)
        if let laser = config.laser { credit.advantages = SelfRewards.mix(credit.advantages, inputs, laser, metrics: &metrics) }
        let trainStart = DispatchTime.now().uptimeNanoseconds
        if let critic {
            let criticStart = DispatchTime.now().uptimeNanoseconds
            metrics.merge(try CriticUpdate(critic: critic, config: config, step: stepsDone, dp: dp).run(inputs)) { $1 }
            metrics["critic_seconds"] = seconds(criticStart)
        }
        // verl's critic_warmup: the first steps train the value model only.
        if stepsDone > (config.critic?.warmupSteps ?? 0) {
            metrics.merge(try PolicyUpdate(forward: forward, optimizer: optimizer, config: config, step: stepsDone, dp: dp).run(inputs, credit)) { $1 }
        }
        metrics["train_seconds"] = seconds(trainStart)
        let trainedTokens = inputs.rows.reduce(0) { $0 + inputs.prompt(of: $1).count + rollouts.rolled[$1].completion.tokens.count }
        metrics["train_tokens_per_second"] = Double(trainedTokens * config.train.epochs) / Swift.max(seconds(trainStart), 1e-9)
        metrics["step_seconds"] = seconds(start)
        for (k, v) in credit.diagnostics { metrics["credit_\(k)"] = v }
        if let dp { metrics = try dp.mergeStep(metrics.filter { sampled[$0.key] == nil }, rollouts: rollouts.rolled.count).merging(sampled) { $1 } }
        entropyStatistics = try nextEntropyStatistics(inputs)
        // Every rank's rollouts, in step order, for rank 0's samples.jsonl.
        lastRecords = try dp.map { try $0.gather(records(inputs, credit)).flatMap { $0 } } ?? records(inputs, credit)
        lastInputs = inputs
        return metrics
    }

    /// HAPO §9.2: the statistics of this step's sampling entropies, for the next step's temperatures.
    func nextEntropyStatistics(_ inputs: StepInputs) throws -> HAPO.EntropyStatistics? {
        let s = config.rollout.temperatureSchedule
        guard s.name == .adaptive else { return nil }
        let mine = inputs.rows.flatMap { inputs.rollouts.rolled[$0].completion.entropies }
        let all = try dataParallel.map { try $0.gather(mine).flatMap { $0 } } ?? mine
        return all.isEmpty ? entropyStatistics : HAPO.EntropyStatistics(entropies: all, pivotQuantile: s.entropyPivot, signFix: s.signFix)
    }

    /// The trained rollouts as `samples.jsonl` records them.
    func records(_ inputs: StepInputs, _ credit: CreditResult) -> [SampleRecord] {
        let r = inputs.rollouts, advantages = credit.advantages.flatMap { $0 }
        // The trajectories' entropies: the sampler's, or the learner's where the engine reported none (a remote server).
        let entropies = inputs.groups.flatMap { $0.trajectories.map { $0.entropies ?? [] } }
        let trajectories = inputs.groups.flatMap { g in g.trajectories.map { (g, $0) } }
        let steps = ProcessRewards(tokenizer: tokenizer)
        return inputs.rows.enumerated().map { j, i in
            let c = r.rolled[i].completion, s = r.samples[c.promptIndex], score = r.scores[i], episode = r.rolled[i].episode
            var record = SampleRecord(prompt: episode.map { tokenizer.decode($0.prompt) } ?? s.prompt, answer: s.answer, response: c.text, reward: score.value,
                                components: score.components, group: r.groupOf[c.promptIndex], tokens: c.tokens, pieces: c.tokens.map { tokenizer.decode([$0]) },
                                advantages: advantages[j], logprobs: c.logprobs, entropies: c.entropies.isEmpty ? entropies[j] : c.entropies,
                                finishReason: episode?.finish ?? c.finishReason.rawValue, turns: episode?.turns, actionMask: episode?.actionMask)
            let (group, t) = trajectories[j]
            record.credit = RecordedCreditInputs(t, group: group, record: record, stepRewards: reward.givesStepRewards ? steps.stepRewards(score.steps, tokens: c.tokens) : nil,
                                                 progress: inputs.progress)
            return record
        }
    }
}

/// One rollout as `samples.jsonl` records it: per token, its id, text, advantage, logprob and entropy.
public struct SampleRecord: Codable, Equatable, Sendable {
    public var prompt: String
    public var answer: String?
    public var response: String
    public var reward: Double
    public var components: [String: Double]
    public var group: Int
    public var tokens: [Int]
    public var pieces: [String]
    public var advantages: [Double]
    public var logprobs: [Double]
    public var entropies: [Double]
    public var finishReason: String
    /// An agent's episode: its turns (observation, action, reward) and which tokens are the model's.
    public var turns: [Episode.Turn]? = nil
    public var actionMask: [Bool]? = nil
    /// What credit read besides the fields above (absent in files written before it was recorded).
    public var credit: RecordedCreditInputs? = nil

    enum CodingKeys: String, CodingKey {
        case prompt, answer, response, reward, components, group, tokens, pieces, advantages, logprobs, entropies, turns, credit
        case finishReason = "finish_reason", actionMask = "action_mask"
    }
}

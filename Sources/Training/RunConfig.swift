import Credit
import Foundation
import Models
import Objectives
import Rewards
import Rollout
import Torch

/// A training run as one YAML file: ten sections, each a plain `Codable` struct whose keys are the
/// names used everywhere else (module configs are embedded as they are). Loading merges the file
/// over the defaults, so a file names only what it changes; see `RunConfig.load`.
public struct RunConfig: Codable, Equatable, Sendable {
    public var model = ModelSection()
    public var data = DataSection()
    public var rollout = SamplingConfig(temperature: 1, maxNewTokens: 32)
    /// nil: the task's own reward.
    public var reward: RewardConfig? = nil
    public var credit: CreditConfig = .grpo(.init())
    public var objective = PolicyLossConfig()
    /// Set when the `objective` section names a preference loss (`name: dpo | ipo | tdpo1 | tdpo2 |
    /// tgdpo | sparsepo | weighted_dpo | fdpo | treg`): the run then trains offline on the data's preference pairs.
    public var preference: PreferenceLoss.Config? = nil
    /// Set when the `objective` section is `name: sft`: the run then fine-tunes on the data's
    /// supervised examples.
    public var sft: SFTLoss.Config? = nil
    public var optim = OptimSection()
    public var train = TrainSection()
    public var eval = EvalSection()
    public var output = OutputSection()
    /// PPO's value model (`gae` reads its values); nil: no critic.
    public var critic: CriticSection? = nil
    /// Multi-turn episodes in an environment instead of one-turn prompts; nil: prompts.
    public var agent: AgentSection? = nil
    /// LaSeR's last-token self-reward: its loss and advantage mix; nil: none.
    public var laser: LaSeRConfig? = nil
    /// ARES's AEPO: the reward shaped by each response's high-entropy triggers and its prompt's difficulty; nil: none.
    public var aepo: AEPOConfig? = nil
    /// iStar's online process reward model for agent turns (credit.method istar); nil: none.
    public var istar: ISTARConfig? = nil

    public init() {}

    public struct ModelSection: Codable, Equatable, Sendable {
        /// A Hugging Face directory, a .gguf file, `default` (SmolLM2-135M-Instruct) or `tiny-random`.
        public var path = "default"
        /// LoRA adapters; null trains every weight.
        public var lora: LoRA.Config? = LoRA.Config()
        /// A frozen token-reward model (objective `tgdpo` only).
        public var rewardModel: String? = nil
        /// A preference-trained model (`RUN/model` of a DPO run) whose implicit token rewards
        /// log π_dpo − log π_ref RL credit reads as `token_rewards` (RTO: gae with `token_rewards: true`).
        public var tokenRewardModel: String? = nil
        /// A checkpoint folder (`RUN/checkpoints/step-N`) whose weights a new run starts from: a
        /// fork with changed settings. Its optimizer state and step are not taken.
        public var initFrom: String? = nil
        public init() {}
        enum CodingKeys: String, CodingKey { case path, lora, rewardModel = "reward_model", initFrom = "init_from", tokenRewardModel = "token_reward_model" }
        // `lora: null` must be written out: left away, reading the file back would bring the default adapters.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(path, forKey: .path)
            try c.encode(lora, forKey: .lora)
            try c.encodeIfPresent(rewardModel, forKey: .rewardModel)
            try c.encodeIfPresent(initFrom, forKey: .initFrom)
            try c.encodeIfPresent(tokenRewardModel, forKey: .tokenRewardModel)
        }
    }

    public struct DataSection: Codable, Equatable, Sendable {
        /// A procedural task (`arithmetic`, `countdown`) or a JSONL file.
        public var task = "arithmetic"
        /// Procedural difficulty, 1…5.
        public var difficulty = 1
        /// Procedural training prompts (the eval prompts are drawn apart from them).
        public var trainSize = 4096
        /// Held-out prompts: a procedural count, or the share of a file when below 1.
        public var evalSize = 64.0
        public var seed: UInt64 = 0
        /// A system message put before every prompt.
        public var system: String? = nil
        /// A JSONL file's columns holding the prompt and the reference answer (default `prompt`, `answer`).
        public var promptField: String? = nil
        public var answerField: String? = nil
        /// The column holding a supervised example's completion (objective `sft`; default `completion`).
        public var completionField: String? = nil
        /// A preference file's columns holding the chosen and the rejected response (default
        /// `chosen`, `rejected`; OpenRLHF's `--chosen_key`, `--rejected_key`): naming each other's
        /// column trains a reverse-DPO model.
        public var chosenField: String? = nil
        public var rejectedField: String? = nil
        public init() {}
        enum CodingKeys: String, CodingKey {
            case task, difficulty, seed, system, trainSize = "train_size", evalSize = "eval_size", promptField = "prompt_field", answerField = "answer_field"
            case completionField = "completion_field", chosenField = "chosen_field", rejectedField = "rejected_field"
        }

        /// `columns` for `Dataset.load`.
        var columns: [(column: String, field: String, why: String)] {
            [(promptField, "prompt", "data.prompt_field"), (answerField, "answer", "data.answer_field"), (completionField, "completion", "data.completion_field"),
             (chosenField, "chosen", "data.chosen_field"), (rejectedField, "rejected", "data.rejected_field")]
                .compactMap { c, f, w in c.map { ($0, f, w) } }
        }

        /// Keys left away keep their defaults (an agent run writes only its seed keys).
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self), d = DataSection()
            task = try c.decodeIfPresent(String.self, forKey: .task) ?? d.task
            difficulty = try c.decodeIfPresent(Int.self, forKey: .difficulty) ?? d.difficulty
            trainSize = try c.decodeIfPresent(Int.self, forKey: .trainSize) ?? d.trainSize
            evalSize = try c.decodeIfPresent(Double.self, forKey: .evalSize) ?? d.evalSize
            seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
            system = try c.decodeIfPresent(String.self, forKey: .system)
            promptField = try c.decodeIfPresent(String.self, forKey: .promptField)
            answerField = try c.decodeIfPresent(String.self, forKey: .answerField)
            completionField = try c.decodeIfPresent(String.self, forKey: .completionField)
            chosenField = try c.decodeIfPresent(String.self, forKey: .chosenField)
            rejectedField = try c.decodeIfPresent(String.self, forKey: .rejectedField)
        }

        // A count of prompts is written as an integer (64, not 64.0); a share of a file stays a fraction.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(task, forKey: .task)
            try c.encode(difficulty, forKey: .difficulty)
            try c.encode(seed, forKey: .seed)
            try c.encodeIfPresent(system, forKey: .system)
            try c.encodeIfPresent(promptField, forKey: .promptField)
            try c.encodeIfPresent(answerField, forKey: .answerField)
            try c.encodeIfPresent(completionField, forKey: .completionField)
            try c.encodeIfPresent(chosenField, forKey: .chosenField)
            try c.encodeIfPresent(rejectedField, forKey: .rejectedField)
            try c.encode(trainSize, forKey: .trainSize)
            if evalSize >= 1, evalSize == evalSize.rounded(), evalSize < 1e15 { try c.encode(Int(evalSize), forKey: .evalSize) } else { try c.encode(evalSize, forKey: .evalSize) }
        }
    }

    public struct OptimSection: Codable, Equatable, Sendable {
        public var lr = 1e-5
        public var weightDecay = 0.0
        public var maxGradNorm = 1.0
        public var schedule = LRSchedule.Kind.constant
        public var warmupSteps = 0
        public var minLRRatio = 0.0
        public init() {}
        enum CodingKeys: String, CodingKey {
            case lr, schedule
            case weightDecay = "weight_decay", maxGradNorm = "max_grad_norm", warmupSteps = "warmup_steps", minLRRatio = "min_lr_ratio"
        }
    }

    public struct TrainSection: Codable, Equatable, Sendable {
        public var steps = 50
        public var promptsPerStep = 8
        public var samplesPerPrompt = 8
        /// Optimizer passes over each batch of rollouts (PPO epochs).
        public var epochs = 1
        /// DAPO dynamic sampling: drop groups whose rewards are all equal and draw more prompts.
        public var dynamicSampling = false
        /// Most extra rollout rounds per step that dynamic sampling may take.
        public var maxRefills = 2
        /// Optimizer steps per epoch (PPO mini-batches over the step's rollouts).
        public var miniBatches = 1
        /// Sequences per forward/backward; gradients accumulate over them (0: the whole mini-batch).
        public var microBatch = 8
        public var spoContinuations = 2
        public var tree = TreeConfig()
        public var seed: UInt64 = 0
        /// Budgets: the run ends after the step whose rollout-token or training-time total reaches
        /// one (nil: none); `steps` stays the upper bound and the schedules' horizon.
        public var maxRolloutTokens: Int? = nil
        public var maxSeconds: Double? = nil
        /// DARS's extra samples for prompts whose pass rate is below ½ (nil: none).
        public var dars: DARSConfig? = nil
        /// Keep only each layer's input in the policy's forward and recompute the layer in the
        /// backward: less memory for long responses, one more forward in time.
        public var gradientCheckpointing = false
        /// `fused`: per-token logprobs recompute each chunk's logits in the backward (less memory);
        /// `unfused`: autograd keeps them, with the rounding the default job's figures were made with.
        public var logprobs = "unfused"
        public init() {}
        enum CodingKeys: String, CodingKey {
            case steps, epochs, tree, seed, maxRolloutTokens = "max_rollout_tokens", maxSeconds = "max_seconds", dars
            case gradientCheckpointing = "gradient_checkpointing", logprobs
            case promptsPerStep = "prompts_per_step", samplesPerPrompt = "samples_per_prompt", dynamicSampling = "dynamic_sampling"
            case maxRefills = "max_refills", spoContinuations = "spo_continuations"
            case miniBatches = "mini_batches", microBatch = "micro_batch"
        }
    }

    public struct EvalSection: Codable, Equatable, Sendable {
        /// Evaluate before training and after it (and every `every` steps when positive).
        public var before = true
        public var after = true
        public var every = 0
        public var samples = 4
        public var temperature = 1.0
        /// nil: the rollout's.
        public var maxNewTokens: Int? = nil
        public var seed: UInt64 = 1234
        public init() {}
        enum CodingKeys: String, CodingKey { case before, after, every, samples, temperature, seed, maxNewTokens = "max_new_tokens" }
    }

    public struct OutputSection: Codable, Equatable, Sendable {
        /// The run folder; nil: `runs/<preset or config name>-<time>`.
        public var dir: String? = nil
        public var checkpointEvery = 10
        /// Checkpoints kept (the newest); older ones are deleted.
        public var keepCheckpoints = 2
        /// Responses written to samples.jsonl per step.
        public var samplesPerStep = 8
        /// Write the merged model (Hugging Face format) to `model/` at the end.
        public var saveModel = true
        public var report = true
        /// Where metrics go: `jsonl` (metrics.jsonl, always: resume and the report read it) and
        /// `tensorboard` (event files under tensorboard/).
        public var reportTo = ["jsonl"]
        public init() {}
        public static let sinks = ["jsonl", "tensorboard"]
        enum CodingKeys: String, CodingKey {
            case dir, report, reportTo = "report_to"
            case checkpointEvery = "checkpoint_every", keepCheckpoints = "keep_checkpoints", samplesPerStep = "samples_per_step"
            case saveModel = "save_model"
        }
    }

    enum CodingKeys: String, CodingKey { case model, data, rollout, reward, credit, objective, optim, train, eval, output, critic, agent, laser, aepo, istar }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(ModelSection.self, forKey: .model)
        data = try c.decode(DataSection.self, forKey: .data)
        rollout = try c.decode(SamplingConfig.self, forKey: .rollout)
        reward = try c.decodeIfPresent(RewardConfig.self, forKey: .reward)
        credit = try c.decode(CreditConfig.self, forKey: .credit)
        // `objective` is a policy loss, or a preference loss when it names one.
        let o = try c.superDecoder(forKey: .objective)
        if try SFTLoss.Config.isNamed(in: o) {
            sft = try SFTLoss.Config(from: o)
        } else if try PreferenceLoss.Config.isNamed(in: o) {
            preference = try PreferenceLoss.Config(from: o)
        } else {
            objective = try PolicyLossConfig(from: o)
        }
        optim = try c.decode(OptimSection.self, forKey: .optim)
        train = try c.decode(TrainSection.self, forKey: .train)
        eval = try c.decode(EvalSection.self, forKey: .eval)
        output = try c.decode(OutputSection.self, forKey: .output)
        critic = try c.decodeIfPresent(CriticSection.self, forKey: .critic)
        agent = try c.decodeIfPresent(AgentSection.self, forKey: .agent)
        laser = try c.decodeIfPresent(LaSeRConfig.self, forKey: .laser)
        aepo = try c.decodeIfPresent(AEPOConfig.self, forKey: .aepo)
        istar = try c.decodeIfPresent(ISTARConfig.self, forKey: .istar)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        if agent != nil { try c.encode(AgentSection.Seeds(data), forKey: .data) } else { try c.encode(data, forKey: .data) }
        try c.encode(rollout, forKey: .rollout)
        try c.encodeIfPresent(reward, forKey: .reward)
        try c.encode(credit, forKey: .credit)
        if let sft { try c.encode(sft, forKey: .objective) } else if let preference { try c.encode(preference, forKey: .objective) } else { try c.encode(objective, forKey: .objective) }
        try c.encode(optim, forKey: .optim)
        try c.encode(train, forKey: .train)
        try c.encode(eval, forKey: .eval)
        try c.encode(output, forKey: .output)
        try c.encodeIfPresent(critic, forKey: .critic)
        try c.encodeIfPresent(agent, forKey: .agent)
        try c.encodeIfPresent(laser, forKey: .laser)
        try c.encodeIfPresent(aepo, forKey: .aepo)
        try c.encodeIfPresent(istar, forKey: .istar)
    }

    /// Checks what the section structs cannot express, naming the key, and (for RL) that every
    /// input the credit method and the loss read has a provider in training.
    public func validate() throws {
        try objective.validate()
        try rollout.validate()
        try train.tree.validate()
        func need(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError("config: \(message)") } }
        if let unknown = output.reportTo.first(where: { !OutputSection.sinks.contains($0) }) {
            throw TrainingError("config: 'output.report_to' lists '\(unknown)'; known: \(OutputSection.sinks.joined(separator: ", "))")
        }
        try need(output.reportTo.contains("jsonl"), "'output.report_to' must list jsonl: metrics.jsonl is the run's record, which resume and the report read")
        try need(Set(output.reportTo).count == output.reportTo.count, "'output.report_to' lists a sink twice: \(output.reportTo)")
        try need((1...5).contains(data.difficulty), "'data.difficulty' must be 1…5, got \(data.difficulty)")
        try need((data.chosenField == nil && data.rejectedField == nil) || preference != nil,
                 "'data.chosen_field' and 'data.rejected_field' name a pair file's columns, which \(offline.map { "objective '\($0)'" } ?? "RL") does not read (the preference objectives do)")
        try need(data.completionField == nil || sft != nil,
                 "'data.completion_field' names the column of supervised completions, which \(offline.map { "objective '\($0)'" } ?? "RL") does not read (objective {name: sft} does)")
        if !data.columns.isEmpty {
            try need(ProceduralTask(rawValue: data.task) == nil && agent == nil,
                     "'data.prompt_field' and 'data.answer_field' name a JSONL file's columns; \(agent != nil ? "an agent's episodes read none" : "'\(data.task)' is a procedural task")")
        }
        try need(data.trainSize >= 1 && data.trainSize <= Limits.prompts, "'data.train_size' must be 1…\(Limits.prompts), got \(data.trainSize)")
        try need(data.evalSize >= 0 && data.evalSize <= Double(Limits.prompts), "'data.eval_size' must be 0…\(Limits.prompts), got \(data.evalSize)")
        try need(optim.lr > 0 && optim.lr.isFinite, "'optim.lr' must be positive and finite, got \(optim.lr)")
        try need(optim.warmupSteps >= 0, "'optim.warmup_steps' must be >= 0")
        try need(optim.maxGradNorm > 0 && optim.maxGradNorm.isFinite, "'optim.max_grad_norm' must be positive and finite")
        try need(optim.weightDecay >= 0 && optim.weightDecay.isFinite, "'optim.weight_decay' must be >= 0 and finite, got \(optim.weightDecay)")
        try need((0...1).contains(optim.minLRRatio), "'optim.min_lr_ratio' must be in [0, 1], got \(optim.minLRRatio)")
        try validateTrain()
        try need(eval.samples >= 1 && eval.samples <= Limits.samples, "'eval.samples' must be 1…\(Limits.samples), got \(eval.samples)")
        try need(eval.every >= 0, "'eval.every' must be >= 0")
        try need(eval.temperature >= 0 && eval.temperature.isFinite, "'eval.temperature' must be >= 0 and finite")
        try need((eval.maxNewTokens ?? 1) > 0, "'eval.max_new_tokens' must be positive (or null: the rollout's)")
        try need(eval.temperature > 0 || eval.samples == 1, "'eval.samples' must be 1 with greedy decoding ('eval.temperature' 0)")
        try need(output.checkpointEvery >= 0, "'output.checkpoint_every' must be >= 0")
        try need(output.keepCheckpoints >= 1, "'output.keep_checkpoints' must be at least 1")
        try need(output.samplesPerStep >= 0, "'output.samples_per_step' must be >= 0")
        try need(model.rewardModel == nil || preference?.name == .tgdpo, "'model.reward_model' is only used by objective 'tgdpo'")
        try need(preference?.name != .tgdpo || model.rewardModel != nil, "objective 'tgdpo' needs a frozen token-reward model: set 'model.reward_model'")
        try need(model.tokenRewardModel == nil || (offline == nil && credit.inputs.contains(.tokenRewards)),
                 "'model.token_reward_model' gives RTO's per-token rewards, which credit.method \(credit.method.rawValue) does not read (use gae with token_rewards: true)")
        try critic?.validate(self)
        try agent?.validate(self)
        if let laser {
            try laser.validate()
            let other = offline.map { "objective '\($0)', which samples no responses" } ?? "agent episodes, whose last tokens are an environment's"
            try need(offline == nil && agent == nil, "'laser' reads z after a sampled one-turn response's EOS; it does not apply to \(other)")
        }
        if let aepo {
            try aepo.validate()
            let other = offline.map { "objective '\($0)', which samples no responses" } ?? "agent episodes, whose tokens are partly an environment's"
            try need(offline == nil && agent == nil, "'aepo' shapes the reward of a sampled one-turn response from its tokens' entropies; it does not apply to \(other)")
            try need(rollout.engine == .local, "'aepo' reads the sampler's per-token entropies, which a remote server does not report: use rollout.engine local")
        }
        try istar?.validate(self)
        if offline == nil { _ = try InputPlan(self, reward: nil) }
        let confidence = reward?.terms.contains { $0.type == "confidence" } ?? false
        try need(!confidence || !credit.inputs.contains(.segmentValues),
                 "reward term 'confidence' reads the sampled tokens' logprobs, which spo_chain's Monte-Carlo continuations of partial responses do not carry for the partial part: use another credit method")
        try need(!confidence || rollout.engine == .local,
                 "reward term 'confidence' finds the answer's tokens by their bytes in the response text, which a remote server writes itself (special tokens left out): use rollout.engine local")
        try need(sft == nil || reward == nil, "'reward' scores sampled responses, and objective 'sft' samples none")
    }

    func validateTrain() throws {
        func need(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError("config: \(message)") } }
        try need(train.steps >= 0 && train.steps <= Limits.steps, "'train.steps' must be 0…\(Limits.steps), got \(train.steps)")
        try need(train.promptsPerStep >= 1, "'train.prompts_per_step' must be at least 1")
        try need((train.maxRolloutTokens ?? 1) >= 1, "'train.max_rollout_tokens' must be at least 1 (or null: no token budget)")
        try need(offline == nil || train.maxRolloutTokens == nil,
                 "'train.max_rollout_tokens' counts sampled tokens, and objective '\(offline ?? "")' samples none: use train.steps or train.max_seconds")
        try need((train.maxSeconds ?? 1) > 0 && (train.maxSeconds ?? 1).isFinite, "'train.max_seconds' must be positive and finite (or null: no time budget)")
        try need(train.samplesPerPrompt >= 1, "'train.samples_per_prompt' must be at least 1, got \(train.samplesPerPrompt)")
        try need(train.samplesPerPrompt <= Limits.samples, "'train.samples_per_prompt' must be at most \(Limits.samples), got \(train.samplesPerPrompt)")
        try need(train.promptsPerStep <= Limits.rollouts / train.samplesPerPrompt,
                 "'train.prompts_per_step' × 'train.samples_per_prompt' must be at most \(Limits.rollouts) rollouts a step, got \(train.promptsPerStep) × \(train.samplesPerPrompt)")
        try need(train.epochs >= 1, "'train.epochs' must be at least 1, got \(train.epochs)")
        try need(train.miniBatches >= 1, "'train.mini_batches' must be at least 1, got \(train.miniBatches)")
        try need(train.microBatch >= 0, "'train.micro_batch' must be >= 0, got \(train.microBatch)")
        try need(train.spoContinuations >= 1, "'train.spo_continuations' must be at least 1")
        try need(train.maxRefills >= 0, "'train.max_refills' must be >= 0")
        try need(["fused", "unfused"].contains(train.logprobs), "'train.logprobs' must be fused or unfused, got '\(train.logprobs)'")
        try need(!train.gradientCheckpointing || (model.lora?.dropout ?? 0) == 0,
                 "'train.gradient_checkpointing' recomputes each layer in the backward, where 'model.lora.lora_dropout' (\(model.lora?.dropout ?? 0)) would draw other masks than the forward did: set one of them to 0")
        if let dars = train.dars {
            try need((2...Limits.samples).contains(dars.cap), "'train.dars.n_max' must be 2…\(Limits.samples), got \(dars.cap)")
            try need(dars.cap > train.samplesPerPrompt, "'train.dars.n_max' (\(dars.cap)) must exceed train.samples_per_prompt (\(train.samplesPerPrompt)): it counts the first samples too")
            try need(!train.dynamicSampling, "'train.dars' drops the groups that all pass or all fail after its extra samples; 'train.dynamic_sampling' would refill them: use one of the two")
            let other = offline.map { "objective '\($0)'" } ?? (agent != nil ? "agent episodes" : credit.inputs.contains(.tree) ? "tree rollouts" : "rollout.engine remote")
            try need(offline == nil && agent == nil && !credit.inputs.contains(.tree) && rollout.engine == .local,
                     "'train.dars' adds flat samples of one-turn prompts from the local sampler; it does not apply to \(other)")
        }
    }

    /// Bounds on counts, checked before anything is allocated: far above what a machine trains, far
    /// below what overflows or exhausts memory while building tables.
    public enum Limits {
        public static let prompts = 10_000_000
        public static let samples = 4096
        public static let rollouts = 1 << 20
        public static let steps = 100_000_000
    }

    /// One line for each option that is set but cannot change this run.
    public var warnings: [String] { offline == nil ? InputPlan.warnings(self) : [] }

    /// The objective's name when it trains on fixed data (a preference loss or `sft`) instead of
    /// sampled rollouts.
    public var offline: String? { sft?.name ?? preference?.name.rawValue }

    /// The sampling settings of evaluations.
    public var evalSampling: SamplingConfig {
        var s = rollout
        s.temperature = eval.temperature
        s.maxNewTokens = eval.maxNewTokens ?? rollout.maxNewTokens
        s.seed = eval.seed
        s.temperatureSchedule = .init()
        // Evaluations measure the policy being trained: the learner's float32 weights, in this process.
        s.weights = .fp32
        s.engine = .local
        s.remote = nil
        return s
    }
}

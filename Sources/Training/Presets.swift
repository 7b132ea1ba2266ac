import Credit
import Foundation
import Objectives

/// Built-in run configs (`tokenwise train --preset NAME`); a config file or `--set` changes them further.
public enum Preset: String, CaseIterable, Sendable {
    /// The README's main job: SmolLM2-135M, LoRA, single-digit addition, TEMPO credit; ~10 min on 2 cores.
    case `default`
    /// A random 2-layer model for smoke tests (seconds).
    case tiny
    /// Countdown with PURE's min-form credit over per-equation step rewards.
    case countdownPure = "countdown-pure"
    /// Tree rollouts with SPO-tree credit.
    case spoTree = "spo-tree"
    /// HAPO's four parts as the released code wires them.
    case hapo
    /// PPO with a learned critic (LoRA adapters and a value head on the policy's base), GAE γ 1, λ 0.95.
    case ppo
    /// PPO whose critic learns TVM's labels (the share of correct answers among the group's responses
    /// sharing each prefix) instead of GAE's returns.
    case ppoTVM = "ppo-tvm"
    /// GiGPO on FrozenLake 4×4 (episodes of up to 6 moves).
    case frozenlakeGiGPO = "frozenlake-gigpo"
    /// GiGPO on Sokoban rooms of 4×4 with one box.
    case sokobanGiGPO = "sokoban-gigpo"
    /// Countdown with a calculator tool (GiGPO over the episodes' tool-call states).
    case countdownTool = "countdown-tool"
    /// MA-RLHF: PPO over macro actions of 5 tokens, as the authors' script.
    case maPPO = "ma-ppo"
    /// Supervised fine-tuning of SmolLM2-135M on the bundled chat file of worked arithmetic.
    case sft
    /// GRPO with LaSeR's last-token self-reward (z = `<empty_output>`, one of SmolLM2's unused special tokens).
    case laser
    /// GRPO with ARES's AEPO reward shaping by high-entropy trigger words and prompt difficulty.
    case aepo

    public var summary: String {
        switch self {
        case .default: "SmolLM2-135M + LoRA on single-digit addition with TEMPO credit (the README's main job)"
        case .tiny: "a random 2-layer model, 3 steps: a smoke test that runs in seconds"
        case .countdownPure: "countdown problems, per-equation step rewards, PURE min-form credit"
        case .spoTree: "tree rollouts (2-way branching) with SPO-tree credit"
        case .ppo: "PPO: a LoRA critic on the policy's base, GAE (γ 1, λ 0.95, whitened as verl), the clipped value loss"
        case .ppoTVM: "PPO with a token-supervised value model: the critic learns TVM's per-prefix success probabilities, GAE reads them"
        case .frozenlakeGiGPO: "an agent on FrozenLake 4×4 (non-slippery, up to 8 moves, 0.1 reward per tile closer to G) with GiGPO's episode and step groups"
        case .sokobanGiGPO: "an agent on Sokoban (4×4 rooms, one box, up to 8 moves) with GiGPO's episode and step groups"
        case .countdownTool: "an agent on countdown (3 numbers) with a calculator tool called as <calc>…</calc>, answering <answer>…</answer>; GiGPO credit"
        case .maPPO: "MA-RLHF: PPO over 5-token macro actions (macro-level GAE γ 1, λ 0.95, KL 0.05 in the reward, value clip 0.2)"
        case .sft: "supervised fine-tuning (LoRA) on examples/sft/arithmetic-chat.jsonl, loss on the assistant turns; run from the repository's folder or set data.task"
        case .laser: "GRPO + LaSeR: the self-reward log π(`<empty_output>`) after EOS fitted to the verifier's reward (MSE, class-balanced), mixed into the advantages after 8 steps"
        case .aepo: "GRPO + AEPO: the reward shaped by each response's high-entropy trigger words against its prompt's difficulty bucket (window 4, θ from the 95th percentiles)"
        case .hapo: "HAPO: token-level group average credit, adaptive temperature, adaptive clipping and in-loss advantage redistribution, dual clip 10, dynamic sampling"
        }
    }

    public var config: RunConfig {
        var c = RunConfig()
        c.data.task = "arithmetic"
        c.data.difficulty = 1
        c.data.evalSize = 64
        c.credit = CreditConfig(method: .tempo)
        c.rollout.maxNewTokens = 24
        c.rollout.temperature = 1
        c.model.lora = .init(rank: 16, alpha: 32)
        c.optim.lr = 1e-3
        c.optim.warmupSteps = 2
        c.train.steps = 16
        c.train.promptsPerStep = 4
        c.train.samplesPerPrompt = 8
        c.eval.samples = 4
        c.eval.temperature = 1
        c.output.checkpointEvery = 8
        switch self {
        case .default: break
        case .tiny:
            c.model.path = "tiny-random"
            c.rollout.maxNewTokens = 8
            c.train.steps = 3
            c.train.promptsPerStep = 2
            c.train.samplesPerPrompt = 4
            c.data.evalSize = 4
            c.eval.samples = 2
            c.output.checkpointEvery = 2
            c.optim.warmupSteps = 0
        case .countdownPure:
            c.data.task = "countdown"
            c.data.difficulty = 1
            c.credit = CreditConfig(method: .pure)
            c.rollout.maxNewTokens = 64
        case .spoTree:
            c.credit = CreditConfig(method: .spoTree)
            c.train.tree = .init(branching: 2, segmentTokens: 8, maxLeaves: 8)
        case .hapo:
            // starriver030515/HAPO @7671dde recipes: TLGA advantages, ĥ-driven temperature (τ 0.05),
            // clipping and redistribution from the live ratio in the loss, dual clip c = 10, DAPO's dynamic sampling.
            c.credit = CreditConfig(method: .hapo)
            c.rollout.temperatureSchedule = .init(name: .adaptive, tau: 0.05)
            c.objective.adaptiveClip = .init()
            c.objective.adaptiveAdvantage = .init()
            c.objective.dualClip = 10
            c.train.dynamicSampling = true
        case .ppo:
            // verl's GAE: γ 1, λ 0.95, advantages whitened over the batch (returns from the raw ones).
            c.credit = .gae(.init(gamma: 1, lam: 0.95, whiten: true))
            var critic = RunConfig.CriticSection()
            critic.lr = 1e-3
            c.critic = critic
        case .ppoTVM:
            c.credit = .gae(.init(gamma: 1, lam: 0.95, whiten: true))
            var critic = RunConfig.CriticSection()
            critic.lr = 1e-3
            critic.target = .tvm
            critic.vfClip = nil
            c.critic = critic
        case .frozenlakeGiGPO, .sokobanGiGPO, .countdownTool:
            var agent = RunConfig.AgentSection()
            agent.environment = self == .frozenlakeGiGPO ? .frozenlake : self == .sokobanGiGPO ? .sokoban : .countdown
            // Only the kind's own section: a run writes no other (and would refuse one on reading).
            // The distance reward is this recipe's, not verl-agent's (0/1 at G): without it no episode of a
            // 12-step run reached G, so nothing rewarded reaching it (held-out success stayed 0/64).
            if self == .frozenlakeGiGPO { agent.frozenlake = .init(size: 4, slippery: false, maxTurns: 8, distanceReward: 0.1) }
            if self == .sokobanGiGPO { agent.sokoban = .init(size: 4, boxes: 1, reverseSteps: 12, maxTurns: 8) }
            agent.context = 2048
            c.agent = agent
            c.credit = CreditConfig(method: .gigpo)
            c.rollout.maxNewTokens = self == .countdownTool ? 24 : 6
            c.train.samplesPerPrompt = 4
            c.train.steps = 12
            c.output.checkpointEvery = 6
            c.data.trainSize = 4096
            c.data.evalSize = 32
            c.eval.samples = 2
        case .sft:
            c.sft = SFTLoss.Config()
            c.data.task = "examples/sft/arithmetic-chat.jsonl"
            c.data.evalSize = 40
            c.optim.lr = 3e-4
            c.train.steps = 30
            c.train.promptsPerStep = 8
            c.output.checkpointEvery = 10
        case .laser:
            // RUCBM/LaSeR @48996f7 run_qwen2_5_7b.sh: GRPO, β 0.1, λ 0.1, balanced, α 0.1, τ 0.1, the loss from
            // the first step; its 200-step warm-up before the mix is scaled to this 16-step run.
            c.credit = .grpo(.init())
            var laser = LaSeRConfig()
            laser.token = "<empty_output>"
            laser.advantageWarmupSteps = 8
            c.laser = laser
        case .aepo:
            // shawn0728/ARES @146620e experiments/AEPO: GRPO, window 4, the 95th percentile, α 0.5 per bucket.
            c.credit = .grpo(.init())
            c.aepo = AEPOConfig()
        case .maPPO:
            // ernie-research/MA-RLHF @807551d run_gemma.sh / ppo_trainer.py: fixed 5-grams, value_function
            // equal, γ 1, λ 0.95, kl_ctl 0.05, no whitening, cliprange 0.2, cliprange_value 0.2.
            c.credit = .gae(.init(gamma: 1, lam: 0.95, klCoef: 0.05, whiten: false, macro: .fixed, macroN: 5))
            var critic = RunConfig.CriticSection()
            critic.lr = 1e-3
            critic.vfClip = 0.2
            c.critic = critic
        }
        return c
    }

    /// `--print-config`: the preset as YAML with a comment over each key, and the optional keys it
    /// leaves unset as commented lines at the end of their section (so the template names every key).
    public func template() throws -> String {
        var out = "# Tokenwise run config (preset '\(rawValue)': \(summary)).\n"
            + "# Every key is optional: a file names what it changes; `--set section.key=value` overrides.\n"
        let yaml = try config.yaml()
        var path = [String](), seen = Set<String>()
        func unset(in section: String) {
            for (key, note) in unsetKeys where key.hasPrefix(section + ".") && !seen.contains(key) {
                out += "  # \(key.dropFirst(section.count + 1)): ~    (\(note))\n"
            }
        }
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            let indent = line.prefix { $0 == " " }.count / 2
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let colon = trimmed.firstIndex(of: ":"), !trimmed.hasPrefix("-") {
                let key = String(trimmed[..<colon])
                if indent == 0, let section = path.first { unset(in: section) }
                path = Array(path.prefix(indent)) + [key]
                seen.insert(path.joined(separator: "."))
                if let note = comment(path.joined(separator: ".")) {
                    out += String(repeating: "  ", count: indent) + "# " + note + "\n"
                }
            }
            if line.isEmpty, let section = path.first { unset(in: section); path = [] }
            out += line + "\n"
        }
        if let section = path.first { unset(in: section) }
        for (key, note) in unsetKeys where !key.contains(".") && !seen.contains(key) {
            out += "# \(comment(key) ?? note)\n# \(key): ~\n"
        }
        return out
    }

    /// The unset keys this preset's template names: a fine-tuning objective has its own.
    var unsetKeys: [(String, String)] {
        guard config.sft != nil else { return Self.unsetKeys }
        return Self.unsetKeys.filter { !$0.0.hasPrefix("objective.") } + [("objective.max_length", "null: 1024 tokens, or the model's context when shorter")]
    }

    func comment(_ key: String) -> String? {
        guard config.sft != nil else { return Self.comments[key] }
        switch key {
        case "objective": return "Supervised fine-tuning (name: sft): the mean negative log-likelihood of the target tokens; completion_only_loss and assistant_only_loss say which tokens are targets (TRL's names), packing shares rows of up to max_length tokens."
        case "data": return "Supervised examples: a JSONL file of {prompt, completion} or chat {messages} lines ending with the assistant's turn; eval examples are held out."
        case "data.eval_size": return "Held-out examples: a count, or a share of the file when below 1."
        default: return Self.comments[key]
        }
    }

    /// Optional keys that are unset (null) unless a run sets them, with what null means.
    static let unsetKeys: [(String, String)] = [
        ("model.reward_model", "a frozen token-reward model; objective tgdpo only"),
        ("model.init_from", "a checkpoint folder to start a new run from (a fork)"),
        ("model.token_reward_model", "a preference run's model/ whose implicit token rewards RTO reads (gae with token_rewards: true)"),
        ("data.system", "a system message before every prompt"),
        ("data.prompt_field", "a JSONL file's column holding the prompt (null: prompt)"),
        ("data.answer_field", "a JSONL file's column holding the reference answer (null: answer)"),
        ("data.completion_field", "a JSONL file's column holding a supervised completion, objective sft (null: completion)"),
        ("objective.aggregation", "null: the ratio's own; token_mean, seq_mean_token_mean, seq_mean_token_sum, seq_mean_token_sum_norm"),
        ("objective.dual_clip", "dual-clip c > 1 for negative advantages"),
        ("objective.hybrid", "DHPO's mixing, with ratio: hybrid"),
        ("objective.adaptive_clip", "HAPO's adaptive clipping"),
        ("objective.adaptive_advantage", "HAPO's in-loss advantage redistribution"),
        ("objective.norm_constant", "seq_mean_token_sum_norm's constant (null: the longest response)"),
        ("train.max_rollout_tokens", "a budget in sampled tokens: the run ends after the step that reaches it"),
        ("train.max_seconds", "a budget in seconds of training"),
        ("train.dars", "DARS: {schedule: et|hw, n_max}, extra samples for prompts whose pass rate is below 1/2"),
        ("eval.max_new_tokens", "null: rollout.max_new_tokens"),
        ("output.dir", "null: runs/<name>-<time>, or --out"),
        ("reward", "the task's reward"),
        ("critic", "no value model"),
        ("agent", "one-turn prompts"),
        ("laser", "no self-reward"),
        ("aepo", "no entropy shaping"),
        ("istar", "no process reward model"),
    ]

    static let comments: [String: String] = [
        "model": "The policy: a Hugging Face directory, a .gguf file, `default` (SmolLM2-135M-Instruct) or `tiny-random`.",
        "model.lora": "LoRA adapters (PEFT names); `null` trains every weight. The KL reference is the base with LoRA off.",
        "model.init_from": "A checkpoint folder (RUN/checkpoints/step-N) whose weights this new run starts from (a fork); its optimizer state and step are not taken.",
        "data": "Prompts: a procedural task (arithmetic, countdown; difficulty 1–5) or a JSONL file; eval prompts are held out.",
        "data.eval_size": "Held-out prompts: a count (procedural), or a share of the file when below 1.",
        "data.system": "An optional system message before every prompt.",
        "rollout": "Sampling of the training responses (temperature, top_k/top_p/min_p, max_new_tokens, stop strings); weights fp32 (the learner's) or a bf16 / int8 rollout copy.",
        "rollout.temperature_schedule": "constant, or adaptive (HAPO): T·(1 + tau·clamp(ĥ, −1, 1)) from the previous step's entropies.",
        "reward": "null: the task's reward. Else {terms: [{type: correct|format|length|overlong|countdown, weight, ...}]}.",
        "credit": "Credit assignment: method (grpo, rloo, reinforce_pp, gae, tempo, spo_chain, spo_tree, pure, gigpo, hapo, tw_grpo, d3s, hicra, istar) and its params. A method whose inputs training cannot supply (gae: a critic; gigpo: an agent's environment states) is refused.",
        "objective": "The policy loss: ratio level, clipping, mismatch correction (needs rollout.weights bf16 or int8), aggregation, KL and entropy terms.",
        "optim": "AdamW; schedule constant|linear|cosine with warm-up.",
        "train": "Steps × prompts per step × samples per prompt; PPO epochs and mini-batches; micro-batches (gradient accumulation); DAPO dynamic sampling.",
        "train.gradient_checkpointing": "Keep only each layer's input and recompute the layer in the backward: far less memory for long responses, about one more forward of the layers in time (bench train --compare-memory).",
        "train.logprobs": "unfused: autograd keeps every logits chunk for the backward; fused: the backward recomputes them (0.78-0.80x the peak memory for 0.99-1.23x the training time; other rounding, so a seed's run can differ).",
        "train.dynamic_sampling": "Drop groups whose rewards are all equal and draw more prompts (at most max_refills rounds).",
        "eval": "Held-out evaluation before and after training (and every `every` steps when > 0).",
        "output": "Run folder (default runs/<name>-<time>), checkpoints, samples logged per step, merged model, report.",
        "agent": "Multi-turn episodes: environment frozenlake | sokoban | process (JSON lines), its settings, context (cache positions per episode), end_on_invalid. A group is the episodes of one environment seed.",
        "laser": "LaSeR's last-token self-reward: token (z, or token_id), beta, loss_coef, reference_constant (null: the reference model's log-prob of z), balanced, advantage_coef, advantage_std_min, warmup_steps, advantage_warmup_steps.",
        "aepo": "ARES's AEPO reward shaping: window (tokens after a trigger word), percentile, threshold_decay, threshold (null: the first step's median), alpha, alpha_lr, alpha_min, alpha_max, triggers (null: the authors' 174 words), reading (buckets | released).",
        "istar": "iStar's online process reward model for agent turns (credit.method istar): beta, lr (null: optim.lr), max_grad_norm, lora (null: the policy's), training (trained | released), normalize (batch_max | none).",
        "critic": "PPO's value model for `gae`: a value head and LoRA adapters on the policy's base (or its own `model`; `lora: null` trains every weight); lr (null: optim.lr), vf_clip, vf_coef, warmup_steps, target (gae returns or tvm labels).",
    ]
}

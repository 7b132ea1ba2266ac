import Credit
import Foundation
import Models
import Objectives
import Torch

/// The value model of a run: a head w·h + b on a transformer. Either LoRA adapters on the policy's
/// own model (`shared`: only one set of adapters is active at a time, and `active` switches to the
/// critic's for a pass and back, so the policy's are never touched), or a model of its own, with
/// adapters or with every weight training.
public final class Critic {
    let model: CausalLM
    /// Its adapters; nil when every weight of its own model trains.
    public let lora: LoRA?
    /// Whether `model` is the policy's.
    let shared: Bool
    /// Head weight [H] and bias [1], zero at the start (every value starts at 0) unless `head_std` > 0.
    public let head: Tensor, bias: Tensor
    public let optimizer: AdamW
    let config: RunConfig.CriticSection
    /// The model its weights started from when it has its own (`critic.model`, else the policy's
    /// path): what scoring from a checkpoint loads again. nil: the policy's base, shared.
    var basePath: String?
    /// The policy model a shared critic's adapters were trained on (recorded for scoring).
    var policyPath: String?

    /// The critic of a run whose policy is `policy` (its adapters already attached, when it has them).
    static func make(policy: CausalLM, tokenizer: Tokenizer, run: RunConfig, section: RunConfig.CriticSection) throws -> Critic {
        let lr = section.lr ?? run.optim.lr
        if section.sharesPolicyModel(run) {
            let critic = try Critic(model: policy, shared: true, config: section, lr: lr, seed: run.rollout.seed)
            critic.policyPath = run.model.path
            return critic
        }
        let own: CausalLM
        if let path = section.model {
            let p = try Pretrained.load(path, dtype: policy.dtype, device: policy.device)
            guard p.tokenizer.tokens == tokenizer.tokens else {
                let first = zip(p.tokenizer.tokens, tokenizer.tokens).enumerated().first { $0.element.0 != $0.element.1 }.map(\.offset).map { "token \($0) differs" }
                    ?? "\(p.tokenizer.vocabSize) tokens against \(tokenizer.vocabSize)"
                throw TrainingError("critic.model \(path): its tokenizer differs from the policy's (\(first)); "
                    + "the critic reads the policy's token ids, so it needs the same vocabulary")
            }
            own = p.model
        } else {
            // The policy's starting weights, copied before any update.
            own = try withTorchErrors { try CausalLM(config: policy.config, weights: policy.weights.mapValues { $0.detached().clone() }) }
        }
        let critic = try Critic(model: own, shared: false, config: section, lr: lr, seed: run.rollout.seed)
        critic.basePath = section.model ?? run.model.path
        return critic
    }

    init(model: CausalLM, shared: Bool, config: RunConfig.CriticSection, lr: Double, seed: UInt64) throws {
        let policy = model.lora
        self.model = model
        self.shared = shared
        self.config = config
        if let adapters = config.lora {
            lora = try LoRA(attachingTo: model, config: adapters, seed: seed ^ 0xC217_1C00)
            if shared { model.lora = policy }   // attaching made the critic's adapters the model's; the policy's stay active
        } else {
            lora = nil
            try withTorchErrors { for p in model.parameters { p.requiresGrad = true } }
        }
        (head, bias) = try withTorchErrors {
            let h = model.config.hiddenSize
            let w = config.headStd > 0 ? Tensor.randn([h], generator: try Generator(seed: seed ^ 0x4EAD)) * config.headStd : Tensor.zeros([h])
            return (w.to(model.device).requiringGrad(), Tensor.zeros([1], device: model.device).requiringGrad())
        }
        optimizer = try AdamW(parameters: (lora?.parameters ?? model.parameters) + [head, bias], options: .init(lr: lr, weightDecay: 0))
    }

    /// What the critic's optimizer trains, in a stable order.
    public var parameters: [Tensor] { (lora?.parameters ?? model.parameters) + [head, bias] }

    /// `body` with the critic's adapters active on the model (on a model of its own they always are).
    func active<T>(_ body: () throws -> T) rethrows -> T {
        guard shared else { return try body() }
        let policy = model.lora
        model.lora = lora
        defer { model.lora = policy }
        return try body()
    }

    /// V(s_t) before each token of responses continuing `prefix` (computed with the critic active),
    /// `[N, W]` right-padded like `ResponseForward.logprobs` (past a row's end its last value repeats).
    func values(prefix: SharedPrefix, owner: [Int], responses: [[Int]], width: Int? = nil) throws -> Tensor {
        let lengths = responses.map(\.count), longest = Swift.max(1, lengths.max() ?? 1)
        let hidden = try ResponseForward.hidden(model, prefix: prefix, owner: owner, responses: responses).to(dtype: .float32)
        let v = (hidden * head).sum(dim: -1) + bias                                                   // [N, R]
        return v.gather(dim: 1, index: ResponseForward.columns(lengths: lengths, width: width ?? longest, device: model.device))
    }

    /// V(s_t) before each token of every response to `prompts[owner[n]]`, without gradients, one
    /// list per response (micro-batched as the policy's passes).
    func rowValues(prompts: [[Int]], owner: [Int], responses: [[Int]], microBatch: Int) throws -> [[Double]] {
        try withTorchErrors {
            try withNoGrad {
                try active {
                    let prefix = try model.sharedPrefix(prompts)
                    return try ResponseForward.rowValues(responses: responses, microBatch: microBatch) { part in
                        try values(prefix: prefix, owner: Array(owner[part]), responses: Array(responses[part]))
                    }
                }
            }
        }
    }

    // MARK: checkpoints

    static let file = "critic.safetensors", optimizerFile = "critic_optimizer.safetensors"

    /// The live tensors a checkpoint holds: the adapters under PEFT's keys (or, fully fine-tuned,
    /// every weight under its Hugging Face name) and the head.
    var targets: [String: Tensor] {
        (lora?.peftTensors ?? model.weights).merging(["v_head.weight": head, "v_head.bias": bias]) { a, _ in a }
    }

    /// The trained tensors and the head in `critic.safetensors` (its metadata says how to rebuild the
    /// critic: adapters, base model, target), the optimizer state beside it.
    func save(to dir: URL) throws {
        var metadata = ["format": "pt", "target": config.target.rawValue]
        if let lora {
            metadata["lora_r"] = "\(lora.config.rank)"
            metadata["lora_alpha"] = "\(lora.config.alpha)"
            metadata["lora_config"] = String(decoding: try JSONEncoder().encode(lora.config), as: UTF8.self)
        }
        if let basePath { metadata["critic_model"] = basePath }
        if let policyPath { metadata["policy_model"] = policyPath }
        try Safetensors.write(targets.mapValues { $0.detached() }, metadata: metadata, to: dir.appendingPathComponent(Self.file))
        try optimizer.save(to: dir.appendingPathComponent(Self.optimizerFile))
    }

    /// The TVM critic a checkpoint folder `dir` holds, rebuilt for scoring on `policy` (loaded from
    /// `policySource`, its own adapters possibly attached): its adapters switch in on it, or it has a
    /// model of its own. `warn` hears when the critic was trained on another base.
    public static func load(from dir: URL, policy: CausalLM, policySource: String, tokenizer: Tokenizer,
                            warn: (String) -> Void = { _ in }) throws -> Critic {
        let url = dir.appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TrainingError("\(url.path): no critic here (a run with a 'critic:' section writes it into each checkpoint folder)")
        }
        let meta = try Safetensors.File(url: url).metadata
        // Only a TVM critic was trained on the value after the last token, which best-of-N reads.
        guard meta["target"] == RunConfig.CriticSection.Target.tvm.rawValue else {
            throw TrainingError("\(url.path): the critic was trained with target '\(meta["target"] ?? "gae")'; scoring whole responses needs one trained with critic.target tvm")
        }
        var section = RunConfig.CriticSection()
        section.target = .tvm
        section.vfClip = nil
        section.model = meta["critic_model"]
        section.lora = try loraConfig(meta, url)
        if section.model == nil, let trained = meta["policy_model"], trained != policySource {
            warn("\(url.path): the critic's adapters were trained on '\(trained)' and are applied to '\(policySource)'")
        }
        var run = RunConfig()
        run.model.lora = policy.lora?.config ?? LoRA.Config()
        let critic = try make(policy: policy, tokenizer: tokenizer, run: run, section: section)
        try critic.restore(from: dir, optimizer: false)
        return critic
    }

    /// The adapters' config a critic file records (nil: every weight was trained).
    static func loraConfig(_ meta: [String: String], _ url: URL) throws -> LoRA.Config? {
        if let json = meta["lora_config"] {
            do { return try JSONDecoder().decode(LoRA.Config.self, from: Data(json.utf8)) } catch {
                throw TrainingError("\(url.path): its metadata 'lora_config' is not a LoRA config (\(error))")
            }
        }
        // Files written before `lora_config` name only the rank and alpha (the default target modules).
        if let r = meta["lora_r"].flatMap(Int.init), let alpha = meta["lora_alpha"].flatMap(Double.init) { return LoRA.Config(rank: r, alpha: alpha) }
        return nil
    }

    /// Copies a saved critic into this one in place (its optimizer keeps the same tensors), with the
    /// optimizer's state unless only scoring follows.
    func restore(from dir: URL, optimizer withOptimizer: Bool = true) throws {
        let file = try Safetensors.File(url: dir.appendingPathComponent(Self.file))
        for (key, target) in targets {
            guard file.entries[key] != nil else { throw TrainingError("\(file.url.path): missing '\(key)' (the checkpoint's critic differs from the run's)") }
            let t = try file.tensor(key)
            guard t.shape == target.shape else { throw TrainingError("\(file.url.path): '\(key)' has shape \(t.shape), the run's critic needs \(target.shape)") }
            try withTorchErrors { withNoGrad { target.copy(from: t.to(dtype: target.dtype)) } }
        }
        if withOptimizer { try optimizer.load(from: dir.appendingPathComponent(Self.optimizerFile)) }
    }
}

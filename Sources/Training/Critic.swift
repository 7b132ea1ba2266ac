import Credit
import Foundation
import Models
import Objectives
import Torch

extension RunConfig {
    /// PPO's value model (`critic:`): its own LoRA adapters and a scalar head on the policy's frozen
    /// base, trained with the clipped value loss on GAE's returns by its own AdamW.
    public struct CriticSection: Codable, Equatable, Sendable {
        public var lora = LoRA.Config(rank: 16, alpha: 32)
        /// Its learning rate (null: `optim.lr`).
        public var lr: Double? = nil
        /// PPO's value clipping (verl `cliprange_value`, OpenRLHF `value_clip`): the new value stays
        /// within ± this of the rollout-time value in the clipped branch.
        public var vfClip = 0.5
        /// Steps at the start that train only the critic (verl `critic_warmup`).
        public var warmupSteps = 0

        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable { case lora, lr, vfClip = "vf_clip", warmupSteps = "warmup_steps" }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            lora = try c.decodeIfPresent(LoRA.Config.self, forKey: .lora) ?? LoRA.Config(rank: 16, alpha: 32)
            lr = try c.decodeIfPresent(Double.self, forKey: .lr)
            vfClip = try c.decodeIfPresent(Double.self, forKey: .vfClip) ?? 0.5
            warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0
        }

        func validate(_ config: RunConfig) throws {
            func need(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError("config: \(message)") } }
            try need(config.model.lora != nil, "'critic' puts its adapters on the policy's frozen base, so it needs 'model.lora' (full fine-tuning with a critic is not supported yet)")
            try need(config.credit.gaeParams != nil, "'critic' is set but credit.method \(config.credit.method.rawValue) reads no values (use gae, alone or as d3s's base)")
            try need(config.preference == nil, "'critic' trains with RL; the objective is the preference loss '\(config.preference?.name.rawValue ?? "")'")
            try need(lr.map { $0 > 0 && $0.isFinite } ?? true, "'critic.lr' must be positive and finite, got \(lr ?? 0)")
            try need(vfClip > 0 && vfClip.isFinite, "'critic.vf_clip' must be positive and finite, got \(vfClip)")
            try need(warmupSteps >= 0 && warmupSteps <= config.train.steps, "'critic.warmup_steps' must be 0…train.steps (\(config.train.steps)), got \(warmupSteps)")
        }
    }
}

/// The value model of a run: LoRA adapters and a head w·h + b on the same base as the policy. Only
/// one set of adapters is active on the model at a time; `active` switches to the critic's for a
/// forward pass and back, so the policy's adapters are never touched.
public final class Critic {
    let model: CausalLM
    public let lora: LoRA
    /// Head weight [H] and bias [1], zero at the start: every value starts at 0.
    public let head: Tensor, bias: Tensor
    public let optimizer: AdamW
    let config: RunConfig.CriticSection

    init(model: CausalLM, config: RunConfig.CriticSection, lr: Double, seed: UInt64) throws {
        let policy = model.lora
        self.model = model
        self.config = config
        lora = try LoRA(attachingTo: model, config: config.lora, seed: seed ^ 0xC217_1C00)
        model.lora = policy   // attaching made the critic's adapters the model's; the policy's stay active
        (head, bias) = try withTorchErrors {
            (Tensor.zeros([model.config.hiddenSize], device: model.device).requiringGrad(), Tensor.zeros([1], device: model.device).requiringGrad())
        }
        optimizer = try AdamW(parameters: lora.parameters + [head, bias], options: .init(lr: lr, weightDecay: 0))
    }

    /// What the critic's optimizer trains, in a stable order.
    public var parameters: [Tensor] { lora.parameters + [head, bias] }

    /// `body` with the critic's adapters active on the model.
    func active<T>(_ body: () throws -> T) rethrows -> T {
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
        let w = width ?? longest
        let idx = Tensor(lengths.flatMap { r in (0..<w).map { Int64(Swift.min($0, Swift.max(r, 1) - 1)) } }, shape: [responses.count, w]).to(model.device)
        return v.gather(dim: 1, index: idx)
    }

    // MARK: checkpoints

    static let file = "critic.safetensors", optimizerFile = "critic_optimizer.safetensors"

    /// The live tensors a checkpoint holds: the adapters under PEFT's keys and the head.
    var targets: [String: Tensor] { lora.peftTensors.merging(["v_head.weight": head, "v_head.bias": bias]) { a, _ in a } }

    /// The adapters (PEFT's keys) and the head in `critic.safetensors`, the optimizer state beside it.
    func save(to dir: URL) throws {
        try Safetensors.write(targets.mapValues { $0.detached() }, metadata: ["format": "pt", "lora_r": "\(config.lora.rank)", "lora_alpha": "\(config.lora.alpha)"],
                              to: dir.appendingPathComponent(Self.file))
        try optimizer.save(to: dir.appendingPathComponent(Self.optimizerFile))
    }

    /// Copies a saved critic into this one in place (its optimizer keeps the same tensors).
    func restore(from dir: URL) throws {
        let file = try Safetensors.File(url: dir.appendingPathComponent(Self.file))
        for (key, target) in targets {
            guard file.entries[key] != nil else { throw TrainingError("\(file.url.path): missing '\(key)' (the checkpoint's critic differs from the run's)") }
            let t = try file.tensor(key)
            guard t.shape == target.shape else { throw TrainingError("\(file.url.path): '\(key)' has shape \(t.shape), the run's critic needs \(target.shape)") }
            try withTorchErrors { withNoGrad { target.copy(from: t.to(dtype: target.dtype)) } }
        }
        try optimizer.load(from: dir.appendingPathComponent(Self.optimizerFile))
    }
}

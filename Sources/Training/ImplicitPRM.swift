import Credit
import Foundation
import Models
import Torch

/// iStar's online process reward model (`istar:`; arXiv:2509.19199, Tongyi-ConvAI/Tongyi-Character
/// @dfee104 `CharacterRL-iStar/istar/dp_rm.py` `update_rm_eto`, `rm_utils.py` `compute_eto_loss_rm`).
/// LoRA adapters of its own on the policy's base (the released code fine-tunes a full copy of the
/// policy's starting model) score each agent turn k by q_k = Σ_{t ∈ k} log π_φ(a_t) − log π_old(a_t)
/// over the turn's action tokens. The turn's implicit step reward is β·q_k from that forward (before
/// the update), divided by the step's largest |β·q| (`normalize: batch_max`, `istar_norm:
/// batch_norm`). Then one update on a trajectory-level Bradley–Terry loss: an episode's Q is the
/// mean of β·q_k over its turns; within each group every success (the environment's) is paired with every
/// failure, and the loss is the mean over pairs of −log σ(Q_success − Q_failure).
public struct ISTARConfig: Codable, Equatable, Sendable {
    /// `trained`: the loss updates the model (the paper's method); `released`: it never changes, as
    /// in the released code, whose loss reads the scores detached from the model (so its step
    /// rewards stay β·log π_init/π_old).
    public enum Training: String, Codable, Sendable, CaseIterable { case trained, released }
    public enum Normalize: String, Codable, Sendable, CaseIterable { case batchMax = "batch_max", none }

    /// `beta_train`.
    public var beta = 0.05
    /// The model's learning rate; nil: optim.lr.
    public var lr: Double? = nil
    public var maxGradNorm = 10.0
    /// Its adapters; nil: the policy's LoRA settings.
    public var lora: LoRA.Config? = nil
    public var training = Training.trained
    public var normalize = Normalize.batchMax

    public init() {}

    enum CodingKeys: String, CodingKey {
        case beta, lr, lora, training, normalize
        case maxGradNorm = "max_grad_norm"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self), d = ISTARConfig()
        beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? d.beta
        lr = try c.decodeIfPresent(Double.self, forKey: .lr)
        maxGradNorm = try c.decodeIfPresent(Double.self, forKey: .maxGradNorm) ?? d.maxGradNorm
        lora = try c.decodeIfPresent(LoRA.Config.self, forKey: .lora)
        training = try c.decodeIfPresent(Training.self, forKey: .training) ?? d.training
        normalize = try c.decodeIfPresent(Normalize.self, forKey: .normalize) ?? d.normalize
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(beta, forKey: .beta)
        try c.encode(lr, forKey: .lr)
        try c.encode(maxGradNorm, forKey: .maxGradNorm)
        try c.encode(lora, forKey: .lora)
        try c.encode(training, forKey: .training)
        try c.encode(normalize, forKey: .normalize)
    }

    func validate(_ run: RunConfig) throws {
        func need(_ ok: Bool, _ m: String) throws { if !ok { throw TrainingError("config: \(m)") } }
        try need(run.agent != nil, "'istar' scores the turns of agent episodes: add an 'agent:' section (an environment; preset 'frozenlake-gigpo')")
        try need(run.credit.method == .istar, "'istar' gives implicit step rewards, which only credit.method istar reads (it is \(run.credit.method.rawValue))")
        try need(run.model.lora != nil, "'istar' trains LoRA adapters of its own on the policy's base, which full fine-tuning (model.lora null) leaves without a frozen base: set model.lora")
        try need(beta > 0 && beta.isFinite, "'istar.beta' must be positive and finite, got \(beta)")
        try need(lr.map { $0 > 0 && $0.isFinite } ?? true, "'istar.lr' must be positive and finite (null: optim.lr)")
        try need(maxGradNorm > 0 && maxGradNorm.isFinite, "'istar.max_grad_norm' must be positive and finite, got \(maxGradNorm)")
    }
}

/// The process reward model of a run: adapters switched in on the policy's model for its passes.
final class ImplicitPRM {
    let model: CausalLM
    let lora: LoRA
    let optimizer: AdamW
    let config: ISTARConfig

    init(policy: CausalLM, run: RunConfig, config: ISTARConfig) throws {
        let adapters = policy.lora
        model = policy
        self.config = config
        lora = try LoRA(attachingTo: policy, config: config.lora ?? run.model.lora!, seed: run.rollout.seed ^ 0x157A_2000)
        policy.lora = adapters   // attaching made these the model's; the policy's stay active
        optimizer = try AdamW(parameters: lora.parameters, options: .init(lr: config.lr ?? run.optim.lr, weightDecay: 0))
    }

    /// `body` with the model's adapters active.
    func active<T>(_ body: () throws -> T) rethrows -> T {
        let policy = model.lora
        model.lora = lora
        defer { model.lora = policy }
        return try body()
    }

    static let file = "prm.safetensors", optimizerFile = "prm_optimizer.safetensors"

    func save(to dir: URL) throws {
        try Safetensors.write(lora.peftTensors.mapValues { $0.detached() }, metadata: ["format": "pt"], to: dir.appendingPathComponent(Self.file))
        try optimizer.save(to: dir.appendingPathComponent(Self.optimizerFile))
    }

    func restore(from dir: URL) throws {
        let file = try Safetensors.File(url: dir.appendingPathComponent(Self.file))
        for (key, target) in lora.peftTensors {
            guard file.entries[key] != nil else { throw TrainingError("\(file.url.path): missing '\(key)' (the checkpoint's process reward model differs from the run's)") }
            let t = try file.tensor(key)
            guard t.shape == target.shape else { throw TrainingError("\(file.url.path): '\(key)' has shape \(t.shape), the run's needs \(target.shape)") }
            try withTorchErrors { withNoGrad { target.copy(from: t.to(dtype: target.dtype)) } }
        }
        try optimizer.load(from: dir.appendingPathComponent(Self.optimizerFile))
    }
}

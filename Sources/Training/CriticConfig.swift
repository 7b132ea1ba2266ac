import Credit
import Foundation
import Models
import Objectives

extension RunConfig {
    /// PPO's value model (`critic:`): a scalar head on a transformer, trained with the clipped value
    /// loss by its own AdamW. By default its own LoRA adapters on the policy's frozen base (no second
    /// copy); with `model` set, or the policy or critic fully fine-tuned, a model of its own.
    public struct CriticSection: Codable, Equatable, Sendable {
        /// A model of its own (a path, a .gguf, `default`, `tiny-random`) with the policy's tokenizer;
        /// null: the policy's starting weights (shared when both train LoRA adapters, else copied).
        public var model: String? = nil
        /// Its adapters; null trains every weight of its own model.
        public var lora: LoRA.Config? = LoRA.Config(rank: 16, alpha: 32)
        /// Its learning rate (null: `optim.lr`).
        public var lr: Double? = nil
        /// PPO's value clipping (verl `cliprange_value`, OpenRLHF `value_clip`): the new value stays
        /// within ± this of the rollout-time value in the clipped branch. Target `gae` only (0.5 when
        /// left away, null: unclipped, as OpenRLHF's `value_clip: None`); TVM's loss is unclipped.
        public var vfClip: Double? = 0.5
        /// The value loss's weight (TRL `vf_coef`). The critic has its own optimizer, so it acts
        /// only through gradient clipping (`optim.max_grad_norm`) and Adam's epsilon.
        public var vfCoef = 1.0
        /// Steps at the start that train only the critic (verl `critic_warmup`).
        public var warmupSteps = 0
        /// The value head's initial weights: normal with this standard deviation (0: every value starts at 0).
        public var headStd = 0.0
        /// What the values learn: `gae` (PPO's returns) or `tvm` (per-token success probabilities).
        public var target = Target.gae

        public enum Target: String, Codable, Sendable, CaseIterable { case gae, tvm }

        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable {
            case model, lora, lr, target, vfClip = "vf_clip", vfCoef = "vf_coef", warmupSteps = "warmup_steps", headStd = "head_std"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            model = try c.decodeIfPresent(String.self, forKey: .model)
            // Left away: the default adapters; `lora: null`: every weight trains.
            if c.contains(.lora) { lora = try c.decodeIfPresent(LoRA.Config.self, forKey: .lora) }
            lr = try c.decodeIfPresent(Double.self, forKey: .lr)
            vfCoef = try c.decodeIfPresent(Double.self, forKey: .vfCoef) ?? 1
            warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0
            headStd = try c.decodeIfPresent(Double.self, forKey: .headStd) ?? 0
            target = try c.decodeIfPresent(Target.self, forKey: .target) ?? .gae
            vfClip = c.contains(.vfClip) ? try c.decodeIfPresent(Double.self, forKey: .vfClip) : (target == .gae ? 0.5 : nil)
        }

        // `lora: null` must be written out: left away, reading the file back would bring the default adapters.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(model, forKey: .model)
            try c.encode(lora, forKey: .lora)
            try c.encodeIfPresent(lr, forKey: .lr)
            try c.encode(vfClip, forKey: .vfClip)   // null too: left away, reading back would bring 0.5
            try c.encode(vfCoef, forKey: .vfCoef)
            try c.encode(warmupSteps, forKey: .warmupSteps)
            try c.encode(headStd, forKey: .headStd)
            try c.encode(target, forKey: .target)
        }

        /// Whether the critic's adapters go on the policy's own model (switched in for its passes).
        func sharesPolicyModel(_ config: RunConfig) -> Bool { model == nil && lora != nil && config.model.lora != nil }

        func validate(_ config: RunConfig) throws {
            func need(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError("config: \(message)") } }
            try need(config.credit.gaeParams != nil, "'critic' is set but credit.method \(config.credit.method.rawValue) reads no values (use gae, alone or as d3s's base)")
            try need(config.offline == nil, "'critic' trains with RL; the objective is '\(config.offline ?? "")', which trains on fixed data")
            try need(model.map { !$0.isEmpty } ?? true, "'critic.model' is empty (give a model path, or null for the policy's)")
            try need(lr.map { $0 > 0 && $0.isFinite } ?? true, "'critic.lr' must be positive and finite, got \(lr ?? 0)")
            try need(vfClip.map { $0 > 0 && $0.isFinite } ?? true, "'critic.vf_clip' must be positive and finite, got \(vfClip ?? 0)")
            try need(target == .gae || vfClip == nil, "'critic.vf_clip' applies to target gae; TVM's loss is the unclipped squared error (remove vf_clip)")
            try need(vfCoef > 0 && vfCoef.isFinite, "'critic.vf_coef' must be positive and finite, got \(vfCoef)")
            try need(headStd >= 0 && headStd <= 10, "'critic.head_std' must be in [0, 10], got \(headStd)")
            try need(warmupSteps >= 0 && warmupSteps <= config.train.steps, "'critic.warmup_steps' must be 0…train.steps (\(config.train.steps)), got \(warmupSteps)")
        }
    }
}

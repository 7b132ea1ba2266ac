import Foundation
import Models
import Torch

/// LaSeR, "Reinforcement Learning with Last-Token Self-Rewarding" (arXiv:2510.14943; RUCBM/LaSeR
/// @48996f7, `verl/verl/workers/actor/dp_actor.py` `update_policy` and
/// `verl/verl/trainer/ppo/ray_trainer.py` `fit`). After a response that ended with EOS, the policy's
/// log-probability of a fixed token z gives the self-reward score
///     r_s = β·(log π(z | x, y) − c)
/// with c a pre-computed constant (the reference's log-probability of z, nearly the same for every
/// input) or, without one, log π_ref(z | x, y) itself. The loss adds
///     λ · mean over the mini-batch's rows of  m_i · w_i · (r_s,i − r_i)²
/// (m_i: the response ended with EOS; r_i: the verifier's 0/1 reward; w_i: N/(2N₊) for a right
/// response and N/(2N₋) for a wrong one over the step's finished responses when `balanced`), and,
/// after the warm-ups, mixes the advantages as (1 − α)·A + α·A_s, where A_s whitens clamp(r_s, 0, 1)
/// (0 for unfinished responses) within each prompt's group (sample std), and a group whose std is
/// at most τ keeps A.
public struct LaSeRConfig: Codable, Equatable, Sendable {
    /// z as the tokenizer writes it (one token the model never emits), or its id.
    public var token: String? = nil
    public var tokenId: Int? = nil
    /// β: `self_reward_kl_coef`.
    public var beta = 0.1
    /// λ: `self_reward_loss_coef`.
    public var lossCoef = 0.1
    /// c: `ref_model_log_ratio_constant` (negative); nil: the reference model's log π_ref(z | x, y).
    public var referenceConstant: Double? = nil
    /// Class weights N/(2N₊), N/(2N₋): `self_reward_loss_balanced`.
    public var balanced = true
    /// α: `self_rewarding_advantages_integration_coef`.
    public var advantageCoef = 0.1
    /// τ: `self_rewarding_advantages_filtering_threshold`.
    public var advantageStdMin = 0.1
    /// Steps before the loss starts (`reasoning_warmup_steps`), and further steps before the mix
    /// starts (`self_rewarding_warmup_steps`).
    public var warmupSteps = 0
    public var advantageWarmupSteps = 200

    public init() {}

    enum CodingKeys: String, CodingKey {
        case token, beta, balanced
        case tokenId = "token_id", lossCoef = "loss_coef", referenceConstant = "reference_constant", advantageCoef = "advantage_coef"
        case advantageStdMin = "advantage_std_min", warmupSteps = "warmup_steps", advantageWarmupSteps = "advantage_warmup_steps"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self), d = LaSeRConfig()
        token = try c.decodeIfPresent(String.self, forKey: .token)
        tokenId = try c.decodeIfPresent(Int.self, forKey: .tokenId)
        beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? d.beta
        lossCoef = try c.decodeIfPresent(Double.self, forKey: .lossCoef) ?? d.lossCoef
        referenceConstant = try c.decodeIfPresent(Double.self, forKey: .referenceConstant)
        balanced = try c.decodeIfPresent(Bool.self, forKey: .balanced) ?? d.balanced
        advantageCoef = try c.decodeIfPresent(Double.self, forKey: .advantageCoef) ?? d.advantageCoef
        advantageStdMin = try c.decodeIfPresent(Double.self, forKey: .advantageStdMin) ?? d.advantageStdMin
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? d.warmupSteps
        advantageWarmupSteps = try c.decodeIfPresent(Int.self, forKey: .advantageWarmupSteps) ?? d.advantageWarmupSteps
    }

    // Every key is written, nil ones as null, so a file may set any of them (unknown keys are refused).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(token, forKey: .token)
        try c.encode(tokenId, forKey: .tokenId)
        try c.encode(beta, forKey: .beta)
        try c.encode(lossCoef, forKey: .lossCoef)
        try c.encode(referenceConstant, forKey: .referenceConstant)
        try c.encode(balanced, forKey: .balanced)
        try c.encode(advantageCoef, forKey: .advantageCoef)
        try c.encode(advantageStdMin, forKey: .advantageStdMin)
        try c.encode(warmupSteps, forKey: .warmupSteps)
        try c.encode(advantageWarmupSteps, forKey: .advantageWarmupSteps)
    }

    func validate() throws {
        func need(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError("config: \(message)") } }
        try need((token == nil) != (tokenId == nil), token == nil
                 ? "'laser' needs its self-reward token z: set 'laser.token' (a special token the model never writes, e.g. '<empty_output>' for SmolLM2; the authors use <|vision_start|> for Qwen2.5) or 'laser.token_id'"
                 : "'laser.token' and 'laser.token_id' both name z: set one")
        try need((tokenId ?? 0) >= 0, "'laser.token_id' must be >= 0, got \(tokenId ?? 0)")
        try need(beta > 0 && beta.isFinite, "'laser.beta' must be positive and finite, got \(beta)")
        try need(lossCoef > 0 && lossCoef.isFinite, "'laser.loss_coef' must be positive and finite (the loss is what trains the self-reward score), got \(lossCoef)")
        if let c = referenceConstant {
            try need(c < 0 && c.isFinite, "'laser.reference_constant' is the reference's log-probability of z, so it must be negative and finite, got \(c) (null: read it from the reference model)")
        }
        try need((0...1).contains(advantageCoef), "'laser.advantage_coef' must be in [0, 1], got \(advantageCoef)")
        try need(advantageStdMin >= 0 && advantageStdMin.isFinite, "'laser.advantage_std_min' must be >= 0 and finite, got \(advantageStdMin)")
        try need(warmupSteps >= 0, "'laser.warmup_steps' must be >= 0, got \(warmupSteps)")
        try need(advantageWarmupSteps >= 0, "'laser.advantage_warmup_steps' must be >= 0, got \(advantageWarmupSteps)")
    }

    /// z's id from the config, checked against the tokenizer and the model.
    /// `ends`: the ids that end a response (EOS and stop tokens), which z must not be: the loss would
    /// then train when the model stops.
    public func resolvedToken(tokenizer: Tokenizer, vocabSize: Int, ends: Set<Int> = []) throws -> Int {
        let id = try lookUp(tokenizer: tokenizer, vocabSize: vocabSize)
        guard !ends.contains(id) && !tokenizer.eosIds.contains(id) else {
            throw TrainingError("config: laser's z (id \(id), '\(tokenizer.piece(id))') ends responses (an EOS or stop token); name a special token the model never writes")
        }
        return id
    }

    func lookUp(tokenizer: Tokenizer, vocabSize: Int) throws -> Int {
        if let id = tokenId {
            guard id < vocabSize else { throw TrainingError("config: 'laser.token_id' \(id) is outside the model's vocabulary (\(vocabSize) tokens)") }
            return id
        }
        let text = token ?? ""
        if let id = tokenizer.id(of: text), id < vocabSize { return id }
        let ids = tokenizer.encode(text)
        guard ids.count == 1, ids[0] < vocabSize else {
            throw TrainingError("config: 'laser.token' '\(text)' is not one token of this model's tokenizer (it encodes to \(ids.count) tokens \(ids.prefix(8))); "
                + "name a single special token the model never writes, or its id with 'laser.token_id'")
        }
        return ids[0]
    }

    /// Whether step `step` (1-based, as verl's `global_steps`) adds the loss, and mixes the advantages.
    func lossActive(at step: Int) -> Bool { step > warmupSteps }
    func mixActive(at step: Int) -> Bool { advantageCoef > 0 && step > warmupSteps + advantageWarmupSteps }
}

/// LaSeR's arithmetic on plain numbers (the trainer's tensors follow it; the fixture test checks it
/// against the official code's).
enum LaSeR {
    /// w_i over the finished rows: N/(2N₊) for a target 1 and N/(2N₋) for a target 0 (0 for a class
    /// with no finished row, and for unfinished rows); 1 for every finished row when not balanced.
    static func classWeights(targets: [Double], finished: [Bool], balanced: Bool, counts: (positive: Int, negative: Int)? = nil) -> [Double] {
        guard balanced else { return finished.map { $0 ? 1 : 0 } }
        let local = zip(targets, finished).reduce(into: (positive: 0, negative: 0)) { n, e in
            if e.1 { if e.0 == 1 { n.positive += 1 } else { n.negative += 1 } }
        }
        let (p, q) = counts ?? local
        let total = Double(p + q)
        let wp = p > 0 ? total / Double(2 * p) : 0, wq = q > 0 ? total / Double(2 * q) : 0
        return zip(targets, finished).map { t, f in f ? (t == 1 ? wp : wq) : 0 }
    }

    /// The loss Σ w_i·(s_i − r_i)² / `size` over `[n]` rows, s_i = β·(log π(z) − c_i) (returned too):
    /// `size` rows' mean, as the official per-micro-batch mean over equal micro-batches.
    static func loss(lpz: Tensor, reference: Tensor, targets: Tensor, weights: Tensor, beta: Double, size: Int) -> (loss: Tensor, score: Tensor) {
        let score = (lpz - reference) * beta
        return (((score - targets).square() * weights).sum() * (1 / Double(Swift.max(size, 1))), score)
    }

    /// A_s of one group: clamp(r_s, 0, 1) (0 for an unfinished row, `nil` score) whitened with the
    /// group's mean and sample std (a group of one: mean 0, std 1); nil when that std is at most
    /// `stdMin` (the group keeps its advantages).
    static func selfAdvantages(_ scores: [Double?], stdMin: Double) -> [Double]? {
        let s = scores.map { $0.map { Swift.min(1, Swift.max(0, $0)) } ?? 0 }
        let n = Double(s.count)
        let mean = s.count > 1 ? s.reduce(0, +) / n : 0
        let std = s.count > 1 ? (s.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot() : 1
        guard std > stdMin else { return nil }
        return s.map { ($0 - mean) / std }
    }

    /// (1 − α)·A + α·A_s token by token, group by group (`scores` in the same order as the
    /// advantages); returns the advantages and the number of groups mixed.
    static func mix(_ advantages: [[[Double]]], scores: [[Double?]], coef: Double, stdMin: Double) -> ([[[Double]]], Int) {
        var out = advantages, mixed = 0
        for (g, group) in advantages.enumerated() {
            guard let a = selfAdvantages(scores[g], stdMin: stdMin) else { continue }
            mixed += 1
            for (i, row) in group.enumerated() { out[g][i] = row.map { (1 - coef) * $0 + coef * a[i] } }
        }
        return (out, mixed)
    }
}

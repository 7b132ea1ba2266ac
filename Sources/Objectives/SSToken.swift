import Foundation

/// ssToken, "Self-modulated and Semantic-aware Token Selection for LLM Fine-tuning"
/// (arXiv:2510.18250; jianke0604/ssToken @2a0c57d, `scripts/finetune.py`
/// `filter_tokens_with_attention_loss`). Supervised fine-tuning learns only the top ⌈ρ·n⌉ of each
/// example's n target tokens by
///     score_t = γ·minmax(REL)_t + (1 − γ)·attn_t
/// where REL_t = ℓ_history(y_t) − ℓ_θ(y_t) is the retrospective excess loss (the history model is
/// the model before fine-tuning, as the released code computes its losses once from the base),
/// minmax rescales an example's REL to [0, 1] ((d − min)/(max − min + 10⁻⁸)), and attn_t is the
/// attention y_t (as the query) pays to the example's prompt in one layer (the last), averaged over
/// heads. The first `attention_only_examples` examples of a run select by attention alone (γ = 0),
/// as the released code's hard-coded 10,000.
public struct SSTokenConfig: Codable, Equatable, Sendable {
    /// ρ: `data_prop`.
    public var keep = 0.6
    /// γ: `ratio`.
    public var gamma = 0.5
    /// Examples (by their index in the run) that select by attention alone: `pre_index`.
    public var attentionOnlyExamples = 10_000
    /// The attention layer (negative: counted from the last).
    public var layer = -1

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case keep, gamma, layer, attentionOnlyExamples = "attention_only_examples"
    }

    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self, in: "objective.sstoken")
        let c = try decoder.container(keyedBy: CodingKeys.self), d = SSTokenConfig()
        keep = try c.decodeIfPresent(Double.self, forKey: .keep) ?? d.keep
        gamma = try c.decodeIfPresent(Double.self, forKey: .gamma) ?? d.gamma
        attentionOnlyExamples = try c.decodeIfPresent(Int.self, forKey: .attentionOnlyExamples) ?? d.attentionOnlyExamples
        layer = try c.decodeIfPresent(Int.self, forKey: .layer) ?? d.layer
    }

    public func validate(layers: Int? = nil) throws {
        func need(_ ok: Bool, _ m: String) throws { if !ok { throw ObjectiveError("objective.sstoken: \(m)") } }
        try need(keep > 0 && keep <= 1, "'keep' (ρ) must be in (0, 1], got \(keep)")
        try need((0...1).contains(gamma), "'gamma' must be in [0, 1], got \(gamma)")
        try need(attentionOnlyExamples >= 0, "'attention_only_examples' must be >= 0, got \(attentionOnlyExamples)")
        if let n = layers { try need((-n..<n).contains(layer), "'layer' \(layer) is not one of the model's \(n) layers (0…\(n - 1), or −\(n)…−1 from the last)") }
    }

    /// The example's kept targets (their positions in `rel`, ascending): the top ⌈ρ·n⌉ by score,
    /// ties to the earlier token. `attentionOnly`: γ taken as 0.
    public func selected(rel: [Double], attention: [Double], attentionOnly: Bool = false) -> [Int] {
        let n = rel.count
        guard n > 0 else { return [] }
        let low = rel.min()!, high = rel.max()!, g = attentionOnly ? 0 : gamma
        let score = (0..<n).map { g * (rel[$0] - low) / (high - low + 1e-8) + (1 - g) * attention[$0] }
        return Array(score.indices.sorted { (score[$0], -$0) > (score[$1], -$1) }.prefix(count(of: n))).sorted()
    }

    /// ⌈ρ·n⌉ of n targets.
    public func count(of n: Int) -> Int { Swift.min(n, Int((keep * Double(n)).rounded(.up))) }
}

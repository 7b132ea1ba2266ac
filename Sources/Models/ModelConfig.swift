import Foundation

/// A decoder-only transformer's configuration, with Hugging Face `config.json` names.
/// Families: `llama` (Llama, SmolLM2), `qwen2` (bias on q/k/v), `qwen3` (RMSNorm on q and k per head).
public struct ModelConfig: Codable, Equatable, Sendable {
    public enum Family: String, Codable, Sendable, CaseIterable { case llama, qwen2, qwen3 }

    public var modelType: Family
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    public var attentionBias: Bool
    public var bosTokenId: Int?
    public var eosTokenId: [Int]

    public init(modelType: Family = .llama, vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
                numAttentionHeads: Int, numKeyValueHeads: Int? = nil, headDim: Int? = nil, rmsNormEps: Double = 1e-5,
                ropeTheta: Double = 10_000, maxPositionEmbeddings: Int = 2048, tieWordEmbeddings: Bool = true,
                attentionBias: Bool? = nil, bosTokenId: Int? = nil, eosTokenId: [Int] = []) {
        self.modelType = modelType; self.vocabSize = vocabSize; self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize; self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads; self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        // 0 heads is refused by validate(); here it must not divide by zero first.
        self.headDim = headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0); self.rmsNormEps = rmsNormEps; self.ropeTheta = ropeTheta
        self.maxPositionEmbeddings = maxPositionEmbeddings; self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias ?? (modelType == .qwen2); self.bosTokenId = bosTokenId; self.eosTokenId = eosTokenId
    }

    /// Q, K and V projections carry a bias.
    public var qkvBias: Bool { modelType == .qwen2 || attentionBias }
    /// Q and K get an RMSNorm per head before RoPE.
    public var qkNorm: Bool { modelType == .qwen3 }

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads", headDim = "head_dim"
        case rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta", maxPositionEmbeddings = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings", attentionBias = "attention_bias", bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id", ropeScaling = "rope_scaling", architectures, torchDtype = "torch_dtype"
        case hiddenAct = "hidden_act"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func need<T: Decodable>(_ k: CodingKeys) throws -> T {
            guard let v = try c.decodeIfPresent(T.self, forKey: k) else { throw ModelError("config.json: missing '\(k.stringValue)'") }
            return v
        }
        let type: String = try need(.modelType)
        guard let family = Family(rawValue: type) else {
            throw ModelError("config.json: model_type '\(type)' is not supported (supported: llama, qwen2, qwen3)")
        }
        if let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct), act != "silu" {
            throw ModelError("config.json: hidden_act '\(act)' is not supported (only silu)")
        }
        if c.contains(.ropeScaling), try !c.decodeNil(forKey: .ropeScaling) {
            throw ModelError("config.json: rope_scaling is not supported yet (only plain RoPE)")
        }
        let eos: [Int]
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenId) { eos = [one] }
        else { eos = (try? c.decodeIfPresent([Int].self, forKey: .eosTokenId)) ?? [] }
        let heads: Int = try need(.numAttentionHeads), hidden: Int = try need(.hiddenSize)
        guard heads > 0 else { throw ModelError("config.json: 'num_attention_heads' must be positive, got \(heads)") }
        self.init(modelType: family, vocabSize: try need(.vocabSize), hiddenSize: hidden,
                  intermediateSize: try need(.intermediateSize), numHiddenLayers: try need(.numHiddenLayers),
                  numAttentionHeads: heads, numKeyValueHeads: try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads),
                  headDim: try c.decodeIfPresent(Int.self, forKey: .headDim),
                  rmsNormEps: try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6,
                  ropeTheta: try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? 10_000,
                  maxPositionEmbeddings: try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048,
                  tieWordEmbeddings: try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false,
                  attentionBias: try c.decodeIfPresent(Bool.self, forKey: .attentionBias),
                  bosTokenId: try c.decodeIfPresent(Int.self, forKey: .bosTokenId), eosTokenId: eos)
        try validate()
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let arch = ["llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"][modelType.rawValue]!
        try c.encode([arch], forKey: .architectures)
        try c.encode(modelType, forKey: .modelType)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        if eosTokenId.count == 1 { try c.encode(eosTokenId[0], forKey: .eosTokenId) } else if !eosTokenId.isEmpty { try c.encode(eosTokenId, forKey: .eosTokenId) }
        try c.encode("silu", forKey: .hiddenAct)
        try c.encode("float32", forKey: .torchDtype)
    }

    public func validate() throws {
        for (name, v) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                          ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                          ("num_key_value_heads", numKeyValueHeads), ("head_dim", headDim)] where v <= 0 {
            throw ModelError("config.json: '\(name)' must be positive, got \(v)")
        }
        // Far above any real model, far below what overflows or spends minutes building weight tables.
        for (name, v, limit) in [("vocab_size", vocabSize, 10_000_000), ("hidden_size", hiddenSize, 1 << 20),
                                 ("intermediate_size", intermediateSize, 1 << 22), ("num_hidden_layers", numHiddenLayers, 10_000),
                                 ("num_attention_heads", numAttentionHeads, 4096), ("num_key_value_heads", numKeyValueHeads, 4096),
                                 ("head_dim", headDim, 65_536), ("max_position_embeddings", maxPositionEmbeddings, 1 << 24)] where v > limit {
            throw ModelError("config.json: '\(name)' is \(v), more than Tokenwise supports (\(limit))")
        }
        guard maxPositionEmbeddings > 0 else { throw ModelError("config.json: 'max_position_embeddings' must be positive, got \(maxPositionEmbeddings)") }
        for (name, id) in [("bos_token_id", bosTokenId)] + eosTokenId.map { ("eos_token_id", $0) } {
            if let id, !(0..<vocabSize).contains(id) { throw ModelError("config.json: '\(name)' \(id) is outside the vocabulary (\(vocabSize))") }
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw ModelError("config.json: num_attention_heads (\(numAttentionHeads)) must be a multiple of num_key_value_heads (\(numKeyValueHeads))")
        }
        guard headDim % 2 == 0 else { throw ModelError("config.json: head_dim (\(headDim)) must be even for RoPE") }
    }

    /// Every weight the model needs, by Hugging Face name, with its shape.
    public var expectedWeights: [String: [Int]] {
        var w: [String: [Int]] = ["model.embed_tokens.weight": [vocabSize, hiddenSize], "model.norm.weight": [hiddenSize]]
        if !tieWordEmbeddings { w["lm_head.weight"] = [vocabSize, hiddenSize] }
        let q = numAttentionHeads * headDim, kv = numKeyValueHeads * headDim
        for i in 0..<numHiddenLayers {
            let p = "model.layers.\(i)."
            w[p + "input_layernorm.weight"] = [hiddenSize]
            w[p + "post_attention_layernorm.weight"] = [hiddenSize]
            w[p + "self_attn.q_proj.weight"] = [q, hiddenSize]
            w[p + "self_attn.k_proj.weight"] = [kv, hiddenSize]
            w[p + "self_attn.v_proj.weight"] = [kv, hiddenSize]
            w[p + "self_attn.o_proj.weight"] = [hiddenSize, q]
            if qkvBias {
                w[p + "self_attn.q_proj.bias"] = [q]
                w[p + "self_attn.k_proj.bias"] = [kv]
                w[p + "self_attn.v_proj.bias"] = [kv]
            }
            if qkNorm {
                w[p + "self_attn.q_norm.weight"] = [headDim]
                w[p + "self_attn.k_norm.weight"] = [headDim]
            }
            w[p + "mlp.gate_proj.weight"] = [intermediateSize, hiddenSize]
            w[p + "mlp.up_proj.weight"] = [intermediateSize, hiddenSize]
            w[p + "mlp.down_proj.weight"] = [hiddenSize, intermediateSize]
        }
        return w
    }
}

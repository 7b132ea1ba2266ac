import Foundation
import Torch

/// Writes a GGUF v3 file with float32 tensors — enough to export a model for llama.cpp-style tools
/// and for tests to build tiny models in that format.
public struct GGUFWriter {
    public var metadata: [(String, GGUFFile.Value)] = []
    public var tensors: [(String, Tensor)] = []
    public var alignment = 32

    public init() {}

    static func typeCode(_ v: GGUFFile.Value) -> UInt32 {
        switch v {
        case .uint: 10
        case .int: 11
        case .float: 12
        case .bool: 7
        case .string: 8
        case .array: 9
        }
    }

    static func put(_ v: GGUFFile.Value, into d: inout Data) {
        func u32(_ x: UInt32) { var y = x.littleEndian; d.append(Data(bytes: &y, count: 4)) }
        func u64(_ x: UInt64) { var y = x.littleEndian; d.append(Data(bytes: &y, count: 8)) }
        switch v {
        case .uint(let x): u64(x)
        case .int(let x): u64(UInt64(bitPattern: x))
        case .float(let x): u64(x.bitPattern)
        case .bool(let b): d.append(b ? 1 : 0)
        case .string(let s): u64(UInt64(s.utf8.count)); d.append(Data(s.utf8))
        case .array(let items):
            u32(items.first.map(typeCode) ?? 10)
            u64(UInt64(items.count))
            for i in items { put(i, into: &d) }
        }
    }

    public func write(to url: URL) throws {
        var d = Data("GGUF".utf8)
        func u32(_ x: UInt32) { var y = x.littleEndian; d.append(Data(bytes: &y, count: 4)) }
        func u64(_ x: UInt64) { var y = x.littleEndian; d.append(Data(bytes: &y, count: 8)) }
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (k, v) in metadata {
            GGUFWriter.put(.string(k), into: &d)
            u32(GGUFWriter.typeCode(v))
            GGUFWriter.put(v, into: &d)
        }
        var offset = 0
        var blobs = [[UInt8]]()
        for (name, t) in tensors {
            GGUFWriter.put(.string(name), into: &d)
            u32(UInt32(t.rank))
            for s in t.shape.reversed() { u64(UInt64(s)) }
            u32(0)  // F32
            u64(UInt64(offset))
            let bytes = try t.bytes(as: .float32)
            blobs.append(bytes)
            offset += (bytes.count + alignment - 1) / alignment * alignment
        }
        while d.count % alignment != 0 { d.append(0) }
        for b in blobs {
            d.append(contentsOf: b)
            while d.count % alignment != 0 { d.append(0) }
        }
        try d.write(to: url, options: .atomic)
    }
}

extension Pretrained {
    /// The model as llama.cpp's converter writes it: `general.architecture` and the family's keys,
    /// the byte-level BPE tokenizer, and float32 tensors under GGUF names (q/k rows of Llama
    /// permuted). `Pretrained.load` reads it back to the same logits.
    public func ggufWriter() throws -> GGUFWriter {
        let c = model.config, arch = c.modelType.rawValue
        var w = GGUFWriter()
        w.metadata = [
            ("general.architecture", .string(arch)), ("\(arch).block_count", .uint(UInt64(c.numHiddenLayers))),
            ("\(arch).embedding_length", .uint(UInt64(c.hiddenSize))), ("\(arch).feed_forward_length", .uint(UInt64(c.intermediateSize))),
            ("\(arch).attention.head_count", .uint(UInt64(c.numAttentionHeads))),
            ("\(arch).attention.head_count_kv", .uint(UInt64(c.numKeyValueHeads))),
            ("\(arch).attention.key_length", .uint(UInt64(c.headDim))), ("\(arch).vocab_size", .uint(UInt64(c.vocabSize))),
            ("\(arch).rope.freq_base", .float(c.ropeTheta)), ("\(arch).attention.layer_norm_rms_epsilon", .float(c.rmsNormEps)),
            ("\(arch).context_length", .uint(UInt64(c.maxPositionEmbeddings))),
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(Self.ggufPreName(tokenizer.pre))),
            ("tokenizer.ggml.tokens", .array(tokenizer.tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(tokenizer.tokens.indices.map { id in
                .int(tokenizer.specialIds.contains(id) ? 3 : tokenizer.addedTokens.values.contains(id) ? 4 : 1)
            })),
            ("tokenizer.ggml.merges", .array(tokenizer.mergeList.map { .string("\($0.0) \($0.1)") })),
        ]
        if let b = tokenizer.bosId { w.metadata.append(("tokenizer.ggml.bos_token_id", .uint(UInt64(b)))) }
        if let e = tokenizer.eosIds.first { w.metadata.append(("tokenizer.ggml.eos_token_id", .uint(UInt64(e)))) }
        if let t = chatTemplateText { w.metadata.append(("tokenizer.chat_template", .string(t))) }
        let ggufNames = Dictionary(model.weights.keys.compactMap { hf in Self.ggufName(hf).map { (hf, $0) } }, uniquingKeysWith: { a, _ in a })
        try withTorchErrors {
            for (hf, t) in model.weights.sorted(by: { $0.key < $1.key }) {
                guard let name = ggufNames[hf] else { throw ModelError("\(source): weight '\(hf)' has no GGUF name") }
                var value = t
                if c.modelType == .llama, hf.hasSuffix("q_proj.weight") { value = Self.permuteForGGUF(t, heads: c.numAttentionHeads) }
                if c.modelType == .llama, hf.hasSuffix("k_proj.weight") { value = Self.permuteForGGUF(t, heads: c.numKeyValueHeads) }
                w.tensors.append((name, value.to(dtype: .float32).contiguous()))
            }
        }
        return w
    }

    /// The GGUF name of a Hugging Face weight (the inverse of `hfName`).
    static func ggufName(_ hf: String) -> String? {
        let fixed = ["model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"]
        if let f = fixed[hf] { return f }
        let parts = hf.split(separator: ".")
        guard parts.count >= 5, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]) else { return nil }
        for module in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "self_attn.q_norm", "self_attn.k_norm",
                       "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm"] {
            let n = module.split(separator: ".").count
            guard parts.count > 3 + n, parts[3..<(3 + n)].joined(separator: ".") == module else { continue }
            let candidate = "blk.\(layer).\(ggufModules[module]!).\(parts[(3 + n)...].joined(separator: "."))"
            return hfName(candidate) == hf ? candidate : nil
        }
        return nil
    }

    static let ggufModules = ["input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
                              "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                              "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
                              "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"]

    static func ggufPreName(_ pre: PreTokenizer) -> String {
        switch pre {
        case .smollm: "smollm"
        case .gpt2: "gpt2"
        case .llama3: "llama-bpe"
        case .qwen2: "qwen2"
        }
    }
}

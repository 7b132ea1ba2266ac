import Foundation
import Torch

/// A model with its tokenizer and chat format, loaded from a Hugging Face directory, a GGUF file,
/// or `default` (the embedded SmolLM2-135M-Instruct GGUF), and saved as a Hugging Face directory.
public struct Pretrained {
    public let model: CausalLM
    public let tokenizer: Tokenizer
    public let chatTemplateText: String?
    public let source: String

    public init(model: CausalLM, tokenizer: Tokenizer, chatTemplateText: String?, source: String) {
        self.model = model; self.tokenizer = tokenizer; self.chatTemplateText = chatTemplateText; self.source = source
    }

    /// The chat format, or an error naming the template when it is not one we can render.
    public func chatTemplate() throws -> ChatTemplate {
        guard let t = chatTemplateText else { throw ModelError("\(source): the model has no chat template") }
        return try ChatTemplate(template: t)
    }

    public static let defaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// Where `default` lives: $TOKENWISE_DEFAULT_MODEL, else `.deps/models/` in the working
    /// directory or in a folder above the running executable (the checkout it was built in).
    public static func defaultModelPath() throws -> URL {
        if let env = ProcessInfo.processInfo.environment["TOKENWISE_DEFAULT_MODEL"], !env.isEmpty { return URL(fileURLWithPath: env) }
        var candidates = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" { candidates.append(dir); dir.deleteLastPathComponent() }
        for c in candidates {
            let f = c.appendingPathComponent(".deps/models/\(defaultModelFile)")
            if FileManager.default.fileExists(atPath: f.path) { return f }
        }
        throw ModelError("the default model (\(defaultModelFile)) is not installed: run scripts/setup.sh model, or set TOKENWISE_DEFAULT_MODEL")
    }

    /// Loads `spec`: "default", "tiny-random", a `.gguf` file, or a Hugging Face directory.
    public static func load(_ spec: String, dtype: DType = .float32, device: Device = .cpu) throws -> Pretrained {
        if spec == "tiny-random" {
            let p = try tinyRandom()
            if device != .cpu { try withTorchErrors { p.model.to(device) } }
            return p
        }
        let url = spec == "default" ? try defaultModelPath() : URL(fileURLWithPath: spec)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ModelError("\(url.path): no such file or directory")
        }
        let p = isDir.boolValue ? try loadDirectory(url, dtype: dtype) : try loadGGUF(url, dtype: dtype)
        if device != .cpu { try withTorchErrors { p.model.to(device) } }
        return p
    }

    /// A randomly initialised 2-layer, width-64 Llama with a byte-level tokenizer (256 bytes plus
    /// ChatML's special tokens) and a ChatML template: for smoke tests and examples that must run
    /// in seconds without a download. The same seed gives the same weights.
    public static func tinyRandom(seed: UInt64 = 0) throws -> Pretrained {
        let config = ModelConfig(modelType: .llama, vocabSize: 270, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2,
                                 numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 16, maxPositionEmbeddings: 512, eosTokenId: [257])
        let model = try CausalLM.random(config: config, seed: seed)
        var tokens = Tokenizer.byteToChar.map { String($0) } + ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
        while tokens.count < config.vocabSize { tokens.append("<unused\(tokens.count)>") }
        let tokenizer = try Tokenizer(tokens: tokens, merges: [], added: ["<|im_start|>": 256, "<|im_end|>": 257, "<|endoftext|>": 258],
                                      special: [256, 257, 258], pre: .gpt2, bosId: nil, eosIds: [257])
        let template = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
            + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        return Pretrained(model: model, tokenizer: tokenizer, chatTemplateText: template, source: "tiny-random")
    }

    // MARK: Hugging Face directory

    static func loadDirectory(_ dir: URL, dtype: DType) throws -> Pretrained {
        let cfgURL = dir.appendingPathComponent("config.json")
        guard let cfgData = FileManager.default.contents(atPath: cfgURL.path) else { throw ModelError("\(cfgURL.path): cannot read (missing config.json)") }
        let config: ModelConfig
        do { config = try JSONDecoder().decode(ModelConfig.self, from: cfgData) } catch let e as ModelError {
            throw ModelError("\(cfgURL.path): \(e.message.replacingOccurrences(of: "config.json: ", with: ""))")
        } catch {
            throw ModelError("\(cfgURL.path): \(error)")
        }
        var files = [URL]()
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        if let idx = FileManager.default.contents(atPath: index.path) {
            guard let map = (try? JSONSerialization.jsonObject(with: idx) as? [String: Any])?["weight_map"] as? [String: String] else {
                throw ModelError("\(index.path): missing 'weight_map'")
            }
            files = Set(map.values).sorted().map { dir.appendingPathComponent($0) }
        } else {
            files = [dir.appendingPathComponent("model.safetensors")]
        }
        var weights: [String: Tensor] = [:]
        for f in files {
            let st = try Safetensors.File(url: f)
            for name in st.names {
                guard weights[name] == nil else { throw ModelError("\(f.path): weight '\(name)' appears in two files") }
                let t = try st.tensor(name)
                weights[name] = try withTorchErrors { t.to(dtype: dtype) }
            }
        }
        let model = try CausalLM(config: config, weights: weights, source: dir.path)
        let tokenizer = try Tokenizer.load(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"),
                                           config: dir.appendingPathComponent("tokenizer_config.json"))
        try checkVocabulary(tokenizer, config, file: dir.appendingPathComponent("tokenizer.json").path)
        if tokenizer.eosIds.isEmpty { tokenizer.eosIds = config.eosTokenId }
        // generation_config.json often lists more end ids (e.g. <|eot_id|> and <|end_of_text|>).
        if let gc = FileManager.default.contents(atPath: dir.appendingPathComponent("generation_config.json").path),
           let obj = try? JSONSerialization.jsonObject(with: gc) as? [String: Any] {
            let ids = (obj["eos_token_id"] as? [Int]) ?? ((obj["eos_token_id"] as? Int).map { [$0] } ?? [])
            for id in ids where !tokenizer.eosIds.contains(id) && (0..<tokenizer.vocabSize).contains(id) { tokenizer.eosIds.append(id) }
        }
        if tokenizer.bosId == nil { tokenizer.bosId = config.bosTokenId }
        var template: String? = nil
        if let tc = FileManager.default.contents(atPath: dir.appendingPathComponent("tokenizer_config.json").path),
           let obj = try? JSONSerialization.jsonObject(with: tc) as? [String: Any] {
            template = obj["chat_template"] as? String
        }
        return Pretrained(model: model, tokenizer: tokenizer, chatTemplateText: template, source: dir.path)
    }

    /// Every id the tokenizer can produce must have an embedding row (else the forward pass would
    /// index past the table).
    static func checkVocabulary(_ tokenizer: Tokenizer, _ config: ModelConfig, file: String) throws {
        guard tokenizer.vocabSize <= config.vocabSize else {
            throw ModelError("\(file): the tokenizer has \(tokenizer.vocabSize) token ids but the model's embedding has \(config.vocabSize) rows (vocab_size)")
        }
    }

    // MARK: GGUF

    /// llama.cpp's converter interleaves the rotary halves of q/k rows (its `permute`); this is the
    /// inverse, back to Hugging Face's rotate-half layout: [h, d/2, 2, in] → [h, 2, d/2, in].
    static func unpermute(_ w: Tensor, heads: Int) -> Tensor {
        let (out, inp) = (w.size(0), w.size(1))
        return w.reshaped([heads, out / heads / 2, 2, inp]).transposed(1, 2).reshaped([out, inp])
    }

    /// The inverse of `unpermute` (what llama.cpp's converter does), for writing GGUF files.
    public static func permuteForGGUF(_ w: Tensor, heads: Int) -> Tensor {
        let (out, inp) = (w.size(0), w.size(1))
        return w.reshaped([heads, 2, out / heads / 2, inp]).transposed(1, 2).reshaped([out, inp])
    }

    static func hfName(_ gguf: String) -> String? {
        let fixed = ["token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                     "output.weight": "lm_head.weight"]
        if let f = fixed[gguf] { return f }
        let parts = gguf.split(separator: ".")
        guard parts.count >= 3, parts[0] == "blk", let layer = Int(parts[1]) else { return nil }
        let map = ["attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
                   "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                   "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
                   "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"]
        guard let module = map[String(parts[2])] else { return nil }
        return "model.layers.\(layer).\(module).\(parts[3...].joined(separator: "."))"
    }

    static func loadGGUF(_ url: URL, dtype: DType) throws -> Pretrained {
        let g = try GGUFFile(url: url)
        let path = url.path
        let arch: String = try g.require("general.architecture") { $0.string }
        guard let family = ModelConfig.Family(rawValue: arch) else {
            throw ModelError("\(path): general.architecture '\(arch)' is not supported (llama, qwen2, qwen3)")
        }
        func int(_ key: String) throws -> Int { try g.require("\(arch).\(key)") { $0.int } }
        let heads = try int("attention.head_count"), hidden = try int("embedding_length")
        let kvHeads = g.int("\(arch).attention.head_count_kv") ?? heads
        guard heads > 0, kvHeads > 0 else {
            throw ModelError("\(path): \(arch).attention.head_count (\(heads)) and head_count_kv (\(kvHeads)) must be positive")
        }
        let tokens = g.metadata["tokenizer.ggml.tokens"]?.array?.count
        var eos = [Int]()
        if let e = g.int("tokenizer.ggml.eos_token_id") { eos.append(e) }
        let config = ModelConfig(
            modelType: family, vocabSize: g.int("\(arch).vocab_size") ?? tokens ?? 0, hiddenSize: hidden,
            intermediateSize: try int("feed_forward_length"), numHiddenLayers: try int("block_count"),
            numAttentionHeads: heads, numKeyValueHeads: kvHeads,
            headDim: g.int("\(arch).attention.key_length") ?? g.int("\(arch).rope.dimension_count") ?? hidden / heads,
            rmsNormEps: g.double("\(arch).attention.layer_norm_rms_epsilon") ?? 1e-6,
            ropeTheta: g.double("\(arch).rope.freq_base") ?? 10_000,
            maxPositionEmbeddings: g.int("\(arch).context_length") ?? 2048,
            tieWordEmbeddings: g.tensors["output.weight"] == nil,
            bosTokenId: g.int("tokenizer.ggml.bos_token_id"), eosTokenId: eos)
        do { try config.validate() } catch let e as ModelError { throw ModelError("\(path): \(e.message.replacingOccurrences(of: "config.json: ", with: ""))") }
        var weights: [String: Tensor] = [:]
        for name in g.tensorNames {
            guard let hf = hfName(name) else { throw ModelError("\(path): tensor '\(name)' has no Hugging Face counterpart") }
            var t = try g.tensor(name)
            for (suffix, n) in [("q_proj.weight", heads), ("k_proj.weight", kvHeads)] where family == .llama && hf.hasSuffix(suffix) {
                guard t.shape.count == 2, t.size(0) % (2 * n) == 0 else {
                    throw ModelError("\(path): tensor '\(name)' has shape \(t.shape), which \(n) heads of even size cannot split")
                }
                t = try withTorchErrors { unpermute(t, heads: n) }
            }
            weights[hf] = try withTorchErrors { t.to(dtype: dtype).contiguous() }
        }
        let model = try CausalLM(config: config, weights: weights, source: path)
        let tokenizer = try Tokenizer.load(gguf: g)
        try checkVocabulary(tokenizer, config, file: path)
        return Pretrained(model: model, tokenizer: tokenizer, chatTemplateText: g.string("tokenizer.chat_template"), source: path)
    }

    // MARK: saving

    /// Writes a Hugging Face directory (config.json, model.safetensors, tokenizer.json,
    /// tokenizer_config.json, generation_config.json) that transformers loads unchanged. LoRA
    /// adapters, if attached, are merged into a copy of the weights. Written to a temporary folder
    /// first and renamed into place, so an interrupted save leaves no half directory. `dir` must be
    /// new, empty, or a model this method wrote before (it leaves a `.tokenwise-model` marker):
    /// anything else is refused, never deleted.
    public func save(to dir: URL, dtype: DType = .float32) throws {
        let fm = FileManager.default
        try Self.checkWritable(dir)
        let tmp = dir.deletingLastPathComponent().appendingPathComponent(".\(dir.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        do {
            var weights = model.weights
            try withTorchErrors {
                try withNoGrad {
                    if let lora = model.lora { weights = lora.merged(weights) }
                    weights = weights.mapValues { $0.detached().to(.cpu, dtype: dtype).contiguous() }
                    try Safetensors.write(weights, metadata: ["format": "pt"], to: tmp.appendingPathComponent("model.safetensors"))
                }
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            var cfg = try JSONSerialization.jsonObject(with: enc.encode(model.config)) as! [String: Any]
            cfg["torch_dtype"] = dtype == .bfloat16 ? "bfloat16" : dtype == .float16 ? "float16" : "float32"
            try JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted, .sortedKeys]).write(to: tmp.appendingPathComponent("config.json"))
            try tokenizer.tokenizerJSON().write(to: tmp.appendingPathComponent("tokenizer.json"))
            var tc: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": model.config.maxPositionEmbeddings,
                                     "add_bos_token": false, "clean_up_tokenization_spaces": false]
            if let b = tokenizer.bosId { tc["bos_token"] = tokenizer.tokens[b] }
            if let e = tokenizer.eosIds.first { tc["eos_token"] = tokenizer.tokens[e]; tc["pad_token"] = tokenizer.tokens[e] }
            if let t = chatTemplateText { tc["chat_template"] = t }
            try JSONSerialization.data(withJSONObject: tc, options: [.prettyPrinted, .sortedKeys]).write(to: tmp.appendingPathComponent("tokenizer_config.json"))
            var gen: [String: Any] = ["_from_model_config": true]
            if let b = tokenizer.bosId { gen["bos_token_id"] = b }
            if !tokenizer.eosIds.isEmpty { gen["eos_token_id"] = tokenizer.eosIds.count == 1 ? tokenizer.eosIds[0] : tokenizer.eosIds }
            try JSONSerialization.data(withJSONObject: gen, options: [.prettyPrinted, .sortedKeys]).write(to: tmp.appendingPathComponent("generation_config.json"))
            try Data("written by tokenwise; a later save may replace this folder\n".utf8).write(to: tmp.appendingPathComponent(Self.marker))
            try Self.replace(dir, with: tmp)
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
    }

    /// The file that marks a directory as a model Tokenwise wrote (and may replace).
    public static let marker = ".tokenwise-model"

    /// Refuses an output path that exists and is not an empty directory or an earlier save.
    static func checkWritable(_ dir: URL) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir.path, isDirectory: &isDir) else { return }
        guard isDir.boolValue else { throw ModelError("\(dir.path) exists and is a file: choose another output directory") }
        let items = try fm.contentsOfDirectory(atPath: dir.path)
        guard items.isEmpty || items.contains(marker) else {
            throw ModelError("\(dir.path) exists and holds files Tokenwise did not write (no \(marker) marker); "
                + "choose a new output directory, or empty this one yourself")
        }
        if let other = items.sorted().first(where: { !written.contains($0) }) {
            throw ModelError("\(dir.path) holds '\(other)', which Tokenwise did not write; move it away or choose another output directory")
        }
    }

    /// The files a save writes (a folder holding only these may be replaced).
    static let written: Set<String> = [marker, "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]

    /// A save interrupted between setting the old folder aside and moving the new one in leaves
    /// `.NAME.old-PID`: put it back when the folder is missing, else drop it.
    static func recoverInterrupted(_ dir: URL, old: URL) {
        let fm = FileManager.default
        guard fm.fileExists(atPath: old.path) else { return }
        if fm.fileExists(atPath: dir.path) { try? fm.removeItem(at: old) } else { try? fm.moveItem(at: old, to: dir) }
    }

    /// Moves `tmp` to `dir`; an earlier save (or an empty directory) at `dir` is set aside first
    /// and removed only once the new one is in place.
    static func replace(_ dir: URL, with tmp: URL) throws {
        let fm = FileManager.default
        let old = dir.deletingLastPathComponent().appendingPathComponent(".\(dir.lastPathComponent).old-\(ProcessInfo.processInfo.processIdentifier)")
        recoverInterrupted(dir, old: old)
        try checkWritable(dir)
        guard fm.fileExists(atPath: dir.path) else { return try fm.moveItem(at: tmp, to: dir) }
        try fm.moveItem(at: dir, to: old)
        do { try fm.moveItem(at: tmp, to: dir) } catch {
            try? fm.moveItem(at: old, to: dir)
            throw error
        }
        try? fm.removeItem(at: old)
    }
}

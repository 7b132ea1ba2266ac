import Foundation

extension Tokenizer {
    /// From a Hugging Face `tokenizer.json` (BPE model, byte-level pre-tokenizer) and, when present,
    /// `tokenizer_config.json` for the BOS/EOS tokens.
    public static func load(tokenizerJSON url: URL, config configURL: URL? = nil) throws -> Tokenizer {
        let path = url.path
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("\(path): cannot read (missing tokenizer)") }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw ModelError("\(path): not a JSON object") }
        guard let model = root["model"] as? [String: Any] else { throw ModelError("\(path): missing 'model'") }
        guard (model["type"] as? String) == "BPE" else {
            throw ModelError("\(path): model.type '\(model["type"] ?? "none")' is not supported (only BPE)")
        }
        guard let vocab = model["vocab"] as? [String: Int] else { throw ModelError("\(path): model.vocab must map strings to ids") }
        var merges = [(String, String)]()
        for (k, m) in ((model["merges"] as? [Any]) ?? []).enumerated() {
            if let s = m as? String {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw ModelError("\(path): model.merges[\(k)] '\(s)' is not 'a b'") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = m as? [String], pair.count == 2 {
                merges.append((pair[0], pair[1]))
            } else {
                throw ModelError("\(path): model.merges[\(k)] is neither 'a b' nor [a, b]")
            }
        }
        var added: [String: Int] = [:], special = Set<Int>()
        for (k, t) in ((root["added_tokens"] as? [[String: Any]]) ?? []).enumerated() {
            guard let id = t["id"] as? Int, let content = t["content"] as? String else {
                throw ModelError("\(path): added_tokens[\(k)] needs 'id' and 'content'")
            }
            added[content] = id
            if (t["special"] as? Bool) ?? false { special.insert(id) }
        }
        // Ids index the token table: each must be >= 0, and the table may have a few holes but not
        // be mostly empty (an id of 2^62 would ask for an exabyte).
        let entries = vocab.count + added.count
        for (what, table) in [("model.vocab", vocab), ("added_tokens", added)] {
            if let (t, id) = table.first(where: { $0.value < 0 || $0.value >= 2 * entries + 1024 }) {
                throw ModelError("\(path): \(what) gives '\(t)' the id \(id); ids must be 0…\(2 * entries + 1023) for \(entries) tokens")
            }
        }
        let size = Swift.max((vocab.values.max() ?? -1), (added.values.max() ?? -1)) + 1
        var tokens = [String](repeating: "", count: size)
        for (t, id) in vocab { tokens[id] = t }
        for (t, id) in added { tokens[id] = t }
        let pre = try preTokenizer(root["pre_tokenizer"], path: path)
        var bos: Int? = nil, eos: [Int] = []
        if let configURL, let cdata = FileManager.default.contents(atPath: configURL.path),
           let cfg = try? JSONSerialization.jsonObject(with: cdata) as? [String: Any] {
            func tokenName(_ v: Any?) -> String? { (v as? String) ?? ((v as? [String: Any])?["content"] as? String) }
            if let b = tokenName(cfg["bos_token"]) { bos = added[b] ?? vocab[b] }
            if let e = tokenName(cfg["eos_token"]), let id = added[e] ?? vocab[e] { eos = [id] }
        }
        return try Tokenizer(tokens: tokens, merges: merges, added: added, special: special, pre: pre, bosId: bos, eosIds: eos,
                             ignoreMerges: (model["ignore_merges"] as? Bool) ?? false, source: path)
    }

    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func preTokenizer(_ value: Any?, path: String) throws -> PreTokenizer {
        guard let p = value as? [String: Any], let type = p["type"] as? String else {
            throw ModelError("\(path): pre_tokenizer is missing (a byte-level BPE needs one)")
        }
        if type == "ByteLevel", (p["use_regex"] as? Bool) ?? true { return .gpt2 }
        if type == "Sequence", let seq = p["pretokenizers"] as? [[String: Any]] {
            let types = seq.compactMap { $0["type"] as? String }
            if types == ["Digits", "ByteLevel"], (seq[0]["individual_digits"] as? Bool) == true { return .smollm }
            if types == ["Split", "ByteLevel"], let pattern = (seq[0]["pattern"] as? [String: Any])?["Regex"] as? String {
                if pattern == llama3Pattern { return .llama3 }
                if pattern == qwen2Pattern { return .qwen2 }
            }
            throw ModelError("\(path): pre_tokenizer Sequence \(types) is not supported (supported: GPT-2 ByteLevel, SmolLM2 Digits+ByteLevel, Llama-3 and Qwen2 Split+ByteLevel)")
        }
        throw ModelError("\(path): pre_tokenizer '\(type)' is not supported (supported: GPT-2 ByteLevel, SmolLM2 Digits+ByteLevel, Llama-3 and Qwen2 Split+ByteLevel)")
    }

    /// From GGUF metadata (`tokenizer.ggml.*`): model gpt2 (byte-level BPE), tokens, merges, token types.
    public static func load(gguf: GGUFFile) throws -> Tokenizer {
        let path = gguf.url.path
        guard let model = gguf.string("tokenizer.ggml.model") else { throw ModelError("\(path): missing metadata 'tokenizer.ggml.model' (no tokenizer)") }
        guard model == "gpt2" else { throw ModelError("\(path): tokenizer.ggml.model '\(model)' is not supported (only gpt2-style byte-level BPE)") }
        let tokens: [String] = try gguf.require("tokenizer.ggml.tokens") { $0.array?.compactMap(\.string) }
        let mergeStrings: [String] = try gguf.require("tokenizer.ggml.merges") { $0.array?.compactMap(\.string) }
        let types = gguf.metadata["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw ModelError("\(path): tokenizer.ggml.token_type has \(types.count) entries but tokenizer.ggml.tokens has \(tokens.count)")
        }
        var added: [String: Int] = [:], special = Set<Int>()
        for (id, t) in types.enumerated() where t == 3 || t == 4 {   // control, user-defined
            added[tokens[id]] = id
            if t == 3 { special.insert(id) }
        }
        let preName = gguf.string("tokenizer.ggml.pre") ?? "gpt2"
        let pre: PreTokenizer
        switch preName {
        case "smollm": pre = .smollm
        case "gpt2", "default": pre = .gpt2
        case "llama-bpe", "llama3": pre = .llama3
        case "qwen2": pre = .qwen2
        default: throw ModelError("\(path): tokenizer.ggml.pre '\(preName)' is not supported (smollm, gpt2, llama-bpe, qwen2)")
        }
        let merges = mergeStrings.map { s -> (String, String) in
            let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        var eos = [Int]()
        if let e = gguf.int("tokenizer.ggml.eos_token_id") { eos.append(e) }
        if let e = gguf.int("tokenizer.ggml.eot_token_id"), !eos.contains(e) { eos.append(e) }
        return try Tokenizer(tokens: tokens, merges: merges, added: added, special: special, pre: pre,
                             bosId: gguf.int("tokenizer.ggml.bos_token_id"), eosIds: eos, source: path)
    }

    /// A `tokenizer.json` that Hugging Face `tokenizers` / `transformers` load unchanged.
    public func tokenizerJSON() throws -> Data {
        // Added tokens belong in the model vocabulary too: `tokenizers` re-numbers an added token
        // whose content the vocabulary lacks.
        var vocab: [String: Int] = [:]
        for (id, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = id }
        let added = addedTokens.sorted { $0.value < $1.value }.map { content, id -> [String: Any] in
            ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": specialIds.contains(id)]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": pre == .gpt2 || pre == .smollm]
        let preTok: [String: Any]
        switch pre {
        case .gpt2: preTok = byteLevel
        case .smollm: preTok = ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]]
        case .llama3, .qwen2:
            let pattern = pre == .llama3 ? Tokenizer.llama3Pattern : Tokenizer.qwen2Pattern
            preTok = ["type": "Sequence", "pretokenizers": [["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false], byteLevel]]
        }
        let root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added, "normalizer": NSNull(),
            "pre_tokenizer": preTok,
            "post_processor": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignoreMerges,
                      "vocab": vocab, "merges": mergeList.map { [$0.0, $0.1] }],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }
}

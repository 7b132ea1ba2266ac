import Foundation
import XCTest
@testable import Models
@testable import Torch

final class PretrainedTests: XCTestCase {
    let ids = [[72, 101, 108, 108, 111, 32, 119, 111]]

    func testHuggingFaceDirectoryRoundTripForEveryFamily() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (family, tied) in [(ModelConfig.Family.llama, true), (.qwen2, false), (.qwen3, true)] {
            let p = try tinyPretrained(family, tied: tied)
            let out = dir.appendingPathComponent(family.rawValue)
            try p.save(to: out)
            let files = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
            XCTAssertEqual(files, [".tokenwise-model", "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
            let q = try Pretrained.load(out.path)
            XCTAssertEqual(q.model.config, p.model.config)
            XCTAssertEqual(try logits(q.model, ids), try logits(p.model, ids), "\(family)")
            XCTAssertEqual(q.tokenizer.encode("hello world<|im_end|>"), p.tokenizer.encode("hello world<|im_end|>"))
            XCTAssertEqual(q.tokenizer.eosIds, [257])
            XCTAssertEqual(try q.chatTemplate(), try p.chatTemplate())
        }
        // bf16 on disk, loaded back to float32: close, not equal.
        let p = try tinyPretrained()
        try p.save(to: dir.appendingPathComponent("bf16"), dtype: .bfloat16)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("bf16/config.json"))) as! [String: Any]
        XCTAssertEqual(config["torch_dtype"] as? String, "bfloat16")
        XCTAssertEqual(config["architectures"] as? [String], ["LlamaForCausalLM"])
        let q = try Pretrained.load(dir.appendingPathComponent("bf16").path)
        XCTAssertLessThan(maxDiff(try logits(q.model, ids), try logits(p.model, ids)), 0.05)
    }

    /// A save goes to a new or empty directory or over an earlier save; it refuses (and leaves
    /// untouched) a file, a folder of someone else's files, and `/`.
    func testSaveNeverOverwritesWhatItDidNotWrite() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try tinyPretrained(), fm = FileManager.default
        let data = dir.appendingPathComponent("data.jsonl")
        try Data("{\"prompt\": \"keep me\"}\n".utf8).write(to: data)
        XCTAssertThrowsError(try p.save(to: data)) { XCTAssertEqual("\($0)", "\(data.path) exists and is a file: choose another output directory") }
        XCTAssertEqual(try String(contentsOf: data, encoding: .utf8), "{\"prompt\": \"keep me\"}\n")
        let mine = dir.appendingPathComponent("mine")
        try fm.createDirectory(at: mine, withIntermediateDirectories: true)
        try Data("notes".utf8).write(to: mine.appendingPathComponent("notes.txt"))
        XCTAssertThrowsError(try p.save(to: mine)) {
            XCTAssertEqual("\($0)", "\(mine.path) exists and holds files Tokenwise did not write (no .tokenwise-model marker); "
                           + "choose a new output directory, or empty this one yourself")
        }
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: mine.path), ["notes.txt"])
        XCTAssertThrowsError(try p.save(to: URL(fileURLWithPath: "/")))
        // No temporary sibling is left behind by a refusal.
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path).sorted(), ["data.jsonl", "mine"])
        // An empty directory, then the earlier save itself, are fine.
        let out = dir.appendingPathComponent("out")
        try fm.createDirectory(at: out, withIntermediateDirectories: true)
        try p.save(to: out)
        try p.save(to: out)
        XCTAssertTrue(fm.fileExists(atPath: out.appendingPathComponent("model.safetensors").path))
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path).sorted(), ["data.jsonl", "mine", "out"])
        // A file the user added to an earlier save is not Tokenwise's to delete.
        try Data("mine".utf8).write(to: out.appendingPathComponent("eval.txt"))
        XCTAssertThrowsError(try p.save(to: out)) {
            XCTAssertEqual("\($0)", "\(out.path) holds 'eval.txt', which Tokenwise did not write; move it away or choose another output directory")
        }
        try fm.removeItem(at: out.appendingPathComponent("eval.txt"))
        // A save interrupted after setting the old folder aside gets it back, then replaces it.
        let old = dir.appendingPathComponent(".out.old-\(ProcessInfo.processInfo.processIdentifier)")
        try fm.moveItem(at: out, to: old)
        try p.save(to: out)
        XCTAssertFalse(fm.fileExists(atPath: old.path))
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path).sorted(), ["data.jsonl", "mine", "out"])
    }

    func testShardedCheckpoint() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try tinyPretrained()
        try p.save(to: dir)
        // Split model.safetensors into two shards with an index.
        let single = try Safetensors.File(url: dir.appendingPathComponent("model.safetensors"))
        var shards: [[String: Tensor]] = [[:], [:]], map: [String: String] = [:]
        for (k, name) in single.names.enumerated() {
            shards[k % 2][name] = try single.tensor(name)
            map[name] = "model-0000\(k % 2 + 1)-of-00002.safetensors"
        }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.safetensors"))
        for (k, s) in shards.enumerated() { try Safetensors.write(s, to: dir.appendingPathComponent("model-0000\(k + 1)-of-00002.safetensors")) }
        try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertEqual(try logits(try Pretrained.load(dir.path).model, ids), try logits(p.model, ids))
        // End ids from generation_config.json join the tokenizer's.
        try JSONSerialization.data(withJSONObject: ["eos_token_id": [257, 256]]).write(to: dir.appendingPathComponent("generation_config.json"))
        XCTAssertEqual(try Pretrained.load(dir.path).tokenizer.eosIds, [257, 256])
    }

    func testBadDirectoriesNameTheFileAndField() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try tinyPretrained().save(to: dir)
        func load() -> String { do { _ = try Pretrained.load(dir.path); return "no error" } catch { return "\(error)" } }
        // A shape that disagrees with config.json.
        let cfgURL = dir.appendingPathComponent("config.json")
        let original = try Data(contentsOf: cfgURL)
        var cfg = try JSONSerialization.jsonObject(with: original) as! [String: Any]
        cfg["intermediate_size"] = 96
        try JSONSerialization.data(withJSONObject: cfg).write(to: cfgURL)
        XCTAssertEqual(load(), "\(dir.path): weight 'model.layers.0.mlp.down_proj.weight' has shape [64, 128] but config.json implies [64, 96]")
        // 0 heads without a head_dim divided by zero before any check (found by the fuzz suite).
        cfg["intermediate_size"] = 128
        cfg["num_attention_heads"] = 0
        cfg["head_dim"] = nil
        try JSONSerialization.data(withJSONObject: cfg).write(to: cfgURL)
        XCTAssertEqual(load(), "\(cfgURL.path): 'num_attention_heads' must be positive, got 0")
        cfg["num_attention_heads"] = 4
        cfg["model_type"] = "mamba"
        try JSONSerialization.data(withJSONObject: cfg).write(to: cfgURL)
        XCTAssertEqual(load(), "\(cfgURL.path): model_type 'mamba' is not supported (supported: llama, qwen2, qwen3)")
        try original.write(to: cfgURL)
        // A missing tokenizer.
        let tok = dir.appendingPathComponent("tokenizer.json")
        let tokData = try Data(contentsOf: tok)
        try FileManager.default.removeItem(at: tok)
        XCTAssertEqual(load(), "\(tok.path): cannot read (missing tokenizer)")
        // A tokenizer with ids past the embedding's rows (found by the fuzz suite: the forward pass
        // indexed past the table and trapped).
        var tokObj = try JSONSerialization.jsonObject(with: tokData) as! [String: Any]
        var model = tokObj["model"] as! [String: Any]
        var vocab = model["vocab"] as! [String: Int]
        vocab["far"] = 1170
        model["vocab"] = vocab
        tokObj["model"] = model
        try JSONSerialization.data(withJSONObject: tokObj).write(to: tok)
        XCTAssertEqual(load(), "\(tok.path): the tokenizer has 1171 token ids but the model's embedding has 270 rows (vocab_size)")
        try tokData.write(to: tok)
        // Truncated weights.
        let st = dir.appendingPathComponent("model.safetensors")
        let weights = try Data(contentsOf: st)
        try weights.prefix(weights.count - 10).write(to: st)
        XCTAssertTrue(load().contains("outside the"), load())
        try weights.write(to: st)
        XCTAssertEqual(load(), "no error")
        XCTAssertEqual("\(String(describing: try? Pretrained.load(dir.appendingPathComponent("nope").path)))", "nil")
    }

    /// A GGUF written as llama.cpp does (q/k rows permuted) loads back to identical logits, and
    /// converts to a Hugging Face directory with identical logits.
    func testGGUFToHuggingFaceRoundTrip() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try tinyPretrained(.llama, tied: false)
        let c = p.model.config
        var w = GGUFWriter()
        let tok = p.tokenizer
        w.metadata = [
            ("general.architecture", .string("llama")), ("llama.block_count", .uint(UInt64(c.numHiddenLayers))),
            ("llama.embedding_length", .uint(64)), ("llama.feed_forward_length", .uint(128)),
            ("llama.attention.head_count", .uint(4)), ("llama.attention.head_count_kv", .uint(2)),
            ("llama.rope.freq_base", .float(10_000)), ("llama.attention.layer_norm_rms_epsilon", .float(1e-5)),
            ("llama.context_length", .uint(128)), ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("gpt2")),
            ("tokenizer.ggml.tokens", .array(tok.tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(tok.tokens.indices.map { .int((256...258).contains($0) ? 3 : 1) })),
            ("tokenizer.ggml.merges", .array(tok.mergeList.map { .string("\($0.0) \($0.1)") })),
            ("tokenizer.ggml.bos_token_id", .uint(258)), ("tokenizer.ggml.eos_token_id", .uint(257)),
            ("tokenizer.chat_template", .string(chatMLTemplate)),
        ]
        let names: [String: String] = ["model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"]
        let modules = ["input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
                       "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                       "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"]
        try withTorchErrors {
            for (hf, t) in p.model.weights.sorted(by: { $0.key < $1.key }) {
                var gname = names[hf]
                if gname == nil {
                    let parts = hf.split(separator: ".")
                    let module = parts[3...(parts.count - 2)].joined(separator: ".")
                    gname = "blk.\(parts[2]).\(modules[module]!).weight"
                }
                var value = t
                if hf.hasSuffix("q_proj.weight") { value = Pretrained.permuteForGGUF(t, heads: 4) }
                if hf.hasSuffix("k_proj.weight") { value = Pretrained.permuteForGGUF(t, heads: 2) }
                w.tensors.append((gname!, value.contiguous()))
            }
        }
        let url = dir.appendingPathComponent("tiny.gguf")
        try w.write(to: url)
        let g = try Pretrained.load(url.path)
        XCTAssertEqual(g.model.config.numKeyValueHeads, 2)
        XCTAssertFalse(g.model.config.tieWordEmbeddings)
        XCTAssertLessThan(maxDiff(try logits(g.model, ids), try logits(p.model, ids)), 1e-6)
        XCTAssertEqual(g.tokenizer.encode("hello<|im_start|>"), [262, 256])
        XCTAssertEqual(try g.chatTemplate(), .chatML(defaultSystem: "You are tiny."))
        let hf = dir.appendingPathComponent("hf")
        try g.save(to: hf)
        XCTAssertEqual(try logits(try Pretrained.load(hf.path).model, ids), try logits(g.model, ids))

        // Metadata that used to crash the loader (division by zero, index out of range, a huge
        // weight table, an unsplittable q tensor) is an error naming the file and the field.
        func loading(_ edit: (inout GGUFWriter) -> Void) throws -> String {
            var bad = w
            edit(&bad)
            let file = dir.appendingPathComponent("bad.gguf")
            try bad.write(to: file)
            do { _ = try Pretrained.load(file.path); return "no error" } catch { return "\(error)".replacingOccurrences(of: file.path, with: "bad.gguf") }
        }
        func set(_ key: String, _ value: GGUFFile.Value) -> (inout GGUFWriter) -> Void {
            { w in w.metadata = w.metadata.map { $0.0 == key ? (key, value) : $0 } }
        }
        XCTAssertEqual(try loading(set("llama.attention.head_count", .uint(0))),
                       "bad.gguf: llama.attention.head_count (0) and head_count_kv (2) must be positive")
        XCTAssertEqual(try loading(set("llama.attention.head_count_kv", .uint(0))),
                       "bad.gguf: llama.attention.head_count (4) and head_count_kv (0) must be positive")
        XCTAssertEqual(try loading(set("llama.block_count", .uint(4_294_967_295))),
                       "bad.gguf: 'num_hidden_layers' is 4294967295, more than Tokenwise supports (10000)")
        XCTAssertEqual(try loading(set("tokenizer.ggml.eos_token_id", .uint(100_000))), "bad.gguf: 'eos_token_id' 100000 is outside the vocabulary (270)")
        XCTAssertEqual(try loading(set("tokenizer.ggml.token_type", .array([.int(1), .int(3)]))),
                       "bad.gguf: tokenizer.ggml.token_type has 2 entries but tokenizer.ggml.tokens has 270")
        XCTAssertEqual(try loading(set("llama.attention.head_count", .uint(3))),
                       "bad.gguf: num_attention_heads (3) must be a multiple of num_key_value_heads (2)")
        XCTAssertEqual(try loading { w in
            w.tensors = w.tensors.map { name, t in name == "blk.0.attn_q.weight" ? (name, t.reshaped([-1]).contiguous()) : (name, t) }
        }, "bad.gguf: tensor 'blk.0.attn_q.weight' has shape [4096], which 4 heads of even size cannot split")
    }

    func testLoRA() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try tinyPretrained()
        let base = try logits(p.model, ids)
        let lora = try LoRA(attachingTo: p.model, config: .init(rank: 4, alpha: 8, targetModules: ["q_proj", "v_proj", "down_proj"]))
        XCTAssertEqual(lora.adapters.count, 6)
        XCTAssertEqual(lora.parameters.count, 12)
        XCTAssertEqual(try logits(p.model, ids), base)       // B = 0: unchanged
        try withTorchErrors { for ad in lora.adapters.values { ad.b = (Tensor.randn(ad.b.shape, generator: try Generator(seed: 2)) * 0.1).requiringGrad() } }
        let adapted = try logits(p.model, ids)
        XCTAssertGreaterThan(maxDiff(adapted, base), 1e-4)
        // Gradients reach the adapters and not the frozen base.
        try withTorchErrors {
            let l = try p.model(Tensor(ids[0].map(Int64.init), shape: [1, 8])).sum()
            l.backward()
            XCTAssertNotNil(lora.parameters[0].grad)
            XCTAssertNil(p.model.weights["model.layers.0.self_attn.q_proj.weight"]!.grad)
        }
        // Save and load the adapter alone.
        try lora.save(to: dir.appendingPathComponent("adapter"))
        let fresh = try tinyPretrained()
        try LoRA.load(from: dir.appendingPathComponent("adapter"), into: fresh.model)
        XCTAssertEqual(try logits(fresh.model, ids), adapted)
        // Saving merges the adapters: the saved model has the adapted logits without LoRA.
        try p.save(to: dir.appendingPathComponent("merged"))
        XCTAssertLessThan(maxDiff(try logits(try Pretrained.load(dir.appendingPathComponent("merged").path).model, ids), adapted), 1e-5)
        try LoRA.merge(into: p.model)
        XCTAssertNil(p.model.lora)
        XCTAssertLessThan(maxDiff(try logits(p.model, ids), adapted), 1e-5)
        XCTAssertThrowsError(try LoRA(attachingTo: p.model, config: .init(targetModules: ["nope"]))) {
            XCTAssertEqual("\($0)", "lora: no linear layer matches target_modules [\"nope\"]")
        }
    }
}

import Credit
import Foundation
import Models
import Torch

/// Valid inputs the mutations start from: a 1-layer width-16 model in each format, a small BPE
/// tokenizer with merges, the presets' configs, datasets of each kind, and a request per method.
enum FuzzSeeds {
    static func model() throws -> Pretrained {
        let tiny = try Pretrained.tinyRandom()
        let config = ModelConfig(modelType: .llama, vocabSize: 270, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1,
                                 numAttentionHeads: 2, numKeyValueHeads: 1, headDim: 8, maxPositionEmbeddings: 64, eosTokenId: [257])
        return Pretrained(model: try CausalLM.random(config: config, seed: 1), tokenizer: tiny.tokenizer,
                          chatTemplateText: tiny.chatTemplateText, source: "fuzz-seed")
    }

    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokenwise-fuzz-seed-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func gguf(_ p: Pretrained) throws -> Data {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.gguf")
        try p.ggufWriter().write(to: url)
        return try Data(contentsOf: url)
    }

    /// A GGUF whose one metadata value is an array nested `depth` deep (a recursive reader must
    /// stop, not overflow its stack).
    static func deepGGUF(depth: Int) -> Data {
        var d = Data("GGUF".utf8)
        func u32(_ x: UInt32) { withUnsafeBytes(of: x.littleEndian) { d.append(contentsOf: $0) } }
        func u64(_ x: UInt64) { withUnsafeBytes(of: x.littleEndian) { d.append(contentsOf: $0) } }
        u32(3); u64(0); u64(1)
        u64(4); d.append(contentsOf: Array("deep".utf8)); u32(9)
        for _ in 0..<depth { u32(9); u64(1) }
        u32(4); u64(1); u32(7)
        return d
    }

    static func huggingFace(_ p: Pretrained) throws -> [String: Data] {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("hf")
        try p.save(to: out)
        var files = [String: Data]()
        for name in try FileManager.default.contentsOfDirectory(atPath: out.path) where !name.hasPrefix(".") {
            files[name] = try Data(contentsOf: out.appendingPathComponent(name))
        }
        return files
    }

    /// A byte-level BPE with a few merges and added tokens, so merge parsing and ranking are reached.
    static func tokenizerFiles() throws -> [String: Data] {
        var tokens = Array(try Pretrained.tinyRandom().tokenizer.tokens.prefix(256))
        let merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or")]
        tokens += merges.map { $0.0 + $0.1 }
        let added = ["<|im_start|>": tokens.count, "<|im_end|>": tokens.count + 1]
        tokens += ["<|im_start|>", "<|im_end|>"]
        let t = try Tokenizer(tokens: tokens, merges: merges, added: added, special: Set(added.values), pre: .smollm,
                              bosId: added["<|im_start|>"], eosIds: [added["<|im_end|>"]!])
        let config = #"{"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}, "chat_template": "x"}"#
        return ["tokenizer.json": try t.tokenizerJSON(), "tokenizer_config.json": Data(config.utf8)]
    }

    static let userYAML = """
    model:
      name: tiny-random
      lora: {rank: 4, alpha: 8}
    data:
      task: countdown
      difficulty: 2
      train_size: 64
      eval_size: 8
    credit:
      method: d3s
      params: {base: grpo}
    objective:
      ratio: token
      clip: {eps_low: 0.2, eps_high: 0.28}
      kl_coef: 0.01
    rollout: {max_new_tokens: 16, temperature: 0.9, top_p: 0.95}
    train: {steps: 3, prompts_per_step: 2, samples_per_prompt: 4, epochs: 2, mini_batches: 2}
    optim: {lr: 1e-4, schedule: cosine, warmup_steps: 1}
    eval: {samples: 2, every: 0}
    """

    static let datasets = [
        #"{"prompt": "What is 2+3?", "answer": "5"}"# + "\n" + #"{"prompt": "1+1?", "answer": "2", "id": 7}"# + "\n"
            + #"{"prompt": "4+4?", "answer": "8"}"# + "\n" + #"{"prompt": "0+9?", "answer": "9"}"#,
        #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}"#
            + "\n" + #"{"messages": [{"role": "user", "content": "3+3?"}], "answer": "6"}"# + "\n"
            + #"{"messages": [{"role": "user", "content": "5+1?"}], "answer": "6"}"# + "\n" + #"{"messages": [{"role": "user", "content": "7+1?"}], "answer": "8"}"#,
        (0..<4).map { k in
            #"{"prompt": "Say hi \#(k)", "chosen": "hi", "rejected": "no", "chosen_weights": [1, 0.5], "rejected_weights": [0.2, 1], "chosen_kl_weights": [1, 1], "rejected_kl_weights": [0.5, 1]}"#
        }.joined(separator: "\n"),
        (0..<4).map { k in #"{"prompt": "Is \#(k) odd?", "chosen": "yes", "rejected": "no", "h_w": \#(k % 2), "h_l": 1}"# }.joined(separator: "\n"),
    ]

    /// One request per method with every field a method may read, in two groups of three.
    static func creditRequests() -> [String] {
        func trajectory(_ g: Int, _ i: Int) -> String {
            let n = 4 + i, r = Double((g + i) % 3) / 2
            func list(_ f: (Int) -> Double) -> String { "[" + (0..<n).map { "\(f($0))" }.joined(separator: ",") + "]" }
            let node = "g\(g)n\(i % 2)"
            return """
            {"tokens": [\((0..<n).map { "\(5 + ($0 * 7 + i) % 40)" }.joined(separator: ","))], "reward": \(r),
             "logprobs": \(list { -0.1 - Double(($0 + i) % 5) * 0.3 }), "entropies": \(list { 0.2 + Double(($0 * 3 + i) % 4) * 0.4 }),
             "values": \(list { Double($0) / Double(n) }), "kl": \(list { 0.01 * Double($0 % 3) }), "ratios": \(list { 1 + 0.05 * Double($0 % 3 - 1) }),
             "step_rewards": [{"index": 1, "reward": 0.5}, {"index": \(n - 1), "reward": \(r)}],
             "segments": [-1, 1], "segment_values": [0.4, \(0.3 + r / 2)],
             "states": [{"index": 0, "key": "s\(g)"}, {"index": 2, "key": "s\(g)x\(i % 2)"}],
             "tree_path": ["\(node)", "\(node)c\(i)"], "planning": [1]}
            """
        }
        let groups = (0..<2).map { g in
            #"{"id": "p\#(g)", "position_scores": [0.1, 0.9, 0.4, 0.3, 0.2, 0.8], "trajectories": ["# + (0..<3).map { trajectory(g, $0) }.joined(separator: ",") + "]}"
        }.joined(separator: ",")
        return CreditMethod.allCases.map { m in
            let params = m == .d3s ? #", "params": {"base": "grpo"}"# : ""
            let method = m == .spoTree ? "spo_tree" : m.rawValue
            let tree = m == .spoTree ? groups.replacingOccurrences(of: #""segments": [-1, 1]"#, with: #""segments": [0, 2]"#) : groups
            return #"{"method": "\#(method)"\#(params), "progress": 0.3, "groups": [\#(tree)]}"#
        }
    }

    static let objectiveRequests = [
        #"{"objective": {"ratio": "token", "clip": {"eps_low": 0.2, "eps_high": 0.28}, "kl_coef": 0.1, "entropy_coef": 0.01}, "trajectories": [{"logprobs": [-0.5, -1.2, -0.1], "old_logprobs": [-0.6, -1.0, -0.1], "advantages": [1, 1, 1], "ref_logprobs": [-0.7, -1.1, -0.2], "entropies": [0.5, 0.9, 0.1], "weights": [1, 0.5, 1]}, {"logprobs": [-2.0], "old_logprobs": [-1.5], "advantages": [-0.5], "ref_logprobs": [-1.9], "entropies": [1.2], "weights": [1]}]}"#,
        #"{"objective": {"ratio": "sequence"}, "trajectories": [{"logprobs": [-0.5, -1.2], "old_logprobs": [-0.6, -1.0], "advantages": [0.3, 0.3]}, {"logprobs": [-0.1], "old_logprobs": [-0.2], "advantages": [-1]}]}"#,
        #"{"objective": {"name": "dpo", "beta": 0.1}, "pairs": [{"chosen": {"logprobs": [-0.5, -1.0], "ref_logprobs": [-0.6, -1.1]}, "rejected": {"logprobs": [-2.0], "ref_logprobs": [-1.5]}}]}"#,
        #"{"objective": {"name": "sparsepo", "beta": 0.1}, "pairs": [{"chosen": {"logprobs": [-0.5, -1.0], "ref_logprobs": [-0.6, -1.1], "weights": [1, 0.5], "kl": [0.1, 0.2], "kl_weights": [1, 1]}, "rejected": {"logprobs": [-2.0], "ref_logprobs": [-1.5], "weights": [0.3], "kl": [0.05], "kl_weights": [1]}}]}"#,
    ]

    /// What a command does with a loaded model: encode, a forward pass, decode.
    static func exercise(_ p: Pretrained) throws {
        let ids = p.tokenizer.encode("<|im_start|>user\nhi 12<|im_end|>")
        guard !ids.isEmpty else { return }
        // A loaded model must run: a forward-pass failure here is a gap in the loader's checks.
        let logits = try withTorchErrors { try p.model(Tensor(ids.map { Int64($0) }, shape: [1, ids.count])) }
        _ = p.tokenizer.decode(ids)
        _ = logits.shape
    }
}

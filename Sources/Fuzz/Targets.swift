import Credit
import Foundation
import Models
import Objectives
import Torch
import Training

/// One parser under fuzzing: its seed inputs (each a set of files by name), how each file is
/// mutated, and the code that reads them as Tokenwise would.
public struct FuzzTarget: @unchecked Sendable {
    public let name: String
    public let seeds: [[String: Data]]
    /// Words the text mutator splices in (the format's keys and values).
    public let dictionary: [String]
    /// For a binary file, how many leading bytes hold its structure; nil for text.
    public let hot: (String, Data) -> Int?
    /// Reads the files in the folder; it may throw only the project's errors, naming the file.
    public let run: (URL) throws -> Void

    public init(name: String, seeds: [[String: Data]], dictionary: [String], hot: @escaping (String, Data) -> Int? = { _, _ in nil },
                run: @escaping (URL) throws -> Void) {
        self.name = name; self.seeds = seeds; self.dictionary = dictionary; self.hot = hot; self.run = run
    }
}

extension FuzzTarget {
    /// Every parser a user's file reaches: models (GGUF, Hugging Face directory), tokenizer.json,
    /// the YAML run config, JSONL datasets, and the credit / objective JSON requests.
    public static func all() throws -> [FuzzTarget] {
        let model = try FuzzSeeds.model()
        return [try gguf(model), try huggingFace(model), try tokenizerJSON(), try yaml(), jsonl(model), credit(), objective()]
    }

    static func gguf(_ model: Pretrained) throws -> FuzzTarget {
        let seed = try FuzzSeeds.gguf(model)
        return FuzzTarget(name: "gguf", seeds: [["model.gguf": seed], ["model.gguf": FuzzSeeds.deepGGUF(depth: 100_000)]],
                          dictionary: [], hot: { _, d in min(d.count, 12_000) }) { dir in
            let p = try Pretrained.load(dir.appendingPathComponent("model.gguf").path)
            try FuzzSeeds.exercise(p)
        }
    }

    static func huggingFace(_ model: Pretrained) throws -> FuzzTarget {
        let files = try FuzzSeeds.huggingFace(model)
        let keys = ["model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                    "num_key_value_heads", "head_dim", "max_position_embeddings", "bos_token_id", "eos_token_id", "rms_norm_eps",
                    "rope_theta", "tie_word_embeddings", "dtype", "shape", "data_offsets", "F32", "BF16", "F16", "I64", "weight_map"]
        return FuzzTarget(name: "hf_dir", seeds: [files], dictionary: keys.map { "\"\($0)\"" }, hot: { name, d in
            guard name.hasSuffix(".safetensors"), d.count >= 8 else { return nil }
            let n = d.prefix(8).withUnsafeBytes { Int(truncatingIfNeeded: UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
            return min(8 + max(n, 0), d.count)
        }) { dir in
            try FuzzSeeds.exercise(try Pretrained.load(dir.path))
        }
    }

    static func tokenizerJSON() throws -> FuzzTarget {
        let files = try FuzzSeeds.tokenizerFiles()
        let keys = ["model", "vocab", "merges", "added_tokens", "id", "content", "special", "pre_tokenizer", "type", "ByteLevel",
                    "Sequence", "pretokenizers", "use_regex", "ignore_merges", "BPE", "bos_token", "eos_token"]
        return FuzzTarget(name: "tokenizer_json", seeds: [files], dictionary: keys.map { "\"\($0)\"" }) { dir in
            let t = try Tokenizer.load(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"),
                                       config: dir.appendingPathComponent("tokenizer_config.json"))
            for text in ["hello world", "<|im_start|>user\n12+3<|im_end|>", "é 😀 \u{0}"] { _ = t.decode(t.encode(text)) }
        }
    }

    static func yaml() throws -> FuzzTarget {
        let seeds = try Preset.allCases.map { ["config.yaml": Data(try $0.config.yaml().utf8)] } + [["config.yaml": Data(FuzzSeeds.userYAML.utf8)]]
        let keys = ["model:", "data:", "credit:", "objective:", "rollout:", "train:", "optim:", "eval:", "output:", "method:", "params:",
                    "lora:", "rank:", "steps:", "lr:", "eval_size:", "train_size:", "samples_per_prompt:", "temperature:", "top_p:",
                    "max_new_tokens:", "schedule:", "name:", "clip_ratio:", "kl_coef:", "{", "}", "[", "]", "&a", "*a", "!!str", "<<: *a"]
        return FuzzTarget(name: "yaml", seeds: seeds, dictionary: keys) { dir in
            let url = dir.appendingPathComponent("config.yaml")
            guard let text = String(data: try Data(contentsOf: url), encoding: .utf8) else { throw TrainingError("\(url.path): not UTF-8") }
            let config = try RunConfig.load(yaml: text, file: url.path)
            do { _ = try config.yaml() } catch { throw TrainingError("\(url.path): cannot be written back: \(error)") }
        }
    }

    static func jsonl(_ model: Pretrained) -> FuzzTarget {
        let keys = ["prompt", "answer", "messages", "role", "content", "chosen", "rejected", "chosen_weights", "rejected_weights",
                    "chosen_kl_weights", "rejected_kl_weights", "h_w", "h_l", "system", "user", "assistant", "id"]
        let tokenizer = model.tokenizer, chat = try? model.chatTemplate()
        return FuzzTarget(name: "jsonl", seeds: FuzzSeeds.datasets.map { ["data.jsonl": Data($0.utf8)] },
                          dictionary: keys.map { "\"\($0)\"" }) { dir in
            var section = RunConfig.DataSection()
            section.task = dir.appendingPathComponent("data.jsonl").path
            section.evalSize = 0.25
            guard let chat else { throw TrainingError("fuzz: the seed model has no chat template") }
            let set = try Dataset.load(URL(fileURLWithPath: section.task))
            if case .preference(let pair) = set.examples[0] {
                let config = PreferenceLoss.Config(name: pair.hallucinated == nil ? .sparsepo : .fdpo)
                _ = try TaskData.loadPairs(section, objective: config, tokenizer: tokenizer, chat: chat)
            } else {
                _ = try TaskData.load(section, reward: nil, chat: chat)
            }
        }
    }

    static func credit() -> FuzzTarget {
        let keys = ["method", "params", "progress", "groups", "id", "trajectories", "tokens", "reward", "logprobs", "entropies", "values",
                    "kl", "ratios", "step_rewards", "index", "segments", "segment_values", "states", "key", "tree_path", "planning",
                    "position_scores", "base", "gamma", "lam", "std_normalize"]
        return FuzzTarget(name: "credit_json", seeds: FuzzSeeds.creditRequests().map { ["request.json": Data($0.utf8)] },
                          dictionary: keys.map { "\"\($0)\"" } + CreditMethod.allCases.map { "\"\($0.rawValue)\"" }) { dir in
            let url = dir.appendingPathComponent("request.json")
            let request = try CreditRequest.parse(try Data(contentsOf: url), source: url.path)
            do {
                let result = try request.config.estimator.estimate(request.batch)
                _ = try CreditResponse(request: request, result: result).json()
            } catch let e as CreditError {
                throw CreditError("\(url.path): \(e.message)")
            }
        }
    }

    static func objective() -> FuzzTarget {
        let keys = ["objective", "trajectories", "pairs", "logprobs", "old_logprobs", "advantages", "ref_logprobs", "rollout_logprobs",
                    "weights", "entropies", "turns", "name", "ratio", "clip", "aggregation", "mismatch", "mode", "kl", "beta",
                    "chosen", "rejected", "policy", "reference", "dpo", "sparsepo", "ipo", "simpo", "token", "sequence", "gspo_token"]
        return FuzzTarget(name: "objective_json", seeds: FuzzSeeds.objectiveRequests.map { ["request.json": Data($0.utf8)] },
                          dictionary: keys.map { "\"\($0)\"" }) { dir in
            let url = dir.appendingPathComponent("request.json")
            do {
                let out = try ObjectiveJSON.evaluate(try Data(contentsOf: url))
                _ = try ObjectiveJSON.encode(out)
            } catch let e as ObjectiveError {
                throw ObjectiveError("\(url.path): \(e.message)")
            } catch let e as TorchError {
                throw ObjectiveError("\(url.path): \(e.message)")
            }
        }
    }
}

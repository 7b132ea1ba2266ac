import Foundation
import HTTP
import Models
import Rollout

/// SGLang's native API (`rollout.remote.api: sglang`), as its `http_server.py` and
/// `io_struct.GenerateReqInput` define it: `/generate` takes a batch of `input_ids`,
/// `sampling_params` (with `n`, and `sampling_seed`, which SGLang honours when started with
/// `--enable-deterministic-inference`) and `return_logprob`, and answers one object per sample,
/// prompt by prompt, each with `output_ids` and `meta_info.output_token_logprobs` as
/// `[logprob, token id, text]`. Its `/load_lora_adapter` has no in-place reload, so the trainer
/// unloads its adapter and loads the new one under the same name before each step.
extension RemoteRollouts {
    func pushSGLangAdapter() throws {
        let name = ["lora_name": remote.adapterName]
        if loaded {
            try sglangLoRA("/unload_lora_adapter", name)
        } else {
            // An adapter of this name left by an earlier run (a resumed one): SGLang refuses to load over it.
            try? sglangLoRA("/unload_lora_adapter", name)
        }
        loaded = false
        try sglangLoRA("/load_lora_adapter", ["lora_name": remote.adapterName, "lora_path": folder.path])
        loaded = true
    }

    /// SGLang answers its LoRA routes with `success` and `error_message` (status 400 on failure).
    func sglangLoRA(_ path: String, _ body: [String: Any]) throws {
        let reply = try post(path, body)
        if reply.json["success"] as? Bool == false {
            throw TrainingError("rollout: the server at \(serverURL) refused \(path): \(Self.message(reply))")
        }
    }

    /// The request SGLang's `/generate` reads for `prompts` × `n` samples.
    func sglangBody(_ prompts: [[Int]], _ sampling: SamplingConfig) -> [String: Any] {
        var params: [String: Any] = ["max_new_tokens": sampling.maxNewTokens, "temperature": sampling.temperature, "top_p": sampling.topP,
                                     // SGLang's "whole vocabulary" is -1; Tokenwise's is 0.
                                     "top_k": sampling.topK > 0 ? sampling.topK : -1, "min_p": sampling.minP, "n": n,
                                     "ignore_eos": sampling.ignoreEos, "sampling_seed": Int64(bitPattern: sampling.seed)]
        if !sampling.stop.isEmpty { params["stop"] = sampling.stop }
        if !sampling.stopTokenIds.isEmpty { params["stop_token_ids"] = sampling.stopTokenIds }
        return ["input_ids": prompts, "sampling_params": params, "return_logprob": true, "lora_path": remote.adapterName]
    }

    func sglangRollouts(_ prompts: [[Int]], _ sampling: SamplingConfig) throws -> [Rolled] {
        let reply = try post("/generate", sglangBody(prompts, sampling))
        // A batch answers a list; one prompt with n 1 may answer the object alone.
        let parsed = try? JSONSerialization.jsonObject(with: reply.body)
        guard let items = (parsed as? [[String: Any]]) ?? (parsed as? [String: Any]).map({ [$0] }), items.count == prompts.count * n else {
            throw TrainingError("rollout: the server at \(serverURL) answered /generate with \((parsed as? [Any])?.count ?? 0) samples for \(prompts.count) prompts × \(n)")
        }
        let eos = Set(tokenizer.eosIds + sampling.stopTokenIds)
        return try items.enumerated().map { i, item in
            let tokens = ((item["output_ids"] as? [Any]) ?? []).compactMap { ($0 as? NSNumber)?.intValue }
            let meta = item["meta_info"] as? [String: Any] ?? [:]
            let entries = (meta["output_token_logprobs"] as? [[Any]]) ?? []
            let logprobs = entries.compactMap { ($0.first as? NSNumber)?.doubleValue }
            let ids = entries.compactMap { $0.count > 1 ? ($0[1] as? NSNumber)?.intValue : nil }
            guard !tokens.isEmpty, logprobs.count == tokens.count, ids == tokens else {
                throw TrainingError("rollout: the server at \(serverURL) answered sample \(i) of /generate without output_ids and one "
                    + "[logprob, token id] per output token in meta_info.output_token_logprobs (an SGLang server with return_logprob is needed)")
            }
            let kind = (meta["finish_reason"] as? [String: Any])?["type"] as? String
            let finish: FinishReason = kind == "length" ? .length : eos.contains(tokens.last!) ? .eos : .stop
            return Rolled(completion: Completion(promptIndex: i / n, sampleIndex: i % n, tokens: tokens, samplingLogprobs: [], logprobs: logprobs,
                                                 entropies: [], temperatures: Array(repeating: sampling.temperature, count: tokens.count),
                                                 finishReason: finish, text: item["text"] as? String ?? tokenizer.decode(tokens)))
        }
    }
}

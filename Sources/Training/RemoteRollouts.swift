import Foundation
import HTTP
import Models
import Rollout

/// Rollouts sampled by an inference server (`rollout.engine: remote`): before each step the
/// trainer saves its LoRA adapter and has the server load it in place (`/v1/load_lora_adapter`),
/// then sends the step's prompts as token ids to `/v1/completions` (`n` samples each, the step's
/// seed, `return_token_ids`, `logprobs: 0`) and keeps the token ids and logprobs it returns — never
/// re-tokenised text; the server reports no entropies, so the learner's are used. The learner recomputes the old logprobs (`LearnerLogprobs`), so the
/// server's logprobs are the mismatch corrections' `rollout_logprobs`. A server that is down,
/// slow or refuses gets its requests tried again with backoff, then fails the step with the URL
/// and the server's answer; the run's checkpoints are untouched. `api: sglang` speaks SGLang's
/// native routes instead (`RemoteRollouts+SGLang.swift`).
final class RemoteRollouts: RolloutSource {
    let remote: RemoteEngineConfig
    let model: CausalLM
    let tokenizer: Tokenizer
    let n: Int
    let endpoint: (host: String, port: Int, prefix: String)
    /// The adapter folder the server reads (this process's own; removed with it).
    let folder: URL
    /// Whether this process has loaded its adapter on the server (SGLang must unload it before loading it again).
    var loaded = false

    init(remote: RemoteEngineConfig, model: CausalLM, tokenizer: Tokenizer, n: Int) throws {
        guard model.lora != nil else {
            throw TrainingError("config: rollout.engine remote sends LoRA adapters to the server after each step; full fine-tuning (model.lora null) "
                + "would need the server to reload every weight, which tokenwise serve cannot: use LoRA, or rollout.engine local")
        }
        self.remote = remote
        self.model = model
        self.tokenizer = tokenizer
        self.n = n
        endpoint = try remote.endpoint()
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tokenwise-rollout-adapter-\(UUID().uuidString)")
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    var serverURL: String { remote.url }

    /// POSTs `body` to `path`; retries connection failures, timeouts and 5xx with backoff.
    func post(_ path: String, _ body: [String: Any]) throws -> HTTPReply {
        var headers = [String: String]()
        if let key = ProcessInfo.processInfo.environment[remote.apiKeyEnv], !key.isEmpty { headers["Authorization"] = "Bearer " + key }
        var last = ""
        for attempt in 0...remote.retries {
            if attempt > 0 { Thread.sleep(forTimeInterval: Swift.min(30, 0.5 * Double(1 << (attempt - 1)))) }
            do {
                let r = try http(endpoint.port, "POST", endpoint.prefix + path, json: body, headers: headers, host: endpoint.host, timeout: remote.timeout)
                if r.status == 200 { return r }
                last = "HTTP \(r.status): \(Self.message(r))"
                if r.status < 500 && r.status != 429 { break }   // the request itself is wrong: trying again changes nothing
            } catch {
                last = "\(error)"
            }
        }
        throw TrainingError("rollout: the server at \(serverURL) failed \(path) (\(remote.retries + 1) tries): \(last)")
    }

    /// A refusal's text in the shapes servers use: OpenAI's and SGLang's `{"error": {"message"}}`,
    /// FastAPI's `{"object": "error", "message"}`, SGLang's LoRA `{"error_message"}`, else the body.
    static func message(_ r: HTTPReply) -> String {
        let j = r.json
        return ((j["error"] as? [String: Any])?["message"] as? String) ?? (j["message"] as? String) ?? (j["error_message"] as? String)
            ?? String(r.text.prefix(300))
    }

    /// The trainer's current adapter, loaded in place on the server.
    func pushAdapter() throws {
        try model.lora!.save(to: folder)
        switch remote.api {
        case .openai: _ = try post("/v1/load_lora_adapter", ["lora_name": remote.adapterName, "lora_path": folder.path, "load_inplace": true])
        case .sglang: try pushSGLangAdapter()
        }
    }

    func rollouts(_ prompts: [[Int]], _ sampling: SamplingConfig, _ schedule: TemperatureSchedule) throws -> [Rolled] {
        try pushAdapter()
        if remote.api == .sglang { return try sglangRollouts(prompts, sampling) }
        var body: [String: Any] = ["model": remote.adapterName, "prompt": prompts, "n": n, "max_tokens": sampling.maxNewTokens,
                                   "temperature": sampling.temperature, "top_p": sampling.topP, "top_k": sampling.topK, "min_p": sampling.minP,
                                   "seed": Int64(bitPattern: sampling.seed), "ignore_eos": sampling.ignoreEos, "logprobs": 0, "return_token_ids": true]
        if !sampling.stop.isEmpty { body["stop"] = sampling.stop }
        if !sampling.stopTokenIds.isEmpty { body["stop_token_ids"] = sampling.stopTokenIds }
        let reply = try post("/v1/completions", body)
        guard let choices = reply.json["choices"] as? [[String: Any]], choices.count == prompts.count * n else {
            throw TrainingError("rollout: the server at \(serverURL) returned \((reply.json["choices"] as? [Any])?.count ?? 0) choices for \(prompts.count) prompts × \(n)")
        }
        let eos = Set(tokenizer.eosIds + sampling.stopTokenIds)   // as the in-process sampler: both end with .eos
        return try choices.sorted { ($0["index"] as? Int ?? 0) < ($1["index"] as? Int ?? 0) }.enumerated().map { i, c in
            let tokens = ((c["token_ids"] as? [Any]) ?? []).compactMap { ($0 as? NSNumber)?.intValue }
            let logprobs = (((c["logprobs"] as? [String: Any])?["token_logprobs"]) as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue } ?? []
            guard !tokens.isEmpty, logprobs.count == tokens.count, (c["index"] as? Int) == i else {
                throw TrainingError("rollout: the server at \(serverURL) returned choice \(i) without token_ids and one logprob per token "
                    + "(a server that supports return_token_ids and logprobs is needed: tokenwise serve, vLLM)")
            }
            let finish: FinishReason = c["finish_reason"] as? String == "length" ? .length : eos.contains(tokens.last!) ? .eos : .stop
            return Rolled(completion: Completion(promptIndex: i / n, sampleIndex: i % n, tokens: tokens, samplingLogprobs: [], logprobs: logprobs,
                                                 entropies: [], temperatures: Array(repeating: sampling.temperature, count: tokens.count),
                                                 finishReason: finish, text: c["text"] as? String ?? ""))
        }
    }
}

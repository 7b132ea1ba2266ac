import Foundation
import Hummingbird
import Models
import NIOCore
import Rollout

/// SGLang's native routes on the same engine, for clients written against SGLang (the trainer's
/// `rollout.remote.api: sglang`): `/generate` with `input_ids` (one prompt or a batch) or `text`,
/// `sampling_params`, `return_logprob`, `top_logprobs_num` and `lora_path` (the loaded adapter's
/// name); `/load_lora_adapter` and `/unload_lora_adapter` answering `success` / `error_message`;
/// `/model_info`. Fields SGLang has and this server does not implement are refused by name, as
/// are unknown ones; `stream` is refused (the OpenAI routes stream).
extension OpenAIServer {
    static let sglangFields: Set<String> = ["input_ids", "text", "sampling_params", "return_logprob", "top_logprobs_num",
                                            "logprob_start_len", "lora_path", "stream"]
    static let sglangSampling: Set<String> = ["max_new_tokens", "temperature", "top_p", "top_k", "min_p", "stop", "stop_token_ids",
                                              "ignore_eos", "n", "sampling_seed", "skip_special_tokens", "no_stop_trim"]

    func sglangRoutes(_ r: Router<BasicRequestContext>) {
        r.post("/generate") { [self] request, _ in try await sglangGenerate(try await body(request)) }
        r.post("/load_lora_adapter") { [self] request, _ in try await sglangLoRA(request, load: true) }
        r.post("/unload_lora_adapter") { [self] request, _ in try await sglangLoRA(request, load: false) }
        r.get("/model_info") { [self] _, _ in
            json(["model_path": config.modelName, "served_model_name": config.modelName, "is_generation": true, "weight_version": "default"])
        }
    }

    /// SGLang's LoRA answer: `success`, `error_message` and `loaded_adapters`, 400 on failure.
    func sglangLoRA(_ request: Request, load: Bool) async throws -> Response {
        let data = try await body(request)
        do {
            let f = try RequestFields(data, known: load ? ["lora_name", "lora_path", "pinned"] : ["lora_name"])
            if load {
                let (name, path) = try adapterFields(f)
                _ = try f.bool("pinned", false)   // one adapter at a time: it is never evicted
                try self.load(name: name, path: path, inplace: false) { current in
                    current == name ? "Failed to load LoRA adapter \(name) because it is already loaded"
                        : "tokenwise serve holds one adapter at a time and '\(current)' is loaded: unload it first"
                }
            } else {
                guard let name = try f.string("lora_name") else { throw APIError(400, "'lora_name' is required", param: "lora_name") }
                try unload(name: name) { "LoRA with name \($0) does not exist. Loaded LoRAs: \(self.currentAdapter.map { "{\($0)}" } ?? "{}")" }
            }
        } catch let e as APIError {
            return json(["success": false, "error_message": e.message, "loaded_adapters": loadedAdapters], status: .init(code: 400))
        }
        return json(["success": true, "error_message": NSNull(), "loaded_adapters": loadedAdapters])
    }

    var loadedAdapters: [String: String] {
        lock.lock(); defer { lock.unlock() }
        return adapter.map { [$0: adapterPath ?? ""] } ?? [:]
    }

    /// The request as the engine's: prompts, sampling, samples per prompt and logprobs; `single`
    /// when SGLang would answer one object (one prompt given alone, n 1).
    func sglangRequest(_ data: Data) throws -> (GenerationRequest, single: Bool) {
        let f = try RequestFields(data, known: Self.sglangFields)
        if try f.bool("stream", false) { throw APIError(400, "'stream' true is not supported on /generate here: use /v1/completions with stream", param: "stream") }
        if let start = try f.int("logprob_start_len", -1, in: -1...Int(Int32.max)), start != -1 {
            throw APIError(400, "'logprob_start_len' other than -1 (no prompt logprobs) is not supported here", param: "logprob_start_len")
        }
        var prompts: [[Int]], single: Bool
        switch (f["input_ids"], f["text"]) {
        case (let ids?, nil):
            if let one = RequestFields.ints(ids) { (prompts, single) = ([one], true) } else {
                guard case .array(let rows) = ids, !rows.isEmpty else { throw f.wrong("input_ids", "a list of token ids or a list of such lists") }
                prompts = try rows.map { row in
                    guard let p = RequestFields.ints(row) else { throw f.wrong("input_ids", "a list of token ids or a list of such lists") }
                    return p
                }
                single = false
            }
        case (nil, let text?):
            if case .string(let s) = text { (prompts, single) = ([tokenizer.encode(s)], true) } else {
                prompts = try f.strings("text").map { tokenizer.encode($0) }
                single = false
            }
        case (nil, nil): throw APIError(400, "'input_ids' or 'text' is required", param: "input_ids")
        default: throw APIError(400, "give 'input_ids' or 'text', not both", param: "text")
        }
        if prompts.isEmpty || prompts.contains(where: \.isEmpty) { throw APIError(400, "input_ids cannot be empty.", param: "input_ids") }
        var g = try sglangSampling(f["sampling_params"])
        g.model = try f.string("lora_path") ?? config.modelName
        g.prompts = prompts
        g.logprobs = try f.bool("return_logprob", false) ? try f.int("top_logprobs_num", 0, in: 0...20) : nil
        return (g, single && g.n == 1)
    }

    /// `sampling_params` with SGLang's names and defaults (`max_new_tokens` 128, `top_k` -1 for all).
    func sglangSampling(_ value: JSONValue?) throws -> GenerationRequest {
        var object: [String: JSONValue] = [:]
        if let value {
            guard case .object(let o) = value else { throw APIError(400, "'sampling_params' must be an object", param: "sampling_params") }
            object = o
        }
        if let unknown = object.keys.sorted().first(where: { !Self.sglangSampling.contains($0) }) {
            throw APIError(400, "'sampling_params.\(unknown)' is not supported here (supported: \(Self.sglangSampling.sorted().joined(separator: ", ")))",
                           param: "sampling_params")
        }
        let p = RequestFields(object: object)
        do {
            let s = try GenerationRequest.sampling(p, limits: config, maxTokens: "max_new_tokens", default: 128, seed: "sampling_seed")
            // The text is always decoded without the end token and cut before a stop string: SGLang's defaults, and only those.
            guard try p.bool("skip_special_tokens", true) else { throw APIError(400, "'skip_special_tokens' false is not supported here") }
            guard try !p.bool("no_stop_trim", false) else { throw APIError(400, "'no_stop_trim' true is not supported here (the text is cut before a stop string)") }
            let n = try p.int("n", 1, in: 1...config.maxChoices)!
            return GenerationRequest(model: "", prompts: [], sampling: s, n: n, logprobs: nil, stream: false, includeUsage: false, returnTokenIds: true)
        } catch let e as APIError {
            throw APIError(400, "sampling_params: \(e.message)", param: "sampling_params")
        }
    }

    func sglangGenerate(_ data: Data) async throws -> Response {
        let (g, single) = try sglangRequest(data)
        let items = try await whole(try start(g)).map { sglangItem($0, g) }
        return single ? json(items[0]) : json(items)
    }

    /// One sample as SGLang lays it out: `text`, `output_ids`, `meta_info`.
    func sglangItem(_ c: Choice, _ g: GenerationRequest) -> [String: Any] {
        let finish: [String: Any] = c.completion?.finishReason == .length ? ["type": "length", "length": c.tokens.count]
            : ["type": "stop", "matched": matched(c, g)]
        var meta: [String: Any] = ["id": UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""), "finish_reason": finish,
                                   "prompt_tokens": c.prompt.count, "completion_tokens": c.tokens.count, "cached_tokens": 0]
        if let k = g.logprobs {
            meta["output_token_logprobs"] = zip(c.logprobs, c.tokens).map { [$0, $1, NSNull()] as [Any] }
            meta["input_token_logprobs"] = [Any]()
            if k > 0 {
                meta["output_top_logprobs"] = c.top.map { $0.prefix(k).map { [$0.logprob, $0.id, NSNull()] as [Any] } }
            }
        }
        return ["text": c.completion?.text ?? "", "output_ids": c.tokens, "meta_info": meta]
    }

    /// What ended a stopped sample, as SGLang reports it: the stop token's id, or the stop string
    /// found first in the text.
    func matched(_ c: Choice, _ g: GenerationRequest) -> Any {
        if c.completion?.finishReason == .eos || g.sampling.stop.isEmpty { return c.tokens.last ?? 0 }
        let text = tokenizer.decode(c.tokens)
        return g.sampling.stop.compactMap { s in text.range(of: s).map { (s, $0.lowerBound) } }.min { $0.1 < $1.1 }?.0 ?? (c.tokens.last ?? 0)
    }
}

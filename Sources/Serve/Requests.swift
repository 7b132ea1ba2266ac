import Foundation
import Models
import Rollout

/// What a completions or chat request asks for, checked against the server's limits.
struct GenerationRequest {
    var model: String
    var prompts: [[Int]]
    var sampling: SamplingConfig
    var n: Int
    /// Top logprobs per token (completions' `logprobs`, chat's `top_logprobs`), nil: no logprobs.
    var logprobs: Int?
    var stream: Bool
    var includeUsage: Bool
    var returnTokenIds: Bool

    /// Sampling fields both endpoints take.
    static let samplingFields: Set<String> = ["model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "n", "seed", "stop",
                                              "stop_token_ids", "ignore_eos", "stream", "stream_options", "return_token_ids"]

    /// The sampling settings both APIs take, under the request's names for the token limit (and
    /// its default) and the seed; a request without a seed gets a random one.
    static func sampling(_ f: RequestFields, limits: ServeConfig, maxTokens key: String, default tokens: Int, seed seedKey: String) throws -> SamplingConfig {
        var s = SamplingConfig()
        s.weights = limits.weights
        s.maxNewTokens = try f.int(key, tokens, in: 1...limits.context)!
        s.temperature = try f.double("temperature", 1, in: 0...100)
        s.topP = try f.double("top_p", 1, in: 1e-9...1)
        // vLLM's and SGLang's "off" is -1; 0 is off here too.
        let topK = try f.int("top_k", 0, in: -1...1_000_000)!
        s.topK = Swift.max(0, topK)
        s.minP = try f.double("min_p", 0, in: 0...0.999_999)
        s.stop = try f.strings("stop")
        if let empty = s.stop.firstIndex(of: "") { throw APIError(400, "'stop'[\(empty)] is an empty string", param: "stop") }
        guard s.stop.count <= 16 else { throw APIError(400, "'stop' lists more than 16 strings", param: "stop") }
        s.stopTokenIds = try f.ints("stop_token_ids")
        s.ignoreEos = try f.bool("ignore_eos", false)
        if let seed = try f.int(seedKey, nil, in: Int(Int64.min)...Int(Int64.max)) { s.seed = UInt64(bitPattern: Int64(seed)) } else {
            s.seed = UInt64.random(in: 0...UInt64.max)
        }
        return s
    }

    /// The sampling settings and the other shared fields; `maxTokens` is the endpoint's key for it.
    static func common(_ f: RequestFields, limits: ServeConfig, maxTokensKey: [String]) throws -> GenerationRequest {
        guard let model = try f.string("model") else { throw APIError(400, "'model' is required", param: "model") }
        let key = maxTokensKey.first { f[$0] != nil } ?? maxTokensKey[0]
        let s = try sampling(f, limits: limits, maxTokens: key, default: 16, seed: "seed")
        let n = try f.int("n", 1, in: 1...limits.maxChoices)!
        var includeUsage = false
        if let o = f["stream_options"] {
            guard case .object(let opts) = o else { throw f.wrong("stream_options", "an object") }
            let inner = RequestFields(object: opts)
            if let unknown = opts.keys.sorted().first(where: { $0 != "include_usage" }) {
                throw APIError(400, "unknown field 'stream_options.\(unknown)'", param: "stream_options")
            }
            includeUsage = try inner.bool("include_usage", false)
        }
        return GenerationRequest(model: model, prompts: [], sampling: s, n: n, logprobs: nil, stream: try f.bool("stream", false),
                                 includeUsage: includeUsage, returnTokenIds: try f.bool("return_token_ids", false))
    }

    /// `/v1/completions`: a prompt as text, token ids, or a list of either.
    static func completion(_ data: Data, limits: ServeConfig, tokenizer: Tokenizer) throws -> GenerationRequest {
        let f = try RequestFields(data, known: samplingFields.union(["prompt", "logprobs", "echo"]))
        var r = try common(f, limits: limits, maxTokensKey: ["max_tokens"])
        if try f.bool("echo", false) { throw APIError(400, "'echo' true is not supported (the prompt is in prompt_token_ids with return_token_ids)", param: "echo") }
        r.logprobs = try f.int("logprobs", nil, in: 0...20)
        guard let p = f["prompt"] else { throw APIError(400, "'prompt' is required", param: "prompt") }
        switch p {
        case .string(let text): r.prompts = [tokenizer.encode(text)]
        case .array(let items) where !items.isEmpty:
            if let ids = RequestFields.ints(p) { r.prompts = [ids] } else {
                r.prompts = try items.map { item -> [Int] in
                    if case .string(let text) = item { return tokenizer.encode(text) }
                    if let ids = RequestFields.ints(item) { return ids }
                    throw f.wrong("prompt", "a string, a list of token ids, or a list of either")
                }
            }
        default: throw f.wrong("prompt", "a string, a list of token ids, or a list of either")
        }
        return r
    }

    /// `/v1/chat/completions`: messages rendered with the model's chat template.
    static func chat(_ data: Data, limits: ServeConfig, tokenizer: Tokenizer, template: ChatTemplate?) throws -> GenerationRequest {
        let f = try RequestFields(data, known: samplingFields.union(["messages", "logprobs", "top_logprobs", "max_completion_tokens"]))
        var r = try common(f, limits: limits, maxTokensKey: ["max_completion_tokens", "max_tokens"])
        let top = try f.int("top_logprobs", nil, in: 0...20)
        if try f.bool("logprobs", false) { r.logprobs = top ?? 0 } else if top != nil {
            throw APIError(400, "'top_logprobs' needs 'logprobs': true", param: "top_logprobs")
        }
        guard let template else { throw APIError(400, "this model has no chat template: use /v1/completions") }
        guard case .array(let items)? = f["messages"], !items.isEmpty else { throw f.wrong("messages", "a non-empty list of messages") }
        let messages = try items.enumerated().map { i, m -> ChatMessage in
            guard case .object(let o) = m else { throw APIError(400, "'messages'[\(i)] must be an object", param: "messages") }
            if let unknown = o.keys.sorted().first(where: { !["role", "content", "name"].contains($0) }) {
                throw APIError(400, "unknown field 'messages[\(i)].\(unknown)'", param: "messages")
            }
            guard case .string(let role)? = o["role"], ["system", "user", "assistant", "tool"].contains(role) else {
                throw APIError(400, "'messages'[\(i)].role must be system, user, assistant or tool", param: "messages")
            }
            guard case .string(let content)? = o["content"] else {
                throw APIError(400, "'messages'[\(i)].content must be a string", param: "messages")
            }
            return ChatMessage(role: role, content: content)
        }
        r.prompts = [tokenizer.encode(template.render(messages, addGenerationPrompt: true))]
        return r
    }

    /// The limits that do not depend on the engine's state: prompt sizes and the vocabulary.
    func check(limits: ServeConfig, vocab: Int, served: [String]) throws {
        guard served.contains(model) else { throw APIError(404, "model '\(model)' is not served here (served: \(served.joined(separator: ", ")))", param: "model") }
        guard prompts.count * n <= limits.maxChoices else {
            throw APIError(400, "\(prompts.count) prompts × n \(n) is more than \(limits.maxChoices) choices in one request")
        }
        for p in prompts {
            guard !p.isEmpty else { throw APIError(400, "a prompt is empty", param: "prompt") }
            if let bad = p.first(where: { !(0..<vocab).contains($0) }) { throw APIError(400, "token id \(bad) is outside the vocabulary (\(vocab))", param: "prompt") }
            guard p.count + sampling.maxNewTokens <= limits.context else {
                throw APIError(400, "the prompt (\(p.count) tokens) + max_tokens (\(sampling.maxNewTokens)) exceeds the context (\(limits.context))", param: "prompt")
            }
        }
    }
}

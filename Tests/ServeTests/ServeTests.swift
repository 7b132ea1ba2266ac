import Foundation
import HTTP
import XCTest
@testable import Models
@testable import Rollout
@testable import Serve
@testable import Torch

/// A server on a free loopback port, driven over real HTTP.
final class Served: @unchecked Sendable {
    let pretrained: Pretrained
    let sampler: Sampler
    let server: OpenAIServer
    let port: Int
    let stop: @Sendable () -> Void

    init(apiKey: String? = nil, maxInFlight: Int = 64, maxBody: Int = 1 << 20) throws {
        pretrained = try Pretrained.tinyRandom(seed: 1)
        sampler = Sampler(model: pretrained.model, tokenizer: pretrained.tokenizer)
        var c = ServeConfig()
        c.port = 0
        c.apiKey = apiKey
        c.context = 256
        c.maxRows = 4
        c.maxInFlight = maxInFlight
        c.maxBodyBytes = maxBody
        server = try OpenAIServer(engine: try BatchEngine(sampler: sampler, maxRows: 4, context: 256), template: try pretrained.chatTemplate(), config: c)
        (port, stop) = try server.startInBackground()
    }

    /// What the in-process sampler gives for `prompt` (sample `s` of n).
    func solo(_ prompt: [Int], _ c: SamplingConfig, n: Int = 1) throws -> [Completion] {
        try sampler.sample(prompts: [prompt], n: n, config: c)
    }
}

final class ServeTests: XCTestCase {
    var s: Served!
    override func setUpWithError() throws { s = try Served() }
    override func tearDown() { s.stop() }

    func ints(_ v: Any?) -> [Int] { (v as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } ?? [] }

    /// Completions with token ids and logprobs equal the in-process sampler's for the same seed,
    /// for a prompt given as ids or as text, and for n > 1.
    func testCompletionsEqualTheInProcessSampler() throws {
        let ids = [72, 101, 108, 108, 111]
        let r = try http(s.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": ids, "max_tokens": 12, "seed": 7, "n": 2,
                                                                   "temperature": 0.9, "logprobs": 2, "return_token_ids": true])
        XCTAssertEqual(r.status, 200, r.text)
        let choices = try XCTUnwrap(r.json["choices"] as? [[String: Any]])
        let solo = try s.solo(ids, SamplingConfig(temperature: 0.9, maxNewTokens: 12, seed: 7), n: 2)
        XCTAssertEqual(choices.count, 2)
        for (c, want) in zip(choices, solo) {
            XCTAssertEqual(ints(c["token_ids"]), want.tokens)
            XCTAssertEqual(ints(c["prompt_token_ids"]), ids)
            XCTAssertEqual(c["text"] as? String, want.text)
            XCTAssertEqual(c["finish_reason"] as? String, want.finishReason == .length ? "length" : "stop")
            let lp = try XCTUnwrap(c["logprobs"] as? [String: Any])
            let got = (lp["token_logprobs"] as? [Double]) ?? []
            XCTAssertEqual(got.count, want.logprobs.count)
            for (a, b) in zip(got, want.logprobs) { XCTAssertEqual(a, b, accuracy: 1e-4) }
            XCTAssertEqual((lp["top_logprobs"] as? [[String: Double]])?.first?.count, 2)
        }
        let usage = try XCTUnwrap(r.json["usage"] as? [String: Int])
        XCTAssertEqual(usage["prompt_tokens"], 5)
        XCTAssertEqual(usage["completion_tokens"], solo.reduce(0) { $0 + $1.tokens.count })
        let text = try http(s.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": "Hello", "max_tokens": 8, "seed": 3,
                                                                      "return_token_ids": true])
        let first = try XCTUnwrap((text.json["choices"] as? [[String: Any]])?.first)
        XCTAssertEqual(ints(first["token_ids"]), try s.solo(s.pretrained.tokenizer.encode("Hello"), SamplingConfig(maxNewTokens: 8, seed: 3))[0].tokens)
    }

    /// Concurrent clients share decode steps and still get their solo tokens.
    func testConcurrentRequestsAreBatchedTogether() throws {
        let prompts = [[1, 2, 3], [40, 41], [90, 91, 92, 93], [7]]
        final class Replies: @unchecked Sendable { var list: [HTTPReply?]; let lock = NSLock(); init(_ n: Int) { list = Array(repeating: nil, count: n) } }
        let replies = Replies(prompts.count), port = s.port
        DispatchQueue.concurrentPerform(iterations: prompts.count) { i in
            let r = try? http(port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": prompts[i], "max_tokens": 24, "seed": i,
                                                                      "ignore_eos": true, "return_token_ids": true])
            replies.lock.lock(); replies.list[i] = r; replies.lock.unlock()
        }
        for (i, r) in replies.list.enumerated() {
            let r = try XCTUnwrap(r)
            XCTAssertEqual(r.status, 200, r.text)
            let c = try XCTUnwrap((r.json["choices"] as? [[String: Any]])?.first)
            XCTAssertEqual(ints(c["token_ids"]), try s.solo(prompts[i], SamplingConfig(maxNewTokens: 24, ignoreEos: true, seed: UInt64(i)))[0].tokens)
        }
        XCTAssertGreaterThan(s.server.engine.rowsPerStep.max() ?? 0, 1, "no decode step had more than one row")
    }

    /// Streaming sends the same tokens and text as a whole response, as server-sent events ending in [DONE].
    func testStreamingCompletionsAndChat() throws {
        let body: [String: Any] = ["model": "tokenwise", "prompt": [5, 6, 7], "max_tokens": 10, "seed": 2, "return_token_ids": true]
        let whole = try XCTUnwrap((try http(s.port, "POST", "/v1/completions", json: body).json["choices"] as? [[String: Any]])?.first)
        var streamed = body
        streamed["stream"] = true
        streamed["stream_options"] = ["include_usage": true]
        let r = try http(s.port, "POST", "/v1/completions", json: streamed)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.headers["content-type"], "text/event-stream")
        XCTAssertEqual(r.events.last, "[DONE]")
        let chunks = r.events.dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let parts = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
        XCTAssertEqual(parts.map { $0["text"] as? String ?? "" }.joined(), whole["text"] as? String)
        XCTAssertEqual(parts.flatMap { ints($0["token_ids"]) }, ints(whole["token_ids"]))
        XCTAssertEqual(parts.last?["finish_reason"] as? String, whole["finish_reason"] as? String)
        XCTAssertNotNil(chunks.last?["usage"])
        // A stop string: the streamed text never shows what the stop cuts; a 64-bit seed is taken whole.
        for seed in [Int64.max, 12] {
            let stopBody: [String: Any] = ["model": "tokenwise", "prompt": [5, 6, 7], "max_tokens": 40, "seed": seed, "stop": ["e", "th"]]
            let wholeStop = try XCTUnwrap((try http(s.port, "POST", "/v1/completions", json: stopBody).json["choices"] as? [[String: Any]])?.first)
            var streamStop = stopBody
            streamStop["stream"] = true
            let texts = try http(s.port, "POST", "/v1/completions", json: streamStop).events.dropLast()
                .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .compactMap { (($0["choices"] as? [[String: Any]])?.first?["text"]) as? String }
            XCTAssertEqual(texts.joined(), wholeStop["text"] as? String, "seed \(seed)")
            let solo = try s.solo([5, 6, 7], SamplingConfig(maxNewTokens: 40, stop: ["e", "th"], seed: UInt64(bitPattern: seed)))[0]
            XCTAssertEqual(wholeStop["text"] as? String, solo.text)
        }
        // Chat: the rendered template's completion, whole and streamed (the first delta names the role).
        let chat: [String: Any] = ["model": "tokenwise", "messages": [["role": "user", "content": "hi"]], "max_tokens": 10, "seed": 4]
        let c = try http(s.port, "POST", "/v1/chat/completions", json: chat)
        XCTAssertEqual(c.status, 200, c.text)
        let message = try XCTUnwrap(((c.json["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any])
        let rendered = s.pretrained.tokenizer.encode(try s.pretrained.chatTemplate().render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true))
        XCTAssertEqual(message["content"] as? String, try s.solo(rendered, SamplingConfig(maxNewTokens: 10, seed: 4))[0].text)
        var chatStream = chat
        chatStream["stream"] = true
        let cs = try http(s.port, "POST", "/v1/chat/completions", json: chatStream)
        let deltas = cs.events.dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"]) as? [String: Any] }
        XCTAssertEqual(deltas.first?["role"] as? String, "assistant")
        XCTAssertEqual(deltas.compactMap { $0["content"] as? String }.joined(), message["content"] as? String)
    }

    /// Bad requests get the right status and a JSON error, and the server keeps serving.
    func testBadRequestsAndTheRoutes() throws {
        func error(_ r: HTTPReply) -> String { ((r.json["error"] as? [String: Any])?["message"] as? String) ?? r.text }
        var r = try http(s.port, "POST", "/v1/completions", raw: Data("{not json".utf8))
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(error(r), "the body is not valid JSON")
        r = try http(s.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": [1], "temprature": 1])
        XCTAssertEqual(r.status, 400)
        XCTAssertTrue(error(r).hasPrefix("unknown field 'temprature'"), error(r))
        r = try http(s.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": Array(repeating: 1, count: 250), "max_tokens": 16])
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(error(r), "the prompt (250 tokens) + max_tokens (16) exceeds the context (256)")
        r = try http(s.port, "POST", "/v1/completions", json: ["model": "gpt-4", "prompt": [1]])
        XCTAssertEqual(r.status, 404)
        r = try http(s.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": [1], "temperature": "hot"])
        XCTAssertEqual(error(r), "'temperature' must be a number in 0.0…100.0, got a string")
        r = try http(s.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": [1, 99999]])
        XCTAssertEqual(error(r), "token id 99999 is outside the vocabulary (\(s.pretrained.model.config.vocabSize))")
        r = try http(s.port, "POST", "/v1/completions", raw: Data(count: 2 << 20))
        XCTAssertEqual(r.status, 413)
        r = try http(s.port, "POST", "/v1/chat/completions", json: ["model": "tokenwise", "messages": [["role": "robot", "content": "x"]]])
        XCTAssertEqual(error(r), "'messages'[0].role must be system, user, assistant or tool")
        XCTAssertEqual(try http(s.port, "GET", "/health").status, 200)
        let models = try http(s.port, "GET", "/v1/models").json
        XCTAssertEqual(((models["data"] as? [[String: Any]])?.first?["id"]) as? String, "tokenwise")
        XCTAssertEqual(try http(s.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": [1], "max_tokens": 2]).status, 200)
    }

    /// A hot-loaded adapter changes the outputs and is served under its name alone; loading it
    /// again in place takes new weights; unloading restores the base model's outputs.
    func testAdaptersLoadInPlaceAndUnload() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-serve-lora-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        // An adapter saved from a copy of the served model, with B drawn non-zero.
        let donor = try Pretrained.tinyRandom(seed: 1).model
        let lora = try LoRA(attachingTo: donor, config: .init(rank: 4, alpha: 8), seed: 2)
        func randomize(_ seed: UInt64) throws {
            let g = try Generator(seed: seed)
            try withTorchErrors { withNoGrad { for ad in lora.adapters.values { ad.b.copy(from: Tensor.randn(ad.b.shape, generator: g) * 0.5) } } }
            try lora.save(to: dir)
        }
        try randomize(5)
        let ask: ([String: Any]) throws -> [Int] = { [s] extra in
            var body: [String: Any] = ["model": "tokenwise", "prompt": [10, 20, 30], "max_tokens": 12, "seed": 1, "ignore_eos": true, "return_token_ids": true]
            body.merge(extra) { $1 }
            let r = try http(s!.port, "POST", "/v1/completions", json: body)
            XCTAssertEqual(r.status, 200, r.text)
            return self.ints((r.json["choices"] as? [[String: Any]])?.first?["token_ids"])
        }
        let base = try ask([:])
        var r = try http(s.port, "POST", "/v1/load_lora_adapter", json: ["lora_name": "mine", "lora_path": dir.path])
        XCTAssertEqual(r.status, 200, r.text)
        let adapted = try ask(["model": "mine"])
        XCTAssertNotEqual(adapted, base)
        XCTAssertEqual(try http(s.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": [1]]).status, 404)
        XCTAssertEqual(((try http(s.port, "GET", "/v1/models").json["data"] as? [[String: Any]])?.first?["id"]) as? String, "mine")
        r = try http(s.port, "POST", "/v1/load_lora_adapter", json: ["lora_name": "other", "lora_path": dir.path])
        XCTAssertEqual(r.status, 400)
        try randomize(6)
        XCTAssertEqual(try http(s.port, "POST", "/v1/load_lora_adapter", json: ["lora_name": "mine", "lora_path": dir.path, "load_inplace": true]).status, 200)
        XCTAssertNotEqual(try ask(["model": "mine"]), adapted)
        r = try http(s.port, "POST", "/v1/load_lora_adapter", json: ["lora_name": "mine", "lora_path": "/nonexistent", "load_inplace": true])
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(try http(s.port, "POST", "/v1/unload_lora_adapter", json: ["lora_name": "nope"]).status, 404)
        XCTAssertEqual(try http(s.port, "POST", "/v1/unload_lora_adapter", json: ["lora_name": "mine"]).status, 200)
        XCTAssertEqual(try ask([:]), base)
    }

    /// A client that drops its stream: its rows leave the batch, nothing stays in flight, and the server still serves.
    func testADroppedClientLeavesTheServerServing() throws {
        let c = try Connection(port: s.port)
        let body = try JSONSerialization.data(withJSONObject: ["model": "tokenwise", "prompt": [1, 2], "max_tokens": 200, "ignore_eos": true, "stream": true])
        try c.send(Connection.request("POST", "/v1/completions", body: body, headers: [:]))
        var buf = [UInt8](repeating: 0, count: 256)
        _ = recv(c.fd, &buf, buf.count, 0)   // the first events arrived
        shutdown(c.fd, Int32(SHUT_RDWR))
        let deadline = Date().addingTimeInterval(30)
        while s.server.inFlightCount > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(s.server.inFlightCount, 0)
        XCTAssertEqual(try http(s.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": [3], "max_tokens": 3]).status, 200)
    }
}

final class ServeAuthTests: XCTestCase {
    /// With an API key every request needs it; off loopback a key is required; the in-flight bound answers 429.
    func testTheAPIKeyIsCheckedOnEveryRequest() throws {
        let s = try Served(apiKey: "sekret")
        defer { s.stop() }
        XCTAssertEqual(try http(s.port, "GET", "/health").status, 401)
        XCTAssertEqual(try http(s.port, "GET", "/v1/models", headers: ["Authorization": "Bearer wrong"]).status, 401)
        XCTAssertEqual(try http(s.port, "GET", "/v1/models", headers: ["Authorization": "Bearer sekret"]).status, 200)
        // More choices than may ever be in flight: 400; more than may be now: 429; the server keeps serving.
        let small = try Served(maxInFlight: 4)
        defer { small.stop() }
        func message(_ r: HTTPReply) -> String? { ((r.json["error"] as? [String: Any])?["message"]) as? String }
        let never = try http(small.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": [1], "n": 5, "max_tokens": 2])
        XCTAssertEqual(never.status, 400)
        XCTAssertEqual(message(never), "5 choices are more than may ever be in flight (4): split the request")
        let long = try Connection(port: small.port)
        try long.send(Connection.request("POST", "/v1/completions", body: try JSONSerialization.data(withJSONObject: [
            "model": "tokenwise", "prompt": [1], "n": 4, "max_tokens": 240, "ignore_eos": true, "stream": true]), headers: [:]))
        var buf = [UInt8](repeating: 0, count: 64)
        _ = recv(long.fd, &buf, buf.count, 0)   // streaming: its 4 choices are in flight
        let busy = try http(small.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": [1], "max_tokens": 2])
        XCTAssertEqual(busy.status, 429)
        XCTAssertEqual(message(busy), "4 choices are in flight (at most 4); retry later")
        shutdown(long.fd, Int32(SHUT_RDWR))
        let deadline = Date().addingTimeInterval(30)
        while small.server.inFlightCount > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(try http(small.port, "POST", "/v1/completions", json: ["model": "tokenwise", "prompt": [1], "n": 4, "max_tokens": 2]).status, 200)
        var c = ServeConfig()
        c.host = "0.0.0.0"
        XCTAssertThrowsError(try c.validate()) {
            XCTAssertEqual("\($0)", "--host 0.0.0.0 listens beyond this machine: give an --api-key (or TOKENWISE_API_KEY), checked on every request")
        }
        c.apiKey = "k"
        XCTAssertNoThrow(try c.validate())
    }
}

import Foundation
import HTTP
import XCTest
@testable import Models
@testable import Rollout
@testable import Serve
@testable import Torch

/// SGLang's native routes on `tokenwise serve`, over real HTTP: `/generate` gives the in-process
/// sampler's tokens and logprobs in SGLang's layout, its refusals name the field, and the LoRA
/// routes answer `success` / `error_message` as SGLang's do.
final class SGLangRoutesTests: XCTestCase {
    var s: Served!
    override func setUpWithError() throws { s = try Served() }
    override func tearDown() { s.stop() }

    func ints(_ v: Any?) -> [Int] { (v as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } ?? [] }

    func generate(_ body: [String: Any]) throws -> (status: Int, json: Any?, text: String) {
        let r = try http(s.port, "POST", "/generate", json: body)
        return (r.status, try? JSONSerialization.jsonObject(with: r.body), r.text)
    }

    /// A batch of two prompts × n 2 answers four samples prompt by prompt, each the sampler's for
    /// that prompt and sample; one prompt alone with n 1 answers one object.
    func testGenerateEqualsTheInProcessSampler() throws {
        let prompts = [[72, 101, 108, 108, 111], [10, 20, 30]]
        let params: [String: Any] = ["max_new_tokens": 10, "temperature": 0.9, "n": 2, "sampling_seed": 7]
        let r = try generate(["input_ids": prompts, "sampling_params": params, "return_logprob": true, "top_logprobs_num": 2])
        XCTAssertEqual(r.status, 200, r.text)
        let items = try XCTUnwrap(r.json as? [[String: Any]])
        XCTAssertEqual(items.count, 4)
        let config = SamplingConfig(temperature: 0.9, maxNewTokens: 10, seed: 7)
        let want = try prompts.flatMap { try s.solo($0, config, n: 2) }
        for (item, w) in zip(items, want) {
            XCTAssertEqual(ints(item["output_ids"]), w.tokens)
            XCTAssertEqual(item["text"] as? String, w.text)
            let meta = try XCTUnwrap(item["meta_info"] as? [String: Any])
            let entries = try XCTUnwrap(meta["output_token_logprobs"] as? [[Any]])
            XCTAssertEqual(entries.map { ($0[1] as? NSNumber)?.intValue ?? -1 }, w.tokens)
            for (e, lp) in zip(entries, w.logprobs) { XCTAssertEqual((e[0] as? NSNumber)?.doubleValue ?? 0, lp, accuracy: 1e-4) }
            XCTAssertEqual((meta["output_top_logprobs"] as? [Any])?.count, w.tokens.count)
            XCTAssertEqual((meta["finish_reason"] as? [String: Any])?["type"] as? String, w.finishReason == .length ? "length" : "stop")
            XCTAssertEqual(meta["completion_tokens"] as? Int, w.tokens.count)
            XCTAssertEqual((meta["input_token_logprobs"] as? [Any])?.count, 0, "no prompt logprobs at the default logprob_start_len")
        }
        XCTAssertEqual(((items[3]["meta_info"] as? [String: Any])?["prompt_tokens"]) as? Int, 3)
        let one = try generate(["input_ids": prompts[1], "sampling_params": ["max_new_tokens": 6, "sampling_seed": 3, "ignore_eos": true]])
        let object = try XCTUnwrap(one.json as? [String: Any], "one prompt with n 1 answers an object: \(one.text)")
        XCTAssertEqual(ints(object["output_ids"]), try s.solo(prompts[1], SamplingConfig(maxNewTokens: 6, ignoreEos: true, seed: 3))[0].tokens)
        let finish = try XCTUnwrap((object["meta_info"] as? [String: Any])?["finish_reason"] as? [String: Any])
        XCTAssertEqual(finish["type"] as? String, "length")
        XCTAssertEqual(finish["length"] as? Int, 6)
        XCTAssertNil((object["meta_info"] as? [String: Any])?["output_token_logprobs"], "no logprobs unless asked")
        let text = try generate(["text": "Hello", "sampling_params": ["max_new_tokens": 5, "sampling_seed": 4]])
        XCTAssertEqual(ints((text.json as? [String: Any])?["output_ids"]),
                       try s.solo(s.pretrained.tokenizer.encode("Hello"), SamplingConfig(maxNewTokens: 5, seed: 4))[0].tokens)
    }

    func testGenerateRefusesWhatItCannotServe() throws {
        func refusal(_ body: [String: Any]) throws -> String {
            let r = try generate(body)
            XCTAssertEqual(r.status / 100, 4, r.text)
            return ((r.json as? [String: Any])?["error"] as? [String: Any])?["message"] as? String ?? r.text
        }
        XCTAssertTrue(try refusal(["input_ids": [1, 2], "image_data": "x"]).hasPrefix("unknown field 'image_data'"))
        XCTAssertTrue(try refusal(["input_ids": [1, 2], "sampling_params": ["frequency_penalty": 0.5]])
            .hasPrefix("'sampling_params.frequency_penalty' is not supported here (supported: ignore_eos, max_new_tokens,"))
        XCTAssertEqual(try refusal(["input_ids": [1, 2], "sampling_params": ["max_new_tokens": 0]]),
                       "sampling_params: 'max_new_tokens' must be an integer in 1…256, got a number")
        XCTAssertEqual(try refusal(["input_ids": [1, 2], "stream": true]), "'stream' true is not supported on /generate here: use /v1/completions with stream")
        XCTAssertEqual(try refusal(["input_ids": [Int]()]), "input_ids cannot be empty.")
        XCTAssertEqual(try refusal(["input_ids": [1], "text": "a"]), "give 'input_ids' or 'text', not both")
        XCTAssertEqual(try refusal(["sampling_params": [String: Any]()]), "'input_ids' or 'text' is required")
        XCTAssertEqual(try refusal(["input_ids": [1, 2], "logprob_start_len": 0]), "'logprob_start_len' other than -1 (no prompt logprobs) is not supported here")
        XCTAssertEqual(try refusal(["input_ids": [1, 2], "lora_path": "nope"]), "model 'nope' is not served here (served: tokenwise)")
        XCTAssertEqual(try refusal(["input_ids": [[1, 2], ["a"]]]), "'input_ids' must be a list of token ids or a list of such lists, got an array")
        XCTAssertEqual(try refusal(["input_ids": [1, 2], "sampling_params": ["stop": ["a", ""]]]), "sampling_params: 'stop'[1] is an empty string")
        XCTAssertEqual(try refusal(["input_ids": [1, 2], "sampling_params": ["no_stop_trim": true]]),
                       "sampling_params: 'no_stop_trim' true is not supported here (the text is cut before a stop string)")
        XCTAssertEqual(try refusal(["input_ids": [1, 2], "sampling_params": ["skip_special_tokens": false]]),
                       "sampling_params: 'skip_special_tokens' false is not supported here")
        XCTAssertTrue(try refusal(["input_ids": [1, 2], "rid": "abc"]).hasPrefix("unknown field 'rid'"))
        XCTAssertEqual(try generate(["input_ids": [1, 2], "sampling_params": ["max_new_tokens": 2, "skip_special_tokens": true, "no_stop_trim": false]]).status,
                       200, "still serving, and SGLang's defaults given explicitly are accepted")
    }

    func testSGLangLoRARoutes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-sglang-lora-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let lora = try LoRA(attachingTo: try Pretrained.tinyRandom(seed: 1).model, config: .init(rank: 4, alpha: 8), seed: 2)
        let g = try Generator(seed: 5)
        try withTorchErrors { withNoGrad { for ad in lora.adapters.values { ad.b.copy(from: Tensor.randn(ad.b.shape, generator: g) * 0.5) } } }
        try lora.save(to: dir)
        func post(_ path: String, _ body: [String: Any]) throws -> (Int, [String: Any]) {
            let r = try http(s.port, "POST", path, json: body)
            return (r.status, r.json)
        }
        func tokens(_ extra: [String: Any]) throws -> [Int] {
            var body: [String: Any] = ["input_ids": [10, 20, 30], "sampling_params": ["max_new_tokens": 12, "sampling_seed": 1, "ignore_eos": true]]
            body.merge(extra) { $1 }
            return ints((try generate(body).json as? [String: Any])?["output_ids"])
        }
        let base = try tokens([:])
        var (status, reply) = try post("/load_lora_adapter", ["lora_name": "mine", "lora_path": dir.path, "pinned": true])
        XCTAssertEqual(status, 200)
        XCTAssertEqual(reply["success"] as? Bool, true)
        XCTAssertEqual(reply["loaded_adapters"] as? [String: String], ["mine": dir.path])
        let adapted = try tokens(["lora_path": "mine"])
        XCTAssertNotEqual(adapted, base)
        (status, reply) = try post("/load_lora_adapter", ["lora_name": "mine", "lora_path": dir.path])
        XCTAssertEqual(status, 400)
        XCTAssertEqual(reply["success"] as? Bool, false)
        XCTAssertEqual(reply["error_message"] as? String, "Failed to load LoRA adapter mine because it is already loaded")
        (status, reply) = try post("/unload_lora_adapter", ["lora_name": "nope"])
        XCTAssertEqual(status, 400)
        XCTAssertEqual(reply["error_message"] as? String, "LoRA with name nope does not exist. Loaded LoRAs: {mine}")
        XCTAssertEqual(try post("/unload_lora_adapter", ["lora_name": "mine"]).0, 200)
        XCTAssertEqual(try tokens([:]), base)
        (status, reply) = try post("/load_lora_adapter", ["lora_name": "mine", "lora_path": "/nonexistent"])
        XCTAssertEqual(status, 400)
        XCTAssertTrue((reply["error_message"] as? String ?? "").hasPrefix("cannot load the adapter at /nonexistent"), "\(reply)")
        XCTAssertEqual(((try http(s.port, "GET", "/model_info").json)["model_path"]) as? String, "tokenwise")
    }
}

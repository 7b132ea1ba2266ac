import Foundation
import XCTest
@testable import Models
@testable import Objectives
@testable import Rollout
@testable import Serve
@testable import Torch
@testable import Training

/// `rollout.engine: remote` against `tokenwise serve` on the same weights: the trainer pushes its
/// adapter every step and samples through HTTP, and gets the in-process run's rollouts and rewards.
/// `tokenwise serve` on the trainer's weights (same seed), on a free loopback port.
func remoteServer() throws -> (port: Int, stop: @Sendable () -> Void, engine: BatchEngine) {
    let (m, tok) = try tiny()   // the trainer's model: same seed, same weights
    var c = ServeConfig()
    c.port = 0
    c.context = 128
    let engine = try BatchEngine(sampler: Sampler(model: m, tokenizer: tok), maxRows: 8, context: 128)
    let s = try OpenAIServer(engine: engine, template: nil, config: c)
    let (port, stop) = try s.startInBackground()
    return (port, stop, engine)
}

/// `config` sampling through the server on `port` with `api`.
func remoteConfig(_ config: RunConfig, port: Int, api: RemoteAPI) -> RunConfig {
    var c = config
    c.rollout.engine = .remote
    c.rollout.remote = RemoteEngineConfig(url: "http://127.0.0.1:\(port)")
    c.rollout.remote!.api = api
    return c
}

/// Three steps of the same two prompts in process and through the server: the same rollouts,
/// rewards and (to 1e-4) logprobs each step. Returns the remote trainer's model.
func threeStepsMatch(_ local: RunConfig, _ remote: RunConfig) throws -> CausalLM {
    let samples = [TaskSample(prompt: "abc", answer: "1"), TaskSample(prompt: "hello there", answer: "2")]
    let (m1, tok) = try tiny(), (m2, _) = try tiny()
    let t1 = try Trainer(model: m1, tokenizer: tok, reward: LetterReward(), config: local)
    let t2 = try Trainer(model: m2, tokenizer: tok, reward: LetterReward(), config: remote)
    for s in 0..<3 {
        let r1 = try t1.step(samples, seed: UInt64(s)), r2 = try t2.step(samples, seed: UInt64(s))
        XCTAssertEqual(t2.lastInputs!.rowResponses, t1.lastInputs!.rowResponses, "step \(s + 1)")
        XCTAssertEqual(r2["reward_mean"], r1["reward_mean"], "step \(s + 1)")
        for (x, y) in zip(t1.lastRecords, t2.lastRecords) {
            for (p, q) in zip(x.logprobs, y.logprobs) { XCTAssertEqual(p, q, accuracy: 1e-4, "step \(s + 1)") }
        }
        XCTAssertNotNil(r2["mismatch/k1"])
    }
    return m2
}

final class RemoteRolloutsTests: XCTestCase {
    func testRemoteRolloutsMatchTheInProcessRun() throws {
        let (port, stop, engine) = try remoteServer()
        defer { stop() }
        let local = tinyTrainerConfig(), remote = remoteConfig(local, port: port, api: .openai)
        let (a, _) = try trainTiny(local, steps: 1)
        let (b, metrics) = try trainTiny(remote, steps: 1)
        XCTAssertEqual(b.lastInputs!.rowResponses, a.lastInputs!.rowResponses, "the server sampled other tokens")
        for (x, y) in zip(a.lastRecords, b.lastRecords) {
            XCTAssertEqual(x.reward, y.reward)
            XCTAssertEqual(y.entropies.count, y.tokens.count, "the learner's entropies stand in for the server's")
            for (p, q) in zip(x.logprobs, y.logprobs) { XCTAssertEqual(p, q, accuracy: 1e-4) }
        }
        XCTAssertNotNil(metrics["mismatch/k1"])
        XCTAssertGreaterThan(engine.rowsPerStep.max() ?? 0, 1)
        // Three steps: the adapter the server loads each step is the trainer's, so the rollouts stay the in-process ones.
        let m2 = try threeStepsMatch(local, remote)
        // What the server samples with is the adapter after step 2 (pushed before step 3), not the fresh one.
        let served = try XCTUnwrap(engine.sampler.model.lora), trained = try XCTUnwrap(m2.lora)
        XCTAssertEqual(Set(served.adapters.keys), Set(trained.adapters.keys))
        let gap = try withTorchErrors { try served.adapters.keys.map { k in try (served.adapters[k]!.b - trained.adapters[k]!.b).abs().amax().item() }.max()! }
        let moved = try withTorchErrors { try trained.adapters.values.map { try $0.b.abs().amax().item() }.max()! }
        XCTAssertGreaterThan(moved, 0, "the adapter trained")
        XCTAssertLessThan(gap, moved, "the server's adapter is a trained one")
    }

    /// A server that is not there: the step fails naming the URL after its tries; what a remote
    /// engine cannot do is refused at validation.
    func testAServerThatIsDownAndRefusedConfigs() throws {
        var c = tinyTrainerConfig()
        c.rollout.engine = .remote
        var r = RemoteEngineConfig(url: "http://127.0.0.1:9")
        r.retries = 1
        r.timeout = 2
        c.rollout.remote = r
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: LetterReward(), config: c)
        XCTAssertThrowsError(try t.step([TaskSample(prompt: "abc", answer: "1")])) {
            XCTAssertTrue("\($0)".hasPrefix("rollout: the server at http://127.0.0.1:9 failed /v1/load_lora_adapter (2 tries): cannot connect: 127.0.0.1:9:"), "\($0)")
        }
        func refused(_ edit: (inout RunConfig) -> Void) -> String {
            var x = c
            edit(&x)
            do { try x.validate(); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(refused { $0.rollout.weights = .bf16 },
                       "config: rollout.engine remote samples with the server's own weights: rollout.weights must be fp32 (the server's --weights sets its precision); use rollout.engine local for it")
        XCTAssertEqual(refused { $0.credit = .init(method: .spoTree) },
                       "config: rollout.engine remote samples flat rollouts, not the trees credit.method spo_tree needs; use rollout.engine local for it")
        XCTAssertEqual(refused { $0.model.lora = nil },
                       "config: rollout.engine remote sends LoRA adapters after each step; full fine-tuning (model.lora null) would need a full weight reload; use rollout.engine local for it")
        XCTAssertEqual(refused { $0.rollout.remote = nil }, "rollout: 'engine' remote needs 'remote' (url: http://host:port of the inference server)")
        XCTAssertEqual(refused { $0.rollout.remote?.url = "https://x:1" },
                       "rollout: 'remote.url' must use http (got 'https'); put a TLS-terminating proxy in front of the server for https")
        XCTAssertEqual(refused { $0.rollout.engine = .local }, "rollout: 'remote' is set but 'engine' is local; set engine: remote or remove it")
    }
}

/// `rollout.remote.api: sglang` against `tokenwise serve`'s SGLang routes: each step unloads and
/// loads the trainer's adapter under its name and samples through `/generate`, and the rollouts
/// and rewards are the in-process run's.
final class SGLangRemoteRolloutsTests: XCTestCase {
    func testSGLangRolloutsMatchTheInProcessRun() throws {
        let (port, stop, engine) = try remoteServer()
        defer { stop() }
        let local = tinyTrainerConfig(), remote = remoteConfig(local, port: port, api: .sglang), r = remote.rollout.remote!
        let m2 = try threeStepsMatch(local, remote)
        let (_, tok) = try tiny()
        let served = try XCTUnwrap(engine.sampler.model.lora), trained = try XCTUnwrap(m2.lora)
        XCTAssertEqual(Set(served.adapters.keys), Set(trained.adapters.keys))
        // The body the trainer sends: SGLang's names, -1 for the whole vocabulary, the step's seed.
        let (m3, _) = try tiny()
        _ = try LoRA(attachingTo: m3, config: .init(rank: 2, alpha: 4), seed: 1)
        let source = try RemoteRollouts(remote: r, model: m3, tokenizer: tok, n: 3)
        let body = source.sglangBody([[1, 2]], SamplingConfig(temperature: 0.7, maxNewTokens: 5, seed: 9))
        XCTAssertEqual(body["lora_path"] as? String, "tokenwise-policy")
        XCTAssertEqual(body["return_logprob"] as? Bool, true)
        let params = try XCTUnwrap(body["sampling_params"] as? [String: Any])
        XCTAssertEqual(params["top_k"] as? Int, -1)
        XCTAssertEqual(params["n"] as? Int, 3)
        XCTAssertEqual(params["max_new_tokens"] as? Int, 5)
        XCTAssertEqual(params["sampling_seed"] as? Int64, 9)
    }
}

import Foundation
import XCTest
@testable import Models
@testable import Rollout
@testable import Torch

/// Collects one request's events.
final class Collector: @unchecked Sendable {
    let lock = NSCondition()
    var tokens: [Int] = [], logprobs: [Double] = [], text = "", completion: Completion?, failure: String?
    var top: [[(id: Int, logprob: Double)]] = []
    var sink: BatchEngine.Sink {
        { [self] e in
            lock.lock()
            switch e {
            case .token(let id, let lp, let t, let best): tokens.append(id); logprobs.append(lp); text += t; top.append(best)
            case .finished(let c): completion = c
            case .failed(let why): failure = why
            }
            lock.signal()
            lock.unlock()
        }
    }
    func wait(_ seconds: Double = 60) -> Completion? {
        lock.lock()
        defer { lock.unlock() }
        let until = Date().addingTimeInterval(seconds)
        while completion == nil && failure == nil { if !lock.wait(until: until) { break } }
        return completion
    }
}

final class BatchEngineTests: XCTestCase {
    let prompts = [[1, 2, 3, 4, 5], [9, 8], [100, 101, 102], [7, 7, 7, 7, 7, 7, 7]]

    func solo(_ s: Sampler, _ p: [Int], _ c: SamplingConfig, sample: Int = 0) throws -> Completion {
        try s.sample(prompts: [p], n: sample + 1, config: c)[sample]
    }

    /// Requests beyond the batch's rows join it while others decode (steps with several rows), and
    /// each gets the tokens it gets alone from `Sampler.sample` with the same seed, with its logprobs
    /// and streamed text; a small cache is compacted on the way without changing a token. All are
    /// queued before the engine starts, so the schedule (and whether a compaction happens) does not
    /// depend on the machine's timing.
    func testRequestsJoinTheRunningBatchAndGetTheirSoloTokens() throws {
        let (m, tok) = try tinyModel(sharpness: 8)
        let s = Sampler(model: m, tokenizer: tok)
        for capacity in [128, 26] {
            let engine = try BatchEngine(sampler: s, maxRows: 3, context: 26, capacity: capacity)
            defer { engine.stop() }
            var jobs = [(Collector, [Int], SamplingConfig, Int)]()
            for (i, p) in prompts.enumerated() {
                let c = SamplingConfig(temperature: i == 3 ? 0.7 : 1, topK: i == 2 ? 20 : 0, maxNewTokens: 10 + i * 3, seed: UInt64(i))
                for sample in 0..<(i == 0 ? 2 : 1) {
                    let col = Collector()
                    try engine.submit(.init(prompt: p, config: c, sampleIndex: sample), sink: col.sink)
                    jobs.append((col, p, c, sample))
                }
            }
            engine.start()
            for (col, p, c, sample) in jobs {
                let got = try XCTUnwrap(col.wait(), "capacity \(capacity): \(col.failure ?? "no result")")
                let alone = try solo(s, p, c, sample: sample)
                XCTAssertEqual(got.tokens, alone.tokens, "capacity \(capacity), prompt \(p)")
                for (a, b) in zip(got.logprobs, alone.logprobs) { XCTAssertEqual(a, b, accuracy: 1e-4) }
                XCTAssertEqual(got.finishReason, alone.finishReason)
                XCTAssertEqual(col.tokens, got.tokens)
                XCTAssertEqual(col.text, got.text)
            }
            XCTAssertGreaterThan(engine.rowsPerStep.max() ?? 0, 1, "no step decoded more than one row")
            XCTAssertLessThanOrEqual(engine.rowsPerStep.max() ?? 0, 3)
            if capacity == 26 { XCTAssertGreaterThan(engine.compactions, 0) } else { XCTAssertEqual(engine.compactions, 0) }
        }
    }

    /// A cancelled request leaves without a result; the rest finish; bad requests are refused.
    func testCancelAndBadRequests() throws {
        let (m, tok) = try tinyModel()
        let s = Sampler(model: m, tokenizer: tok)
        let engine = try BatchEngine(sampler: s, maxRows: 4, context: 32)
        engine.start()
        defer { engine.stop() }
        let c = SamplingConfig(maxNewTokens: 20, ignoreEos: true, seed: 1)
        let gone = Collector(), kept = Collector()
        let id = try engine.submit(.init(prompt: [1, 2, 3], config: c), sink: gone.sink)
        try engine.submit(.init(prompt: [4, 5], config: c), sink: kept.sink)
        engine.cancel(id)
        XCTAssertEqual(kept.wait()?.tokens, try solo(s, [4, 5], c).tokens)
        XCTAssertNil(gone.completion)
        // Top logprobs: the k most likely tokens under the policy, best first; the sampled token's
        // logprob is among them when it is one of them.
        let top = Collector()
        try engine.submit(.init(prompt: [9, 9], config: c, topLogprobs: 3), sink: top.sink)
        XCTAssertNotNil(top.wait())
        XCTAssertEqual(top.top.count, 20)
        for (k, best) in top.top.enumerated() {
            XCTAssertEqual(best.count, 3)
            XCTAssertEqual(best.map(\.logprob), best.map(\.logprob).sorted(by: >))
            if let hit = best.first(where: { $0.id == top.tokens[k] }) { XCTAssertEqual(hit.logprob, top.logprobs[k], accuracy: 1e-5) }
            XCTAssertLessThanOrEqual(top.logprobs[k], best[0].logprob + 1e-6)
        }
        func refused(_ p: [Int], _ c: SamplingConfig) -> String {
            do { try engine.submit(.init(prompt: p, config: c), sink: { _ in }); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(refused([], c), "the prompt is empty")
        XCTAssertEqual(refused([1, 999], c), "token id 999 is outside the vocabulary (270)")
        XCTAssertEqual(refused(Array(repeating: 1, count: 20), c), "the prompt (20 tokens) + max tokens (20) exceeds the server's context (32)")
        XCTAssertEqual(refused([1], SamplingConfig(topP: 0)), "rollout: 'top_p' must be in (0, 1], got 0.0")
        do { try engine.submit(.init(prompt: [1], config: c, topLogprobs: 21), sink: { _ in }); XCTFail("accepted") } catch {
            XCTAssertEqual("\(error)", "top logprobs must be 0…20, got 21")
        }
        XCTAssertThrowsError(try BatchEngine(sampler: s, maxRows: 0, context: 32))
        engine.stop()
        XCTAssertEqual(refused([1], c), "the engine is stopped")
    }

    /// Streamed text holds back a tail that may begin a stop string, compared by Unicode scalars.
    func testStreamedTextHoldsBackAPossibleStopString() {
        XCTAssertEqual(BatchEngine.holdingBack("abcE", stops: ["END"]), "abc")
        XCTAssertEqual(BatchEngine.holdingBack("abcEN", stops: ["END", "NX"]), "abc")
        XCTAssertEqual(BatchEngine.holdingBack("abcN", stops: ["END", "NX"]), "abc")
        XCTAssertEqual(BatchEngine.holdingBack("abc", stops: ["x"]), "abc")
        XCTAssertEqual(BatchEngine.holdingBack("abc", stops: []), "abc")
        // A combining accent joins the last character: the scalars still line up.
        XCTAssertEqual(BatchEngine.holdingBack("cafe\u{301}", stops: ["\u{301}x"]), "cafe")
    }
}

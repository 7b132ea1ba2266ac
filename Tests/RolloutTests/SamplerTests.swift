import Foundation
import XCTest
@testable import Models
@testable import Rollout
@testable import Torch

func tinyModel(seed: UInt64 = 1, sharpness: Double = 1) throws -> (CausalLM, Tokenizer) {
    let config = ModelConfig(modelType: .llama, vocabSize: 270, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2,
                             numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 16, maxPositionEmbeddings: 64,
                             tieWordEmbeddings: false, eosTokenId: [257])
    let m = try CausalLM.random(config: config, seed: seed)
    if sharpness != 1 {
        try withTorchErrors { try m.setWeight("lm_head.weight", m.weights["lm_head.weight"]! * sharpness) }
    }
    var tokens = Tokenizer.byteToChar.map { String($0) } + ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    while tokens.count < 270 { tokens.append("<unused\(tokens.count)>") }
    let tok = try Tokenizer(tokens: tokens, merges: [], added: ["<|im_start|>": 256, "<|im_end|>": 257, "<|endoftext|>": 258],
                            special: [256, 257, 258], pre: .gpt2, bosId: nil, eosIds: [257])
    return (m, tok)
}

/// Teacher-forced per-token logprobs and entropies of `tokens` after `prompt` (no cache, no padding).
func teacherForced(_ m: CausalLM, prompt: [Int], tokens: [Int]) throws -> (lp: [Double], ent: [Double], logits: [[Float]]) {
    try withTorchErrors {
        try withNoGrad {
            let all = prompt + tokens
            let input = Tensor(all.dropLast().map(Int64.init), shape: [1, all.count - 1])
            let logits = try m(input).to(dtype: .float32)                             // [1, T, V]
            let logp = logits.logSoftmax(dim: -1)
            let start = prompt.count - 1
            let rows = logp.narrowed(dim: 1, start: start, length: tokens.count)
            let lp = rows.gather(dim: -1, index: Tensor(tokens.map(Int64.init), shape: [1, tokens.count, 1])).squeezed()
            let ent = -(rows.exp() * rows).sum(dim: -1)
            let raw = try logits.narrowed(dim: 1, start: start, length: tokens.count).floats()
            let v = m.config.vocabSize
            return (try lp.reshaped([-1]).doubles(), try ent.reshaped([-1]).doubles(), (0..<tokens.count).map { Array(raw[($0 * v)..<(($0 + 1) * v)]) })
        }
    }
}

final class SamplerTests: XCTestCase {
    let prompts = [[1, 2, 3, 4, 5], [9, 8], [100, 101, 102]]

    func testGreedyEqualsStepByStepGreedyWithoutCache() throws {
        let (m, tok) = try tinyModel()
        let out = try Sampler(model: m, tokenizer: tok).sample(prompts: prompts, n: 2, config: .init(temperature: 0, maxNewTokens: 12, stopTokenIds: [999]))
        XCTAssertEqual(out.count, 6)
        for c in out {
            var seq = prompts[c.promptIndex]
            for _ in 0..<12 {
                let logits = try withTorchErrors { try withNoGrad { try m(Tensor(seq.map(Int64.init), shape: [1, seq.count])).floats() } }
                let last = Array(logits.suffix(270))
                let next = last.indices.max { last[$0] < last[$1] }!
                seq.append(next)
                if next == 257 { break }
            }
            XCTAssertEqual(c.tokens, Array(seq.dropFirst(prompts[c.promptIndex].count)), "prompt \(c.promptIndex)")
            XCTAssertEqual(c.samplingLogprobs.allSatisfy { $0 == 0 }, true)
        }
    }

    /// What makes on-policy importance ratios exactly 1: returned logprobs equal a fresh forward pass.
    func testLogprobsAndEntropiesEqualATeacherForcedPass() throws {
        let (m, tok) = try tinyModel(sharpness: 30)
        let s = Sampler(model: m, tokenizer: tok)
        let out = try s.sample(prompts: prompts, n: 3, config: .init(temperature: 0.8, topK: 50, maxNewTokens: 16, seed: 3))
        XCTAssertTrue(out.contains { $0.finishReason == .eos } || out.allSatisfy { $0.tokens.count == 16 })
        for c in out {
            let ref = try teacherForced(m, prompt: prompts[c.promptIndex], tokens: c.tokens)
            for (a, b) in zip(c.logprobs, ref.lp) { XCTAssertEqual(a, b, accuracy: 1e-4) }
            for (a, b) in zip(c.entropies, ref.ent) { XCTAssertEqual(a, b, accuracy: 1e-4) }
            // The sampling distribution (T = 0.8, top-50) differs from the policy's.
            XCTAssertEqual(c.temperatures, Array(repeating: 0.8, count: c.tokens.count))
        }
    }

    /// A sampler holding a bf16 (or int8) copy samples with it: its logprobs match a teacher-forced
    /// pass through the copy and differ from the float32 model's (the mismatch TIS corrects); the
    /// config must name the precision the sampler holds, either way.
    func testALowPrecisionCopySamplesWithItsOwnWeights() throws {
        let (m, tok) = try tinyModel(sharpness: 30)
        for precision in [WeightPrecision.bf16, .int8] {
            let copy = try RolloutWeights(m, precision: precision)
            let s = Sampler(model: m, tokenizer: tok, weights: copy)
            var config = SamplingConfig(temperature: 1, maxNewTokens: 12, seed: 4)
            config.weights = precision
            var toEngine = [Double](), toLearner = [Double]()
            for c in try s.sample(prompts: prompts, n: 2, config: config) {
                let engine = try m.using(copy) { try teacherForced(m, prompt: prompts[c.promptIndex], tokens: c.tokens) }
                let learner = try teacherForced(m, prompt: prompts[c.promptIndex], tokens: c.tokens)
                toEngine += zip(c.logprobs, engine.lp).map { abs($0 - $1) }
                toLearner += zip(c.logprobs, learner.lp).map { abs($0 - $1) }
            }
            let engineMean = toEngine.reduce(0, +) / Double(toEngine.count), learnerMean = toLearner.reduce(0, +) / Double(toLearner.count)
            // int8 multiplies float32 activations: the cached decode equals the teacher-forced pass. bf16 rounds
            // each matmul's input, so the two passes' float32 differences move some roundings (measured mean 8e-5).
            XCTAssertLessThan(toEngine.max()!, precision == .int8 ? 1e-4 : 1e-2, "\(precision)")
            XCTAssertLessThan(engineMean, precision == .int8 ? 1e-5 : 5e-4, "\(precision)")
            XCTAssertGreaterThan(learnerMean, max(1e-3, 10 * engineMean), "\(precision): the copy gave the float32 logprobs")
            XCTAssertThrowsError(try s.sample(prompts: prompts, config: .init(maxNewTokens: 4))) {
                XCTAssertEqual("\($0)", "rollout: 'weights' is fp32 but this sampler holds a \(precision.rawValue) copy "
                    + "(the trainer makes the copy from rollout.weights; evaluation samples with the learner's float32 weights)")
            }
        }
        var bf16 = SamplingConfig(maxNewTokens: 4)
        bf16.weights = .bf16
        XCTAssertThrowsError(try Sampler(model: m, tokenizer: tok).sample(prompts: prompts, config: bf16)) {
            XCTAssertEqual("\($0)", "rollout: 'weights' is bf16 but this sampler holds the model's float32 weights "
                + "(the trainer makes the copy from rollout.weights; evaluation samples with the learner's float32 weights)")
        }
    }

    /// Empirical first-token frequencies follow softmax(logits / T) (chi-square, fixed seed).
    func testSamplingFrequenciesMatchTheSoftmax() throws {
        let (m, tok) = try tinyModel(sharpness: 8)
        let draws = 3000
        let out = try Sampler(model: m, tokenizer: tok).sample(prompts: [[7, 7, 7]], n: draws, config: .init(temperature: 1.3, maxNewTokens: 1, seed: 11))
        let ref = try teacherForced(m, prompt: [7, 7, 7], tokens: [0])
        let z = ref.logits[0].map { Double($0) / 1.3 }
        let mx = z.max()!
        let e = z.map { Foundation.exp($0 - mx) }
        let p = e.map { $0 / e.reduce(0, +) }
        var counts = [Double](repeating: 0, count: 270)
        for c in out { counts[c.tokens[0]] += 1 }
        // Bins: tokens expected ≥ 5 times each, the rest pooled.
        var observed = [Double](), expected = [Double](), restO = 0.0, restE = 0.0
        for v in 0..<270 {
            let ev = p[v] * Double(draws)
            if ev >= 5 { observed.append(counts[v]); expected.append(ev) } else { restO += counts[v]; restE += ev }
        }
        if restE > 0 { observed.append(restO); expected.append(restE) }
        let chi2 = zip(observed, expected).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) / $1.1 }
        let dof = Double(observed.count - 1)
        // Wilson–Hilferty 99.9% quantile of chi-square(dof).
        let critical = dof * Foundation.pow(1 - 2 / (9 * dof) + 3.09 * (2 / (9 * dof)).squareRoot(), 3)
        XCTAssertGreaterThan(dof, 5)
        XCTAssertLessThan(chi2, critical, "chi-square \(chi2) over \(Int(dof)) dof")
    }

    func testTruncationNeverLeavesTheAllowedSet() throws {
        let (m, tok) = try tinyModel(sharpness: 40)
        let s = Sampler(model: m, tokenizer: tok)
        func ranks(_ c: Completion, _ prompt: [Int], _ t: Double, check: ([Double], Int) -> Bool) throws {
            let ref = try teacherForced(m, prompt: prompt, tokens: c.tokens)
            for (k, tokenId) in c.tokens.enumerated() {
                let z = ref.logits[k].map { Double($0) / t }
                XCTAssertTrue(check(z, tokenId), "token \(tokenId) at step \(k)")
            }
        }
        for c in try s.sample(prompts: [[5, 6]], n: 40, config: .init(temperature: 1.5, topK: 3, maxNewTokens: 6, seed: 1)) {
            try ranks(c, [5, 6], 1.5) { z, id in z.filter { $0 > z[id] }.count < 3 }
        }
        for c in try s.sample(prompts: [[5, 6]], n: 40, config: .init(temperature: 1.5, topP: 0.5, maxNewTokens: 6, seed: 2)) {
            try ranks(c, [5, 6], 1.5) { z, id in
                let mx = z.max()!, e = z.map { Foundation.exp($0 - mx) }, total = e.reduce(0, +)
                let above = e.enumerated().filter { z[$0.offset] > z[id] }.reduce(0) { $0 + $1.element } / total
                return above < 0.5   // inside the nucleus: less than p of the mass ranks above it
            }
        }
        for c in try s.sample(prompts: [[5, 6]], n: 40, config: .init(temperature: 1.5, minP: 0.3, maxNewTokens: 6, seed: 3)) {
            try ranks(c, [5, 6], 1.5) { z, id in Foundation.exp(z[id] - z.max()!) >= 0.3 - 1e-9 }
        }
    }

    func testReproducibleRegardlessOfBatchComposition() throws {
        let (m, tok) = try tinyModel(sharpness: 20)
        let s = Sampler(model: m, tokenizer: tok)
        let cfg = SamplingConfig(temperature: 1, maxNewTokens: 10, seed: 42)
        let alone = try s.sample(prompts: [[9, 8]], n: 2, config: cfg)
        let mixed = try s.sample(prompts: [[1, 2, 3, 4, 5, 6], [9, 8], [77]], n: 2, config: cfg)
        XCTAssertEqual(mixed.filter { $0.promptIndex == 1 }.map(\.tokens), alone.map(\.tokens))
        XCTAssertNotEqual(alone[0].tokens, alone[1].tokens)   // samples of one prompt differ
        // Repeats of one prompt in a batch draw different samples.
        let repeated = try s.sample(prompts: [[9, 8], [9, 8]], n: 1, config: cfg)
        XCTAssertNotEqual(repeated[0].tokens, repeated[1].tokens)
        XCTAssertEqual(repeated[0].tokens, alone[0].tokens)
        let other = try s.sample(prompts: [[9, 8]], n: 2, config: .init(temperature: 1, maxNewTokens: 10, seed: 43))
        XCTAssertNotEqual(other.map(\.tokens), alone.map(\.tokens))
    }

    func testStopStringsEosAndLength() throws {
        let (m, tok) = try tinyModel(sharpness: 5)
        let s = Sampler(model: m, tokenizer: tok)
        let free = try s.sample(prompts: [[3, 4]], config: .init(temperature: 0, maxNewTokens: 8))[0]
        XCTAssertEqual(free.finishReason, .length)
        XCTAssertEqual(free.tokens.count, 8)
        XCTAssertEqual(free.text, tok.decode(free.tokens))
        // A stop string spanning tokens 3 and 4 of the free run.
        let piece3 = tok.decode([free.tokens[2]]), piece4 = tok.decode([free.tokens[3]])
        let stop = String(piece3.suffix(1)) + String(piece4.prefix(1))
        let stopped = try s.sample(prompts: [[3, 4]], config: .init(temperature: 0, maxNewTokens: 8, stop: [stop]))[0]
        XCTAssertEqual(stopped.finishReason, .stop)
        let prefixText = tok.decode(Array(free.tokens.prefix(4)))
        XCTAssertLessThanOrEqual(stopped.tokens.count, 4)
        XCTAssertEqual(stopped.text, String(prefixText[..<prefixText.range(of: stop)!.lowerBound]))
        // An end id ends the sequence (and is kept: the policy must learn to stop). Use the first
        // token of the free run that did not occur before it.
        let k = (1..<free.tokens.count).first { !free.tokens[..<$0].contains(free.tokens[$0]) }!
        let eos = try s.sample(prompts: [[3, 4]], config: .init(temperature: 0, maxNewTokens: 8, stopTokenIds: [free.tokens[k]]))[0]
        XCTAssertEqual(eos.finishReason, .eos)
        XCTAssertEqual(eos.tokens, Array(free.tokens.prefix(k + 1)))
        XCTAssertEqual(eos.text, tok.decode(Array(free.tokens.prefix(k))))
        // The tokenizer's end ids stop too, unless ignore_eos (benchmarks) says otherwise.
        tok.eosIds = [free.tokens[k]]
        XCTAssertEqual(try s.sample(prompts: [[3, 4]], config: .init(temperature: 0, maxNewTokens: 8))[0].tokens.count, k + 1)
        let ignored = try s.sample(prompts: [[3, 4]], config: .init(temperature: 0, maxNewTokens: 8, ignoreEos: true))[0]
        XCTAssertEqual(ignored.tokens, free.tokens)
        XCTAssertEqual(ignored.finishReason, .length)
    }

    func testAdaptiveTemperature() throws {
        let (m, tok) = try tinyModel()
        let s = Sampler(model: m, tokenizer: tok)
        let hot = try s.sample(prompts: [[1]], config: .init(temperature: 1, maxNewTokens: 4), schedule: AdaptiveTemperature(tau: 0.05) { _ in 3 })[0]
        XCTAssertEqual(hot.temperatures, [1.05, 1.05, 1.05, 1.05])   // ĥ clamped to 1
        let cold = try s.sample(prompts: [[1]], config: .init(temperature: 0.5, maxNewTokens: 2), schedule: AdaptiveTemperature(tau: 0.1) { _ in -0.5 })[0]
        for (a, b) in zip(cold.temperatures, [0.475, 0.475]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        // The schedule sees the step's entropy.
        let probe = try s.sample(prompts: [[1]], config: .init(temperature: 1, maxNewTokens: 3), schedule: AdaptiveTemperature(tau: 0.1) { h in h > 5 ? 1 : -1 })[0]
        for (t, h) in zip(probe.temperatures, probe.entropies) { XCTAssertEqual(t, h > 5 ? 1.1 : 0.9, accuracy: 1e-12) }
    }

    func testBadInputs() throws {
        let (m, tok) = try tinyModel()
        let s = Sampler(model: m, tokenizer: tok)
        func error(_ body: () throws -> Void) -> String { do { try body(); return "no error" } catch { return "\(error)" } }
        XCTAssertEqual(error { _ = try s.sample(prompts: [], config: .init()) }, "rollout: the prompt list is empty")
        XCTAssertEqual(error { _ = try s.sample(prompts: [[1]], n: 0, config: .init()) }, "rollout: n (samples per prompt) must be at least 1, got 0")
        XCTAssertEqual(error { _ = try s.sample(prompts: [[1], []], config: .init()) }, "rollout: prompt 1 is empty")
        XCTAssertEqual(error { _ = try s.sample(prompts: [[1, 2, 3]], config: .init(maxNewTokens: 62)) },
                       "rollout: the longest prompt (3 tokens) + max_new_tokens (62) exceeds the model's context (64)")
        XCTAssertEqual(error { _ = try s.sample(prompts: [[1, 300]], config: .init(maxNewTokens: 4)) }, "rollout: token id 300 is outside the vocabulary (270)")
        XCTAssertEqual(error { _ = try s.sample(prompts: [[1]], config: .init(topP: 0)) }, "rollout: 'top_p' must be in (0, 1], got 0.0")
        XCTAssertEqual(error { _ = try s.sample(prompts: [[1]], config: .init(temperature: -1)) }, "rollout: 'temperature' must be >= 0, got -1.0")
        XCTAssertEqual(error { _ = try s.sample(prompts: [[1]], config: .init(stop: [""])) }, "rollout: 'stop'[0] is an empty string")
    }
}

import Foundation
import XCTest
@testable import Credit
@testable import Models
@testable import Objectives
@testable import Rewards
@testable import Rollout
@testable import Torch
@testable import Training

/// Rewards that vary with random text: the share of lower-case letters, plus a process reward after
/// every 'e' (so process-reward methods have steps).
struct LetterReward: RewardFunction {
    var name: String { "letters" }
    var givesStepRewards: Bool { true }
    func score(_ input: RewardInput) -> RewardScore {
        let bytes = Array(input.response.utf8)
        let lower = bytes.filter { (97...122).contains($0) }.count
        let steps = bytes.enumerated().filter { $0.element == UInt8(ascii: "e") }.map { StepScore(offset: $0.offset, reward: 0.5) }
        return RewardScore(value: bytes.isEmpty ? 0 : Double(lower) / Double(bytes.count) + Double(bytes.count % 3) * 0.1,
                           components: ["lower": Double(lower)], steps: steps)
    }
}

func tiny(seed: UInt64 = 1) throws -> (CausalLM, Tokenizer) {
    let config = ModelConfig(modelType: .llama, vocabSize: 270, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2,
                             numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 16, maxPositionEmbeddings: 128, eosTokenId: [257])
    let m = try CausalLM.random(config: config, seed: seed)
    var tokens = Tokenizer.byteToChar.map { String($0) } + ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    while tokens.count < 270 { tokens.append("<unused\(tokens.count)>") }
    let tok = try Tokenizer(tokens: tokens, merges: [], added: ["<|im_start|>": 256, "<|im_end|>": 257, "<|endoftext|>": 258],
                            special: [256, 257, 258], pre: .gpt2, bosId: nil, eosIds: [257])
    return (m, tok)
}

/// The trainer tests' run config: 4 samples per prompt, 8 new tokens, lr 1e-2, small trees.
/// The figures of a run's steps that must not depend on an interruption (timings do).
func replayableMetrics(_ dir: URL) -> [[String: Double]] {
    JSONLines.read(dir.appendingPathComponent("metrics.jsonl")).map { line in
        line.compactMapValues { ($0 as? NSNumber)?.doubleValue }.filter { !$0.key.contains("seconds") && !$0.key.contains("per_second") && $0.key != "peak_memory_mb" }
    }
}

func tinyTrainerConfig(_ edit: (inout RunConfig) -> Void = { _ in }) -> RunConfig {
    var cfg = RunConfig()
    cfg.rollout = SamplingConfig(temperature: 1, maxNewTokens: 8, seed: 3)
    cfg.train.samplesPerPrompt = 4
    cfg.optim.lr = 1e-2
    cfg.train.tree = TreeConfig(branching: 2, segmentTokens: 3, maxLeaves: 4)
    edit(&cfg)
    return cfg
}

/// A trainer on the tiny model after `steps` steps on two prompts, and the last step's metrics;
/// asserts a finite loss and gradient and that the weights moved.
func trainTiny(_ cfg: RunConfig, steps: Int = 2, file: StaticString = #filePath, line: UInt = #line) throws -> (Trainer, [String: Double]) {
    let samples = [TaskSample(prompt: "abc", answer: "1"), TaskSample(prompt: "hello there", answer: "2")]
    let (m, tok) = try tiny()
    let t = try Trainer(model: m, tokenizer: tok, reward: LetterReward(), config: cfg)
    let before = try withTorchErrors { try t.optimizer.parameters.map { try $0.detached().clone().floats() } }
    var last: [String: Double] = [:]
    for s in 0..<steps { last = try t.step(samples, progress: Double(s) / Double(steps)) }
    let after = try withTorchErrors { try t.optimizer.parameters.map { try $0.floats() } }
    XCTAssertTrue(last["loss"]!.isFinite, "loss \(last["loss"]!)", file: file, line: line)
    XCTAssertTrue(last["grad_norm"]!.isFinite, file: file, line: line)
    XCTAssertNotEqual(before, after, "weights did not change", file: file, line: line)
    XCTAssertEqual(t.stepsDone, steps, file: file, line: line)
    return (t, last)
}

final class TrainerTests: XCTestCase {
    let samples = [TaskSample(prompt: "abc", answer: "1"), TaskSample(prompt: "hello there", answer: "2")]

    func run(_ edit: (inout RunConfig) -> Void, steps: Int = 2, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Double] {
        try trainTiny(tinyTrainerConfig(edit), steps: steps, file: file, line: line).1
    }

    func testEveryObjectiveVariantTrains() throws {
        let variants: [(String, (inout PolicyLossConfig) -> Void)] = [
            ("token", { _ in }), ("sequence", { $0.ratio = .sequence; $0.aggregation = .seqMeanTokenMean }),
            ("gspo_token", { $0.ratio = .gspoToken; $0.aggregation = .seqMeanTokenMean }),
            ("hybrid", { $0.ratio = .hybrid; $0.hybrid = .init(mixing: .entropy, space: .log) }), ("prefix_min", { $0.ratio = .prefixMin }),
            ("dual_clip", { $0.dualClip = 3; $0.epsHigh = 0.28 }), ("adaptive", { $0.adaptiveClip = .init() }),
            ("kl_k3", { $0.klCoef = 0.1 }), ("entropy", { $0.entropyCoef = 0.01 }),
            ("seq_mean_token_sum_norm", { $0.aggregation = .seqMeanTokenSumNorm; $0.normConstant = 8 }),
            ("no_clip", { $0.clip = false }),
        ]
        for (name, edit) in variants {
            var objective = PolicyLossConfig()
            edit(&objective)
            let m = try run { $0.objective = objective }
            XCTAssertNotNil(m["clip_fraction_high"], name)
            if objective.klCoef != 0 { XCTAssertNotNil(m["kl"], name) }
        }
    }

    func testFullFineTuningWithAKLReferenceAndSeveralEpochs() throws {
        let m = try run { $0.model.lora = nil; $0.objective.klCoef = 0.05; $0.train.epochs = 2 }
        XCTAssertNotNil(m["kl"])
        // After the first epoch the policy has moved: the second epoch's ratios are not all 1.
        XCTAssertGreaterThan(m["approx_kl"]!, 0)
    }

    /// On-policy, the ratio is 1 at the first epoch: rollout logprobs equal the training forward's.
    func testFirstEpochIsOnPolicy() throws {
        let m = try run({ _ in }, steps: 1)
        XCTAssertEqual(m["ratio_max"]!, 1, accuracy: 1e-3)
        XCTAssertEqual(m["ratio_min"]!, 1, accuracy: 1e-3)
        XCTAssertEqual(m["clip_fraction_high"]!, 0)
    }

    func testBadConfigs() throws {
        let (mdl, tok) = try tiny()
        var cfg = RunConfig()
        cfg.train.samplesPerPrompt = 0
        XCTAssertThrowsError(try Trainer(model: mdl, tokenizer: tok, reward: LetterReward(), config: cfg)) {
            XCTAssertEqual("\($0)", "config: 'train.samples_per_prompt' must be at least 1, got 0")
        }
        cfg = RunConfig()
        cfg.objective.dualClip = 0.5
        XCTAssertThrowsError(try Trainer(model: mdl, tokenizer: tok, reward: LetterReward(), config: cfg)) {
            XCTAssertEqual("\($0)", "objective: 'dual_clip' must be > 1, got 0.5")
        }
        let t = try Trainer(model: mdl, tokenizer: tok, reward: LetterReward(), config: RunConfig())
        XCTAssertThrowsError(try t.step([])) { XCTAssertEqual("\($0)", "train: a step needs at least one prompt") }
    }
}

/// Rewards so large that float32 advantages overflow.
struct HugeReward: RewardFunction {
    var name: String { "huge" }
    func score(_ input: RewardInput) -> RewardScore { RewardScore(value: Double(input.response.utf8.count % 2) * 1e300) }
}

/// The same reward for every response.
struct FlatReward: RewardFunction {
    var name: String { "flat" }
    func score(_ input: RewardInput) -> RewardScore { RewardScore(value: 1) }
}

final class DivergenceTests: XCTestCase {
    /// When Credit gives every token weight 0 (SPO-tree drops every zero-advantage edge), no
    /// optimizer step runs: weight decay and momentum leave the weights as they were.
    func testAStepWithNoLossTokensLeavesTheWeights() throws {
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: FlatReward(),
                            config: tinyTrainerConfig { $0.credit = .spoTree(.init()); $0.optim.weightDecay = 0.1 })
        let before = try withTorchErrors { try t.optimizer.parameters.map { try $0.detached().clone().floats() } }
        let metrics = try t.step([TaskSample(prompt: "abc")])
        XCTAssertEqual(metrics["tokens"], 0)
        XCTAssertEqual(try withTorchErrors { try t.optimizer.parameters.map { try $0.floats() } }, before)
    }

    /// A non-finite loss or gradient stops the step before the optimizer touches the weights, and
    /// non-finite rollout logprobs (NaN weights) stop the next step with a message that says so.
    func testNonFiniteUpdatesNeverReachTheWeights() throws {
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: HugeReward(), config: tinyTrainerConfig { $0.credit = .grpo(.init(stdNormalize: false)) })
        let before = try withTorchErrors { try t.optimizer.parameters.map { try $0.detached().clone().floats() } }
        XCTAssertThrowsError(try t.step([TaskSample(prompt: "abc"), TaskSample(prompt: "hello there")])) {
            XCTAssertTrue("\($0)".hasPrefix("training diverged at step 1: the loss ("), "\($0)")
            XCTAssertTrue("\($0)".contains("so this update was not applied"), "\($0)")
        }
        XCTAssertEqual(try withTorchErrors { try t.optimizer.parameters.map { try $0.floats() } }, before)
        // NaN weights: the rollouts' logprobs are NaN.
        let (m2, tok2) = try tiny()
        let t2 = try Trainer(model: m2, tokenizer: tok2, reward: LetterReward(), config: tinyTrainerConfig { $0.model.lora = nil })
        try withTorchErrors { try withNoGrad { m2.weights["model.norm.weight"]!.copy(from: Tensor.full([64], value: .nan)) } }
        XCTAssertThrowsError(try t2.step([TaskSample(prompt: "abc")])) {
            XCTAssertTrue("\($0)".hasPrefix("training diverged at step 1: the policy's logprobs are not finite"), "\($0)")
        }
    }
}

final class MicroBatchTests: XCTestCase {
    /// Accumulating over micro-batches gives the whole batch's loss and gradient, for every aggregation
    /// (each micro-batch's aggregate is weighted by its share of tokens or rows).
    func testMicroBatchesAccumulateTheWholeBatchGradient() throws {
        let samples = [TaskSample(prompt: "abc", answer: "1"), TaskSample(prompt: "hello there", answer: "2")]
        for aggregation in PolicyLossConfig.Aggregation.allCases {
            func run(_ micro: Int) throws -> ([String: Double], [[Float]]) {
                let (m, tok) = try tiny()
                let cfg = tinyTrainerConfig {
                    $0.objective.aggregation = aggregation
                    $0.train.microBatch = micro
                    $0.optim.maxGradNorm = 1e9
                }
                let t = try Trainer(model: m, tokenizer: tok, reward: LetterReward(), config: cfg)
                let metrics = try t.step(samples)
                return (metrics, try withTorchErrors { try t.optimizer.parameters.map { try $0.floats() } })
            }
            let (whole, w1) = try run(0), (parts, w2) = try run(3)   // 8 rows: micro-batches of 3, 3, 2
            XCTAssertEqual(parts["loss"]!, whole["loss"]!, accuracy: 1e-6, "\(aggregation)")
            XCTAssertEqual(parts["grad_norm"]!, whole["grad_norm"]!, accuracy: 1e-5 * whole["grad_norm"]!, "\(aggregation)")
            XCTAssertGreaterThan(whole["grad_norm"]!, 0)
            // Adam's first step is about lr·sign(g): equal gradients give equal weights, except where a
            // gradient element is near Adam's eps (1e-8), where float noise moves the update a little.
            let diffs = zip(w1.flatMap { $0 }, w2.flatMap { $0 }).map { abs($0 - $1) }
            XCTAssertLessThan(Double(diffs.filter { $0 > 1e-6 }.count), 1e-3 * Double(diffs.count), "\(aggregation)")
            XCTAssertLessThan(diffs.max()!, 1e-2 * 0.5, "\(aggregation)")
        }
    }

    /// Prompts run once per mini-batch and micro-batches backpropagate into their keys and values:
    /// with full fine-tuning and an untied head, an embedding row learns exactly when its token is an
    /// input — tokens seen only in the prompts included, which need the prompts' backward pass.
    func testPromptsGetGradientThroughTheSharedPrefix() throws {
        let (base, tok) = try tiny()
        var config = base.config
        config.tieWordEmbeddings = false
        var w = base.weights
        w["lm_head.weight"] = try withTorchErrors { w["model.embed_tokens.weight"]!.detached().clone() }
        let m = try CausalLM(config: config, weights: w)
        var cfg = tinyTrainerConfig()
        cfg.model.lora = nil
        cfg.optim.lr = 1e-5
        cfg.optim.weightDecay = 0
        cfg.train.microBatch = 3
        cfg.rollout = SamplingConfig(temperature: 1, maxNewTokens: 6, seed: 5)
        let t = try Trainer(model: m, tokenizer: tok, reward: LetterReward(), config: cfg)
        let embedding = { try withTorchErrors { try m.weights["model.embed_tokens.weight"]!.detached().clone().floats() } }
        let before = try embedding()
        let samples = [TaskSample(prompt: "QXZ", answer: nil), TaskSample(prompt: "JKV", answer: nil)]
        _ = try t.step(samples)
        let after = try embedding()
        func changed(_ id: Int) -> Bool { (0..<64).contains { before[id * 64 + $0] != after[id * 64 + $0] } }
        let responses = Set(t.lastRecords.flatMap(\.tokens))
        let promptOnly = Set(samples.flatMap { tok.encode($0.prompt) }).subtracting(responses)
        XCTAssertEqual(promptOnly.count, 6)
        for id in promptOnly { XCTAssertTrue(changed(id), "prompt token \(id) got no gradient") }
        let unused = (0..<256).filter { !responses.contains($0) && !promptOnly.contains($0) }
        XCTAssertFalse(unused.isEmpty)
        for id in unused { XCTAssertFalse(changed(id), "token \(id) is no input but changed") }
    }

    /// Two mini-batches take two optimizer steps per epoch; the second is off-policy.
    func testMiniBatchesTakeSeveralOptimizerSteps() throws {
        let (m, tok) = try tiny()
        var cfg = tinyTrainerConfig { $0.train.miniBatches = 2 }
        let t = try Trainer(model: m, tokenizer: tok, reward: LetterReward(), config: cfg)
        _ = try t.step([TaskSample(prompt: "abc"), TaskSample(prompt: "hello there")])
        let state = try t.optimizer.stateTensors().metadata
        XCTAssertTrue(state["steps"]?.contains("2") ?? false, "\(state)")
        cfg.train.miniBatches = 0
        XCTAssertThrowsError(try Trainer(model: m, tokenizer: tok, reward: LetterReward(), config: cfg)) {
            XCTAssertEqual("\($0)", "config: 'train.mini_batches' must be at least 1, got 0")
        }
    }
}

final class PreferenceTrainerTests: XCTestCase {
    /// Chosen and rejected responses share one pass over their prompt (prompts of different lengths,
    /// one repeated); every response token's logprob equals a teacher-forced pass over the whole row.
    func testSidesEqualTeacherForcedRows() throws {
        let (m, tok) = try tiny()
        let t = try PreferenceTrainer(model: m, tokenizer: tok, objective: .init(name: .tdpo2, beta: 0.1), lora: .init(),
                                      lr: 1e-3, weightDecay: 0, maxGradNorm: 1, seed: 1)
        let pairs = [PreferencePair(prompt: "Q: two plus two", chosen: "four", rejected: "five!"),
                     PreferencePair(prompt: "hi", chosen: "hello there", rejected: ""),
                     PreferencePair(prompt: "Q: two plus two", chosen: "4", rejected: "22")]
        try withTorchErrors {
            let (chosen, rejected) = try withNoGrad { try t.sides(pairs) }
            for (side, key) in [(chosen, \PreferencePair.chosen), (rejected, \PreferencePair.rejected)] {
                let lp = try side.logprobs.floats(), ref = try side.refLogprobs.floats(), width = side.logprobs.size(1)
                XCTAssertEqual(try side.mask.doubles().reduce(0, +), Double(pairs.reduce(0) { $0 + tok.encode($1[keyPath: key]).count + 1 }))
                XCTAssertLessThan(try side.kl!.abs().amax().item(), 1e-6)   // LoRA starts at B = 0: policy = reference
                for (n, pair) in pairs.enumerated() {
                    let prompt = tok.encode(pair.prompt), response = tok.encode(pair[keyPath: key]) + [257]
                    let row = prompt + response
                    let full = try withNoGrad { try m(Tensor(row.map(Int64.init), shape: [1, row.count])).logSoftmax(dim: -1).floats() }
                    for (k, token) in response.enumerated() {
                        let expected = full[(prompt.count - 1 + k) * 270 + token]
                        XCTAssertEqual(lp[n * width + k], expected, accuracy: 1e-5, "pair \(n) token \(k)")
                        XCTAssertEqual(ref[n * width + k], expected, accuracy: 1e-5)
                    }
                }
            }
        }
    }

    /// A pair whose response is empty has nothing to score when the tokenizer has no end token.
    func testEmptyResponseWithoutEndTokenIsAnError() throws {
        let (m, _) = try tiny()
        var tokens = Tokenizer.byteToChar.map { String($0) }
        while tokens.count < 270 { tokens.append("<unused\(tokens.count)>") }
        let tok = try Tokenizer(tokens: tokens, merges: [], added: [:], special: [], pre: .gpt2, bosId: nil, eosIds: [])
        let t = try PreferenceTrainer(model: m, tokenizer: tok, objective: .init(name: .dpo, beta: 0.1), lora: .init(),
                                      lr: 1e-3, weightDecay: 0, maxGradNorm: 1, seed: 1)
        XCTAssertThrowsError(try t.step([PreferencePair(prompt: "a", chosen: "b", rejected: "c"), PreferencePair(prompt: "a", chosen: "", rejected: "c")])) {
            XCTAssertEqual("\($0)", "preference pair 1: the response is empty and the tokenizer has no end token")
        }
    }
}

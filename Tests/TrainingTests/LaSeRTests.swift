import Foundation
import Credit
import Models
import Objectives
import Rewards
import Rollout
import Torch
import XCTest
@testable import Training

/// LaSeR: the class weights, the self-reward advantages and the mix by hand and against the
/// official code's arithmetic; the loss's gradient; the training forward's log π(z); the steps it
/// trains and the configs it refuses.
final class LaSeRTests: XCTestCase {
    /// 4 finished rows, 1 right and 3 wrong: N/(2N₊) = 4/2, N/(2N₋) = 4/6; the unfinished one 0.
    func testClassWeightsByHand() {
        let targets = [1.0, 0, 0, 1, 0], finished = [true, true, true, false, true]
        let w = LaSeR.classWeights(targets: targets, finished: finished, balanced: true)
        XCTAssertEqual(w[0], 2)
        for i in [1, 2, 4] { XCTAssertEqual(w[i], 4.0 / 6, accuracy: 1e-12) }
        XCTAssertEqual(w[3], 0)
        XCTAssertEqual(LaSeR.classWeights(targets: targets, finished: finished, balanced: false), [1, 1, 1, 0, 1])
        // Counts from every rank replace this rank's; a class with no finished row weighs 0.
        XCTAssertEqual(LaSeR.classWeights(targets: targets, finished: finished, balanced: true, counts: (positive: 3, negative: 1))[1], 2)
        XCTAssertEqual(LaSeR.classWeights(targets: [0, 0], finished: [true, true], balanced: true), [0.5, 0.5])   // 2/(2·2)
        XCTAssertEqual(LaSeR.classWeights(targets: [1, 0], finished: [false, false], balanced: true), [0, 0])
    }

    /// Scores 0.9, 0.2, (unfinished), 1.4 → 0.9, 0.2, 0, 1 (clamped): mean 0.525, sample variance
    /// 0.7475/3, so A_s = 0.375/0.49917 … = 0.75125, −0.65109, −1.05175, 0.95159.
    func testSelfAdvantagesByHand() throws {
        let a = try XCTUnwrap(LaSeR.selfAdvantages([0.9, 0.2, nil, 1.4], stdMin: 0.1))
        for (x, y) in zip(a, [0.75125313, -0.65108605, -1.05175439, 0.95158730]) { XCTAssertEqual(x, y, accuracy: 1e-7) }
        // A group of one: mean 0, std 1, as the official code.
        XCTAssertEqual(LaSeR.selfAdvantages([0.3], stdMin: 0.1), [0.3])
        XCTAssertEqual(LaSeR.selfAdvantages([-2], stdMin: 0.1), [0])
        // A std at most τ keeps the group's advantages.
        XCTAssertNil(LaSeR.selfAdvantages([0.5, 0.5], stdMin: 0))
        XCTAssertNil(LaSeR.selfAdvantages([0.5, 0.6], stdMin: 0.1))
        // The mix: (1 − α)A + αA_s per token; α 0 is the base method's advantages.
        let adv: [[[Double]]] = [[[1, 2], [3]], [[5], [6]]]
        let (mixed, n) = LaSeR.mix(adv, scores: [[0.9, 0.2], [0.5, 0.5]], coef: 0.5, stdMin: 0.1)
        XCTAssertEqual(n, 1)
        // Scores 0.9, 0.2: mean 0.55, sample std √0.245 = 0.49497, so A_s = ±0.35/0.49497.
        XCTAssertEqual(mixed[0][0][0], 0.5 + 0.5 * (0.35 / 0.4949747468), accuracy: 1e-9)
        XCTAssertEqual(mixed[0][0][1], 1 + 0.5 * (0.35 / 0.4949747468), accuracy: 1e-9)
        XCTAssertEqual(mixed[0][1][0], 1.5 - 0.5 * (0.35 / 0.4949747468), accuracy: 1e-9)
        XCTAssertEqual(mixed[1], adv[1])
        XCTAssertEqual(LaSeR.mix(adv, scores: [[0.9, 0.2], [0.1, 0.8]], coef: 0, stdMin: 0.1).0, adv)
    }

    struct Fixture: Decodable {
        struct Case: Decodable {
            let kl_coef: Double, constant: Double, balanced: Bool, coef: Double, threshold: Double
            let group_sizes: [Int], rewards: [Double], finished: [Double], lpz: [Double], ref_lpz: [Double], advantages: [[Double]]
            struct Expected: Decodable { let weights: [Double]; let loss: Double; let mixed: [[Double]] }
            let expected: Expected
        }
        let cases: [Case]
    }

    /// scripts/reference/laser_official.py re-implements RUCBM/LaSeR @48996f7's reweighting, loss
    /// and advantage mix; Tokenwise's functions give the same numbers.
    func testTheOfficialCodesNumbers() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/laser_official.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        XCTAssertEqual(fixture.cases.count, 12)
        for (k, c) in fixture.cases.enumerated() {
            let finished = c.finished.map { $0 == 1 }
            let weights = LaSeR.classWeights(targets: c.rewards, finished: finished, balanced: c.balanced)
            for (a, b) in zip(weights, c.expected.weights) { XCTAssertEqual(a, b, accuracy: 1e-12, "case \(k)") }
            let reference = c.constant < 0 ? c.rewards.map { _ in c.constant } : c.ref_lpz
            let loss = try withTorchErrors {
                try LaSeR.loss(lpz: Tensor(c.lpz), reference: Tensor(reference), targets: Tensor(c.rewards), weights: Tensor(weights),
                               beta: c.kl_coef, size: c.lpz.count).loss.item()
            }
            XCTAssertEqual(loss, c.expected.loss, accuracy: 1e-10 * Swift.max(1, c.expected.loss), "case \(k)")
            var scores = [[Double?]](), adv = [[[Double]]](), row = 0
            for n in c.group_sizes {
                scores.append((row..<(row + n)).map { finished[$0] ? c.kl_coef * (c.lpz[$0] - reference[$0]) : nil })
                adv.append(Array(c.advantages[row..<(row + n)]))
                row += n
            }
            let mixed = LaSeR.mix(adv, scores: scores, coef: c.coef, stdMin: c.threshold).0.flatMap { $0 }
            for (i, (a, b)) in zip(mixed, c.expected.mixed).enumerated() {
                XCTAssertEqual(a.count, b.count)
                for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-10, "case \(k) row \(i)") }
            }
        }
    }

    /// ∂L/∂log π(z)_i = 2β·w_i·(s_i − r_i)/size, by autograd.
    func testTheLossGradientByHand() throws {
        try withTorchErrors {
            let lpz = Tensor([-20.0, -25, -18]).requiringGrad()
            let (loss, score) = LaSeR.loss(lpz: lpz, reference: Tensor([-23.0, -23, -23]), targets: Tensor([1.0, 0, 0]),
                                           weights: Tensor([1.5, 0.75, 0]), beta: 0.1, size: 4)
            assertNear(try score.doubles(), [0.3, -0.2, 0.5].map { $0 }, accuracy: 1e-12)
            XCTAssertEqual(try loss.item(), (1.5 * 0.49 + 0.75 * 0.04) / 4, accuracy: 1e-12)
            loss.backward()
            let g = try XCTUnwrap(lpz.grad).doubles()
            assertNear(g, [2 * 0.1 * 1.5 * -0.7 / 4, 2 * 0.1 * 0.75 * -0.2 / 4, 0], accuracy: 1e-12)
        }
    }

    /// A laser config on the tiny model whose responses end early: half the vocabulary stops them.
    func config(_ edit: (inout LaSeRConfig) -> Void = { _ in }) -> RunConfig {
        tinyTrainerConfig {
            var l = LaSeRConfig()
            l.token = "<unused260>"
            l.advantageWarmupSteps = 0
            l.referenceConstant = -5
            edit(&l)
            $0.laser = l
            $0.rollout.stopTokenIds = Array(0..<135)
            $0.credit = .grpo(.init())
        }
    }

    let samples = [TaskSample(prompt: "abc", answer: nil), TaskSample(prompt: "hello there", answer: nil)]

    func trainer(_ cfg: RunConfig) throws -> Trainer {
        let (m, tok) = try tiny()
        return try Trainer(model: m, tokenizer: tok, reward: QuarterReward(), config: cfg)
    }

    /// The training forward appends z after each finished response: its log π(z) is the separate
    /// pass's, and the loss's columns are those of the forward without z.
    func testTheTrainingForwardReadsZAfterTheResponse() throws {
        let t = try trainer(config())
        _ = try t.step(samples)
        let inputs = try XCTUnwrap(t.lastInputs), s = try XCTUnwrap(inputs.selfReward)
        XCTAssertEqual(s.token, 260)
        let done = s.finished.indices.filter { s.finished[$0] }
        XCTAssertGreaterThan(done.count, 1)
        XCTAssertLessThan(done.count, s.finished.count + 1)
        let credit = try t.config.credit.estimator.estimate(inputs.creditBatch)
        let update = PolicyUpdate(forward: t.forward, optimizer: t.optimizer, config: t.config, step: 2)
        let with = PolicyUpdate.Rows(inputs, credit, device: .cpu, laser: t.config.laser), without = PolicyUpdate.Rows(inputs, credit, device: .cpu)
        let separate = try t.selfRewards!.tokenLogprobs(t.model, inputs, rows: done)
        try withTorchErrors {
            let (unique, owners) = ResponseForward.distinct(with.prompts)
            let prefix = try withNoGrad { try t.model.sharedPrefix(unique) }
            let all = Array(0..<with.count), owner = Dictionary(uniqueKeysWithValues: zip(all, owners))
            let (a, lpz) = try withNoGrad { try update.batch(all, with, prefix, owner) }
            let (b, none) = try withNoGrad { try update.batch(all, without, prefix, owner) }
            XCTAssertNil(none)
            assertNear(try a.logprobs.doubles(), try b.logprobs.doubles(), accuracy: 1e-5)
            assertNear(try XCTUnwrap(a.entropies).doubles(), try XCTUnwrap(b.entropies).doubles(), accuracy: 1e-5)
            let z = try XCTUnwrap(lpz).doubles()
            assertNear(done.map { z[$0] }, separate, accuracy: 1e-4)
            // Not the last response token's logprob: z's own.
            let last = try b.logprobs.doubles(), w = with.width
            XCTAssertTrue(done.contains { abs(z[$0] - last[$0 * w + with.responses[$0].count - 1]) > 1e-3 })
        }
    }

    /// With no finished row the loss adds nothing: the gradient is the base method's.
    func testWithoutFinishedRowsTheGradientIsTheBaseMethods() throws {
        let t = try trainer(config())
        _ = try t.step(samples)
        var inputs = try XCTUnwrap(t.lastInputs)
        let s = try XCTUnwrap(inputs.selfReward)
        let credit = try t.config.credit.estimator.estimate(inputs.creditBatch)
        func gradient(_ rows: PolicyUpdate.Rows) throws -> [Float] {
            let update = PolicyUpdate(forward: t.forward, optimizer: t.optimizer, config: t.config, step: 2)
            let loss = try PolicyLoss(t.config.objective), range = Array(0..<rows.count)
            _ = try update.backward(range, all: (rows.lossTokens.reduce(0, +), rows.lossTokens.filter { $0 > 0 }.count), size: rows.count, rows, loss)
            defer { t.optimizer.zeroGrad() }
            return try withTorchErrors { try t.optimizer.parameters.compactMap { $0.grad }.flatMap { try $0.floats() } }
        }
        let base = try gradient(PolicyUpdate.Rows(inputs, credit, device: .cpu))
        let full = try gradient(PolicyUpdate.Rows(inputs, credit, device: .cpu, laser: t.config.laser))
        XCTAssertGreaterThan(zip(base, full).map { abs($0 - $1) }.max() ?? 0, 1e-6, "the self-reward loss moves the gradient")
        inputs.selfReward = SelfRewardInputs(token: s.token, finished: s.finished.map { _ in false }, targets: s.targets,
                                             weights: s.weights.map { _ in 0 }, reference: s.reference, scores: nil)
        let none = try gradient(PolicyUpdate.Rows(inputs, credit, device: .cpu, laser: t.config.laser))
        XCTAssertEqual(zip(base, none).map { abs($0 - $1) }.max() ?? 1, 0, accuracy: 1e-7)
    }

    /// A step fits the score and mixes the advantages; the records hold the mixed advantages, which
    /// are GRPO's mixed with the self-reward advantages of the policy before the update.
    func testAStepFitsTheScoreAndMixesTheAdvantages() throws {
        let t = try trainer(config { $0.referenceConstant = nil; $0.advantageCoef = 0.5; $0.advantageStdMin = 0 })
        // At the first step the policy is the reference, so every score is 0 and no group is mixed.
        XCTAssertEqual(try t.step(samples)["groups_self_reward_mixed"], 0)
        let metrics = try t.step(samples)
        XCTAssertGreaterThan(metrics["self_reward_loss"] ?? 0, 0, "\(metrics)")
        XCTAssertTrue((0...1).contains(metrics["self_reward_accuracy"] ?? -1), "\(metrics)")
        XCTAssertGreaterThan(metrics["self_reward_finished_fraction"] ?? 0, 0)
        XCTAssertTrue(metrics["self_reward_score_right_mean"] != nil || metrics["self_reward_score_wrong_mean"] != nil, "\(metrics)")
        XCTAssertEqual(metrics["groups_self_reward_mixed"], 2, "\(metrics)")
        let inputs = try XCTUnwrap(t.lastInputs), s = try XCTUnwrap(inputs.selfReward), scores = try XCTUnwrap(s.scores)
        // Reference model: each finished row's own log π_ref(z), not a constant.
        let done = s.finished.indices.filter { s.finished[$0] }
        XCTAssertGreaterThan(Set(done.map { s.reference[$0] }).count, 1)
        let ref = try t.forward.withReference { try t.selfRewards!.tokenLogprobs($0, inputs, rows: done) }
        assertNear(done.map { s.reference[$0] }, ref, accuracy: 1e-6)
        let base = try t.config.credit.estimator.estimate(inputs.creditBatch).advantages
        var grouped = [[Double?]](), row = 0
        for m in inputs.members { grouped.append(Array(scores[row..<(row + m.count)])); row += m.count }
        let expected = LaSeR.mix(base, scores: grouped, coef: 0.5, stdMin: 0).0.flatMap { $0 }
        XCTAssertEqual(t.lastRecords.map(\.advantages), expected)
        XCTAssertNotEqual(expected, base.flatMap { $0 })
    }

    /// verl's global steps: the loss after `warmup_steps`, the mix after both warm-ups.
    func testTheWarmUps() throws {
        let t = try trainer(config { $0.warmupSteps = 1; $0.advantageWarmupSteps = 1 })
        let first = try t.step(samples), second = try t.step(samples), third = try t.step(samples)
        XCTAssertNil(first["self_reward_loss"])
        XCTAssertNil(first["self_reward_finished_fraction"])
        XCTAssertNotNil(second["self_reward_loss"])
        XCTAssertNil(second["groups_self_reward_mixed"])
        XCTAssertNotNil(third["groups_self_reward_mixed"])
        XCTAssertNotNil(third["self_reward_score_mean"])
    }

    func testBadConfigsAreRefused() throws {
        let cases: [(String, (inout RunConfig) -> Void)] = [
            ("'laser' needs its self-reward token z: set 'laser.token'", { $0.laser?.token = nil }),
            ("'laser.token' and 'laser.token_id' both name z", { $0.laser?.tokenId = 3 }),
            ("'laser.beta' must be positive", { $0.laser?.beta = 0 }),
            ("'laser.loss_coef' must be positive", { $0.laser?.lossCoef = -1 }),
            ("'laser.reference_constant' is the reference's log-probability of z, so it must be negative", { $0.laser?.referenceConstant = 0 }),
            ("'laser.advantage_coef' must be in [0, 1]", { $0.laser?.advantageCoef = 1.5 }),
            ("'laser.advantage_std_min' must be >= 0", { $0.laser?.advantageStdMin = -1 }),
            ("'laser.warmup_steps' must be >= 0", { $0.laser?.warmupSteps = -1 }),
            ("it does not apply to objective 'sft'", { $0.sft = .init() }),
        ]
        for (message, edit) in cases {
            var c = config()
            edit(&c)
            XCTAssertThrowsError(try c.validate(), message) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
        var agent = config()
        agent.agent = RunConfig.AgentSection()
        XCTAssertThrowsError(try agent.validate()) { XCTAssertTrue("\($0)".contains("it does not apply to agent episodes"), "\($0)") }
        // z must be one token of the model's vocabulary.
        XCTAssertThrowsError(try trainer(config { $0.token = "two words" })) {
            XCTAssertTrue("\($0)".contains("'laser.token' 'two words' is not one token of this model's tokenizer (it encodes to 9 tokens"), "\($0)")
        }
        XCTAssertThrowsError(try trainer(config { $0.token = nil; $0.tokenId = 270 })) {
            XCTAssertTrue("\($0)".contains("'laser.token_id' 270 is outside the model's vocabulary (270 tokens)"), "\($0)")
        }
        // The target is the reward's 0/1 `correct` term.
        // Before any step, even with warm-ups.
        let (m, tok) = try tiny()
        XCTAssertThrowsError(try Trainer(model: m, tokenizer: tok, reward: LetterReward(), config: config { $0.warmupSteps = 50 })) {
            XCTAssertTrue("\($0)".contains("laser fits the self-reward score to the verifier's 0/1 reward from the reward's 'correct' term, and this reward has none"), "\($0)")
        }
        // z must not end responses: the loss would train when the model stops.
        XCTAssertThrowsError(try trainer(config { $0.token = "<|im_end|>" })) {
            XCTAssertTrue("\($0)".contains("laser's z (id 257, '<|im_end|>') ends responses (an EOS or stop token)"), "\($0)")
        }
        XCTAssertThrowsError(try trainer(config { $0.token = nil; $0.tokenId = 100 })) { XCTAssertTrue("\($0)".contains("laser's z (id 100"), "\($0)") }
        // From YAML: unknown keys and types are named.
        XCTAssertThrowsError(try RunConfig.load(yaml: "laser: {token: x, betta: 1}")) { XCTAssertTrue("\($0)".contains("unknown key 'laser.betta'"), "\($0)") }
        XCTAssertThrowsError(try RunConfig.load(yaml: "laser: {token: x, beta: high}")) { XCTAssertTrue("\($0)".contains("'laser.beta': expected a number"), "\($0)") }
    }

    /// Two steps from YAML on the tiny preset (the arithmetic task's reward has a `correct` term):
    /// the loss on both, the mix on the second; the written config reads back.
    func testARunFromYAML() throws {
        let c = try RunConfig.load(yaml: """
            train: {steps: 2}
            rollout: {stop_token_ids: [\((0..<135).map(String.init).joined(separator: ", "))]}
            credit: {method: grpo}
            laser: {token: "<unused260>", advantage_warmup_steps: 1, advantage_std_min: 0}
            eval: {before: false, after: false}
            output: {checkpoint_every: 0, report: false, save_model: false}
            """, base: Preset.tiny.config)
        XCTAssertNil(c.laser?.referenceConstant)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-laser-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
        let metrics = JSONLines.read(dir.appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(metrics.count, 2)
        for m in metrics {
            XCTAssertGreaterThan((m["self_reward_loss"] as? NSNumber)?.doubleValue ?? 0, 0, "\(m)")
            XCTAssertGreaterThan((m["self_reward_finished_fraction"] as? NSNumber)?.doubleValue ?? 0, 0, "\(m)")
        }
        XCTAssertNil(metrics[0]["groups_self_reward_mixed"])
        XCTAssertNotNil(metrics[1]["groups_self_reward_mixed"])
        let written = try RunConfig.load(yaml: try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8))
        XCTAssertEqual(written.laser, c.laser)
    }
}

func assertNear(_ a: [Double], _ b: [Double], accuracy: Double, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "counts differ \(message)", file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() where abs(x - y) > accuracy {
        XCTFail("element \(i): \(x) vs \(y) \(message)", file: file, line: line)
        return
    }
}

/// Best-of-N by LaSeR's self-reward and by CRew's confidence: each picks, per prompt, the response
/// its score ranks highest.
final class SelfScoreRerankTests: XCTestCase {
    func picks(_ rerank: Reranker, score: (TaskSample, Completion) throws -> Double) throws {
        let (m, tok) = try tiny()
        let samples = (0..<3).map { TaskSample(prompt: "<|im_start|>user\nq\($0)<|im_end|>\n", answer: "1") }
        var seen = [(TaskSample, Completion, RewardScore)]()
        let r = try evaluate(model: m, tokenizer: tok, samples: samples, reward: LetterReward(), samplesPerPrompt: 4,
                             config: SamplingConfig(temperature: 1, maxNewTokens: 6, stopTokenIds: Array(0..<60), seed: 4), rerank: rerank,
                             generated: { seen.append(($0, $1, $2)) })
        // 60 of the 270 ids end a response: some reach EOS, some do not.
        XCTAssertTrue(seen.contains { $0.1.finishReason == .eos } && seen.contains { $0.1.finishReason != .eos })
        var best = [Double]()
        for s in samples {
            let mine = try seen.filter { $0.0.prompt == s.prompt }.map { (try score($0.0, $0.1), $0.2.value) }
            XCTAssertEqual(mine.count, 4)
            // The first of the highest on ties, as evaluate picks.
            best.append(mine.enumerated().max { ($0.element.0, -$0.offset) < ($1.element.0, -$1.offset) }!.element.1)
        }
        XCTAssertEqual(r.rerank?.method, rerank.method)
        XCTAssertEqual(r.rerank?.reward.mean ?? .nan, best.reduce(0, +) / 3, accuracy: 1e-12)
    }

    func testLaSeRsScorePicks() throws {
        let (m, tok) = try tiny()
        // A response that never reached EOS ranks last.
        try picks(.laser(m, token: 260)) { s, c in
            c.finishReason != .eos ? -.infinity
                : try ResponseForward.rowLogprobs(m, prompts: [tok.encode(s.prompt)], responses: [c.tokens + [260]], microBatch: 0).logprobs[0].last!
        }
    }

    func testCRewsConfidencePicks() throws {
        let (_, tok) = try tiny()
        try picks(.confidence(tok, extractor: .lastNumber)) { _, c in
            ConfidenceReward().score(RewardInput(response: c.text, tokenLogprobs: c.logprobs, tokenEnds: c.byteEnds(tok))).value
        }
    }
}

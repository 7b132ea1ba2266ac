import Foundation
import XCTest
@testable import Models
@testable import Objectives
@testable import Rewards
@testable import Torch
@testable import Training

/// A reward with a `correct` term that varies with random text: the response's first byte is a lower-case letter.
struct FirstLetterReward: RewardFunction {
    var name: String { "first_letter" }
    func score(_ input: RewardInput) -> RewardScore {
        let ok = input.response.utf8.first.map { (97...122).contains($0) } ?? false
        return RewardScore(value: ok ? 1 : 0, components: ["correct": ok ? 1 : 0])
    }
}

/// TVM: labels from the group's shared prefixes, its squared-error loss, a critic trained on them,
/// the verifier score after the last token, and the config's rules.
final class TVMTests: XCTestCase {
    func tvmConfig(_ edit: (inout RunConfig) -> Void = { _ in }) -> RunConfig {
        tinyTrainerConfig { c in
            c.credit = .gae(.init())
            var critic = RunConfig.CriticSection()
            critic.lora = .init(rank: 4, alpha: 8)
            critic.lr = 1e-2
            critic.target = .tvm
            critic.vfClip = nil
            c.critic = critic
            edit(&c)
        }
    }

    /// Rows [1 2 3]✓ [1 2 4]✗ [1 5]✓ [1 2 3]✗: the empty prefix and [1] are 2/4, [1 2] 1/3, [1 2 3] 1/2, [1 2 4] 0, [1 5] 1.
    func testLabelsAreTheShareOfCorrectResponsesSharingEachPrefix() {
        let labels = TVM.labels([[1, 2, 3], [1, 2, 4], [1, 5], [1, 2, 3]], correct: [true, false, true, false])
        XCTAssertEqual(labels[0], [0.5, 0.5, 1.0 / 3, 0.5])
        XCTAssertEqual(labels[1], [0.5, 0.5, 1.0 / 3, 0])
        XCTAssertEqual(labels[2], [0.5, 0.5, 1])
        XCTAssertEqual(labels[3], labels[0])
        XCTAssertEqual(TVM.labels([[7]], correct: [true]), [[1, 1]], "a lone response's labels are its outcome")
        XCTAssertEqual(TVM.labels([[], [4]], correct: [false, true]), [[0.5], [0.5, 1]])
    }

    /// Σ_t m·(V − y)² per row, averaged over rows: by hand and by finite differences.
    func testSquaredLossAndItsGradient() throws {
        let v: [Double] = [0.2, 0.4, 0.1, 0], y: [Double] = [0, 1, 1, 0], m: [Double] = [1, 1, 1, 0]
        func loss(_ x: [Double]) throws -> Double {
            try withTorchErrors { try ValueLoss.squared(Tensor(x, shape: [2, 2]), targets: Tensor(y, shape: [2, 2]), mask: Tensor(m, shape: [2, 2])).item() }
        }
        XCTAssertEqual(try loss(v), ((0.04 + 0.36) + 0.81) / 2, accuracy: 1e-12)
        let grad = try withTorchErrors { () throws -> [Double] in
            let x = Tensor(v, shape: [2, 2]).requiringGrad()
            ValueLoss.squared(x, targets: Tensor(y, shape: [2, 2]), mask: Tensor(m, shape: [2, 2])).backward()
            return try x.grad!.doubles()
        }
        for (g, e) in zip(grad, [0.2, -0.6, -0.9, 0]) { XCTAssertEqual(g, e, accuracy: 1e-12) }
        for k in 0..<3 {
            var up = v, down = v
            up[k] += 1e-6
            down[k] -= 1e-6
            XCTAssertEqual((try loss(up) - loss(down)) / 2e-6, grad[k], accuracy: 1e-6)
        }
    }

    /// Training with target tvm regresses the values on the labels (the loss falls on a fixed batch);
    /// GAE still reads the critic's values; the clip metric is absent.
    func testTheCriticLearnsTheLabels() throws {
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: FirstLetterReward(), config: tvmConfig())
        let samples = [TaskSample(prompt: "abc", answer: "1"), TaskSample(prompt: "hello there", answer: "2")]
        let metrics = try t.step(samples)
        XCTAssertNotNil(metrics["critic/vf_loss"])
        XCTAssertNil(metrics["critic/vf_clipfrac"])
        let inputs = try XCTUnwrap(t.lastInputs)
        let update = CriticUpdate(critic: t.critic!, config: t.config, step: 2)
        let labels = try update.targets(inputs)
        XCTAssertEqual(zip(labels, inputs.rowResponses).map { $0.count - $1.count }, Array(repeating: 1, count: labels.count), "one label per prefix length 0…R")
        var losses = [Double]()
        for _ in 0..<8 { losses.append(try XCTUnwrap(update.run(inputs)["critic/vf_loss"])) }
        XCTAssertLessThan(losses.last!, losses.first! * 0.8, "\(losses)")
    }

    /// The verifier score is the value after the last token: the value before one more token.
    func testFinalValueIsTheValueAfterTheResponse() throws {
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: FirstLetterReward(), config: tvmConfig())
        _ = try t.step([TaskSample(prompt: "abc", answer: "1")])
        let critic = try XCTUnwrap(t.critic)
        try withTorchErrors { for p in [critic.head, critic.bias] { withNoGrad { p.copy(from: p + 0.1) } } }
        let prompt = tok.encode("abc"), responses = [[104, 105], [106, 107, 108]]
        let scores = try critic.finalValues(prompts: [prompt], owner: [0, 0], responses: responses)
        for (r, s) in zip(responses, scores) {
            let direct = try withTorchErrors {
                try withNoGrad { try critic.active { try critic.values(prefix: critic.model.sharedPrefix([prompt + r]), owner: [0], responses: [[1]]).item() } }
            }
            XCTAssertEqual(s, direct, accuracy: 1e-5)
        }
        XCTAssertNotEqual(scores[0], scores[1])
    }

    func testConfigRules() throws {
        XCTAssertThrowsError(try tvmConfig { $0.critic!.vfClip = 0.3 }.validate()) {
            XCTAssertTrue("\($0)".contains("'critic.vf_clip' applies to target gae"), "\($0)")
        }
        let c = try RunConfig.load(yaml: "critic: {target: tvm}", base: Preset.ppo.config)
        XCTAssertNil(c.critic?.vfClip, "changing the target leaves the preset's vf_clip behind")
        XCTAssertEqual(try RunConfig.load(yaml: try c.yaml()), c)
        XCTAssertEqual(try RunConfig.load(yaml: "credit: {method: gae}\ncritic: {}").critic?.vfClip, 0.5)
        // A reward without a `correct` term cannot give labels: the step says so before any update.
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: LetterReward(), config: tvmConfig())
        XCTAssertThrowsError(try t.step([TaskSample(prompt: "abc", answer: "1")])) {
            XCTAssertTrue("\($0)".contains("critic.target tvm: the reward has no 'correct' term"), "\($0)")
        }
    }

    /// A checkpoint's critic comes back for scoring with `Critic.load`, giving the same scores, whether
    /// its adapters share the policy's base or it is a fully trained model of its own; a critic that
    /// learned GAE's returns is refused, and another base than the one trained on is warned about.
    func testLoadForScoring() throws {
        for full in [false, true] {
            let (m, tok) = try tiny()
            let t = try Trainer(model: m, tokenizer: tok, reward: FirstLetterReward(), config: tvmConfig { if full { $0.critic!.lora = nil } })
            _ = try t.step([TaskSample(prompt: "abc", answer: "1")])
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-tvm-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let critic = try XCTUnwrap(t.critic)
            XCTAssertEqual(critic.shared, !full)
            if full { critic.basePath = nil }   // the run's model.path ("default") is not the tiny model these tests use
            try withTorchErrors { withNoGrad { critic.head.copy(from: critic.head + 0.05) } }
            try critic.save(to: dir)
            let prompt = tok.encode("abc"), responses = [[104, 105], [106]]
            let (base, _) = try tiny()
            var warnings = [String]()
            let loaded = try Critic.load(from: dir, policy: base, policySource: "elsewhere", tokenizer: tok) { warnings.append($0) }
            XCTAssertEqual(loaded.shared, !full)
            XCTAssertEqual(try loaded.finalValues(prompts: [prompt], owner: [0, 0], responses: responses),
                           try critic.finalValues(prompts: [prompt], owner: [0, 0], responses: responses), "full \(full)")
            XCTAssertEqual(warnings.count, full ? 0 : 1, "\(warnings)")
            XCTAssertTrue(warnings.first.map { $0.contains("trained on 'default' and are applied to 'elsewhere'") } ?? full)
            XCTAssertThrowsError(try Critic.load(from: dir.appendingPathComponent("none"), policy: base, policySource: "default", tokenizer: tok)) {
                XCTAssertTrue("\($0)".contains("no critic here"), "\($0)")
            }
        }
        // A gae critic never learned the value after the last token.
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: FirstLetterReward(), config: tvmConfig { $0.critic!.target = .gae; $0.critic!.vfClip = 0.5 })
        _ = try t.step([TaskSample(prompt: "abc", answer: "1")])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-gae-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try t.critic!.save(to: dir)
        XCTAssertThrowsError(try Critic.load(from: dir, policy: try tiny().0, policySource: "default", tokenizer: tok)) {
            XCTAssertTrue("\($0)".contains("trained with target 'gae'; scoring whole responses needs one trained with critic.target tvm"), "\($0)")
        }
    }
}

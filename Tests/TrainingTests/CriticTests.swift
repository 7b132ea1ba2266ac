import Foundation
import XCTest
@testable import Credit
@testable import Models
@testable import Objectives
@testable import Torch
@testable import Training

/// PPO's critic: the clipped value loss, GAE on the learned values, adapters that switch without
/// touching the policy's, checkpoints that restore it exactly, and resumed runs that replay it.
final class CriticTests: XCTestCase {
    func ppoConfig(_ edit: (inout RunConfig) -> Void = { _ in }) -> RunConfig {
        tinyTrainerConfig { c in
            c.credit = .gae(.init())
            var critic = RunConfig.CriticSection()
            critic.lora = .init(rank: 4, alpha: 8)
            critic.lr = 1e-2
            critic.vfClip = 0.2
            c.critic = critic
            edit(&c)
        }
    }

    /// ½·token-mean max((V − R)², (V_old + clip(V − V_old, ±0.2) − R)²) by hand, its gradient by finite
    /// differences, and the sequence-mean aggregation on two rows.
    func testClippedValueLossAndItsGradient() throws {
        let v: [Double] = [0.5, -0.1, 0.9, 0.3], old: [Double] = [0.1, 0.0, 1.0, 0.3], ret: [Double] = [1.0, 0.2, 0.0, 0.3]
        let mask: [Double] = [1, 1, 1, 0]
        // Token 0: V − V_old = 0.4 → clipped 0.3; (0.5 − 1)² = .25 < (0.3 − 1)² = .49 → .49 (clipped branch).
        // Token 1: inside the range → (−0.3)² = .09. Token 2: V − V_old = −0.1 inside → .81. Token 3: masked.
        let expected = 0.5 * (0.49 + 0.09 + 0.81) / 3
        func run(_ x: Tensor, _ shape: [Int] = [1, 4], _ mode: PolicyLossConfig.Aggregation = .tokenMean) -> (loss: Tensor, clipfrac: Tensor) {
            ValueLoss.clipped(x, old: Tensor(old, shape: shape), returns: Tensor(ret, shape: shape), mask: Tensor(mask, shape: shape), clip: 0.2, aggregation: mode)
        }
        func loss(_ x: [Double]) throws -> Double { try withTorchErrors { try run(Tensor(x, shape: [1, 4])).loss.item() } }
        XCTAssertEqual(try loss(v), expected, accuracy: 1e-12)
        XCTAssertEqual(try withTorchErrors { try run(Tensor(v, shape: [1, 4])).clipfrac.item() }, 1.0 / 3, accuracy: 1e-12,
                       "only token 0 of the 3 unmasked takes the clipped branch")
        let grad = try withTorchErrors { () throws -> [Double] in
            let x = Tensor(v, shape: [1, 4]).requiringGrad()
            run(x).loss.backward()
            return try x.grad!.doubles()
        }
        // Token 0's clipped branch has no gradient; token 1: (V − R)/3 = −0.1; token 2: 0.3.
        for (g, e) in zip(grad, [0, -0.1, 0.3, 0]) { XCTAssertEqual(g, e, accuracy: 1e-12) }
        for k in 0..<4 {
            var up = v, down = v
            up[k] += 1e-6
            down[k] -= 1e-6
            XCTAssertEqual((try loss(up) - loss(down)) / 2e-6, grad[k], accuracy: 1e-6, "token \(k)")
        }
        // As two rows [tokens 0, 1] and [tokens 2, 3 (masked)]: seq_mean_token_mean = ½·(.49 + .09)/2 and ½·.81, averaged.
        // Unclipped (vf_clip: null runs with an infinite clip): ½·mean of (V − R)² = ½·(.25 + .09 + .81)/3.
        let open = try withTorchErrors {
            try ValueLoss.clipped(Tensor(v, shape: [1, 4]), old: Tensor(old, shape: [1, 4]), returns: Tensor(ret, shape: [1, 4]), mask: Tensor(mask, shape: [1, 4]),
                                  clip: .infinity, aggregation: .tokenMean).loss.item()
        }
        XCTAssertEqual(open, 0.5 * (0.25 + 0.09 + 0.81) / 3, accuracy: 1e-12)
        let rows = try withTorchErrors { try run(Tensor(v, shape: [2, 2]), [2, 2], .seqMeanTokenMean).loss.item() }
        XCTAssertEqual(rows, 0.5 * ((0.49 + 0.09) / 2 + 0.81) / 2, accuracy: 1e-12)
    }

    /// The step's advantages are GAE's on the critic's values; returns are A + V; the metrics report them.
    func testGAERunsOnTheLearnedValues() throws {
        let (t, metrics) = try trainTiny(ppoConfig())
        let inputs = try XCTUnwrap(t.lastInputs)
        let expected = try CreditConfig.gae(.init()).estimator.estimate(inputs.creditBatch).advantages.flatMap { $0 }
        XCTAssertEqual(t.lastRecords.map(\.advantages), expected)
        let values = try XCTUnwrap(inputs.values)
        let returns = inputs.groups.flatMap { $0.trajectories.map { GAE.returns($0, .init()) } }
        XCTAssertEqual(zip(returns, zip(expected, values)).map { r, av in zip(r, zip(av.0, av.1)).map { abs($0 - ($1.0 + $1.1)) }.max() ?? 0 }.max()!, 0, accuracy: 1e-12)
        let flatValues = values.flatMap { $0 }
        XCTAssertEqual(metrics["critic/value_mean"]!, flatValues.reduce(0, +) / Double(flatValues.count), accuracy: 1e-9)
        for k in ["critic/vf_loss", "critic/vf_clipfrac", "critic/explained_variance", "critic/returns_mean"] { XCTAssertNotNil(metrics[k], k) }
    }

    /// The critic's update moves its adapters and head only; the policy's adapters stay the model's.
    func testCriticAdaptersSwitchWithoutTouchingThePolicy() throws {
        let (t, _) = try trainTiny(ppoConfig())
        let critic = try XCTUnwrap(t.critic), policy = try XCTUnwrap(t.model.lora)
        XCTAssertFalse(policy === critic.lora)
        let inputs = try XCTUnwrap(t.lastInputs)
        func snapshot(_ ps: [Tensor]) throws -> [[Float]] { try withTorchErrors { try ps.map { try $0.detached().clone().floats() } } }
        let (p0, c0) = (try snapshot(policy.parameters), try snapshot(critic.parameters))
        _ = try CriticUpdate(critic: critic, config: t.config, step: 3).run(inputs)
        XCTAssertEqual(try snapshot(policy.parameters), p0)
        XCTAssertNotEqual(try snapshot(critic.parameters), c0)
        XCTAssertTrue(t.model.lora === policy)
    }

    /// A checkpoint restores the critic exactly: saving the restored one writes the same bytes.
    func testCheckpointRoundTripsTheCritic() throws {
        let (t, _) = try trainTiny(ppoConfig())
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-critic-\(UUID().uuidString)")
        let again = dir.appendingPathComponent("again")
        try FileManager.default.createDirectory(at: again, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let critic = try XCTUnwrap(t.critic)
        try critic.save(to: dir)
        let (m, _) = try tiny()
        var cfg = ppoConfig()
        cfg.rollout.seed = 99   // other initial adapters
        try m.setWeight("model.norm.weight", try withTorchErrors { t.model.weights["model.norm.weight"]! })
        _ = try LoRA(attachingTo: m, config: cfg.model.lora!)
        let fresh = try Critic(model: m, shared: true, config: cfg.critic!, lr: 1e-2, seed: 99)
        fresh.policyPath = critic.policyPath
        XCTAssertNotEqual(try withTorchErrors { try fresh.lora!.parameters[0].floats() }, try withTorchErrors { try critic.lora!.parameters[0].floats() })
        try fresh.restore(from: dir)
        try fresh.save(to: again)
        for file in [Critic.file, Critic.optimizerFile] {
            XCTAssertEqual(try Data(contentsOf: again.appendingPathComponent(file)), try Data(contentsOf: dir.appendingPathComponent(file)), file)
        }
        // A checkpoint of another critic shape is refused, naming the key.
        var other = cfg.critic!
        other.lora = .init(rank: 2, alpha: 4)
        let (m2, _) = try tiny()
        _ = try LoRA(attachingTo: m2, config: cfg.model.lora!)
        XCTAssertThrowsError(try Critic(model: m2, shared: true, config: other, lr: 1e-2, seed: 1).restore(from: dir)) {
            XCTAssertTrue("\($0)".contains("the run's critic needs ["), "\($0)")
        }
    }

    /// Without a critic `gae` is refused; a critic needs a method that reads values; `lora: null` round-trips.
    func testCriticConfigErrors() throws {
        XCTAssertThrowsError(try tinyTrainerConfig { $0.credit = .gae(.init()) }.validate()) {
            XCTAssertTrue("\($0)".contains("add a 'critic:' section"), "\($0)")
        }
        XCTAssertThrowsError(try ppoConfig { $0.credit = .grpo(.init()) }.validate()) {
            XCTAssertEqual("\($0)", "config: 'critic' is set but credit.method grpo reads no values (use gae, alone or as d3s's base)")
        }
        XCTAssertThrowsError(try ppoConfig { $0.critic!.vfCoef = -1 }.validate()) { XCTAssertTrue("\($0)".contains("'critic.vf_coef' must be positive"), "\($0)") }
        XCTAssertThrowsError(try ppoConfig { $0.critic!.vfClip = 0 }.validate()) { XCTAssertTrue("\($0)".contains("'critic.vf_clip' must be positive"), "\($0)") }
        let yaml = try RunConfig.load(yaml: "credit: {method: gae}\ncritic: {lora: {r: 4}, warmup_steps: 1}")
        XCTAssertEqual(yaml.critic?.lora, LoRA.Config(rank: 4, alpha: 16))
        XCTAssertEqual(yaml.critic?.warmupSteps, 1)
        XCTAssertEqual(try RunConfig.load(yaml: try yaml.yaml()), yaml)
        let full = try RunConfig.load(yaml: "credit: {method: gae}\ncritic: {lora: null, model: tiny-random, vf_coef: 0.5}")
        XCTAssertNil(full.critic?.lora)
        XCTAssertEqual(try RunConfig.load(yaml: try full.yaml()), full)
        // vf_clip: null is PPO's value loss unclipped, and stays so when the file is read back.
        let unclipped = try RunConfig.load(yaml: "credit: {method: gae}\ncritic: {vf_clip: null}")
        XCTAssertNil(unclipped.critic?.vfClip)
        XCTAssertEqual(try RunConfig.load(yaml: try unclipped.yaml()), unclipped)
        XCTAssertThrowsError(try RunConfig.load(yaml: "credit: {method: gae}\ncritic: {vf_clipp: 1}", file: "c.yaml")) {
            XCTAssertTrue("\($0)".contains("unknown key 'critic.vf_clipp'"), "\($0)")
        }
    }

    /// A run stopped after step 3 (checkpoint at 2) and resumed records the same steps as one that
    /// ran through, the critic's metrics included: its adapters, head and optimizer came back.
    func testResumeReplaysTheCritic() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tw-critic-run-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var c = Preset.tiny.config
        c.credit = .gae(.init())
        c.critic = .init()
        c.critic?.lr = 1e-2
        // The policy first trains at step 3, after the checkpoint the run resumes from: a resumed
        // run must count the steps before it (its warm-up is over).
        c.critic?.warmupSteps = 2
        c.train.steps = 4
        c.output.checkpointEvery = 2
        c.output.saveModel = false
        c.optim.lr = 1e-2
        let whole = root.appendingPathComponent("whole"), cut = root.appendingPathComponent("cut")
        try TrainingRun.start(config: c, dir: whole, console: .quiet).run()
        try TrainingRun.start(config: c, dir: cut, console: .quiet).runSteps(upTo: 3)
        let resumed = try TrainingRun.resume(dir: cut, console: .quiet)
        XCTAssertEqual(resumed.startStep, 2)
        try resumed.run()
        let a = replayableMetrics(cut), b = replayableMetrics(whole)
        XCTAssertEqual(a.count, 4)
        XCTAssertEqual(a, b)
        XCTAssertNotNil(a.last?["critic/vf_loss"])
        XCTAssertNil(a[1]["loss"], "step 2 trains the critic only")
        XCTAssertNotNil(a[2]["loss"], "step 3 trains the policy")
        XCTAssertTrue(FileManager.default.fileExists(atPath: Checkpoint.folder(cut, step: 4).appendingPathComponent(Critic.file).path))
    }
}

import Foundation
import XCTest
@testable import Credit
@testable import Environments
@testable import Models
@testable import Torch
@testable import Training

/// iStar in training: the Bradley–Terry loss and its gradient, the turn rewards read from the
/// process reward model's adapters, its update, checkpoints and resume, and the refused configs.
final class ISTARTrainingTests: XCTestCase {
    /// Q = (0.2, −0.1, 0.4) in one group, episodes 0 and 2 succeed: pairs (0, 1) and (2, 1), loss
    /// −log σ(0.3) − log σ(0.5); the gradient matches finite differences.
    func testTheBradleyTerryLossAndItsGradient() {
        let q = [0.2, -0.1, 0.4], success = [true, false, true]
        let (loss, pairs, g) = ImplicitStepRewards.bradleyTerry(q, success: success, groups: [0..<3])
        func sig(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
        XCTAssertEqual(pairs, 2)
        XCTAssertEqual(loss, -log(sig(0.3)) - log(sig(0.5)), accuracy: 1e-12)
        for i in q.indices {
            var up = q, down = q
            up[i] += 1e-6; down[i] -= 1e-6
            let fd = (ImplicitStepRewards.bradleyTerry(up, success: success, groups: [0..<3]).loss - ImplicitStepRewards.bradleyTerry(down, success: success, groups: [0..<3]).loss) / 2e-6
            XCTAssertEqual(g[i], fd, accuracy: 1e-6)
        }
        // Pairs never cross groups; a group without a success or a failure has none; large gaps stay finite.
        XCTAssertEqual(ImplicitStepRewards.bradleyTerry(q, success: success, groups: [0..<1, 1..<3]).pairs, 1)
        XCTAssertEqual(ImplicitStepRewards.bradleyTerry(q, success: [true, true, true], groups: [0..<3]).pairs, 0)
        XCTAssertEqual(ImplicitStepRewards.bradleyTerry([-800, 800], success: [true, false], groups: [0..<2]).loss, 1600, accuracy: 1e-9)
    }

    static let corridor = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/environments/corridor.py").path

    /// The tiny preset on the corridor whose second action succeeds at random (`--coin`): two turns an episode.
    func config(_ edit: (inout ISTARConfig) -> Void = { _ in }) -> RunConfig {
        var c = Preset.tiny.config
        var agent = RunConfig.AgentSection()
        agent.environment = .process
        agent.process = .init(command: ["python3", Self.corridor, "3", "--coin"], maxTurns: 2, timeoutSeconds: 20)
        agent.context = 400
        c.agent = agent
        c.credit = CreditConfig(method: .istar)
        var i = ISTARConfig()
        i.lr = 0.05
        edit(&i)
        c.istar = i
        c.eval.before = false
        c.eval.after = false
        c.output.saveModel = false
        c.output.report = false
        c.output.checkpointEvery = 1
        c.train.steps = 3
        return c
    }

    /// Turn rewards are β·Σ(log π_φ − log π_old) over each turn's action tokens from the process reward
    /// model's own adapters (checked against a pass with them switched in), one per turn; with
    /// successes and failures in a group its adapters move, and the policy's do not take its place.
    /// Every return is positive here: the pairs come from the environment's success flags.
    func testTheTurnRewardsComeFromTheModelsAdaptersAndItTrains() throws {
        let seeds = [TaskSample(prompt: "", environmentSeed: 1), TaskSample(prompt: "", environmentSeed: 2)]
        func trainer(_ training: ISTARConfig.Training) throws -> (Trainer, Pretrained) {
            let p = try Pretrained.tinyRandom(seed: 1)
            var c = config { $0.normalize = .none; $0.training = training }
            c.train.samplesPerPrompt = 6
            return (try Trainer(model: p.model, tokenizer: p.tokenizer, reward: EnvironmentReward(), config: c, chat: .chatML(defaultSystem: nil)), p)
        }
        // The released code's reading never moves the model, so a pass after the step reads what the step read.
        let (frozen, fp) = try trainer(.released)
        var nonzero = 0
        for _ in 0..<2 {
            _ = try frozen.step(seeds)
            let inputs = try XCTUnwrap(frozen.lastInputs), prm = try XCTUnwrap(frozen.prm)
            let lp = try prm.active { try ResponseForward.rowLogprobs(fp.model, prompts: inputs.rowPrompts, responses: inputs.rowResponses, microBatch: 0).logprobs }
            for (i, traj) in inputs.groups.flatMap(\.trajectories).enumerated() {
                let turns = ImplicitStepRewards.turns(traj), old = inputs.rollouts.rolled[inputs.rows[i]].completion.logprobs
                XCTAssertEqual(turns.count, traj.states?.count)
                let expected = turns.map { span in 0.05 * span.reduce(0) { $0 + lp[i][$1] - old[$1] } }
                for (a, b) in zip(try XCTUnwrap(traj.turnRewards), expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }
                nonzero += expected.filter { abs($0) > 1e-4 }.count
            }
        }
        XCTAssertGreaterThan(nonzero, 0, "after the policy's first update, β·log π_init/π_old is not 0")
        let (t, p) = try trainer(.trained)
        let prm = try XCTUnwrap(t.prm)
        var moved = false
        for _ in 0..<3 {
            let before = try withTorchErrors { try prm.lora.parameters.map { try $0.detached().clone().floats() } }
            let m = try t.step(seeds)
            let after = try withTorchErrors { try prm.lora.parameters.map { try $0.floats() } }
            if (m["istar_prm_pairs"] ?? 0) > 0 {
                XCTAssertNotEqual(before, after, "pairs but no update")
                XCTAssertNotNil(m["istar_prm_grad_norm"])
                moved = true
            } else {
                XCTAssertEqual(before, after, "an update without pairs")
            }
            XCTAssertTrue(p.model.lora !== prm.lora, "the policy's adapters are active again")
        }
        XCTAssertTrue(moved, "no step had a success and a failure in a group")
    }

    /// A run from the config, checkpointed; a resumed run restores the process reward model (its
    /// adapters and optimizer), so its later steps are the uninterrupted run's.
    func testARunResumesWithItsProcessRewardModel() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tw-istar-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var c = config()
        c.train.samplesPerPrompt = 6
        let whole = root.appendingPathComponent("whole"), cut = root.appendingPathComponent("cut")
        try TrainingRun.start(config: c, dir: whole, console: .quiet).run()
        let metrics = replayableMetrics(whole)
        XCTAssertEqual(metrics.count, 3)
        XCTAssertTrue(metrics.allSatisfy { $0["istar_turn_reward_scale"] != nil }, "\(metrics)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: Checkpoint.folder(whole, step: 3).appendingPathComponent(ImplicitPRM.file).path))
        try TrainingRun.start(config: c, dir: cut, console: .quiet).runSteps(upTo: 1)
        try TrainingRun.resume(dir: cut, console: .quiet).run()
        let resumed = replayableMetrics(cut)
        XCTAssertEqual(resumed.count, 3)
        for (a, b) in zip(resumed, metrics) {
            for (k, v) in b { XCTAssertEqual(a[k] ?? .nan, v, accuracy: 1e-6 * Swift.max(1, abs(v)), "\(k)") }
        }
        let written = try RunConfig.load(yaml: try String(contentsOf: whole.appendingPathComponent("config.yaml"), encoding: .utf8))
        XCTAssertEqual(written.istar, c.istar)
    }

    func testBadConfigsAreRefusedByName() throws {
        let cases: [(String, (inout RunConfig) -> Void)] = [
            ("'istar' scores the turns of agent episodes: add an 'agent:' section", { $0.agent = nil }),
            ("'istar' gives implicit step rewards, which only credit.method istar reads (it is gigpo)", { $0.credit = CreditConfig(method: .gigpo) }),
            ("'istar' trains LoRA adapters of its own on the policy's base", { $0.model.lora = nil }),
            ("'istar.beta' must be positive and finite, got 0.0", { $0.istar?.beta = 0 }),
            ("'istar.lr' must be positive and finite", { $0.istar?.lr = -1 }),
            ("'istar.max_grad_norm' must be positive and finite, got 0.0", { $0.istar?.maxGradNorm = 0 }),
            ("credit.method istar needs implicit step rewards, one per agent turn ('turn_rewards'), from iStar's online process reward model", { $0.istar = nil }),
        ]
        for (message, edit) in cases {
            var c = config()
            edit(&c)
            XCTAssertThrowsError(try c.validate(), message) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
        XCTAssertThrowsError(try RunConfig.load(yaml: "istar: {training: never}")) { XCTAssertTrue("\($0)".contains("never"), "\($0)") }
    }
}

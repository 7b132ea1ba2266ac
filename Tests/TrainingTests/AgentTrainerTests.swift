import Foundation
import XCTest
@testable import Credit
@testable import Environments
@testable import Models
@testable import Objectives
@testable import Rollout
@testable import Torch
@testable import Training

/// Agent training: episodes become rows whose observation tokens never reach the loss, GiGPO and
/// the turn ratio receive the episodes' states and turns, held-out seeds evaluate, and an external
/// environment trains, or fails clearly with the run's checkpoints intact.
final class AgentTrainerTests: XCTestCase {
    func agentConfig(_ edit: (inout RunConfig) -> Void = { _ in }) -> RunConfig {
        tinyTrainerConfig { c in
            var agent = RunConfig.AgentSection()
            agent.frozenlake = .init(maxTurns: 3, map: ["SFFF", "FFFF", "FFFH", "HFFG"])
            agent.context = 400
            c.agent = agent
            c.credit = CreditConfig(method: .gigpo)
            c.rollout.maxNewTokens = 4
            edit(&c)
        }
    }

    func trainer(_ config: RunConfig) throws -> Trainer {
        let p = try Pretrained.tinyRandom(seed: 1)   // a 512-position context
        return try Trainer(model: p.model, tokenizer: p.tokenizer, reward: EnvironmentReward(), config: config, chat: .chatML(defaultSystem: nil))
    }

    let seeds = [TaskSample(prompt: "", environmentSeed: 1), TaskSample(prompt: "", environmentSeed: 2)]

    func testObservationTokensAreOutOfTheMaskAndTheGradient() throws {
        let t = try trainer(agentConfig())
        let metrics = try t.step(seeds)
        XCTAssertGreaterThan(try XCTUnwrap(metrics["credit_gigpo_step_group_size_mean"]), 1)
        let inputs = try XCTUnwrap(t.lastInputs)
        let actions = try XCTUnwrap(inputs.actionMasks)
        XCTAssertTrue(actions.contains { $0.contains(0) }, "the episodes have observations between turns")
        // samples.jsonl records whole episodes: the turns and which tokens the model wrote.
        let record = try XCTUnwrap(t.lastRecords.first), episode = try XCTUnwrap(inputs.rollouts.rolled[inputs.rows[0]].episode)
        XCTAssertEqual(record.turns, episode.turns)
        XCTAssertEqual(record.actionMask, episode.actionMask)
        XCTAssertTrue(record.prompt.contains("SFFF") || record.prompt.contains("PFFF"), record.prompt)
        let credit = try t.config.credit.estimator.estimate(inputs.creditBatch)
        let rows = PolicyUpdate.Rows(inputs, credit, device: .cpu)
        let mask = try withTorchErrors { try rows.mask.doubles() }, width = rows.width
        for (r, a) in actions.enumerated() {
            XCTAssertEqual(Array(mask[(r * width)..<(r * width + a.count)]), a, "row \(r): the mask is the action mask")
            XCTAssertEqual(rows.lossTokens[r], a.filter { $0 > 0 }.count)
        }
        // Advantages on observation tokens change neither the loss nor its gradient.
        var loud = credit
        for g in loud.advantages.indices {
            for i in loud.advantages[g].indices {
                let row = inputs.members[..<g].reduce(0) { $0 + $1.count } + i
                for k in loud.advantages[g][i].indices where actions[row][k] == 0 { loud.advantages[g][i][k] = 1000 }
            }
        }
        func lossAndGradient(_ c: CreditResult) throws -> (Double, [Float]) {
            let rows = PolicyUpdate.Rows(inputs, c, device: .cpu)
            let update = PolicyUpdate(forward: t.forward, optimizer: t.optimizer, config: t.config, step: 1)
            return try withTorchErrors {
                let (unique, owners) = ResponseForward.distinct(rows.prompts)
                let prefix = try t.model.sharedPrefix(unique)
                let all = Array(0..<rows.count)
                let batch = try update.batch(all, rows, prefix, Dictionary(uniqueKeysWithValues: zip(all, owners))).0
                let (loss, _) = try PolicyLoss(t.config.objective)(batch)
                loss.backward()
                let grad = try t.optimizer.parameters.compactMap { $0.grad }.flatMap { try $0.floats() }
                t.optimizer.zeroGrad()
                return (try loss.item(), grad)
            }
        }
        let (a, ga) = try lossAndGradient(credit), (b, gb) = try lossAndGradient(loud)
        XCTAssertEqual(a, b)
        XCTAssertEqual(ga, gb)
        XCTAssertFalse(ga.allSatisfy { $0 == 0 }, "the action tokens do carry a gradient")
    }

    /// KL-in-reward (reinforce_pp's) is charged on the model's tokens only: an observation was not sampled.
    func testKLPenaltyOnlyOnActionTokens() throws {
        let t = try trainer(agentConfig { $0.credit = .reinforcePP(.init(klCoef: 0.1)) })
        _ = try t.step(seeds)
        _ = try t.step(seeds)   // after an update, the policy differs from the reference (LoRA off)
        var inputs = try XCTUnwrap(t.lastInputs)
        var checked = 0
        let rolled = inputs.rollouts.rolled
        inputs.fill { traj, i in
            guard let e = rolled[i].episode, let kl = traj.kl else { return }
            for (k, action) in e.actionMask.enumerated() where !action { XCTAssertEqual(kl[k], 0); checked += 1 }
            XCTAssertTrue(zip(kl, e.actionMask).contains { $1 && $0 != 0 }, "action tokens keep their KL")
        }
        XCTAssertGreaterThan(checked, 0)
    }

    /// The turn ratio (ST-PPO) is accepted for an agent and reads the episodes' turn ids.
    func testTurnRatioReadsTheEpisodesTurns() throws {
        XCTAssertThrowsError(try tinyTrainerConfig { $0.objective.ratio = .turn }.validate())
        let t = try trainer(agentConfig { $0.objective.ratio = .turn })
        _ = try t.step(seeds)
        let inputs = try XCTUnwrap(t.lastInputs)
        let rows = PolicyUpdate.Rows(inputs, try t.config.credit.estimator.estimate(inputs.creditBatch), device: .cpu)
        let turns = try withTorchErrors { try XCTUnwrap(rows.turns).doubles() }
        for (r, row) in inputs.rows.enumerated() {
            let e = try XCTUnwrap(inputs.rollouts.rolled[row].episode)
            XCTAssertEqual(Array(turns[(r * rows.width)..<(r * rows.width + e.turnIds.count)]), e.turnIds.map(Double.init))
            XCTAssertEqual(Set(e.turnIds).count, e.turns.count)
        }
    }

    /// Episodes sampled by a bf16 rollout copy (the dialogue sampler samples with it) train with
    /// IcePop on the learner's recomputed logprobs; the mismatch counts action tokens only.
    func testEpisodesFromALowPrecisionEngine() throws {
        let t = try trainer(agentConfig { $0.rollout.weights = .bf16; $0.objective.mismatch.mode = .icepop })
        let metrics = try t.step(seeds)
        let inputs = try XCTUnwrap(t.lastInputs)
        let engine = try XCTUnwrap(inputs.rolloutLogprobs), learner = try XCTUnwrap(inputs.oldLogprobs)
        let masks = try XCTUnwrap(inputs.actionMasks)
        var gap = 0.0
        for (r, mask) in masks.enumerated() {
            for (k, a) in mask.enumerated() where a > 0 { gap = max(gap, abs(engine[r][k] - learner[r][k])) }
        }
        XCTAssertGreaterThan(gap, 1e-6, "the engine's action logprobs are the copy's")
        XCTAssertEqual(LearnerLogprobs.metrics(learner: learner, engine: engine, actions: masks, t.config.objective.mismatch)["mismatch/k1"],
                       metrics["mismatch/k1"])
        XCTAssertNotEqual(LearnerLogprobs.metrics(learner: learner, engine: engine, actions: nil, t.config.objective.mismatch)["mismatch/k1"],
                          metrics["mismatch/k1"], "observation tokens (engine logprob 0) would count without the mask")
        XCTAssertTrue(metrics["loss"]!.isFinite)
    }

    func testHeldOutSeedsEvaluateAndConfigErrors() throws {
        let t = try trainer(agentConfig())
        let data = try TaskData.episodes(t.config.data)
        XCTAssertTrue(Set(data.train.prefix(100).map(\.environmentSeed)).isDisjoint(with: data.eval.map(\.environmentSeed)))
        let r = try t.evaluateEpisodes(Array(data.eval.prefix(3)), samples: 2, sampling: .init(temperature: 1, maxNewTokens: 4, seed: 1))
        XCTAssertEqual(r.prompts, 3)
        XCTAssertNotNil(r.accuracy)
        XCTAssertNotNil(r.passAtK[2])
        XCTAssertThrowsError(try RunConfig.load(yaml: "agent: {}\ncredit: {method: gigpo}\nreward: {terms: [{type: correct}]}")) {
            XCTAssertTrue("\($0)".contains("scored by the environment's rewards"), "\($0)")
        }
        XCTAssertThrowsError(try agentConfig { $0.agent!.frozenlake.map = nil; $0.agent!.frozenlake.size = 12 }.validate()) {
            XCTAssertEqual("\($0)", "config: agent.frozenlake: 'size' must be 4…8, got 12")
        }
        XCTAssertThrowsError(try trainer(agentConfig { $0.agent!.context = 4096 })) {
            XCTAssertEqual("\($0)", "config: 'agent.context' (4096) exceeds the model's context (512 positions)")
        }
        for (edit, message) in [({ (c: inout RunConfig) in c.credit = CreditConfig(method: .spoChain) }, "needs Monte-Carlo continuations"),
                                ({ (c: inout RunConfig) in c.credit = .d3s(.init(base: .grpo(.init()), tokenKeep: 0.5)) }, "reads token entropies"),
                                ({ (c: inout RunConfig) in c.rollout.repetitionPenalty = 1.1 }, "'rollout.repetition_penalty' is not supported"),
                                ({ (c: inout RunConfig) in c.rollout.maxNewTokens = .max }, "leaves no room for two turns"),   // no overflow trap (fuzz yaml seed 1 case 3091)
                                ({ (c: inout RunConfig) in c.credit = .gae(.init()); c.critic = .init(); c.critic!.target = .tvm; c.critic!.vfClip = nil },
                                 "'critic.target' tvm labels responses")] {
            XCTAssertThrowsError(try agentConfig(edit).validate()) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
        let yaml = try RunConfig.load(yaml: "agent: {environment: sokoban, sokoban: {boxes: 2}}\ncredit: {method: gigpo}")
        XCTAssertEqual(yaml.agent?.sokoban.boxes, 2)
        XCTAssertEqual(yaml.agent?.sokoban.size, 5)
        XCTAssertEqual(try RunConfig.load(yaml: try yaml.yaml()), yaml)
    }

    /// What an agent run would never read is refused with its line, not dropped; what a run
    /// writes (config.yaml, --print-config) reads back as the same config.
    func testUnusedAgentKeysAreRefusedAndWrittenConfigsReadBack() throws {
        for (yaml, message) in [
            ("agent: {}\ncredit: {method: gigpo}\ndata:\n  task: countdown", "config.yaml:4: 'data.task' has no effect in an agent run"),
            ("data: {system: be brief}\nagent: {}\ncredit: {method: gigpo}", "config.yaml:1: 'data.system' has no effect in an agent run"),
            ("credit: {method: gigpo}\nagent:\n  environment: frozenlake\n  sokoban: {boxes: 2}",
             "config.yaml:4: 'agent.sokoban' configures environment sokoban, and agent.environment is frozenlake"),
            ("credit: {method: gigpo}\nagent:\n  frozenlake:\n    map: [SF, FG]\n    size: 5", "config.yaml:5: 'agent.frozenlake.size' has no effect with a fixed 'map'"),
        ] {
            XCTAssertThrowsError(try RunConfig.load(yaml: yaml)) { XCTAssertTrue("\($0)".hasPrefix(message), "\($0)") }
        }
        XCTAssertThrowsError(try RunConfig.load(yaml: "{}", file: "--set", base: Preset.frozenlakeGiGPO.config, overrides: ["agent.countdown.numbers=4"])) {
            XCTAssertTrue("\($0)".contains("'agent.countdown' configures environment countdown"), "\($0)")
        }
        // Switching the environment over an agent preset keeps working: the preset's own section is not the user's.
        let switched = try RunConfig.load(yaml: "{}", file: "--set", base: Preset.frozenlakeGiGPO.config, overrides: ["agent.environment=sokoban"])
        XCTAssertEqual(switched.agent?.environment, .sokoban)
        for preset in [Preset.frozenlakeGiGPO, .sokobanGiGPO, .countdownTool] {
            let c = preset.config
            XCTAssertEqual(try RunConfig.load(yaml: try c.yaml()), c, "\(preset): config.yaml (as --resume reads it)")
            XCTAssertEqual(try RunConfig.load(yaml: try preset.template()), c, "\(preset): --print-config")
            XCTAssertFalse(try c.yaml().contains("task:"), "\(preset): an agent run's data section has its seed keys only")
            XCTAssertTrue(try c.yaml().contains("eval_size: 32\n"), "\(preset): a count of episodes is written as an integer")
        }
        // A run folder's config.yaml from an earlier version (every environment section, the prompt task) still resumes.
        let earlier = "data: {task: arithmetic, difficulty: 1, train_size: 4096, eval_size: 32, seed: 0}\ncredit: {method: gigpo}\n"
            + "agent:\n  environment: frozenlake\n  frozenlake: {size: 4, max_turns: 8}\n  sokoban: {size: 4}\n  countdown: {numbers: 3}"
        XCTAssertThrowsError(try RunConfig.load(yaml: earlier))
        XCTAssertEqual(try RunConfig.load(yaml: earlier, written: true).agent?.frozenlake.maxTurns, 8)
        var fixed = agentConfig()
        fixed.agent!.frozenlake.frozenProbability = 0.9
        XCTAssertEqual(try RunConfig.load(yaml: try fixed.yaml()).agent?.frozenlake.map, fixed.agent!.frozenlake.map)
    }

    /// PPO on episodes as verl's multi-turn GAE: the recursion skips observation tokens (their
    /// values and TD errors), whitening counts action tokens only, and so does the value loss.
    func testGAEAndTheCriticSkipObservationTokens() throws {
        let t = try trainer(agentConfig { c in
            c.credit = .gae(.init(gamma: 1, lam: 0.9, whiten: false))
            c.critic = .init()
            c.critic!.headStd = 0.5   // values that differ token to token
        })
        _ = try t.step(seeds)
        let inputs = try XCTUnwrap(t.lastInputs), batch = inputs.creditBatch
        let credit = try t.config.credit.estimator.estimate(batch)
        var checked = 0
        for (g, group) in batch.groups.enumerated() {
            for (i, traj) in group.trajectories.enumerated() {
                let mask = try XCTUnwrap(traj.actionMask), values = try XCTUnwrap(traj.values)
                XCTAssertEqual(credit.weights[g][i], mask.map { $0 ? 1 : 0 }, "observation tokens weigh 0")
                // The same GAE over the action tokens alone.
                let kept = mask.indices.filter { mask[$0] }
                let short = Trajectory(tokens: kept.map { traj.tokens[$0] }, reward: traj.reward, values: kept.map { values[$0] })
                let expected = GAE.perToken(short, values: short.values!, .init(gamma: 1, lam: 0.9)).advantages
                XCTAssertEqual(kept.map { credit.advantages[g][i][$0] }, expected)
                if kept.count < mask.count { checked += 1 }
            }
        }
        XCTAssertGreaterThan(checked, 0, "episodes with observations")
        // Whitening's statistics come from the action tokens.
        var whitened = t.config
        whitened.credit = .gae(.init(gamma: 1, lam: 0.9, whiten: true))
        let w = try whitened.credit.estimator.estimate(batch)
        let actionAdvantages = zip(credit.advantages.flatMap { $0 }, credit.weights.flatMap { $0 }).flatMap { a, m in zip(a, m).filter { $1 > 0 }.map(\.0) }
        XCTAssertEqual(try XCTUnwrap(w.diagnostics["whiten_mean"]), actionAdvantages.reduce(0, +) / Double(actionAdvantages.count), accuracy: 1e-12)
        // The value loss's mask is the action mask.
        let update = CriticUpdate(critic: try XCTUnwrap(t.critic), config: t.config, step: 1)
        let old = try XCTUnwrap(inputs.values)
        let rows = update.rows(inputs, targets: try update.targets(inputs), old: old)
        let mask = try withTorchErrors { try rows.mask.doubles() }, width = rows.mask.size(1)
        for (r, a) in try XCTUnwrap(inputs.actionMasks).enumerated() {
            XCTAssertEqual(Array(mask[(r * width)..<(r * width + a.count)]), a)
            XCTAssertEqual(rows.lossTokens[r], a.filter { $0 > 0 }.count)
        }
        XCTAssertThrowsError(try t.config.credit.estimator.estimate(CreditBatch(groups: [.init(id: "g", trajectories: [{
            var x = Trajectory(tokens: [1, 2], reward: 1, values: [0, 0]); x.actionMask = [true]; return x }()])]))) {
            XCTAssertTrue("\($0)".contains("'action_mask' has 1 entries but the response has 2 tokens"), "\($0)")
        }
    }

    /// An external environment (scripts/environments/corridor.py) trains; one that crashes mid-run is
    /// an error naming it, and the checkpoints written before stay.
    func testAnExternalEnvironmentTrainsAndACrashKeepsTheCheckpoints() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/environments/corridor.py").path
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tw-agent-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        func config(_ extra: [String]) -> RunConfig {
            var c = Preset.tiny.config
            var agent = RunConfig.AgentSection()
            agent.environment = .process
            agent.process = .init(command: ["python3", script, "3"] + extra, maxTurns: 2, timeoutSeconds: 20)
            agent.context = 400
            c.agent = agent
            c.credit = CreditConfig(method: .gigpo)
            c.eval.before = false
            c.eval.after = false
            c.output.saveModel = false
            c.output.checkpointEvery = 1
            c.train.steps = 3
            return c
        }
        let good = root.appendingPathComponent("good")
        try TrainingRun.start(config: config([]), dir: good, console: .quiet).run()
        XCTAssertEqual(replayableMetrics(good).count, 3)
        XCTAssertNotNil(replayableMetrics(good).last?["reward_success"])
        // The report shows each episode with its observation tokens greyed (context, no advantage).
        let html = try String(contentsOf: good.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<span class=\"tok obs\">"), "no observation tokens in the report")
        // As a dialogue: the first observation, then each action with its reward and state.
        XCTAssertTrue(html.contains("<div class=\"msg user\" title=\""), "no first observation")
        XCTAssertTrue(html.contains("<b>action 1</b> <span class=meta>reward "), "no turns")
        // Each process plays one episode a step: a reset and at most 2 moves, 3 replies; the 7th never comes.
        let bad = root.appendingPathComponent("bad")
        XCTAssertThrowsError(try TrainingRun.start(config: config(["--crash-after", "6"]), dir: bad, console: .quiet).run()) {
            XCTAssertTrue("\($0)".contains("the process exited with status 3"), "\($0)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: Checkpoint.folder(bad, step: 2).appendingPathComponent("manifest.json").path))
        XCTAssertEqual(Checkpoint.latest(run: bad, notice: { _ in })?.1.step, 2)
    }
}

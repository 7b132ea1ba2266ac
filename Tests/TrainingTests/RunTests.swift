import Foundation
import XCTest
@testable import Credit
@testable import Models
@testable import Objectives
@testable import Rewards
@testable import Torch
@testable import Training

final class EvaluationTests: XCTestCase {
    func testPassAtKIsTheUnbiasedEstimator() {
        // 1 − C(n−c, k)/C(n, k): n=4, c=1, k=2 → 1 − 3/6; n=5, c=2, k=2 → 1 − 3/10; all wrong → 0; too few wrong → 1.
        XCTAssertEqual(EvalResult.passAtK(n: 4, c: 1, k: 2), 0.5, accuracy: 1e-12)
        XCTAssertEqual(EvalResult.passAtK(n: 5, c: 2, k: 2), 0.7, accuracy: 1e-12)
        XCTAssertEqual(EvalResult.passAtK(n: 4, c: 1, k: 1), 0.25, accuracy: 1e-12)
        XCTAssertEqual(EvalResult.passAtK(n: 4, c: 0, k: 4), 0)
        XCTAssertEqual(EvalResult.passAtK(n: 4, c: 3, k: 2), 1)
    }

    func testConfidenceIntervalUsesStudentsT() {
        // [0, 1, 0, 1]: mean ½, s = √(1/3), s/√4 = 0.288675, t(3) = 3.182 → 0.918565.
        let e = Estimate([0, 1, 0, 1])
        XCTAssertEqual(e.mean, 0.5)
        XCTAssertEqual(e.ci95, 3.182 * (1.0 / 3).squareRoot() / 2, accuracy: 1e-12)
        XCTAssertEqual(Estimate([2]).ci95, 0)
        XCTAssertEqual(Estimate.t975(df: 40), 2.021, accuracy: 1e-3)
        XCTAssertEqual(Estimate.t975(df: 120), 1.980, accuracy: 1e-3)
    }

    func testEvaluateCountsEveryResponse() throws {
        let p = try Pretrained.tinyRandom()
        let samples = [TaskSample(prompt: "a", answer: "1"), TaskSample(prompt: "b", answer: "2"), TaskSample(prompt: "c", answer: "3")]
        // A reward that is 1 for every response: accuracy and pass@k must be exactly 1 with no spread.
        let always = CompositeReward([(1, ConstantReward())])
        let r = try evaluate(model: p.model, tokenizer: p.tokenizer, samples: samples, reward: always, samplesPerPrompt: 4,
                             config: .init(temperature: 1, maxNewTokens: 4, seed: 1), batchPrompts: 4)
        XCTAssertEqual(r.prompts, 3)
        XCTAssertEqual(r.accuracy, Estimate(mean: 1, ci95: 0))
        XCTAssertEqual(r.passAtK.keys.sorted(), [1, 2, 4])
        XCTAssertEqual(r.reward.mean, 2)
        XCTAssertThrowsError(try evaluate(model: p.model, tokenizer: p.tokenizer, samples: samples, reward: always, samplesPerPrompt: 2,
                                          config: .init(temperature: 0, maxNewTokens: 4))) {
            XCTAssertEqual("\($0)", "eval: greedy decoding (temperature 0) gives one answer per prompt; use samples 1")
        }
    }
}

/// "correct" every time, worth 2.
struct ConstantReward: RewardFunction {
    var name: String { "correct" }
    func score(_ input: RewardInput) -> RewardScore { RewardScore(value: 2) }
}

final class RunTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tw-run-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func tinyConfig(steps: Int = 4) -> RunConfig {
        var c = Preset.tiny.config
        c.train.steps = steps
        c.output.checkpointEvery = 2
        c.output.keepCheckpoints = 3
        c.output.saveModel = false
        c.optim.lr = 1e-2
        return c
    }

    func replayable(_ dir: URL) -> [[String: Double]] { replayableMetrics(dir) }

    func testARunWritesItsFolder() throws {
        let dir = root.appendingPathComponent("a")
        try TrainingRun.start(config: tinyConfig(), dir: dir, console: .quiet).run()
        for f in ["config.yaml", "metrics.jsonl", "samples.jsonl", "eval.jsonl", "report.html", "checkpoints/step-4/adapter_model.safetensors",
                  "checkpoints/step-4/adapter_config.json", "checkpoints/step-4/optimizer.safetensors", "checkpoints/step-2/manifest.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path), f)
        }
        let metrics = JSONLines.read(dir.appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(metrics.compactMap { $0["step"] as? Int }, [1, 2, 3, 4])
        for k in ["reward_mean", "reward_std", "accuracy", "response_length", "loss", "grad_norm", "lr", "clip_fraction_high",
                  "rollout_tokens_per_second", "train_tokens_per_second", "rollout_seconds", "train_seconds", "entropy"] {
            XCTAssertNotNil(metrics[0][k], k)
        }
        let samples = JSONLines.read(dir.appendingPathComponent("samples.jsonl"))
        XCTAssertEqual(samples.count, 4 * 8)   // samples_per_step 8 ≥ the 2 × 4 rollouts of a step
        let s = samples[0]
        XCTAssertEqual((s["advantages"] as? [Any])?.count, (s["tokens"] as? [Any])?.count)
        XCTAssertEqual((s["pieces"] as? [Any])?.count, (s["tokens"] as? [Any])?.count)
        XCTAssertEqual(JSONLines.read(dir.appendingPathComponent("eval.jsonl")).compactMap { $0["phase"] as? String }, ["before", "after"])
        // The written config is the run's config.
        let written = try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8)
        XCTAssertEqual(try RunConfig.load(yaml: written), tinyConfig())
        // The report draws the curves and colours the tokens.
        let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<polyline") && html.contains("reward (mean)"))
        XCTAssertTrue(html.contains("class=tok style=\"background:rgba(") && html.contains("advantage "))
        XCTAssertTrue(html.contains("Held-out evaluation"))
        XCTAssertFalse(html.contains("http://") || html.contains("https://") || html.contains("<script"), "the report must be self-contained")
        // A finished run's folder is not reused.
        XCTAssertThrowsError(try TrainingRun.start(config: tinyConfig(), dir: dir, console: .quiet)) {
            XCTAssertTrue("\($0)".contains("the run folder exists and is not empty (continue it with --resume"), "\($0)")
        }
    }

    /// A rollout-token budget ends the run after the step that reaches it, with its checkpoint and
    /// the held-out evaluation; a resumed run spends only what is left (the checkpoint carries the total).
    func testARolloutTokenBudgetEndsTheRunAndSurvivesResume() throws {
        var c = tinyConfig(steps: 6)
        c.output.checkpointEvery = 1
        c.output.report = false
        c.train.maxRolloutTokens = 1
        let one = root.appendingPathComponent("one")
        try TrainingRun.start(config: c, dir: one, console: .quiet).run()
        let first = JSONLines.read(one.appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(first.compactMap { $0["step"] as? Int }, [1], "any step samples a token")
        XCTAssertEqual(JSONLines.read(one.appendingPathComponent("eval.jsonl")).last?["step"] as? Int, 1)
        let t1 = try XCTUnwrap(first[0]["rollout_tokens"] as? Double)
        XCTAssertEqual(t1, (first[0]["response_length"] as! Double) * 8, accuracy: 1e-9)
        // Resuming a run whose budget is spent trains nothing more.
        try TrainingRun.resume(dir: one, console: .quiet).run()
        XCTAssertEqual(JSONLines.read(one.appendingPathComponent("metrics.jsonl")).count, 1)

        c.train.maxRolloutTokens = Int(t1) + 40
        let cut = root.appendingPathComponent("cut")
        try TrainingRun.start(config: c, dir: cut, console: .quiet).runSteps(upTo: 1)
        let state = try JSONDecoder().decode(Checkpoint.State.self, from: Data(contentsOf: cut.appendingPathComponent("checkpoints/step-1/trainer_state.json")))
        XCTAssertEqual(state.rolloutTokens, t1, "seed-paired: the same first step")
        try TrainingRun.resume(dir: cut, console: .quiet).run()
        let lines = JSONLines.read(cut.appendingPathComponent("metrics.jsonl"))
        let totals = lines.compactMap { $0["rollout_tokens"] as? Double }.reduce(into: [Double]()) { $0.append(($0.last ?? 0) + $1) }
        let end = try XCTUnwrap(totals.firstIndex { $0 >= Double(c.train.maxRolloutTokens!) }, "the budget is reached within 6 steps")
        XCTAssertEqual(lines.count, end + 1, "it stops at the step whose total reaches the budget: \(totals)")
        XCTAssertGreaterThan(lines.count, 1)
        XCTAssertEqual(JSONLines.read(cut.appendingPathComponent("eval.jsonl")).last?["step"] as? Int, lines.count)
        XCTAssertTrue(FileManager.default.fileExists(atPath: cut.appendingPathComponent("checkpoints/step-\(lines.count)/trainer_state.json").path))
        c.train.maxRolloutTokens = 0
        XCTAssertThrowsError(try c.validate()) { XCTAssertEqual("\($0)", "config: 'train.max_rollout_tokens' must be at least 1 (or null: no token budget)") }
        c.train.maxRolloutTokens = nil
        c.train.maxSeconds = -1
        XCTAssertThrowsError(try c.validate()) { XCTAssertEqual("\($0)", "config: 'train.max_seconds' must be positive and finite (or null: no time budget)") }
    }

    /// train.gradient_checkpointing and train.logprobs fused recompute layers and logits in the
    /// backward: the first step's rollouts, loss and gradient norm are those of the run that keeps
    /// its activations.
    func testGradientCheckpointingTrainsTheSameFirstStep() throws {
        var c = tinyConfig(steps: 1)
        c.eval.before = false
        c.eval.after = false
        let plain = root.appendingPathComponent("plain"), recomputed = root.appendingPathComponent("recomputed")
        try TrainingRun.start(config: c, dir: plain, console: .quiet).run()
        c.train.gradientCheckpointing = true
        c.train.logprobs = "fused"
        try TrainingRun.start(config: c, dir: recomputed, console: .quiet).run()
        let a = replayable(plain)[0], b = replayable(recomputed)[0]
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for key in ["loss", "grad_norm", "reward_mean", "response_length", "entropy"] {
            let x = try XCTUnwrap(a[key], key), y = try XCTUnwrap(b[key], key)
            XCTAssertEqual(x, y, accuracy: 1e-4 * Swift.max(1, abs(x)), key)
        }
        XCTAssertGreaterThan(a["grad_norm"]!, 0)
        let written = try String(contentsOf: recomputed.appendingPathComponent("config.yaml"), encoding: .utf8)
        XCTAssertTrue(written.contains("gradient_checkpointing: true") && written.contains("logprobs: fused"), written)
        c.train.logprobs = "chunked"
        XCTAssertThrowsError(try c.validate()) { XCTAssertEqual("\($0)", "config: 'train.logprobs' must be fused or unfused, got 'chunked'") }
        c.train.logprobs = "fused"
        c.model.lora?.dropout = 0.1
        XCTAssertThrowsError(try c.validate()) {
            XCTAssertEqual("\($0)", "config: 'train.gradient_checkpointing' recomputes each layer in the backward, where 'model.lora.lora_dropout' (0.1) would draw other masks than the forward did: set one of them to 0")
        }
    }

    /// Resuming from a checkpoint replays the same steps; a damaged newest checkpoint is skipped.
    func testResumeFromADamagedCheckpointReplaysTheSameSteps() throws {
        let whole = root.appendingPathComponent("whole"), cut = root.appendingPathComponent("cut")
        try TrainingRun.start(config: tinyConfig(steps: 6), dir: whole, console: .quiet).run()
        // The same run "killed" after step 5: checkpoints 2 and 4 exist, step 5's records were written.
        var short = tinyConfig(steps: 6)
        short.train.steps = 6
        let run = try TrainingRun.start(config: short, dir: cut, console: .quiet)
        try run.runSteps(upTo: 5)
        // Damage checkpoint 4: cut its adapter file short.
        let adapter = Checkpoint.folder(cut, step: 4).appendingPathComponent("adapter_model.safetensors")
        let bytes = try Data(contentsOf: adapter)
        try bytes.prefix(bytes.count - 7).write(to: adapter)
        XCTAssertThrowsError(try Checkpoint.verify(Checkpoint.folder(cut, step: 4))) {
            XCTAssertEqual("\($0)", "step-4: adapter_model.safetensors has the wrong size (cut short?)")
        }
        // A half-written checkpoint (no manifest) is refused too.
        try FileManager.default.createDirectory(at: Checkpoint.folder(cut, step: 5), withIntermediateDirectories: true)
        let resumed = try TrainingRun.resume(dir: cut, console: .quiet)
        XCTAssertEqual(resumed.startStep, 2)
        try resumed.run()
        XCTAssertEqual(replayable(cut), replayable(whole))
        XCTAssertEqual(replayable(cut).count, 6)
    }

    /// Pruning keeps the newest checkpoints that verify: a damaged newer one never costs an intact
    /// one. A checkpoint past the config's steps, or whose state names another step, is refused.
    func testPruningKeepsIntactCheckpointsAndResumeChecksTheStep() throws {
        let dir = root.appendingPathComponent("p")
        var c = tinyConfig(steps: 4)
        c.output.keepCheckpoints = 1
        try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
        XCTAssertEqual(Checkpoint.steps(run: dir), [4])
        // A damaged step-6 folder (a copy without its manifest) must not cost step 4.
        let fake = Checkpoint.folder(dir, step: 6)
        try FileManager.default.copyItem(at: Checkpoint.folder(dir, step: 4), to: fake)
        try FileManager.default.removeItem(at: fake.appendingPathComponent("manifest.json"))
        Checkpoint.prune(run: dir, keep: 1)
        XCTAssertEqual(Checkpoint.steps(run: dir), [6, 4])
        // A folder whose state is another step's is not that step.
        try FileManager.default.removeItem(at: fake)
        try FileManager.default.copyItem(at: Checkpoint.folder(dir, step: 4), to: fake)
        XCTAssertThrowsError(try Checkpoint.verify(fake)) { XCTAssertEqual("\($0)", "step-6: trainer_state.json says step 4") }
        try FileManager.default.removeItem(at: fake)
        // config.yaml edited to fewer steps than the checkpoint: refused, not a crash.
        let yaml = dir.appendingPathComponent("config.yaml")
        try Data(try String(contentsOf: yaml, encoding: .utf8).replacingOccurrences(of: "steps: 4", with: "steps: 2").utf8).write(to: yaml)
        XCTAssertThrowsError(try TrainingRun.resume(dir: dir, console: .quiet)) {
            XCTAssertTrue("\($0)".contains("is after step 4, past train.steps (2)"), "\($0)")
        }
    }

    func testBadInputsWriteNothing() throws {
        var c = tinyConfig()
        c.model.path = root.appendingPathComponent("missing-model").path
        let dir = root.appendingPathComponent("bad")
        XCTAssertThrowsError(try TrainingRun.start(config: c, dir: dir, console: .quiet)) {
            XCTAssertEqual("\($0)", "\(self.root.appendingPathComponent("missing-model").path): no such file or directory")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path))
        c = tinyConfig()
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let data = root.appendingPathComponent("bad.jsonl")
        try Data("{\"prompt\": \"1+1\", \"answer\": \"2\"}\n{\"prompt\": 3}\n".utf8).write(to: data)
        c.data.task = data.path
        c.data.evalSize = 0.5
        XCTAssertThrowsError(try TrainingRun.start(config: c, dir: dir, console: .quiet)) {
            XCTAssertEqual("\($0)", "\(data.path):2: 'prompt' must be a string")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path))
        XCTAssertThrowsError(try TrainingRun.resume(dir: root.appendingPathComponent("nowhere"), console: .quiet)) {
            XCTAssertTrue("\($0)".contains("config.yaml: cannot read (is "), "\($0)")
        }
    }

    /// A run that fails before its first step (here: a prompt longer than the model's context)
    /// removes the folder it made, so the same command can be retried.
    func testARunThatFailsBeforeItsFirstStepLeavesNoFolder() throws {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let data = root.appendingPathComponent("long.jsonl")
        try Data("{\"prompt\": \"\(String(repeating: "x", count: 3000))\", \"answer\": \"1\"}\n".utf8).write(to: data)
        var c = tinyConfig()
        c.data.task = data.path
        c.data.evalSize = 0
        c.eval.before = false
        let dir = root.appendingPathComponent("failed")
        // The prompt is checked against the context before the run folder exists, naming its line.
        XCTAssertThrowsError(try TrainingRun.start(config: c, dir: dir, console: .quiet)) {
            XCTAssertTrue("\($0)".hasPrefix("\(data.path):1: the prompt is "), "\($0)")
            XCTAssertTrue("\($0)".contains("exceeds the model's context (512)"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path))
        // A failure at step 1 (here: non-finite updates) removes the folder the run made.
        var huge = tinyConfig()
        huge.credit = .grpo(.init(stdNormalize: false))
        huge.reward = try RunConfig.load(yaml: "reward: {terms: [{type: length, weight: 1, budget: 0, per_token: 1.0e300}]}").reward
        huge.eval.before = false
        let run = try TrainingRun.start(config: huge, dir: dir, console: .quiet)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.yaml").path))
        XCTAssertThrowsError(try run.run()) { XCTAssertTrue("\($0)".contains("training diverged at step 1"), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path))
        // A folder the user made (empty) stays, emptied of what the run wrote.
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        XCTAssertThrowsError(try TrainingRun.start(config: huge, dir: dir, console: .quiet).run())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testProceduralEvalPromptsAreHeldOut() throws {
        var d = RunConfig.DataSection()
        d.evalSize = 40
        d.trainSize = 200
        let p = try Pretrained.tinyRandom()
        let set = try TaskData.load(d, reward: nil, chat: try p.chatTemplate())
        XCTAssertEqual(set.eval.count, 40)
        XCTAssertEqual(set.train.count, 200)
        XCTAssertTrue(Set(set.train.map(\.prompt)).isDisjoint(with: set.eval.map(\.prompt)))
        XCTAssertTrue(set.train[0].prompt.hasPrefix("<|im_start|>user\nWhat is "), set.train[0].prompt)
        d.evalSize = 5000
        XCTAssertThrowsError(try TaskData.load(d, reward: nil, chat: try p.chatTemplate())) {
            XCTAssertEqual("\($0)", "data: every 'arithmetic' prompt at difficulty 1 is held out for evaluation; lower 'eval_size'")
        }
    }

    /// Every credit method and objective variant, selected by name in YAML, trains a tiny model
    /// (finite loss, nonzero gradient, adapters changed) or is refused before a run folder exists.
    func testEveryMethodAndObjectiveRunsFromYAML() throws {
        let base = """
            train: {steps: 2, tree: {branching: 2, segment_tokens: 3, max_leaves: 4}}
            eval: {before: false, after: false}
            output: {checkpoint_every: 0, report: false, save_model: false}
            optim: {lr: 0.01}
            """
        let objectives = ["{ratio: sequence}", "{ratio: gspo_token}", "{ratio: hybrid, hybrid: {mixing: entropy}}", "{ratio: prefix_min}",
                          "{dual_clip: 3, eps_high: 0.28}", "{adaptive_clip: {}}", "{adaptive_clip: {}, adaptive_advantage: {beta: 1}, dual_clip: 10}", "{mismatch: {mode: icepop}}", "{kl_coef: 0.1}",
                          "{entropy_coef: 0.01}", "{aggregation: seq_mean_token_sum_norm, norm_constant: 8}", "{clip: false}", "{ratio: turn}"]
        // What the arithmetic task cannot supply: a critic, environment states, process rewards, a second engine, turns.
        let refused = ["credit: {method: gae}": "credit.method gae needs critic values",
                       "credit: {method: gigpo}": "credit.method gigpo needs environment states",
                       "credit: {method: istar}": "credit.method istar needs environment states",
                       "credit: {method: pure}": "credit.method pure needs process rewards ('step_rewards'), but the reward 'reward' gives none",
                       "objective: {mismatch: {mode: icepop}}": "objective.mismatch icepop needs rollout-engine logprobs",
                       "objective: {ratio: turn}": "objective.ratio turn needs turn ids"]
        let cases = CreditMethod.allCases.map { "credit: {method: \($0.rawValue)}" } + objectives.map { "objective: \($0)" }
            + ["credit: {method: gae}\ncritic: {lora: {r: 4}, vf_clip: 0.2}"]
        for (i, extra) in cases.enumerated() {
            let dir = root.appendingPathComponent("m\(i)")
            if let message = refused[extra] {
                XCTAssertThrowsError(try TrainingRun.start(config: try RunConfig.load(yaml: base + "\n" + extra, base: Preset.tiny.config), dir: dir, console: .quiet)) {
                    XCTAssertTrue("\($0)".contains(message), "\($0)")
                }
                XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path), extra)
                continue
            }
            let config = try RunConfig.load(yaml: base + "\n" + extra, base: Preset.tiny.config)
            let run = try TrainingRun.start(config: config, dir: dir, console: .quiet)
            let before = try withTorchErrors { try run.optimizer.parameters.map { try $0.detached().clone().floats() } }
            try run.run()
            let after = try withTorchErrors { try run.optimizer.parameters.map { try $0.floats() } }
            XCTAssertNotEqual(before, after, extra)
            let last = JSONLines.read(run.dir.appendingPathComponent("metrics.jsonl")).last ?? [:]
            XCTAssertTrue(((last["loss"] as? NSNumber)?.doubleValue ?? .nan).isFinite, extra)
        }
    }

    /// A run with HAPO's adaptive temperature resumes with the entropy statistics of its checkpoint.
    func testResumeKeepsTheAdaptiveTemperaturesStatistics() throws {
        var c = tinyConfig(steps: 4)
        c.rollout.temperatureSchedule = .init(name: .adaptive, tau: 0.5)
        let whole = root.appendingPathComponent("whole"), cut = root.appendingPathComponent("cut")
        try TrainingRun.start(config: c, dir: whole, console: .quiet).run()
        try TrainingRun.start(config: c, dir: cut, console: .quiet).runSteps(upTo: 3)
        let resumed = try TrainingRun.resume(dir: cut, console: .quiet)
        XCTAssertEqual(resumed.startStep, 2)
        XCTAssertNotNil(resumed.trainer?.entropyStatistics)
        try resumed.run()
        XCTAssertEqual(replayable(cut), replayable(whole))
    }

    /// Twelve pairs; with `weights`, per-token weights of both responses (the tiny model's
    /// tokenizer is bytewise: one weight per letter).
    func pairsFile(weights: Bool = false, labels: Bool = false, name: String = "pairs.jsonl") throws -> URL {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let url = root.appendingPathComponent(name)
        let lines = (0..<12).map { i in
            let (chosen, rejected) = i % 2 == 0 ? ("yes", "no") : ("no", "yes")
            func w(_ text: String) -> String { "[" + text.utf8.indices.enumerated().map { k, _ in String(0.5 + 0.25 * Double(k)) }.joined(separator: ", ") + "]" }
            let extra = (weights ? ", \"chosen_weights\": \(w(chosen)), \"rejected_weights\": \(w(rejected))" : "") + (labels ? ", \"h_w\": 0, \"h_l\": 1" : "")
            return "{\"prompt\": \"Is \(i) even?\", \"chosen\": \"\(chosen)\", \"rejected\": \"\(rejected)\"\(extra)}"
        }
        try Data(lines.joined(separator: "\n").utf8).write(to: url)
        return url
    }

    /// Every preference objective trains offline on pairs through the same run machinery. At the
    /// first step the policy equals the reference (LoRA's B starts at 0), so every margin is 0 and
    /// the DPO-family loss is softplus(0) = ln 2; held-out pairs are all ties (accuracy ½).
    func testEveryPreferenceObjectiveTrains() throws {
        let pairs = try pairsFile(), weighted = try pairsFile(weights: true, name: "weighted.jsonl"), labelled = try pairsFile(labels: true, name: "labelled.jsonl")
        // SparsePO twice: masks from the reference model's activations (its default) and from the file.
        let objectives = PreferenceLoss.Name.allCases.map { PreferenceLoss.Config(name: $0, beta: 0.5) } + [.init(name: .sparsepo, beta: 0.5, mask: .file)]
        for objective in objectives {
            let name = objective.name
            var c = tinyConfig(steps: 3)
            c.data.task = objective.inputs.contains(.weights) ? weighted.path : objective.inputs.contains(.hallucinated) ? labelled.path : pairs.path
            c.data.evalSize = 4
            c.preference = objective
            c.optim.lr = 5e-2
            if name == .tgdpo { c.model.rewardModel = "tiny-random" }
            let dir = root.appendingPathComponent("pref-\(name.rawValue)-\(objective.mask.rawValue)")
            try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
            let metrics = JSONLines.read(dir.appendingPathComponent("metrics.jsonl"))
            XCTAssertEqual(metrics.count, 3, name.rawValue)
            let first = (metrics[0]["loss"] as? NSNumber)?.doubleValue ?? .nan
            if name == .ipo {
                // u = 0 up to float rounding: the no-grad reference pass runs through the decoding kernel.
                XCTAssertEqual(first, 1.0, accuracy: 1e-5, "ipo: (0 − 1/(2·0.5))² = 1")
            } else if name == .fdpo {
                XCTAssertEqual(first, Foundation.log(1 + Foundation.exp(5.0)), accuracy: 1e-5, "fdpo: softplus(β·δ·(h_l − h_w)), every pair (0, 1), β 0.5, δ 10")
            } else if name == .treg {
                // ln 2 plus α·½·(L(y_w) + L(y_l)), whose self-generated token rewards are not 0.
                XCTAssertNotEqual(first, Foundation.log(2.0), accuracy: 1e-6, "treg's regulariser adds to DPO's ln 2")
            } else if name != .tgdpo {
                XCTAssertEqual(first, Foundation.log(2.0), accuracy: 1e-5, name.rawValue)
            }
            for m in metrics { XCTAssertTrue(((m["loss"] as? NSNumber)?.doubleValue ?? .nan).isFinite, name.rawValue) }
            XCTAssertNotEqual((metrics[2]["loss"] as? NSNumber)?.doubleValue, first, "\(name.rawValue): the loss did not move")
            let evals = JSONLines.read(dir.appendingPathComponent("eval.jsonl"))
            XCTAssertEqual(evals.compactMap { $0["phase"] as? String }, ["before", "after"], name.rawValue)
            XCTAssertEqual(((evals[0]["accuracy"] as? [String: Any])?["mean"] as? NSNumber)?.doubleValue, 0.5, name.rawValue)
            // The written config names the preference objective and reads back the same.
            let text = try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8)
            XCTAssertEqual(try RunConfig.load(yaml: text).preference, objective)
        }
    }

    /// Token weights come from the pair file when the objective reads them: refused when missing,
    /// when the objective ignores them, or when their count is not the response's token count.
    func testPreferenceTokenWeightsComeFromThePairFile() throws {
        func start(_ name: PreferenceLoss.Name, _ file: URL, mask: PreferenceLoss.MaskSource = .file) throws -> TrainingRun {
            var c = tinyConfig(steps: 1)
            c.data.task = file.path
            c.data.evalSize = 4
            c.preference = .init(name: name, beta: 0.5, mask: mask)
            return try TrainingRun.start(config: c, dir: root.appendingPathComponent("w-\(UUID().uuidString)"), console: .quiet)
        }
        let plain = try pairsFile(), weighted = try pairsFile(weights: true, name: "weighted.jsonl")
        XCTAssertThrowsError(try start(.weightedDPO, plain)) {
            XCTAssertEqual("\($0)", "\(plain.path):1: objective 'weighted_dpo' needs per-token weights: give 'chosen_weights' and 'rejected_weights' (one number per response token)")
        }
        XCTAssertThrowsError(try start(.dpo, weighted)) {
            XCTAssertEqual("\($0)", "\(weighted.path):1: 'chosen_weights' and 'rejected_weights' are read by objectives weighted_dpo and sparsepo, not 'dpo'")
        }
        let short = root.appendingPathComponent("short.jsonl")
        try Data(#"{"prompt": "a", "chosen": "yes", "rejected": "no", "chosen_weights": [1, 2], "rejected_weights": [1, 1]}"#.utf8).write(to: short)
        XCTAssertThrowsError(try start(.sparsepo, short)) {
            XCTAssertEqual("\($0)", "\(short.path):1: 'chosen_weights' has 2 values but the response is 3 tokens under the model's tokenizer")
        }
        XCTAssertThrowsError(try start(.sparsepo, weighted, mask: .activations)) {
            XCTAssertEqual("\($0)", "\(weighted.path):1: 'chosen_weights' and 'rejected_weights' are read with objective.mask: file; mask is 'activations' (SparsePO's masks from the reference model)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasPrefix("w-") }, [])
        // A response longer than the model's context is refused before anything is written.
        let long = root.appendingPathComponent("long.jsonl")
        try Data((0..<6).map { _ in "{\"prompt\": \"a\", \"chosen\": \"\(String(repeating: "y", count: 3000))\", \"rejected\": \"n\"}" }
            .joined(separator: "\n").utf8).write(to: long)
        XCTAssertThrowsError(try start(.dpo, long)) { XCTAssertTrue("\($0)".contains("tokens with its longer response, more than the model's context (512)"), "\($0)") }
        // The weights reach the loss: the file's, then 1 for the end token.
        let run = try start(.weightedDPO, weighted)
        let pair = try XCTUnwrap(run.data.trainPairs.first)
        let (chosen, _) = try withTorchErrors { try withNoGrad { try run.preferenceTrainer!.sides([pair]) } }
        let expected = (pair.chosen == "yes" ? [0.5, 0.75, 1.0] : [0.5, 0.75]) + [1]
        XCTAssertEqual(try withTorchErrors { try XCTUnwrap(chosen.weights).doubles() }, expected)
    }

    func testPreferenceConfigAndDataErrors() throws {
        let c = try RunConfig.load(yaml: "objective: {name: tdpo2, beta: 0.2}")
        XCTAssertEqual(c.preference, .init(name: .tdpo2, beta: 0.2))
        XCTAssertNil(try RunConfig.load(yaml: "objective: {clip: false}").preference)
        XCTAssertEqual(try RunConfig.load(yaml: "", overrides: ["objective.name=dpo"]).preference?.name, .dpo)
        func error(_ yaml: String) -> String { do { _ = try RunConfig.load(yaml: yaml, file: "p.yaml"); return "no error" } catch { return "\(error)" } }
        XCTAssertEqual(error("objective: {name: tgdpo}"), "p.yaml: config: objective 'tgdpo' needs a frozen token-reward model: set 'model.reward_model'")
        XCTAssertEqual(error("model: {reward_model: x}"), "p.yaml: config: 'model.reward_model' is only used by objective 'tgdpo'")
        XCTAssertTrue(error("objective: {name: dpo, ratio: token}").hasPrefix("p.yaml: objective: unknown key 'ratio'"), error("objective: {name: dpo, ratio: token}"))
        var cfg = tinyConfig()
        cfg.preference = .init(name: .dpo)
        XCTAssertThrowsError(try TrainingRun.start(config: cfg, dir: root.appendingPathComponent("x"), console: .quiet)) {
            XCTAssertEqual("\($0)", "data: a preference objective trains on a JSONL file of {prompt, chosen, rejected} pairs, not the procedural task 'arithmetic'")
        }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let mixed = root.appendingPathComponent("mixed.jsonl")
        try Data("{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": \"a\", \"answer\": \"1\"}\n".utf8).write(to: mixed)
        cfg.data.task = mixed.path
        XCTAssertThrowsError(try TrainingRun.start(config: cfg, dir: root.appendingPathComponent("x"), console: .quiet)) {
            XCTAssertEqual("\($0)", "\(mixed.path): a preference objective needs every line to be a {prompt, chosen, rejected} pair")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("x").path))
    }

    /// DAPO dynamic sampling drops groups whose rewards all agree and refills from more prompts.
    func testDynamicSamplingDropsUniformGroups() throws {
        let p = try Pretrained.tinyRandom()
        var cfg = RunConfig()
        cfg.rollout = .init(temperature: 1, maxNewTokens: 4, seed: 2)
        cfg.train.samplesPerPrompt = 4
        cfg.train.dynamicSampling = true
        cfg.train.maxRefills = 2
        let t = try Trainer(model: p.model, tokenizer: p.tokenizer, reward: PromptReward(), config: cfg)
        var asked = [Int]()
        // "flat" prompts always score 0 (a uniform group); "vary" prompts score by response length.
        let m = try t.step([TaskSample(prompt: "flat 1"), TaskSample(prompt: "vary 1")], seed: 5) { n in
            asked.append(n)
            return (0..<n).map { TaskSample(prompt: "vary extra \($0) \(asked.count)") }
        }
        XCTAssertEqual(asked, [1])
        XCTAssertEqual(m["groups_sampled"], 3)
        XCTAssertEqual(m["groups_kept"], 2)
        XCTAssertEqual(Set(t.lastRecords.map(\.prompt)), ["vary 1", "vary extra 0 1"])
        // Without refills available, the step trains on what is left.
        let only = try t.step([TaskSample(prompt: "flat 2"), TaskSample(prompt: "flat 3")], seed: 6) { _ in [] }
        XCTAssertEqual(only["groups_kept"], 0)
        XCTAssertNil(only["loss"])
        XCTAssertTrue(t.lastRecords.isEmpty)
    }
}

/// 0 for prompts that start with "flat"; otherwise the response's length in bytes mod 5.
struct PromptReward: RewardFunction {
    var name: String { "prompt" }
    func score(_ input: RewardInput) -> RewardScore {
        RewardScore(value: input.prompt.hasPrefix("flat") ? 0 : Double(input.response.utf8.count % 5))
    }
}

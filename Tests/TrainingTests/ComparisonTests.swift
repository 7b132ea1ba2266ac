import Foundation
import XCTest
@testable import Training

final class ComparisonTests: FolderTestCase {

    let yaml = """
        preset: tiny
        set: ["train.steps=2", "output.save_model=false", "output.report=false", "optim.lr=0.01"]
        arms:
          grpo: {credit.method: grpo}
          rloo:
            credit: {method: rloo}
        seeds: [1, 2]
        threshold: 0.1
        """

    func comparison(_ text: String? = nil) throws -> Comparison {
        let file = root.appendingPathComponent("cmp.yaml")
        try Data((text ?? yaml).utf8).write(to: file)
        return try Comparison(config: try ComparisonConfig.load(yaml: text ?? yaml, file: file.path), file: file, dir: root.appendingPathComponent("out"))
    }

    /// Arms with one seed see the same prompts in the same order and the same held-out set; an
    /// interrupted comparison keeps its finished runs and finishes the others; the summary's
    /// figures are the runs'.
    func testPairedSeedsResumeAndTheSummary() throws {
        let c = try comparison()
        XCTAssertEqual(c.config.arms.map(\.name), ["grpo", "rloo"])
        XCTAssertEqual(c.config.arms[1].overrides, ["credit.method=rloo"])
        // Interrupted: the first run finished, the second stopped after step 1.
        try TrainingRun.start(config: try c.config.runConfig(arm: 0, seed: 1, baseText: "{}", base: "b"), dir: c.folder(arm: "grpo", seed: 1), console: .quiet).run()
        let partial = try TrainingRun.start(config: try c.config.runConfig(arm: 0, seed: 2, baseText: "{}", base: "b"), dir: c.folder(arm: "grpo", seed: 2), console: .quiet)
        try partial.runSteps(upTo: 1)
        let kept = try Data(contentsOf: c.folder(arm: "grpo", seed: 1).appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(c.unfinished.map { Comparison.runName(arm: $0.arm, seed: $0.seed) }, ["grpo-s2", "rloo-s1", "rloo-s2"])
        XCTAssertEqual(try c.run(named: "rloo-s2").arm, "rloo")
        XCTAssertThrowsError(try c.run(named: "rloo-s3")) {
            XCTAssertEqual("\($0)", "no run 'rloo-s3' in this comparison (its runs: grpo-s1, grpo-s2, rloo-s1, rloo-s2)")
        }
        var said = [String]()
        let summary = try c.run(console: .quiet, say: { said.append($0) })
        XCTAssertTrue(c.unfinished.isEmpty)
        XCTAssertEqual(said.first, "compare: grpo seed 1 finished already (\(c.folder(arm: "grpo", seed: 1).path))")
        XCTAssertEqual(said[1], "compare: resuming grpo seed 2")
        XCTAssertEqual(try Data(contentsOf: c.folder(arm: "grpo", seed: 1).appendingPathComponent("metrics.jsonl")), kept, "a finished run is left alone")
        for seed: UInt64 in [1, 2] {
            let a = c.folder(arm: "grpo", seed: seed), b = c.folder(arm: "rloo", seed: seed)
            func prompts(_ d: URL, step: Int) -> [String] { JSONLines.read(d.appendingPathComponent("samples.jsonl")).filter { $0["step"] as? Int == step }.compactMap { $0["prompt"] as? String } }
            XCTAssertEqual(prompts(a, step: 1), prompts(b, step: 1), "seed \(seed): the same prompts")
            XCTAssertFalse(prompts(a, step: 1).isEmpty)
            func before(_ d: URL) -> Double? { (JSONLines.read(d.appendingPathComponent("eval.jsonl")).first?["reward"] as? [String: Any])?["mean"] as? Double }
            XCTAssertEqual(before(a), before(b), "seed \(seed): the same held-out set, scored before training")
        }
        // The summary against the runs' own files, and the paired statistics by hand.
        let grpo = summary.arms[0], rloo = summary.arms[1]
        for (arm, name) in [(grpo, "grpo"), (rloo, "rloo")] {
            for r in arm.runs {
                let d = c.folder(arm: name, seed: r.seed)
                let after = JSONLines.read(d.appendingPathComponent("eval.jsonl")).last!
                XCTAssertEqual(r.reward, (after["reward"] as? [String: Any])?["mean"] as? Double)
                XCTAssertEqual(r.k, 2, "the tiny preset's evaluation samples twice")
                let peaks = JSONLines.read(d.appendingPathComponent("metrics.jsonl")).compactMap { $0["peak_memory_mb"] as? Double }
                XCTAssertEqual(peaks.count, 2)
                XCTAssertEqual(r.peakMemoryMB, peaks.max())
                XCTAssertGreaterThan(peaks[0], 10, "VmHWM of a process with libtorch loaded")
                XCTAssertEqual(r.passAtK, ((after["pass_at_k"] as? [String: Any])?["2"] as? [String: Any])?["mean"] as? Double)
                let rewards = JSONLines.read(d.appendingPathComponent("metrics.jsonl")).compactMap { $0["reward_mean"] as? Double }
                XCTAssertEqual(r.auc, rewards.reduce(0, +) / Double(rewards.count), accuracy: 1e-12)
            }
        }
        let d = zip(rloo.runs, grpo.runs).map { $0.reward - $1.reward }
        let p = try XCTUnwrap(summary.paired.first)
        XCTAssertEqual(p.rewardDifferences, d)
        let mean = (d[0] + d[1]) / 2, sd = abs(d[0] - d[1]) / 2.0.squareRoot()
        XCTAssertEqual(p.reward.mean, mean, accuracy: 1e-12)
        XCTAssertEqual(p.reward.ci95, 12.706 * sd / 2.0.squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(p.clears, abs(mean) > p.reward.ci95)
        XCTAssertTrue(summary.markdown.contains("| grpo | "))
        XCTAssertTrue(summary.markdown.contains("| accuracy | pass@2 | training-reward AUC |"))
        XCTAssertEqual(grpo.passAtK?.mean ?? .nan, grpo.runs.compactMap(\.passAtK).reduce(0, +) / 2, accuracy: 1e-12)
        let written = try JSONDecoder().decode(ComparisonSummary.self, from: Data(contentsOf: c.dir.appendingPathComponent("compare.json")))
        XCTAssertEqual(written, summary)
        // The page: a band and a mean per arm on each curve, the tables, links to the runs.
        let html = try String(contentsOf: c.dir.appendingPathComponent("compare.html"), encoding: .utf8)
        XCTAssertEqual(html.components(separatedBy: "<polygon").count - 1, 2 * 3, "two arms × three curves")
        XCTAssertTrue(html.contains("Against grpo") && html.contains("<td>rloo</td>") && html.contains("href=\"rloo-s2/report.html\""))
        XCTAssertFalse(html.contains("<script"))
        // The credit side-by-side: grpo seed 1's recorded rollouts, one line of tokens per arm's method.
        let side = try c.creditSideBySide()
        XCTAssertEqual(side.methods, ["grpo (grpo)", "rloo (rloo)"])
        XCTAssertEqual(side.source, "grpo-s1")
        XCTAssertEqual(html.components(separatedBy: "<tr><th>rloo (rloo)</th>").count - 1, side.rows.count)
        XCTAssertEqual(side.rows.count, 8)
        // Run again: nothing to train.
        said = []
        XCTAssertEqual(try c.run(console: .quiet, say: { said.append($0) }), summary)
        XCTAssertTrue(said.allSatisfy { $0.hasSuffix(")") && $0.contains("finished already") })
    }

    /// Statistics by hand: a paired interval with three seeds, the AUC.
    func testStatistics() {
        func run(_ seed: UInt64, _ reward: Double, _ auc: Double) -> ComparisonSummary.RunResult {
            var r = try! JSONDecoder().decode(ComparisonSummary.RunResult.self, from: Data(#"{"seed":1,"reward":0,"accuracy":0,"auc":0,"secondsPerStep":1,"steps":4,"rolloutTokens":10}"#.utf8))
            r.seed = seed; r.reward = reward; r.auc = auc
            return r
        }
        let base = ComparisonSummary.Arm(name: "a", runs: [run(1, 0.5, 0.2), run(2, 0.6, 0.3), run(3, 0.7, 0.4)])
        let arm = ComparisonSummary.Arm(name: "b", runs: [run(1, 0.6, 0.2), run(2, 0.9, 0.3), run(3, 0.9, 0.5)])
        let p = ComparisonSummary.Paired(arm: arm, baseline: base)
        // Differences 0.1, 0.3, 0.2: mean 0.2, sd 0.1, t(0.975, 2) = 4.303.
        XCTAssertEqual(p.reward.mean, 0.2, accuracy: 1e-12)
        XCTAssertEqual(p.reward.ci95, 4.303 * 0.1 / 3.0.squareRoot(), accuracy: 1e-9)
        XCTAssertFalse(p.clears, "0.2 is inside ± 0.248")
        let wide = ComparisonSummary.Paired(arm: .init(name: "c", runs: [run(1, 0.8, 0), run(2, 0.9, 0), run(3, 1.0, 0)]), baseline: base)
        XCTAssertTrue(wide.clears, "0.3 ± 0 clears 0")
        XCTAssertEqual(p.auc.mean, 0.1 / 3, accuracy: 1e-12)
        XCTAssertEqual(ComparisonSummary.auc([0, 0.5, 1]), 0.5)
        XCTAssertEqual(ComparisonSummary.auc([]), 0)
    }

    /// Bad comparison files name the file and the key; arms may not change what pairs the seeds.
    func testBadFiles() {
        func error(_ text: String) -> String {
            do { _ = try ComparisonConfig.load(yaml: text, file: "c.yaml"); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("arms: {a: {data.task: countdown}}"),
                       "c.yaml: arm 'a' sets 'data.task': arms share the data, evaluation, seeds and step budget (set them for all in 'set')")
        XCTAssertEqual(error("arms: {a: {train: {steps: 3}}}"),
                       "c.yaml: arm 'a' sets 'train.steps': arms share the data, evaluation, seeds and step budget (set them for all in 'set')")
        XCTAssertEqual(error("arms: {a: {credit.method: grpo}}\nbaseline: b"), "c.yaml: 'baseline' b is not an arm (a)")
        XCTAssertEqual(error("arms: {a: {credit.method: grpo}}\nseeds: []"), "c.yaml: 'seeds' must be a non-empty list of non-negative integers")
        XCTAssertEqual(error("arms: {a: {credit.method: grpo}}\nseeds: [1, 1]"), "c.yaml: 'seeds' lists a seed twice")
        XCTAssertEqual(error("arms: {a: {credit.method: grpo}}\nsteps: 3"),
                       "c.yaml: unknown key 'steps' (known: preset, config, set, arms, seeds, baseline, threshold, budget)")
        XCTAssertEqual(error("seeds: [1]"), "c.yaml: 'arms' is missing")
        XCTAssertEqual(error("arms: {a: {credit.method: grpo}}\nbudget: {tokens: 5}"), "c.yaml: 'budget' keys are steps, rollout_tokens and seconds")
        XCTAssertEqual(error("arms: {a: {credit.method: grpo}}\nbudget: {steps: 2.5}"), "c.yaml: 'budget.steps' must be a positive integer")
        XCTAssertEqual(error("arms: {a: {credit.method: grpo}}\nbudget: {seconds: -1}"), "c.yaml: 'budget.seconds' must be a positive number")
        XCTAssertEqual(error("arms: {a: {train.max_rollout_tokens: 9}}"),
                       "c.yaml: arm 'a' sets 'train.max_rollout_tokens': arms share the data, evaluation, seeds and step budget (set them for all in 'set')")
        XCTAssertEqual(error("arms: {\"a/b\": {credit.method: grpo}}"), "c.yaml: arm names are letters, digits, '_', '-' and '.' (they name folders)")
    }

    /// A run config an arm cannot form is refused before anything trains, naming the key.
    func testArmConfigsAreCheckedFirst() throws {
        XCTAssertThrowsError(try comparison("preset: tiny\narms: {a: {credit.method: nope}}\nseeds: [1]")) {
            XCTAssertTrue("\($0)".contains("nope"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("out").path))
    }

    /// A token budget ends every arm's runs after the step that reaches it (here the first), and the
    /// summary counts the steps and tokens. The side-by-side takes its rollouts from a run that
    /// recorded what every arm's method reads: TW-GRPO's position scores, which GRPO's run never computed.
    func testSideBySideSourceCoversEveryArm() throws {
        let c = try comparison("""
            preset: tiny
            set: ["output.save_model=false", "output.report=false"]
            arms: {grpo: {credit.method: grpo}, tw: {credit.method: tw_grpo}}
            seeds: [3]
            budget: {rollout_tokens: 1, steps: 3}
            """)
        let summary = try c.run(console: .quiet, say: { _ in })
        XCTAssertEqual(summary.arms.map(\.steps), [1, 1])
        let tokens = JSONLines.read(c.folder(arm: "tw", seed: 3).appendingPathComponent("metrics.jsonl")).compactMap { $0["rollout_tokens"] as? Double }
        XCTAssertEqual(summary.arms[1].rolloutTokens, tokens.reduce(0, +))
        let side = try c.creditSideBySide()
        XCTAssertEqual(side.source, "tw-s3")
        XCTAssertEqual(side.methods, ["grpo (grpo)", "tw (tw_grpo)"])
        XCTAssertTrue(side.skipped.isEmpty)
    }
}

import Foundation
import XCTest
@testable import Training

/// A run whose reward is an external command: the rewards it trains on are the command's, and a
/// command that fails stops the run with its error instead of training on NaN.
final class CommandRewardTrainingTests: FolderTestCase {
    /// Rewards the share of lower-case ASCII letters and says whether the response holds a digit.
    static let script = """
        import json, sys
        for line in sys.stdin:
            r = json.loads(line)
            y = r["response"]
            if r["prompt"].endswith("fail"): sys.exit(2)
            lower = sum(1 for c in y if "a" <= c <= "z")
            out = {"reward": lower / max(1, len(y)), "components": {"correct": float(any("0" <= c <= "9" for c in y))}}
            if "--steps" in sys.argv: out["steps"] = [{"offset": 0, "reward": 0.5}]
            print(json.dumps(out), flush=True)
        """

    /// PURE reads the command's step rewards when the term declares them, and is refused otherwise.
    func testProcessRewardsFromACommand() throws {
        let script = root.appendingPathComponent("steps.py")
        try Data(Self.script.utf8).write(to: script)
        func config(_ steps: Int) throws -> RunConfig {
            try RunConfig.load(yaml: """
                train: {steps: 2}
                credit: {method: pure}
                reward: {terms: [{type: command, command: "python3 \(script.path) --steps", steps: \(steps)}]}
                eval: {before: false, after: false}
                output: {checkpoint_every: 0, report: false, save_model: false}
                """, base: Preset.tiny.config)
        }
        let dir = root.appendingPathComponent("pure")
        try TrainingRun.start(config: try config(1), dir: dir, console: .quiet).run()
        let samples = JSONLines.read(dir.appendingPathComponent("samples.jsonl"))
        XCTAssertFalse(samples.isEmpty)
        for s in samples {
            let steps = ((s["credit"] as? [String: Any])?["step_rewards"] as? [[String: Any]]) ?? []
            XCTAssertEqual(steps.count, 1, "\(s["credit"] ?? "no credit")")
            XCTAssertEqual((steps.first?["reward"] as? NSNumber)?.doubleValue, 0.5)
        }
        XCTAssertThrowsError(try TrainingRun.start(config: try config(0), dir: root.appendingPathComponent("refused"), console: .quiet)) {
            XCTAssertTrue("\($0)".contains("gives none"), "\($0)")
        }
    }

    func testARunTrainsOnTheCommandsRewards() throws {
        let script = root.appendingPathComponent("verify.py")
        try Data(Self.script.utf8).write(to: script)
        let c = try RunConfig.load(yaml: """
            train: {steps: 2}
            reward: {terms: [{type: command, command: "python3 \(script.path)", timeout: 20}]}
            eval: {before: false, after: false}
            output: {checkpoint_every: 0, report: false, save_model: false, samples_per_step: 8}
            """, base: Preset.tiny.config)
        let dir = root.appendingPathComponent("run")
        try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
        let samples = JSONLines.read(dir.appendingPathComponent("samples.jsonl"))
        XCTAssertEqual(samples.count, 16)
        for s in samples {
            let y = s["response"] as! String, lower = y.unicodeScalars.filter { ("a"..."z").contains($0) }.count
            XCTAssertEqual((s["reward"] as! NSNumber).doubleValue, Double(lower) / Double(max(1, y.unicodeScalars.count)), accuracy: 1e-9, y)
            // The command's own 'correct' part arrives under its name, for accuracy, DARS and LaSeR.
            XCTAssertEqual(((s["components"] as? [String: Any])?["correct"] as? NSNumber)?.doubleValue, y.unicodeScalars.contains { ("0"..."9").contains($0) } ? 1 : 0, y)
        }
        // A command that exits stops the step with its error.
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: c.reward!.reward, config: tinyTrainerConfig())
        XCTAssertThrowsError(try t.step([TaskSample(prompt: "please fail")])) {
            XCTAssertTrue("\($0)".contains("reward `python3 \(script.path)`: the process exited with status 2 before replying to a response"), "\($0)")
        }
    }
}

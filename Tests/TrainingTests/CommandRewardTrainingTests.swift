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
            print(json.dumps({"reward": lower / max(1, len(y)), "components": {"correct": float(any(c.isdigit() for c in y))}}), flush=True)
        """

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
        }
        // A command that exits stops the step with its error.
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: c.reward!.reward, config: tinyTrainerConfig())
        XCTAssertThrowsError(try t.step([TaskSample(prompt: "please fail")])) {
            XCTAssertTrue("\($0)".contains("reward `python3 \(script.path)`: the process exited with status 2 before replying to a response"), "\($0)")
        }
    }
}

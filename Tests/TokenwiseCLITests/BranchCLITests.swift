import Foundation
import XCTest

/// `train --resume RUN --from-checkpoint step-N [--out NEW]`: a run continued from a checkpoint
/// other than its newest is a branch in a new folder, which trains the very steps the original did.
final class BranchCLITests: XCTestCase {
    func metrics(_ dir: URL) throws -> [[String: Double]] {
        try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map { line in
            let all = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return all.compactMapValues { $0 as? Double }.filter { !$0.key.hasSuffix("seconds") && !$0.key.hasSuffix("per_second") && $0.key != "peak_memory_mb" }
        }
    }

    func testABranchFromAnOlderCheckpointTrainsTheSameStepsAndLeavesTheRunAsItWas() throws {
        let root = try temporary()
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        let sets = ["train.steps=4", "output.checkpoint_every=1", "output.keep_checkpoints=5", "output.save_model=false", "output.report=false"]
        let first = try tokenwise(["train", "--preset", "tiny", "--out", a.path, "--quiet", "--threads", "1"] + sets.flatMap { ["--set", $0] })
        XCTAssertEqual(first.status, 0, first.stderr)
        let before = try metrics(a), evals = try String(contentsOf: a.appendingPathComponent("eval.jsonl"), encoding: .utf8)
        // In place, an older checkpoint would overwrite the later steps' records.
        let refused = try tokenwise(["train", "--resume", a.path, "--from-checkpoint", "step-2"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("has later checkpoints (step-3, step-4), whose records continuing here would overwrite; give --out NEW"), refused.stderr)
        let branch = try tokenwise(["train", "--resume", a.path, "--from-checkpoint", "step-2", "--out", b.path, "--quiet", "--threads", "1"])
        XCTAssertEqual(branch.status, 0, branch.stderr)
        XCTAssertTrue(branch.stderr.contains("branched \(a.path) at step-2 into \(b.path)"), branch.stderr)
        XCTAssertEqual(try metrics(b), before)
        XCTAssertEqual(try metrics(a), before)
        XCTAssertEqual(try String(contentsOf: a.appendingPathComponent("eval.jsonl"), encoding: .utf8), evals)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: b.appendingPathComponent("checkpoints").path).sorted(), ["step-2", "step-3", "step-4"])
        // The newest checkpoint continues in place (nothing is left to train here).
        let newest = try tokenwise(["train", "--resume", a.path, "--from-checkpoint", "4", "--quiet"])
        XCTAssertEqual(newest.status, 0, newest.stderr)
        XCTAssertEqual(try metrics(a), before)
        for (args, error) in [(["--from-checkpoint", "step-9", "--out", root.appendingPathComponent("c").path], "has no checkpoint step-9 (it has step-1, step-2, step-3, step-4)"),
                              (["--from-checkpoint", "latest"], "give a checkpoint as step-N or N"),
                              (["--from-checkpoint", "step-2", "--out", b.path], "the run folder exists and is not empty")] {
            let r = try tokenwise(["train", "--resume", a.path] + args)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(error), r.stderr)
        }
        let alone = try tokenwise(["train", "--preset", "tiny", "--from-checkpoint", "step-2"])
        XCTAssertTrue(alone.stderr.contains("--from-checkpoint picks the checkpoint --resume continues from"), alone.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("c").path))
    }
}

import Foundation
import XCTest

/// `tokenwise compare` as a user runs it, `--parallel` included.
final class CompareCLITests: XCTestCase {
    func file(_ root: URL, steps: Int = 2, arms: String = "grpo: {credit.method: grpo}\n  rloo: {credit.method: rloo}") throws -> String {
        let f = root.appendingPathComponent("cmp.yaml")
        try Data("""
            preset: tiny
            set: ["train.steps=\(steps)", "output.save_model=false", "output.report=false", "optim.lr=0.01"]
            arms:
              \(arms)
            seeds: [1, 2]
            """.utf8).write(to: f)
        return f.path
    }

    func metrics(_ dir: URL) -> [[String: Double]] {
        ((try? String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?
                .compactMapValues { ($0 as? NSNumber)?.doubleValue }.filter { !$0.key.contains("seconds") && !$0.key.contains("per_second") && $0.key != "peak_memory_mb" }
        }
    }

    func finished(_ dir: URL) -> Bool {
        ((try? String(contentsOf: dir.appendingPathComponent("eval.jsonl"), encoding: .utf8)) ?? "").contains("\"after\"")
    }

    /// Two runs at a time train what one at a time trains; a run that fails stops no other and
    /// starts none after it, and the next call trains only what is left.
    func testParallelRunsTrainWhatSequentialRunsTrain() throws {
        let root = try temporary(), cmp = try file(root)
        let par = root.appendingPathComponent("par"), seq = root.appendingPathComponent("seq")
        let names = ["grpo-s1", "grpo-s2", "rloo-s1", "rloo-s2"]
        // The last run's folder holds a config that is not its own: that run fails.
        try FileManager.default.createDirectory(at: par.appendingPathComponent("rloo-s2"), withIntermediateDirectories: true)
        try Data("model: {path: tiny-random}\n".utf8).write(to: par.appendingPathComponent("rloo-s2/config.yaml"))
        let failed = try tokenwise(["compare", cmp, "--out", par.path, "--parallel", "2", "--threads", "1"])
        XCTAssertEqual(failed.status, 1, failed.stderr)
        XCTAssertTrue(failed.stderr.contains("[rloo-s2] Error: \(par.path)/rloo-s2/config.yaml is not the config of arm rloo with seed 2"), failed.stderr)
        XCTAssertTrue(failed.stderr.contains("tokenwise compare: run rloo-s2 exited with status 1 (its lines are marked [rloo-s2])"), failed.stderr)
        XCTAssertTrue(failed.stderr.contains("the other runs are kept; run the command again to continue"), failed.stderr)
        XCTAssertTrue(failed.stdout.contains("compare: 4 run(s) to train, 2 at a time with 1 thread(s) each: grpo-s1, grpo-s2, rloo-s1, rloo-s2"), failed.stdout)
        XCTAssertTrue(failed.stdout.contains("[grpo-s1] compare: grpo seed 1 → "), failed.stdout)
        XCTAssertEqual(names.map { finished(par.appendingPathComponent($0)) }, [true, true, true, false])
        XCTAssertFalse(FileManager.default.fileExists(atPath: par.appendingPathComponent("compare.json").path))

        try FileManager.default.removeItem(at: par.appendingPathComponent("rloo-s2"))
        let again = try tokenwise(["compare", cmp, "--out", par.path, "--parallel", "2", "--threads", "1"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("compare: 1 run(s) to train, 1 at a time with 1 thread(s) each: rloo-s2"), again.stdout)
        XCTAssertTrue(again.stdout.contains("| rloo | "), again.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: par.appendingPathComponent("compare.html").path))

        let one = try tokenwise(["compare", cmp, "--out", seq.path, "--threads", "1", "--quiet"])
        XCTAssertEqual(one.status, 0, one.stderr)
        for n in names {
            XCTAssertEqual(metrics(par.appendingPathComponent(n)).count, 2, n)
            XCTAssertEqual(metrics(par.appendingPathComponent(n)), metrics(seq.appendingPathComponent(n)), n)
        }
        for (args, error) in [(["--parallel", "0"], "--parallel must be at least 1, got 0"),
                              (["--only", "grpo-s1", "--parallel", "2"], "--only trains one run: it does not go with --parallel"),
                              (["--only", "grpo-s3"], "no run 'grpo-s3' in this comparison (its runs: grpo-s1, grpo-s2, rloo-s1, rloo-s2)")] {
            let r = try tokenwise(["compare", cmp, "--out", par.path] + args)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(error), r.stderr)
        }
    }

    /// SIGINT reaches every run: each stops after its step with a checkpoint, and so does the command.
    func testSIGINTStopsEveryRunningRun() throws {
        let root = try temporary(), cmp = try file(root, steps: 500, arms: "a: {credit.method: grpo}")
        let out = root.appendingPathComponent("out")
        let p = Process()
        p.executableURL = binary
        p.arguments = ["compare", cmp, "--out", out.path, "--parallel", "2", "--threads", "1", "--quiet"]
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        let runs = ["a-s1", "a-s2"].map { out.appendingPathComponent($0) }
        while runs.contains(where: { metrics($0).count < 2 }) && p.isRunning && Date() < deadline { usleep(5_000) }
        XCTAssertTrue(p.isRunning, "the comparison ended before it could be stopped")
        kill(p.processIdentifier, SIGINT)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130, stderr)
        for run in runs {
            let steps = metrics(run).count
            XCTAssertLessThan(steps, 500)
            XCTAssertTrue(stderr.contains("[\(run.lastPathComponent)] stopped by SIGINT after step \(steps)"), stderr)
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/step-\(steps)/manifest.json").path))
        }
    }
}

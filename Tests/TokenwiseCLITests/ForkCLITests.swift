import Foundation
import XCTest

/// `tokenwise train --init-from RUN/checkpoints/step-N`: a new run from a checkpoint's weights.
final class ForkCLITests: XCTestCase {
    func testInitFromStartsANewRunAndIsRecorded() throws {
        let root = try temporary()
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        let sets = ["train.steps=2", "output.checkpoint_every=2", "output.save_model=false", "output.report=false", "eval.before=false"].flatMap { ["--set", $0] }
        let first = try tokenwise(["train", "--preset", "tiny", "--out", a.path, "--quiet", "--threads", "1"] + sets)
        XCTAssertEqual(first.status, 0, first.stderr)
        // A relative path is recorded as an absolute one.
        let relative = "../a/checkpoints/step-2"
        let p = Process()
        p.executableURL = binary
        p.currentDirectoryURL = root.appendingPathComponent("a")
        p.arguments = ["train", "--preset", "tiny", "--out", b.path, "--init-from", relative, "--threads", "1", "--set", "optim.lr=0.002"] + sets
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, text)
        let step2 = a.appendingPathComponent("checkpoints/step-2").standardizedFileURL.path
        XCTAssertTrue(text.contains("starting from the weights of \(step2) (step 2); the optimizer state starts fresh"), text)
        let config = try String(contentsOf: b.appendingPathComponent("config.yaml"), encoding: .utf8)
        XCTAssertTrue(config.contains("init_from: \(step2)"), config)
        // --print-config with --resume prints the run's config and trains nothing.
        let printed = try tokenwise(["train", "--resume", b.path, "--print-config"])
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertTrue(printed.stdout.contains("init_from: \(step2)") && printed.stdout.contains("lr: 0.002"), printed.stdout)
        XCTAssertEqual(try String(contentsOf: b.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").count, 2)
        // diff-config: the fork's changes against the closest preset (tiny), one key per line.
        let diff = try tokenwise(["diff-config", b.path])
        XCTAssertEqual(diff.status, 0, diff.stderr)
        let lines = diff.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "\(b.path)/config.yaml against preset tiny: 6 key(s) differ", diff.stdout)
        XCTAssertEqual(Array(lines.dropFirst()), ["  eval.before: true → false", "  model.init_from: (unset) → \(step2)", "  optim.lr: 0.001 → 0.002",
                                                  "  output.report: true → false", "  output.save_model: true → false", "  train.steps: 3 → 2"])
        XCTAssertTrue(try tokenwise(["diff-config", root.path]).stderr.contains("\(root.path)/config.yaml: cannot read (is \(root.path) a run folder?)"))
        XCTAssertTrue(try tokenwise(["diff-config", b.path, "--preset", "big"]).stderr.contains("--preset 'big' is not one of default, tiny"))
        // generate --adapter applies a checkpoint's adapter.
        let generated = try tokenwise(["generate", "--model", "tiny-random", "--adapter", step2, "--prompt", "hi", "--max-new-tokens", "3", "--temperature", "0", "--threads", "1"])
        XCTAssertEqual(generated.status, 0, generated.stderr)
        let wrong = try tokenwise(["generate", "--model", "tiny-random", "--adapter", root.path, "--prompt", "hi", "--max-new-tokens", "3"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains(root.path), wrong.stderr)
        // convert --adapter merges it: the written model scores a text as the base with the adapter does.
        let merged = root.appendingPathComponent("merged")
        let converted = try tokenwise(["convert", "--model", "tiny-random", "--adapter", step2, "--out", merged.path])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        func logprobs(_ args: [String]) throws -> [Double] {
            let r = try tokenwise(["logprobs", "--text", "the cat sat on the mat", "--threads", "1"] + args)
            XCTAssertEqual(r.status, 0, r.stderr)
            return try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["logprobs"] as? [Double])
        }
        let adapted = try logprobs(["--model", "tiny-random", "--adapter", step2]), base = try logprobs(["--model", "tiny-random"])
        let fromMerged = try logprobs(["--model", merged.path])
        XCTAssertEqual(adapted.count, fromMerged.count)
        XCTAssertLessThan(zip(adapted, fromMerged).map { abs($0 - $1) }.max() ?? 1, 1e-4)
        XCTAssertGreaterThan(zip(adapted, base).map { abs($0 - $1) }.max() ?? 0, 1e-4, "the adapter changes the scores")
        let both = try tokenwise(["train", "--resume", b.path, "--init-from", step2])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.stderr.contains("--resume continues a run with its own config.yaml; drop --config, --set, --out and --init-from (--init-from starts a new run)"), both.stderr)
    }
}

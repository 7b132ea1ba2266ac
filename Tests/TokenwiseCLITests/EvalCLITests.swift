import Foundation
import XCTest

/// `tokenwise eval --all`: every line of a JSONL file, with no held-out split.
final class EvalCLITests: XCTestCase {
    /// More than one batch of prompts: a progress line with the time left after each, on stderr,
    /// so that --json output is still one object.
    func testEvalReportsProgressOnStandardError() throws {
        let r = try tokenwise(["eval", "--model", "tiny-random", "--prompts", "40", "--samples", "2", "--max-new-tokens", "2", "--json", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("eval: ") }
        XCTAssertEqual(lines.map { $0.split(separator: " ")[1] }, ["32/40", "40/40"], r.stderr)
        XCTAssertTrue(lines.allSatisfy { $0.contains(" s, ETA ") }, r.stderr)
    }

    func testAllEvaluatesEveryLineOfAFile() throws {
        let root = try temporary()
        let file = root.appendingPathComponent("mine.jsonl")
        try Data((1...5).map { "{\"prompt\": \"What is \($0) + 1?\", \"answer\": \"\($0 + 1)\"}" }.joined(separator: "\n").utf8).write(to: file)
        let generations = root.appendingPathComponent("generations.jsonl")
        let r = try tokenwise(["eval", "--model", "tiny-random", "--task", file.path, "--all", "--samples", "2", "--temperature", "1",
                               "--max-new-tokens", "2", "--json", "--threads", "1", "--generations", generations.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(result["prompts"] as? Int, 5, r.stdout)
        // Every response, in file order, with its reward.
        let lines = try String(contentsOf: generations, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        XCTAssertEqual(lines.count, 10)
        XCTAssertEqual(lines.compactMap { $0["answer"] as? String }, ["2", "2", "3", "3", "4", "4", "5", "5", "6", "6"])
        XCTAssertEqual(lines.compactMap { $0["sample"] as? Int }, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
        XCTAssertTrue(lines.allSatisfy { $0["reward"] is Double && $0["response"] is String && $0["finish_reason"] is String })
        let again = try tokenwise(["eval", "--model", "tiny-random", "--task", file.path, "--all", "--generations", generations.path])
        XCTAssertTrue(again.stderr.contains("--generations \(generations.path) exists already (it is never overwritten)"), again.stderr)
        XCTAssertEqual(try String(contentsOf: generations, encoding: .utf8).split(separator: "\n").count, 10)
        for (args, error) in [(["--task", file.path, "--all", "--prompts", "2"], "--all evaluates the whole file: drop --prompts"),
                              (["--task", "arithmetic", "--all"], "--all evaluates a JSONL file; 'arithmetic' is a procedural task (use --prompts)")] {
            let bad = try tokenwise(["eval", "--model", "tiny-random"] + args)
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.stderr.contains(error), bad.stderr)
        }
    }
}

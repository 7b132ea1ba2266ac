import Foundation
import XCTest

/// `tokenwise eval --all`: every line of a JSONL file, with no held-out split.
final class EvalCLITests: XCTestCase {
    func testAllEvaluatesEveryLineOfAFile() throws {
        let root = try temporary()
        let file = root.appendingPathComponent("mine.jsonl")
        try Data((1...5).map { "{\"prompt\": \"What is \($0) + 1?\", \"answer\": \"\($0 + 1)\"}" }.joined(separator: "\n").utf8).write(to: file)
        let r = try tokenwise(["eval", "--model", "tiny-random", "--task", file.path, "--all", "--samples", "1", "--temperature", "0",
                               "--max-new-tokens", "2", "--json", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(result["prompts"] as? Int, 5, r.stdout)
        for (args, error) in [(["--task", file.path, "--all", "--prompts", "2"], "--all evaluates the whole file: drop --prompts"),
                              (["--task", "arithmetic", "--all"], "--all evaluates a JSONL file; 'arithmetic' is a procedural task (use --prompts)")] {
            let bad = try tokenwise(["eval", "--model", "tiny-random"] + args)
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.stderr.contains(error), bad.stderr)
        }
    }
}

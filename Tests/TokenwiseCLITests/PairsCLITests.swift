import Foundation
import XCTest

/// `tokenwise pairs`: the errors of bad flags and of a model that never answers right, and that
/// nothing is written when it fails.
final class PairsCLITests: XCTestCase {
    func testBadFlagsAndNoPairsLeaveNothing() throws {
        let dir = try temporary(), out = dir.appendingPathComponent("pairs.jsonl").path
        for (flags, message) in [
            (["--select", "best"], "--select must be crew or random, got 'best'"),
            (["--gap", "wide"], "--gap must be signed or absolute, got 'wide'"),
            (["--extractor", "last"], "--extractor must be last_number, boxed or answer_tag, got 'last'"),
            (["--samples", "1"], "--samples must be 2…4096 (a pair needs two responses), got 1"),
            (["--top-k", "0"], "--top-k must be at least 1, got 0"),
            (["--temperature", "0"], "--temperature must be positive (pairs need different responses), got 0.0"),
        ] {
            let r = try tokenwise(["pairs", "--model", "tiny-random", "--out", out] + flags)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(message), "\(flags): \(r.stderr)")
        }
        // The tiny model never adds up: no prompt has a right response, so there is no pair.
        let none = try tokenwise(["pairs", "--model", "tiny-random", "--prompts", "2", "--samples", "3", "--out", out])
        XCTAssertEqual(none.status, 1, none.stderr)
        XCTAssertTrue(none.stderr.contains("pairs: no prompt had both a right and a wrong response among its 3 samples, so there is no pair to write (nothing written)"), none.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".partial"))
        // An existing file is never overwritten.
        try Data("keep\n".utf8).write(to: URL(fileURLWithPath: out))
        let exists = try tokenwise(["pairs", "--model", "tiny-random", "--out", out])
        XCTAssertTrue(exists.stderr.contains("--out \(out) exists already (it is never overwritten)"), exists.stderr)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "keep\n")
    }
}

/// `tokenwise critical-tokens`: cDPO's weights written into a pair file that weighted DPO then trains on.
final class CriticalTokensCLITests: XCTestCase {
    func testWeightsAPairFileThatWeightedDPOTrainsOn() throws {
        let dir = try temporary(), pairs = dir.appendingPathComponent("pairs.jsonl"), out = dir.appendingPathComponent("weighted.jsonl").path
        let lines = (0..<4).map { #"{"prompt": "What is \#($0) + 1?", "chosen": "\#($0 + 1)", "rejected": "\#($0 + 2), surely"}"# }
        try Data(lines.joined(separator: "\n").utf8).write(to: pairs)
        let r = try tokenwise(["critical-tokens", "--pairs", pairs.path, "--positive", "tiny-random", "--negative", "tiny-random", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("tokenwise critical-tokens — 4 pairs"), r.stdout)
        let written = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        XCTAssertEqual(written.count, 4)
        for (i, w) in written.enumerated() {
            XCTAssertEqual(w["chosen"] as? String, "\(i + 1)")
            XCTAssertEqual(w["chosen_weights"] as? [Double], [Double](repeating: 1, count: "\(i + 1)".utf8.count))   // byte-level tokens
            let rejected = try XCTUnwrap(w["rejected_weights"] as? [Double])
            XCTAssertEqual(rejected.count, "\(i + 2), surely".utf8.count)
            XCTAssertTrue(rejected.allSatisfy { $0 > 0 && $0 < 1 }, "\(rejected)")
        }
        // Two steps of weighted DPO on it.
        let run = dir.appendingPathComponent("run").path
        let train = try tokenwise(["train", "--preset", "tiny", "--out", run, "--quiet"] + ["objective.name=weighted_dpo", "data.task=\(out)", "data.eval_size=1",
                                  "train.steps=2", "train.prompts_per_step=2", "output.save_model=false", "output.report=false"].flatMap { ["--set", $0] })
        XCTAssertEqual(train.status, 0, train.stderr)
        // Nothing is overwritten, and a pair file with weights already is refused.
        let again = try tokenwise(["critical-tokens", "--pairs", pairs.path, "--positive", "tiny-random", "--negative", "tiny-random", "--out", out])
        XCTAssertTrue(again.stderr.contains("\(out) exists already (it is never overwritten)"), again.stderr)
        let twice = try tokenwise(["critical-tokens", "--pairs", out, "--positive", "tiny-random", "--negative", "tiny-random", "--out", out + "2"])
        XCTAssertTrue(twice.stderr.contains("\(out):1: the pair has 'chosen_weights' and 'rejected_weights' already; they are never replaced"), twice.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "2"))
    }
}

/// `tokenwise chat`: each line a user turn, /reset forgets, and a first turn is what `generate`
/// replies to the same message.
final class ChatCLITests: XCTestCase {
    func testTurnsResetsAndCommands() throws {
        let flags = ["--model", "tiny-random", "--max-new-tokens", "5", "--temperature", "0", "--seed", "3"]
        let hi = try tokenwise(["generate", "--prompt", "hi"] + flags), hello = try tokenwise(["generate", "--prompt", "hello"] + flags)
        let chat = try tokenwise(["chat"] + flags, stdin: "hi\n/reset\nhello\n/bogus\n/exit\nnever read\n")
        XCTAssertEqual(chat.status, 0, chat.stderr)
        // Greedy, so each reply is generate's; after /reset the second turn starts a new dialogue.
        XCTAssertEqual(chat.stdout, hi.stdout + hello.stdout)
        XCTAssertTrue(chat.stderr.contains("(the dialogue is reset)"), chat.stderr)
        XCTAssertTrue(chat.stderr.contains("(unknown command /bogus; known: /reset, /system TEXT, /exit)"), chat.stderr)
        // The dialogue is kept: with 480-token replies in a 512-position context, the second turn no
        // longer fits beside the first and the oldest turns are dropped; a message too long alone is refused.
        let kept = try tokenwise(["chat", "--model", "tiny-random", "--max-new-tokens", "480", "--temperature", "0"],
                                 stdin: "hi\nhello\n" + String(repeating: "x", count: 60) + "\n")
        XCTAssertEqual(kept.status, 0, kept.stderr)
        XCTAssertTrue(kept.stderr.contains("(the oldest turns no longer fit the model's context and were dropped)"), kept.stderr)
        XCTAssertTrue(kept.stderr.contains("(that message alone is too long for the model's context of 512 positions)"), kept.stderr)
        let bad = try tokenwise(["chat", "--model", "tiny-random", "--max-new-tokens", "512"], stdin: "")
        XCTAssertTrue(bad.stderr.contains("--max-new-tokens (512) must be below the model's context (512 positions)"), bad.stderr)
    }
}

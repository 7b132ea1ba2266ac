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

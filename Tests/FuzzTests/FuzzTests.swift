import Foundation
import XCTest
@testable import Fuzz
import Models

/// The harness itself: cases replay exactly, defects are told apart from proper refusals, and a
/// short campaign over every parser finds nothing (scripts/fuzz.sh runs the long ones).
final class FuzzTests: XCTestCase {
    func work() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-fuzz-test-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func testCasesReplayAndDiffer() throws {
        let target = FuzzTarget(name: "t", seeds: [["a.json": Data(#"{"k": [1, 2.5, "x"]}"#.utf8)]], dictionary: ["\"k\""]) { _ in }
        let c = try Campaign(target: target, seed: 9, work: try work())
        XCTAssertEqual(c.input(case: 0).files["a.json"], target.seeds[0]["a.json"], "case 0 is the seed")
        let inputs = (1..<50).map { c.input(case: $0).files["a.json"]! }
        XCTAssertEqual(inputs, (1..<50).map { c.input(case: $0).files["a.json"]! })
        XCTAssertGreaterThan(Set(inputs).count, 40)
    }

    func testForeignAndUnnamedErrorsAreFindings() throws {
        let dir = try work()
        var thrown: Error = ModelError("x")
        let target = FuzzTarget(name: "t", seeds: [["f.bin": Data([1, 2, 3, 4])]], dictionary: [], hot: { _, d in d.count }) { _ in throw thrown }
        let c = try Campaign(target: target, seed: 1, work: dir)
        for (error, finding) in [(ModelError("\(c.scratch.path)/f.bin: bad"), false), (ModelError("bad without a file"), true),
                                 (CocoaError(.fileReadCorruptFile) as Error, true), (DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "d")), true)] {
            thrown = error
            var counts = FuzzCounts()
            try c.run(0..<3, counts: &counts)
            XCTAssertEqual(counts.findings.count, finding ? 3 : 0, "\(error)")
            XCTAssertEqual(counts.rejected, finding ? 0 : 3)
        }
        // A finding keeps its input beside the campaign.
        var counts = FuzzCounts()
        try c.run(5..<6, counts: &counts)
        XCTAssertEqual(try Data(contentsOf: counts.findings[0].input), c.input(case: 5).files["f.bin"])
    }

    func testShortCampaignOverEveryParserFindsNothing() throws {
        let dir = try work()
        Campaign.installWatch(caseTimeout: 120)
        let targets = try FuzzTarget.all()
        XCTAssertEqual(targets.map(\.name), ["gguf", "hf_dir", "tokenizer_json", "yaml", "jsonl", "credit_json", "objective_json"])
        for target in targets {
            let c = try Campaign(target: target, seed: 2026, work: dir)
            var counts = FuzzCounts()
            try c.run(0..<60, counts: &counts)
            XCTAssertEqual(counts.findings.map(\.description), [], target.name)
            XCTAssertGreaterThan(counts.accepted, 0, "\(target.name): the seeds must parse")
            XCTAssertGreaterThan(counts.rejected, 0, "\(target.name): the mutations must reach the checks")
        }
    }
}

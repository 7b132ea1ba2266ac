import Foundation
import XCTest
@testable import Models
@testable import Objectives
import Torch
@testable import Training

/// SparsePO's activation masks combined from given maps as the authors' MaPO trainer does
/// (huawei-noah/HEBO @04f4ece, SparsePO/src/trainers/mapo_trainer.py, activation_mapping
/// "zn_rescale"): per hook, min-max over the response after z-normalising; mean within each group,
/// mean of the groups, times the response mask. Fixtures from scripts/reference/mapo_masks_official.py
/// (float64, without the official float16 casts of std/min/max; the fixture records how far those
/// casts move a mask). Maps past a response's length hold garbage the masks must not read.
final class MaPOMaskTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/mapo_masks_official.json")

    struct Case: Decodable {
        let lengths: [Int]
        let groups: [String]
        let maps: [String: [[[Double]]]]
        let masks: [[Double]]?
        let official_nan_rows: [Int]?
        let official_masks_finite_rows: [String: [Double]]?
        let tokenwise_masks: [[Double]]?
    }

    struct File: Decodable { let cases: [Case]; let flat_cases: [Case] }

    func load() throws -> File { try JSONDecoder().decode(File.self, from: Data(contentsOf: Self.fixture)) }

    /// The masks `ActivationMasks.combine` gives for a case, row by row over the padded width.
    func combined(_ c: Case) throws -> [[Double]] {
        try withTorchErrors {
            var maps: [CausalLM.ActivationProbe.Group: [Tensor]] = [:]
            for name in c.groups {
                let group = try XCTUnwrap(CausalLM.ActivationProbe.Group(rawValue: name), "group \(name)")
                maps[group] = try XCTUnwrap(c.maps[name]).map { Tensor(rows: $0) }
            }
            let valid = padded(c.lengths.map { [Double](repeating: 1, count: $0) }, dtype: .float64).values
            let out = ActivationMasks.combine(maps, valid: valid)
            let flat = try out.doubles(), width = out.size(1)
            return c.lengths.indices.map { Array(flat[($0 * width)..<(($0 + 1) * width)]) }
        }
    }

    func assertRow(_ got: [Double], _ want: [Double], _ tol: Double, _ at: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, "\(at): width", file: file, line: line)
        for (k, (g, w)) in zip(got, want).enumerated() where !(Swift.abs(g - w) <= tol) {
            return XCTFail("\(at)[\(k)]: \(g) vs \(w)", file: file, line: line)
        }
    }

    func testMasksMatchTheOfficialCombination() throws {
        let file = try load()
        XCTAssertEqual(file.cases.count, 16)
        for (n, c) in file.cases.enumerated() {
            let got = try combined(c), want = try XCTUnwrap(c.masks)
            XCTAssertEqual(got.count, want.count)
            for (i, (g, w)) in zip(got, want).enumerated() {
                assertRow(g, w, 1e-9, "case \(n) row \(i)")
                XCTAssertTrue(g[c.lengths[i]...].allSatisfy { $0 == 0 }, "case \(n) row \(i): padding")
            }
        }
    }

    /// A response of one token or a map constant over a response: the official code's row is NaN
    /// (0/0 after z-normalising; unbiased std of one value); Tokenwise gives that map 1 on the
    /// response, and the other rows still match the official masks.
    func testFlatMapsTakeOneWhereTheOfficialCodeIsNaN() throws {
        let file = try load()
        XCTAssertEqual(file.flat_cases.count, 5)
        for (n, c) in file.flat_cases.enumerated() {
            let got = try combined(c), want = try XCTUnwrap(c.tokenwise_masks)
            XCTAssertFalse(try XCTUnwrap(c.official_nan_rows).isEmpty)
            for (i, (g, w)) in zip(got, want).enumerated() {
                assertRow(g, w, 1e-9, "flat case \(n) row \(i)")
                XCTAssertTrue(g.allSatisfy(\.isFinite), "flat case \(n) row \(i)")
            }
            for (key, official) in c.official_masks_finite_rows ?? [:] {
                let i = try XCTUnwrap(Int(key))
                assertRow(got[i], official, 1e-9, "flat case \(n) finite official row \(i)")
            }
        }
    }
}

import Foundation
import XCTest
@testable import Models
@testable import Torch

final class GGUFTests: XCTestCase {
    /// Every supported block format against the `gguf` package's numpy dequantisers
    /// (scripts/fixtures/make_quant_fixtures.py).
    func testDequantisationMatchesTheReference() throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("quants.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: [String: Any]]
        XCTAssertEqual(Set(json.keys), ["Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K", "F16", "BF16"])
        for (name, entry) in json {
            let bytes = (entry["bytes"] as! [Int]).map(UInt8.init)
            let expected = (entry["values"] as! [Double]).map(Float.init)
            let got = try bytes.withUnsafeBytes {
                try GGUFFile.dequantize(type: entry["type"] as! Int, bytes: $0.baseAddress!, count: expected.count)
            }
            XCTAssertEqual(got.count, expected.count, name)
            for (k, (g, e)) in zip(got, expected).enumerated() where Swift.abs(g - e) > 1e-6 * Swift.max(1, Swift.abs(e)) {
                XCTFail("\(name) element \(k): \(g) vs \(e)")
                break
            }
        }
        XCTAssertThrowsError(try [UInt8](repeating: 0, count: 64).withUnsafeBytes { try GGUFFile.dequantize(type: 8, bytes: $0.baseAddress!, count: 33) }) { e in
            XCTAssertEqual("\(e)", "element count 33 is not a multiple of the block size 32")
        }
    }

    func testWriterReaderRoundTripAndMetadata() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var w = GGUFWriter()
        w.metadata = [("general.architecture", .string("llama")), ("x.count", .uint(7)), ("x.neg", .int(-3)),
                      ("x.f", .float(0.5)), ("x.flag", .bool(true)), ("x.list", .array([.string("a"), .string("b")]))]
        let a = try withTorchErrors { Tensor((0..<6).map(Float.init), shape: [2, 3]) }
        let b = try withTorchErrors { Tensor([1.5, -2] as [Float]) }
        w.tensors = [("a", a), ("b", b)]
        let url = dir.appendingPathComponent("t.gguf")
        try w.write(to: url)
        let f = try GGUFFile(url: url)
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.string("general.architecture"), "llama")
        XCTAssertEqual(f.int("x.count"), 7)
        XCTAssertEqual(f.int("x.neg"), -3)
        XCTAssertEqual(f.double("x.f"), 0.5)
        XCTAssertEqual(f.metadata["x.flag"], .bool(true))
        XCTAssertEqual(f.metadata["x.list"]?.array?.compactMap(\.string), ["a", "b"])
        XCTAssertEqual(f.tensorNames, ["a", "b"])
        XCTAssertEqual(f.tensors["a"]?.shape, [2, 3])
        XCTAssertEqual(try f.tensor("a").floats(), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try f.tensor("b").floats(), [1.5, -2])
        XCTAssertThrowsError(try f.tensor("c")) { XCTAssertEqual("\($0)", "\(url.path): no tensor named 'c'") }
    }

    /// The error of opening `bytes` as a GGUF file, with its path shown as `name`.
    func opening(_ bytes: [UInt8], _ name: String, in dir: URL) -> String {
        let url = dir.appendingPathComponent(name)
        try! Data(bytes).write(to: url)
        do { _ = try GGUFFile(url: url); return "no error" } catch { return "\(error)".replacingOccurrences(of: url.path, with: name) }
    }

    func testBadFilesNameTheFileAndField() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func open(_ bytes: [UInt8], _ name: String) -> String { opening(bytes, name, in: dir) }
        XCTAssertEqual(open(Array("GGML".utf8) + [3, 0, 0, 0], "magic"), "magic: bad magic 'GGML' (expected 'GGUF'; not a GGUF file)")
        XCTAssertEqual(open(Array("GGUF".utf8) + [9, 0, 0, 0] + [UInt8](repeating: 0, count: 16), "version"), "version: unsupported GGUF version 9 (expected 2 or 3)")
        XCTAssertEqual(open(Array("GGUF".utf8) + [3, 0, 0], "short"), "short: truncated while reading header (needs 4 bytes at offset 4, file has 7)")

        // A valid file, then damaged copies.
        var w = GGUFWriter()
        w.metadata = [("k", .string("v"))]
        w.tensors = [("t", try withTorchErrors { Tensor([Float](repeating: 1, count: 64), shape: [8, 8]) })]
        let good = dir.appendingPathComponent("good.gguf")
        try w.write(to: good)
        let bytes = [UInt8](try Data(contentsOf: good))
        XCTAssertEqual(open(Array(bytes.prefix(bytes.count - 100)), "cut"), "cut: tensor 't' data (256 bytes at 96) extends past the end of the file (252 bytes)")
        XCTAssertTrue(open(Array(bytes.prefix(40)), "header").hasPrefix("header: truncated while reading metadata 'k'"))
        // Change the tensor's type field (F32 → 13, Q5_K): located after name, dims.
        var typed = bytes
        let typeOffset = 4 + 4 + 8 + 8 + (8 + 1 + 4 + 8 + 1) + (8 + 1) + 4 + 16
        XCTAssertEqual(typed[typeOffset], 0)
        typed[typeOffset] = 13
        XCTAssertEqual(open(typed, "type"), "type: tensor 't' has unsupported type 13 (Q5_K); supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K")
        typed[typeOffset..<(typeOffset + 4)] = [0xFF, 0xFF, 0xFF, 0xFF]   // past Int32: trapped on the conversion
        XCTAssertEqual(open(typed, "type32"), "type32: tensor 't' has unsupported type 4294967295; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K")
    }

    /// Structures found by the fuzz suite that trapped or overflowed the stack before any check.
    func testHostileStructuresAreErrors() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func open(_ bytes: [UInt8], _ name: String) -> String { opening(bytes, name, in: dir) }
        func u32(_ x: UInt32) -> [UInt8] { withUnsafeBytes(of: x.littleEndian) { Array($0) } }
        func u64(_ x: UInt64) -> [UInt8] { withUnsafeBytes(of: x.littleEndian) { Array($0) } }
        let head = Array("GGUF".utf8) + u32(3)
        // Arrays nested 100,000 deep overflowed the recursive reader's stack.
        let deep = head + u64(0) + u64(1) + u64(1) + Array("d".utf8) + u32(9) + Array(repeating: u32(9) + u64(1), count: 100_000).flatMap { $0 }
        XCTAssertEqual(open(deep, "deep"), "deep: metadata 'd' nests arrays more than 8 deep")
        // An array length the file cannot hold reserved that many items first.
        let long = head + u64(0) + u64(1) + u64(1) + Array("a".utf8) + u32(9) + u32(8) + u64(80) + [UInt8](repeating: 0, count: 64)
        XCTAssertEqual(open(long, "long"), "long: metadata 'a': array length 80 is larger than the rest of the file")
        // One tensor info: name "t", then dims, type and offset as given.
        func tensor(_ dims: [UInt64], offset: UInt64, alignment: UInt64? = nil) -> [UInt8] {
            let meta = alignment.map { u64(17) + Array("general.alignment".utf8) + u32(10) + u64($0) } ?? []
            return head + u64(1) + u64(alignment == nil ? 0 : 1) + meta + u64(1) + Array("t".utf8) + u32(UInt32(dims.count)) + dims.flatMap(u64)
                + u32(0) + u64(offset) + [UInt8](repeating: 0, count: 256)
        }
        XCTAssertEqual(open(tensor([4], offset: 1 << 63), "offset"), "offset: tensor 't' has offset 9223372036854775808, past any file")
        let near = open(tensor([4], offset: UInt64(Int.max) - 31), "near")
        XCTAssertTrue(near.hasPrefix("near: tensor 't' data (16 bytes at offset 9223372036854775776) extends past the end of the file"), near)
        XCTAssertEqual(open(tensor([200, 200, 200, 200], offset: 0), "dims"), "dims: tensor 't' has shape [200, 200, 200, 200], more elements than the file could hold")
        XCTAssertEqual(open(tensor([4], offset: 0, alignment: UInt64(Int.max)), "align"), "align: general.alignment must be 1…65536, got 9223372036854775807")
    }
}

import Foundation
import XCTest
@testable import Torch

final class SafetensorsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func testRoundTripEveryDTypeAndMetadata() throws {
        let url = dir.appendingPathComponent("m.safetensors")
        try withTorchErrors {
            let base = Tensor([1, -2, 3.5, 0, 7, -0.25] as [Float], shape: [2, 3])
            var tensors: [String: Tensor] = [:]
            for dt in DType.allCases { tensors["t.\(dt)"] = base.to(dtype: dt) }
            tensors["empty"] = Tensor.zeros([0, 4])
            tensors["scalar"] = Tensor(scalar: 4)
            try Safetensors.write(tensors, metadata: ["format": "pt", "step": "3"], to: url)
            let f = try Safetensors.File(url: url)
            XCTAssertEqual(f.metadata, ["format": "pt", "step": "3"])
            XCTAssertEqual(Set(f.names), Set(tensors.keys))
            for (name, t) in tensors {
                let back = try f.tensor(name)
                XCTAssertEqual(back.dtype, t.dtype, name)
                XCTAssertEqual(back.shape, t.shape, name)
                XCTAssertEqual(try back.bytes(), try t.bytes(), name)
            }
            XCTAssertEqual(f.entries["t.bfloat16"]?.dtype, .bfloat16)
        }
        // The layout is the published one: u64 header length, JSON, 8-byte aligned data.
        let raw = try Data(contentsOf: url)
        let n = raw.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        XCTAssertEqual(n % 8, 0)
        let header = try JSONSerialization.jsonObject(with: raw.subdata(in: 8..<(8 + n))) as! [String: Any]
        let f32 = header["t.float32"] as! [String: Any]
        XCTAssertEqual(f32["dtype"] as? String, "F32")
        XCTAssertEqual(f32["shape"] as? [Int], [2, 3])
        // Overwriting replaces the file atomically and leaves no temporary behind.
        try withTorchErrors { try Safetensors.write(["x": Tensor.ones([1])], to: url) }
        XCTAssertEqual(try Safetensors.File(url: url).names, ["x"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["m.safetensors"])
    }

    func write(_ name: String, header: String, payload: Int = 0, rawLength: UInt64? = nil) throws -> URL {
        var data = Data()
        var len = (rawLength ?? UInt64(header.utf8.count)).littleEndian
        data.append(Data(bytes: &len, count: 8))
        data.append(Data(header.utf8))
        data.append(Data(count: payload))
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    func assertOpenFails(_ url: URL, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Safetensors.File(url: url), file: file, line: line) { e in
            XCTAssertEqual("\(e)", "\(url.path): \(expected)", file: file, line: line)
        }
    }

    func testBadFilesGiveErrorsNamingTheFileAndTensor() throws {
        let short = dir.appendingPathComponent("short")
        try Data([1, 2]).write(to: short)
        assertOpenFails(short, "not a safetensors file (shorter than 8 bytes)")
        assertOpenFails(try write("long", header: "{}", rawLength: 999), "header length 999 exceeds the file size 10")
        assertOpenFails(try write("json", header: "[1]"), "header is not a JSON object")
        assertOpenFails(try write("dtype", header: #"{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, payload: 8),
                        "tensor 'w' has unsupported dtype 'C64'")
        assertOpenFails(try write("offsets", header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, payload: 8),
                        "tensor 'w' has offsets [0, 16] outside the 8-byte payload")
        assertOpenFails(try write("size", header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, payload: 8),
                        "tensor 'w' of shape [3] F32 needs 12 bytes, has 8")
        assertOpenFails(try write("fields", header: #"{"w":{"dtype":"F32"}}"#),
                        "tensor 'w' needs dtype, shape and two data_offsets")
        assertOpenFails(try write("meta", header: #"{"__metadata__":{"a":1}}"#), "__metadata__ must map strings to strings")
        let missing = dir.appendingPathComponent("nope.safetensors")
        XCTAssertThrowsError(try Safetensors.File(url: missing)) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(missing.path): cannot read"), "\(e)")
        }
        let ok = try write("ok", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, payload: 8)
        let f = try Safetensors.File(url: ok)
        XCTAssertThrowsError(try f.tensor("v")) { e in XCTAssertEqual("\(e)", "\(ok.path): no tensor named 'v'") }
        XCTAssertEqual(try f.tensor("w").floats(), [0, 0])
    }
}

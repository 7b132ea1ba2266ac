import Foundation
import Torch

/// Writes a GGUF v3 file with float32 tensors — enough to export a model for llama.cpp-style tools
/// and for tests to build tiny models in that format.
public struct GGUFWriter {
    public var metadata: [(String, GGUFFile.Value)] = []
    public var tensors: [(String, Tensor)] = []
    public var alignment = 32

    public init() {}

    static func typeCode(_ v: GGUFFile.Value) -> UInt32 {
        switch v {
        case .uint: 10
        case .int: 11
        case .float: 12
        case .bool: 7
        case .string: 8
        case .array: 9
        }
    }

    static func put(_ v: GGUFFile.Value, into d: inout Data) {
        func u32(_ x: UInt32) { var y = x.littleEndian; d.append(Data(bytes: &y, count: 4)) }
        func u64(_ x: UInt64) { var y = x.littleEndian; d.append(Data(bytes: &y, count: 8)) }
        switch v {
        case .uint(let x): u64(x)
        case .int(let x): u64(UInt64(bitPattern: x))
        case .float(let x): u64(x.bitPattern)
        case .bool(let b): d.append(b ? 1 : 0)
        case .string(let s): u64(UInt64(s.utf8.count)); d.append(Data(s.utf8))
        case .array(let items):
            u32(items.first.map(typeCode) ?? 10)
            u64(UInt64(items.count))
            for i in items { put(i, into: &d) }
        }
    }

    public func write(to url: URL) throws {
        var d = Data("GGUF".utf8)
        func u32(_ x: UInt32) { var y = x.littleEndian; d.append(Data(bytes: &y, count: 4)) }
        func u64(_ x: UInt64) { var y = x.littleEndian; d.append(Data(bytes: &y, count: 8)) }
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (k, v) in metadata {
            GGUFWriter.put(.string(k), into: &d)
            u32(GGUFWriter.typeCode(v))
            GGUFWriter.put(v, into: &d)
        }
        var offset = 0
        var blobs = [[UInt8]]()
        for (name, t) in tensors {
            GGUFWriter.put(.string(name), into: &d)
            u32(UInt32(t.rank))
            for s in t.shape.reversed() { u64(UInt64(s)) }
            u32(0)  // F32
            u64(UInt64(offset))
            let bytes = try t.bytes(as: .float32)
            blobs.append(bytes)
            offset += (bytes.count + alignment - 1) / alignment * alignment
        }
        while d.count % alignment != 0 { d.append(0) }
        for b in blobs {
            d.append(contentsOf: b)
            while d.count % alignment != 0 { d.append(0) }
        }
        try d.write(to: url, options: .atomic)
    }
}

import CTorch
import Foundation
import Torch

/// A GGUF v2/v3 file (llama.cpp's format): metadata key/values, tensor infos, aligned tensor data.
/// The file is memory-mapped; `tensor(_:)` dequantises one tensor to float32 on demand.
public final class GGUFFile {
    public enum Value: Equatable, Sendable {
        case uint(UInt64), int(Int64), float(Double), bool(Bool), string(String), array([Value])

        public var string: String? { if case .string(let s) = self { s } else { nil } }
        public var int: Int? {
            switch self {
            case .uint(let v): Int(exactly: v)
            case .int(let v): Int(exactly: v)
            default: nil
            }
        }
        public var double: Double? {
            switch self {
            case .float(let v): v
            case .uint(let v): Double(v)
            case .int(let v): Double(v)
            default: nil
            }
        }
        public var array: [Value]? { if case .array(let a) = self { a } else { nil } }
    }

    public struct TensorInfo: Sendable {
        public let name: String
        /// PyTorch order (GGUF stores the fastest dimension first).
        public let shape: [Int]
        public let ggmlType: Int
        let offset: Int
        let byteCount: Int
    }

    /// ggml type names for messages.
    static let typeNames: [Int: String] = [0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0",
                                           9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K",
                                           15: "Q8_K", 30: "BF16"]

    public let url: URL
    public let version: Int
    public let metadata: [String: Value]
    public let tensors: [String: TensorInfo]
    /// Tensor names in file order.
    public let tensorNames: [String]
    private let data: Data

    public init(url: URL) throws {
        self.url = url
        let path = url.path
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw ModelError("\(path): cannot read: \(error.localizedDescription)")
        }
        var parsed: (Int, [String: Value], [TensorInfo])!
        try data.withUnsafeBytes { raw in parsed = try Self.parse(raw, path: path) }
        (version, metadata, _) = parsed
        var infos: [String: TensorInfo] = [:]
        for t in parsed.2 {
            guard infos[t.name] == nil else { throw ModelError("\(path): tensor '\(t.name)' appears twice") }
            infos[t.name] = t
        }
        tensors = infos
        tensorNames = parsed.2.map(\.name)
    }

    /// A bounds-checked little-endian reader over the mapped file.
    struct Cursor {
        let raw: UnsafeRawBufferPointer
        var pos = 0
        let path: String
        var context = "header"
        var depth = 0
        static let maxDepth = 8

        /// The fewest bytes a value of `type` takes (1 for an unknown type, which then fails).
        static func minimumSize(_ type: UInt32) -> Int {
            switch type {
            case 0, 1, 7: 1
            case 2, 3: 2
            case 4, 5, 6: 4
            case 8, 10, 11, 12: 8
            case 9: 12
            default: 1
            }
        }

        mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
            guard n >= 0, pos + n <= raw.count else {
                throw ModelError("\(path): truncated while reading \(context) (needs \(n) bytes at offset \(pos), file has \(raw.count))")
            }
            defer { pos += n }
            return UnsafeRawBufferPointer(rebasing: raw[pos..<(pos + n)])
        }
        mutating func u8() throws -> UInt8 { try take(1)[0] }
        mutating func u32() throws -> UInt32 { UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self)) }
        mutating func u64() throws -> UInt64 { UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self)) }
        mutating func count(_ what: String) throws -> Int {
            let v = try u64()
            guard v <= UInt64(raw.count) else { throw ModelError("\(path): \(context): \(what) \(v) is larger than the file") }
            return Int(v)
        }
        mutating func string() throws -> String {
            let n = try count("string length")
            return String(decoding: try take(n), as: UTF8.self)
        }

        mutating func value(type: UInt32) throws -> Value {
            switch type {
            case 0: return .uint(UInt64(try u8()))
            case 1: return .int(Int64(Int8(bitPattern: try u8())))
            case 2: return .uint(UInt64(UInt16(littleEndian: try take(2).loadUnaligned(as: UInt16.self))))
            case 3: return .int(Int64(Int16(littleEndian: try take(2).loadUnaligned(as: Int16.self))))
            case 4: return .uint(UInt64(try u32()))
            case 5: return .int(Int64(Int32(bitPattern: try u32())))
            case 6: return .float(Double(Float(bitPattern: try u32())))
            case 7: return .bool(try u8() != 0)
            case 8: return .string(try string())
            case 9:
                // Arrays of arrays are legal; a deep nest is a hostile file, not a model.
                guard depth < Self.maxDepth else { throw ModelError("\(path): \(context) nests arrays more than \(Self.maxDepth) deep") }
                let itemType = try u32()
                let n = try count("array length")
                // Every item takes at least its smallest encoding: the count cannot promise more than the file holds.
                guard n <= (raw.count - pos) / Self.minimumSize(itemType) else {
                    throw ModelError("\(path): \(context): array length \(n) is larger than the rest of the file")
                }
                var items = [Value]()
                items.reserveCapacity(n)
                depth += 1
                defer { depth -= 1 }
                for _ in 0..<n { items.append(try value(type: itemType)) }
                return .array(items)
            case 10: return .uint(try u64())
            case 11: return .int(Int64(bitPattern: try u64()))
            case 12: return .float(Double(bitPattern: try u64()))
            default: throw ModelError("\(path): \(context) has unknown value type \(type)")
            }
        }
    }

    static func parse(_ raw: UnsafeRawBufferPointer, path: String) throws -> (Int, [String: Value], [TensorInfo]) {
        var c = Cursor(raw: raw, path: path)
        let magic = try c.take(4)
        guard Array(magic) == Array("GGUF".utf8) else {
            let shown = String(decoding: magic.map { (32...126).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
            throw ModelError("\(path): bad magic '\(shown)' (expected 'GGUF'; not a GGUF file)")
        }
        let version = Int(try c.u32())
        guard version == 2 || version == 3 else { throw ModelError("\(path): unsupported GGUF version \(version) (expected 2 or 3)") }
        let tensorCount = try c.count("tensor count"), kvCount = try c.count("metadata count")
        var metadata: [String: Value] = [:]
        for k in 0..<kvCount {
            c.context = "metadata entry \(k)"
            let key = try c.string()
            c.context = "metadata '\(key)'"
            metadata[key] = try c.value(type: try c.u32())
        }
        var infos = [TensorInfo]()
        for k in 0..<tensorCount {
            c.context = "tensor info \(k)"
            let name = try c.string()
            c.context = "tensor info '\(name)'"
            let dims = Int(try c.u32())
            guard dims <= 8 else { throw ModelError("\(path): tensor '\(name)' has \(dims) dimensions") }
            var shape = [Int]()
            for _ in 0..<dims { shape.append(try c.count("dimension")) }
            let type = Int(try c.u32())
            let rawOffset = try c.u64()
            guard let offset = Int(exactly: rawOffset) else { throw ModelError("\(path): tensor '\(name)' has offset \(rawOffset), past any file") }
            guard let n = elementCount(shape), n <= raw.count * 8 else {
                throw ModelError("\(path): tensor '\(name)' has shape \(Array(shape.reversed())), more elements than the file could hold")
            }
            let bytes = type <= Int(Int32.max) ? tw_gguf_type_size(Int32(type), Int64(n)) : -1
            guard bytes >= 0 else {
                let tname = typeNames[type].map { " (\($0))" } ?? ""
                throw ModelError("\(path): tensor '\(name)' has unsupported type \(type)\(tname); supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K")
            }
            infos.append(TensorInfo(name: name, shape: shape.reversed(), ggmlType: type, offset: offset, byteCount: Int(bytes)))
        }
        let alignment = metadata["general.alignment"]?.int ?? 32
        guard (1...65536).contains(alignment) else { throw ModelError("\(path): general.alignment must be 1…65536, got \(alignment)") }
        let dataStart = (c.pos + alignment - 1) / alignment * alignment
        var resolved = [TensorInfo]()
        for t in infos {
            let (start, over) = dataStart.addingReportingOverflow(t.offset)
            guard t.offset % alignment == 0 else {
                throw ModelError("\(path): tensor '\(t.name)' offset \(t.offset) is not aligned to \(alignment)")
            }
            guard !over, start <= raw.count, t.byteCount <= raw.count - start else {
                let at = over ? "offset \(t.offset)" : "\(start)"
                throw ModelError("\(path): tensor '\(t.name)' data (\(t.byteCount) bytes at \(at)) extends past the end of the file (\(raw.count) bytes)")
            }
            resolved.append(TensorInfo(name: t.name, shape: t.shape, ggmlType: t.ggmlType, offset: start, byteCount: t.byteCount))
        }
        return (version, metadata, resolved)
    }

    /// The product of `shape`, or nil when it overflows.
    static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            let (m, over) = n.multipliedReportingOverflow(by: d)
            if over { return nil }
            n = m
        }
        return n
    }

    /// Dequantises `count` elements of ggml type `type` from `bytes`.
    static func dequantize(type: Int, bytes: UnsafeRawPointer, count n: Int) throws -> [Float] {
        var values = [Float](repeating: 0, count: n)
        var err: UnsafeMutablePointer<CChar>? = nil
        let rc = values.withUnsafeMutableBufferPointer { tw_gguf_dequantize(Int32(type), bytes, Int64(n), $0.baseAddress, &err) }
        if rc != 0 {
            let message = err.map { String(cString: $0) } ?? "dequantisation failed"
            err.map(tw_error_free)
            throw ModelError(message)
        }
        return values
    }

    /// The tensor dequantised to float32, in PyTorch shape.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = tensors[name] else { throw ModelError("\(url.path): no tensor named '\(name)'") }
        let values: [Float]
        do {
            values = try data.withUnsafeBytes { raw in
                try GGUFFile.dequantize(type: info.ggmlType, bytes: raw.baseAddress! + info.offset, count: info.shape.reduce(1, *))
            }
        } catch let e as ModelError {
            throw ModelError("\(url.path): tensor '\(name)': \(e.message)")
        }
        return try withTorchErrors { Tensor(values, shape: info.shape) }
    }

    public func string(_ key: String) -> String? { metadata[key]?.string }
    public func int(_ key: String) -> Int? { metadata[key]?.int }
    public func double(_ key: String) -> Double? { metadata[key]?.double }

    /// A required metadata value, or an error naming the file and key.
    func require<T>(_ key: String, _ get: (Value) -> T?) throws -> T {
        guard let v = metadata[key] else { throw ModelError("\(url.path): missing metadata '\(key)'") }
        guard let t = get(v) else { throw ModelError("\(url.path): metadata '\(key)' has the wrong type") }
        return t
    }
}

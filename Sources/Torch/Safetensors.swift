import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
/// `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}` padded
/// with spaces to 8 bytes, then the raw little-endian tensor bytes. Tokenwise writes its model
/// checkpoints and optimizer state in it.
public enum Safetensors {
    static func name(of dtype: DType) -> String {
        switch dtype {
        case .float32: "F32"
        case .float64: "F64"
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .int64: "I64"
        case .int32: "I32"
        case .int8: "I8"
        case .uint8: "U8"
        case .bool: "BOOL"
        }
    }

    static func dtype(named name: String) -> DType? {
        DType.allCases.first { Safetensors.name(of: $0) == name }
    }

    /// Writes `tensors` (sorted by name) to `url`, atomically: a temporary file in the same folder
    /// is renamed over the destination only once complete, so a crash never leaves half a file.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        let names = tensors.keys.sorted()
        var offset = 0
        for name in names {
            let t = tensors[name]!
            guard t.isValid else { throw TorchError("\(url.path): tensor '\(name)' is invalid (an earlier operation failed)") }
            let size = t.count * t.dtype.byteSize
            header[name] = ["dtype": Safetensors.name(of: t.dtype), "shape": t.shape, "data_offsets": [offset, offset + size]]
            offset += size
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }

        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw TorchError("\(url.path): cannot create \(tmp.path)")
        }
        do {
            let fh = try FileHandle(forWritingTo: tmp)
            defer { try? fh.close() }
            var length = UInt64(json.count).littleEndian
            try fh.write(contentsOf: Data(bytes: &length, count: 8))
            try fh.write(contentsOf: json)
            for name in names { try fh.write(contentsOf: try tensors[name]!.bytes()) }
            try fh.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw TorchError("\(url.path): write failed: \(FileErrors.reason(error))")
        }
        guard rename(tmp.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw TorchError("\(url.path): cannot move the written file into place: \(reason)")
        }
    }

    /// A safetensors file opened for reading. The file is memory-mapped; `tensor(_:)` copies one
    /// tensor out of the map, so a model loads without holding a second full copy in memory.
    public final class File {
        public struct Entry: Sendable {
            public let dtype: DType
            public let shape: [Int]
            let begin: Int
            let end: Int
        }

        public let url: URL
        public let metadata: [String: String]
        public let entries: [String: Entry]
        /// Tensor names in the order of their data in the file.
        public let names: [String]
        private let data: Data
        private let dataStart: Int

        public init(url: URL) throws {
            self.url = url
            let path = url.path
            do {
                data = try Data(contentsOf: url, options: .alwaysMapped)
            } catch {
                throw TorchError("\(path): cannot read: \(error.localizedDescription)")
            }
            guard data.count >= 8 else { throw TorchError("\(path): not a safetensors file (shorter than 8 bytes)") }
            let n = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            guard n <= UInt64(data.count - 8), n <= 100_000_000 else {
                throw TorchError("\(path): header length \(n) exceeds the file size \(data.count)")
            }
            dataStart = 8 + Int(n)
            let headerData = data.subdata(in: 8..<dataStart)
            guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
                throw TorchError("\(path): header is not a JSON object")
            }
            var meta: [String: String] = [:]
            var entries: [String: Entry] = [:]
            let payload = data.count - dataStart
            for (name, value) in header {
                if name == "__metadata__" {
                    guard let m = value as? [String: String] else {
                        throw TorchError("\(path): __metadata__ must map strings to strings")
                    }
                    meta = m
                    continue
                }
                guard let info = value as? [String: Any],
                      let dtypeName = info["dtype"] as? String,
                      let shape = info["shape"] as? [Int],
                      let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                    throw TorchError("\(path): tensor '\(name)' needs dtype, shape and two data_offsets")
                }
                guard let dtype = Safetensors.dtype(named: dtypeName) else {
                    throw TorchError("\(path): tensor '\(name)' has unsupported dtype '\(dtypeName)'")
                }
                guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= payload else {
                    throw TorchError("\(path): tensor '\(name)' has offsets \(offsets) outside the \(payload)-byte payload")
                }
                let expected = shape.reduce(1, *) * dtype.byteSize
                guard offsets[1] - offsets[0] == expected else {
                    throw TorchError("\(path): tensor '\(name)' of shape \(shape) \(dtypeName) needs \(expected) bytes, has \(offsets[1] - offsets[0])")
                }
                entries[name] = Entry(dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
            }
            self.metadata = meta
            self.entries = entries
            self.names = entries.keys.sorted { (entries[$0]!.begin, $0) < (entries[$1]!.begin, $1) }
        }

        /// A copy of the named tensor (on the CPU, in its stored dtype).
        public func tensor(_ name: String) throws -> Tensor {
            guard let e = entries[name] else { throw TorchError("\(url.path): no tensor named '\(name)'") }
            let t = try withTorchErrors {
                data.withUnsafeBytes { raw in
                    Tensor(bytes: UnsafeRawBufferPointer(rebasing: raw[(dataStart + e.begin)..<(dataStart + e.end)]),
                           dtype: e.dtype, shape: e.shape)
                }
            }
            return t
        }
    }
}

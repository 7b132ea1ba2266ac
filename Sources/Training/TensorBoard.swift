import Foundation

/// TensorBoard event files, written by hand: two protobuf messages (Event, Summary.Value) do not
/// justify the protobuf package and its code generator. A file is a sequence of records — u64
/// little-endian length, masked CRC-32C of those 8 bytes, the data, masked CRC-32C of the data —
/// whose first event carries `file_version: "brain.Event:2"`; each later event holds one step's
/// scalars as `Summary.Value{tag, simple_value}`. Field numbers follow TensorFlow's event.proto
/// and summary.proto (Event: wall_time 1, step 2, file_version 3, summary 5; Summary: value 1;
/// Value: tag 1, simple_value 2).
public enum TensorBoard {
    /// The run folder's event file (the name must contain "tfevents" for TensorBoard to read it).
    public static func file(run: URL) -> URL {
        run.appendingPathComponent("tensorboard").appendingPathComponent("events.out.tfevents.tokenwise")
    }

    // MARK: encoding

    static let crcTable: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }   // Castagnoli, reflected
        return c
    }

    /// CRC-32C (Castagnoli) of `bytes`.
    public static func crc32c<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked CRC: rotated right by 15 bits, plus a constant.
    public static func maskedCRC<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        let c = crc32c(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }

    static func littleEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// One record around `data`.
    public static func record(_ data: [UInt8]) -> [UInt8] {
        let length = littleEndian(UInt64(data.count))
        return length + littleEndian(maskedCRC(length)) + data + littleEndian(maskedCRC(data))
    }

    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out = [UInt8]()
        repeat {
            let low = UInt8(v & 0x7F)
            v >>= 7
            out.append(v == 0 ? low : low | 0x80)
        } while v != 0
        return out
    }

    /// A length-delimited field (wire type 2).
    static func bytesField(_ number: UInt64, _ payload: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(UInt64(payload.count)) + payload
    }

    /// An Event: wall time (seconds since 1970), step, and a file version or scalars by tag.
    public static func event(wallTime: Double, step: Int64, fileVersion: String? = nil, scalars: [(String, Float)] = []) -> [UInt8] {
        var out = varint(1 << 3 | 1) + littleEndian(wallTime.bitPattern)
        if step != 0 { out += varint(2 << 3) + varint(UInt64(bitPattern: step)) }
        if let fileVersion { out += bytesField(3, Array(fileVersion.utf8)) }
        if !scalars.isEmpty {
            let values = scalars.flatMap { tag, value in
                bytesField(1, bytesField(1, Array(tag.utf8)) + varint(2 << 3 | 5) + littleEndian(value.bitPattern))
            }
            out += bytesField(5, values)
        }
        return out
    }

    // MARK: a run's file

    /// The scalars TensorBoard shows for a metrics.jsonl line (`train/<metric>`) or an eval.jsonl
    /// line (`eval/<phase>/<metric>`: mean reward and accuracy, their 95% intervals, pass@k).
    static func scalars(metrics line: [String: Any]) -> [(String, Float)] {
        line.keys.sorted().compactMap { k in
            guard k != "step", let v = line[k] as? Double, v.isFinite else { return nil }
            return ("train/" + k, Float(v))
        }
    }

    static func scalars(eval line: [String: Any]) -> [(String, Float)] {
        let phase = line["phase"] as? String ?? "eval"
        var out = [(String, Float)]()
        func add(_ name: String, _ stat: Any?) {
            guard let s = stat as? [String: Any], let mean = s["mean"] as? Double else { return }
            out.append(("eval/\(phase)/\(name)", Float(mean)))
            if let ci = s["ci95"] as? Double { out.append(("eval/\(phase)/\(name)_ci95", Float(ci))) }
        }
        for key in line.keys.sorted() where key != "pass_at_k" { add(key, line[key]) }
        if let pass = line["pass_at_k"] as? [String: Any] {
            for k in pass.keys.sorted(by: { (Int($0) ?? 0) < (Int($1) ?? 0) }) { add("pass@\(k)", pass[k]) }
        }
        if let length = line["response_length"] as? Double { out.append(("eval/\(phase)/response_length", Float(length))) }
        return out
    }

    /// Writes the run's event file anew from its metrics.jsonl and eval.jsonl (the file is the
    /// run's own: after a resume it holds exactly the steps those files keep).
    public static func rebuild(run: URL) throws {
        // The records keep no clock time; a rebuilt file stamps its events with the time of the rebuild.
        let now = Date().timeIntervalSince1970
        var bytes = record(event(wallTime: now, step: 0, fileVersion: "brain.Event:2"))
        for line in JSONLines.read(run.appendingPathComponent("metrics.jsonl")) {
            bytes += record(event(wallTime: now, step: Int64(line["step"] as? Int ?? 0), scalars: scalars(metrics: line)))
        }
        for line in JSONLines.read(run.appendingPathComponent("eval.jsonl")) {
            bytes += record(event(wallTime: now, step: Int64(line["step"] as? Int ?? 0), scalars: scalars(eval: line)))
        }
        let url = file(run: run)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url, options: .atomic)
    }

    /// Appends one step's event for a metrics.jsonl (`eval` false) or eval.jsonl line.
    public static func append(run: URL, line: [String: Any], eval: Bool) throws {
        let url = file(run: run)
        if !FileManager.default.fileExists(atPath: url.path) { try rebuild(run: run); return }
        let values = eval ? scalars(eval: line) : scalars(metrics: line)
        let bytes = record(event(wallTime: Date().timeIntervalSince1970, step: Int64(line["step"] as? Int ?? 0), scalars: values))
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
    }
}

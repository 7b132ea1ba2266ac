import Foundation

/// JSON-lines files: append a record, read them back, cut them at a step.
public enum JSONLines {
    public static func object<T: Encodable>(_ value: T) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: Any] ?? [:]
    }

    /// One record as a line of JSON (keys sorted, no newline).
    public static func text(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    public static func append(_ object: [String: Any], to url: URL) throws {
        var data = Data(try text(object).utf8)
        data.append(0x0A)
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let h = try FileHandle(forWritingTo: url)
        defer { try? h.close() }
        try h.seekToEnd()
        try h.write(contentsOf: data)
    }

    /// Writes `records` as a new file at `path`, through `path.partial` moved into place, so an
    /// interrupted write leaves no half file; neither path may exist (nothing is overwritten).
    public static func writeNew(_ records: [[String: Any]], to path: String) throws {
        let partial = path + ".partial"
        for p in [path, partial] where FileManager.default.fileExists(atPath: p) {
            throw TrainingError("\(p) exists already (it is never overwritten)")
        }
        var data = Data()
        for r in records { data += Data(try text(r).utf8) + Data([0x0A]) }
        try data.write(to: URL(fileURLWithPath: partial))
        try FileManager.default.moveItem(atPath: partial, toPath: path)
    }

    /// Every complete, parseable line (a line cut short by a crash is skipped).
    public static func read(_ url: URL) -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: url.path) else { return [] }
        return data.split(separator: 0x0A).compactMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
    }

    static func contains(_ url: URL, phase: String) -> Bool { read(url).contains { $0["phase"] as? String == phase } }

    /// Keeps the lines `keep` accepts (and drops a torn last line), replacing the file atomically.
    static func truncate(_ url: URL, keep: ([String: Any]) -> Bool) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        var out = Data()
        for obj in read(url) where keep(obj) { out.append(Data((try text(obj) + "\n").utf8)) }
        try out.write(to: url, options: .atomic)
    }
}

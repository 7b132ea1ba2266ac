import Foundation
import XCTest
@testable import Training

/// A reader of event files for the tests: records with both CRCs checked, and the fields of each
/// Event this writer uses.
struct EventReader {
    struct Event: Equatable {
        var wallTime = 0.0, step: Int64 = 0, fileVersion: String?, scalars: [String: Float] = [:]
    }

    enum Failure: Error { case truncated, badCRC, badWire }

    static func records(_ data: [UInt8]) throws -> [[UInt8]] {
        var at = 0, out = [[UInt8]]()
        func u32(_ i: Int) -> UInt32 { data[i..<(i + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        while at < data.count {
            guard at + 12 <= data.count else { throw Failure.truncated }
            let length = Int(data[at..<(at + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            guard u32(at + 8) == TensorBoard.maskedCRC(data[at..<(at + 8)]) else { throw Failure.badCRC }
            guard at + 12 + length + 4 <= data.count else { throw Failure.truncated }
            let body = Array(data[(at + 12)..<(at + 12 + length)])
            guard u32(at + 12 + length) == TensorBoard.maskedCRC(body) else { throw Failure.badCRC }
            out.append(body)
            at += 16 + length
        }
        return out
    }

    /// (field number, wire type, varint or fixed value, payload) of each field of a message.
    static func fields(_ m: [UInt8]) throws -> [(Int, Int, UInt64, [UInt8])] {
        var at = 0, out = [(Int, Int, UInt64, [UInt8])]()
        func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard at < m.count else { throw Failure.truncated }
                let b = m[at]; at += 1
                v |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return v }
                shift += 7
            }
        }
        func fixed(_ n: Int) throws -> UInt64 {
            guard at + n <= m.count else { throw Failure.truncated }
            defer { at += n }
            return m[at..<(at + n)].reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        while at < m.count {
            let key = try varint(), number = Int(key >> 3), wire = Int(key & 7)
            switch wire {
            case 0: out.append((number, 0, try varint(), []))
            case 1: out.append((number, 1, try fixed(8), []))
            case 5: out.append((number, 5, try fixed(4), []))
            case 2:
                let n = Int(try varint())
                guard at + n <= m.count else { throw Failure.truncated }
                out.append((number, 2, 0, Array(m[at..<(at + n)]))); at += n
            default: throw Failure.badWire
            }
        }
        return out
    }

    static func events(_ data: [UInt8]) throws -> [Event] {
        try records(data).map { r in
            var e = Event()
            for (n, _, v, payload) in try fields(r) {
                switch n {
                case 1: e.wallTime = Double(bitPattern: v)
                case 2: e.step = Int64(bitPattern: v)
                case 3: e.fileVersion = String(decoding: payload, as: UTF8.self)
                case 5:
                    for (_, _, _, value) in try fields(payload) {
                        var tag = "", x: Float = .nan
                        for (vn, _, vv, vp) in try fields(value) {
                            if vn == 1 { tag = String(decoding: vp, as: UTF8.self) }
                            if vn == 2 { x = Float(bitPattern: UInt32(vv)) }
                        }
                        e.scalars[tag] = x
                    }
                default: break
                }
            }
            return e
        }
    }
}

final class TensorBoardTests: XCTestCase {
    /// CRC-32C's check value, TFRecord's masking, and records and events byte for byte.
    func testRecordsAndEventsByteForByte() throws {
        XCTAssertEqual(TensorBoard.crc32c(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(TensorBoard.crc32c([UInt8]()), 0)
        let c = TensorBoard.crc32c(Array("abc".utf8))
        XCTAssertEqual(TensorBoard.maskedCRC(Array("abc".utf8)), ((c >> 15) | (c << 17)) &+ 0xA282_EAD8)
        // The first event of every file: wall_time (field 1, fixed64), file_version (field 3).
        let version = TensorBoard.event(wallTime: 0, step: 0, fileVersion: "brain.Event:2")
        XCTAssertEqual(version, [0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x1A, 0x0D] + Array("brain.Event:2".utf8))
        // wall 1.5, step 3, one scalar "a" = 0.5: Summary{value{tag "a", simple_value 0.5}}.
        let scalar = TensorBoard.event(wallTime: 1.5, step: 3, scalars: [("a", 0.5)])
        XCTAssertEqual(scalar, [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x10, 0x03, 0x2A, 0x0A, 0x0A, 0x08, 0x0A, 0x01, 0x61, 0x15, 0, 0, 0, 0x3F])
        let record = TensorBoard.record(Array("abc".utf8))
        XCTAssertEqual(Array(record[0..<8]), [3, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(record.count, 8 + 4 + 3 + 4)
        XCTAssertEqual(try EventReader.records(record), [Array("abc".utf8)])
        var damaged = record
        damaged[13] ^= 1
        XCTAssertThrowsError(try EventReader.records(damaged))
        // Long fields take multi-byte varints.
        let long = TensorBoard.event(wallTime: 2, step: 300, scalars: [(String(repeating: "t", count: 200), -1)])
        XCTAssertEqual(try EventReader.events(TensorBoard.record(long)),
                       [.init(wallTime: 2, step: 300, fileVersion: nil, scalars: [String(repeating: "t", count: 200): -1])])
    }

    /// A run with `report_to: [jsonl, tensorboard]` writes every metric of every step (and the
    /// evaluations) as scalars; a resumed run's file holds each step once, as its metrics.jsonl;
    /// the sink list is checked.
    func testARunsEventFileHoldsEveryMetricOnceAfterAResume() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tw-tb-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var c = Preset.tiny.config
        c.train.steps = 4
        c.output.checkpointEvery = 2
        c.output.saveModel = false
        c.output.report = false
        c.output.reportTo = ["jsonl", "tensorboard"]
        let dir = root.appendingPathComponent("run")
        let run = try TrainingRun.start(config: c, dir: dir, console: .quiet)
        try run.runSteps(upTo: 3)   // "killed" after step 3: checkpoint 2 exists
        let resumed = try TrainingRun.resume(dir: dir, console: .quiet)
        XCTAssertEqual(resumed.startStep, 2)
        try resumed.run()
        let events = try EventReader.events(Array(try Data(contentsOf: TensorBoard.file(run: dir))))
        XCTAssertEqual(events.first?.fileVersion, "brain.Event:2")
        let metrics = JSONLines.read(dir.appendingPathComponent("metrics.jsonl"))
        let steps = events.dropFirst().filter { $0.scalars.keys.contains { $0.hasPrefix("train/") } }
        XCTAssertEqual(steps.map(\.step), [1, 2, 3, 4])
        for (e, line) in zip(steps, metrics) {
            for (k, v) in line where k != "step" {
                XCTAssertEqual(e.scalars["train/" + k], Float(try XCTUnwrap(v as? Double)), "step \(e.step) \(k)")
            }
            XCTAssertEqual(e.scalars.count, line.count - 1)
        }
        let evals = events.filter { $0.scalars.keys.contains { $0.hasPrefix("eval/") } }
        XCTAssertEqual(evals.map(\.step), [4], "the after-evaluation (the steps ran without the before one)")
        let after = try XCTUnwrap(JSONLines.read(dir.appendingPathComponent("eval.jsonl")).last)
        XCTAssertEqual(evals.last?.scalars["eval/after/reward"], Float(try XCTUnwrap((after["reward"] as? [String: Any])?["mean"] as? Double)))
        XCTAssertNotNil(evals.last?.scalars["eval/after/pass@1"] ?? nil)
        XCTAssertNotNil(evals.last?.scalars["eval/after/accuracy_ci95"] ?? nil)
        for (sinks, message) in [(["tensorboard"], "config: 'output.report_to' must list jsonl: metrics.jsonl is the run's record, which resume and the report read"),
                                 (["jsonl", "wandb"], "config: 'output.report_to' lists 'wandb'; known: jsonl, tensorboard"),
                                 (["jsonl", "jsonl"], "config: 'output.report_to' lists a sink twice: [\"jsonl\", \"jsonl\"]")] {
            c.output.reportTo = sinks
            XCTAssertThrowsError(try c.validate()) { XCTAssertEqual("\($0)", message) }
        }
    }
}

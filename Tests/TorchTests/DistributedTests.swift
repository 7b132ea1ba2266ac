import Foundation
import XCTest
@testable import Torch

/// c10d over loopback: ranks of one Gloo group as threads of this process, meeting in a TCP store
/// this test hosts on a free port.
final class DistributedTests: XCTestCase {
    /// Runs `body(group)` on `world` threads, one rank each; returns each rank's result in rank order.
    func ranks<R>(_ world: Int, timeout: Double = 30, _ body: @escaping @Sendable (ProcessGroup) throws -> R) throws -> [R] {
        let store = try DistributedStore.host(address: "127.0.0.1", port: 0, timeout: timeout)
        XCTAssertGreaterThan(store.port, 0)
        let results = Results<R>(world)
        let done = DispatchGroup()
        for r in 0..<world {
            done.enter()
            Thread {
                defer { done.leave() }
                results.set(r, Result {
                    try withTorchErrors {
                        let client = try DistributedStore.connect(address: "127.0.0.1", port: store.port, timeout: timeout)
                        let g = try ProcessGroup(store: client, prefix: "test", rank: r, worldSize: world, deviceHost: "127.0.0.1", timeout: timeout)
                        return try body(g)
                    }
                })
            }.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + timeout + 30), .success)
        return try results.values.map { try ($0 ?? .failure(TorchError("a rank did not finish"))).get() }
    }

    func testAllReduceSumsEveryTensorAcrossBuckets() throws {
        let out = try ranks(3) { g -> [[Float]] in
            let r = Float(g.rank + 1)
            // Three float32 tensors and one float64: more than one bucket at 16 bytes a bucket.
            let ts = [Tensor([r, 2 * r]), Tensor([r * 10], shape: [1, 1]), Tensor([Float](repeating: r, count: 5)), Tensor([Double(r)])]
            g.bucketBytes = 16
            try g.allReduceSum(ts)
            return try ts.map { try $0.to(dtype: .float32).floats() }
        }
        for r in out {
            XCTAssertEqual(r, [[6, 12], [60], [6, 6, 6, 6, 6], [6]])
        }
    }

    func testBroadcastGivesEveryRankTheRootsValues() throws {
        let out = try ranks(2) { g -> [Float] in
            let t = Tensor([Float(g.rank), Float(g.rank) + 0.5], shape: [2, 1])
            try g.broadcast([t], root: 1)
            return try t.floats()
        }
        XCTAssertEqual(out, [[1, 1.5], [1, 1.5]])
    }

    func testAllGatherStacksInRankOrder() throws {
        let out = try ranks(3) { g in try g.allGather([Double(g.rank), -Double(g.rank)]) }
        for r in out { XCTAssertEqual(r, [[0, 0], [1, -1], [2, -2]]) }
        let sums = try ranks(2) { g in try g.sum([Double(g.rank) + 1, 0.25]) }
        XCTAssertEqual(sums, [[3, 0.5], [3, 0.5]])
    }

    func testBadInputsAreErrorsNotAborts() throws {
        XCTAssertThrowsError(try DistributedStore.host(address: "not-an-address", port: 0, timeout: 1)) { e in
            XCTAssertTrue("\(e)".contains("'not-an-address' is not an IPv4 address"), "\(e)")
        }
        // Nothing listens on the port of a store just closed: connecting times out with c10d's message.
        let port = try DistributedStore.host(address: "127.0.0.1", port: 0, timeout: 1).port
        XCTAssertThrowsError(try DistributedStore.connect(address: "127.0.0.1", port: port, timeout: 1)) { e in
            XCTAssertTrue("\(e)".hasPrefix("cannot reach the rendezvous store at 127.0.0.1:\(port): "), "\(e)")
        }
        let store = try DistributedStore.host(address: "127.0.0.1", port: 0, timeout: 5)
        XCTAssertThrowsError(try ProcessGroup(store: store, prefix: "", rank: 2, worldSize: 2, deviceHost: "127.0.0.1", timeout: 1)) { e in
            XCTAssertTrue("\(e)".contains("rank 2 is outside a world of 2"), "\(e)")
        }
        // A group whose other rank never comes: joining times out instead of hanging.
        XCTAssertThrowsError(try ProcessGroup(store: store, prefix: "lonely", rank: 0, worldSize: 2, deviceHost: "127.0.0.1", timeout: 1)) { e in
            XCTAssertTrue("\(e)".hasPrefix("rank 0 of 2 could not join the Gloo group: "), "\(e)")
        }
    }
}

/// One slot per rank, written from the rank's thread.
final class Results<R>: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Result<R, Error>?]
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
    func set(_ i: Int, _ r: Result<R, Error>) { lock.lock(); values[i] = r; lock.unlock() }
}

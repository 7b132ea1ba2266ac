import CTorch
import Foundation

/// An error from c10d (a peer that died, a timeout, a refused connection) or from reading the
/// launcher's environment. Every message names what failed.
public struct DistributedError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A c10d TCP store: the key-value rendezvous every rank meets at. The host side listens only on
/// the address it is given.
public final class DistributedStore: @unchecked Sendable {
    let handle: OpaquePointer
    /// The port it listens on or is connected to.
    public let port: Int

    private init(_ handle: OpaquePointer) {
        self.handle = handle
        port = Int(tw_store_port(handle))
    }

    /// Hosts a store on `address:port` (port 0: a free one, see `port`).
    public static func host(address: String, port: Int, timeout: Double) throws -> DistributedStore {
        let h = try call("cannot host the rendezvous store on \(address):\(port)") {
            tw_store_host(address, Int32(port), Int64(timeout * 1000), $0)
        }
        return DistributedStore(h)
    }

    /// Connects to the store at `address:port`, retrying until `timeout` seconds pass.
    public static func connect(address: String, port: Int, timeout: Double) throws -> DistributedStore {
        let h = try call("cannot reach the rendezvous store at \(address):\(port)") {
            tw_store_connect(address, Int32(port), Int64(timeout * 1000), $0)
        }
        return DistributedStore(h)
    }

    deinit { tw_store_free(handle) }
}

/// A Gloo process group over CPU tensors. Every rank must make the same calls in the same order.
/// Gloo has no average: `allReduceSum` sums, and callers divide.
public final class ProcessGroup: @unchecked Sendable {
    let handle: OpaquePointer
    let store: DistributedStore  // kept alive as long as the group
    public let rank: Int
    public let worldSize: Int
    /// Collectives pack tensors into flat buffers of this many bytes at most (DDP's 25 MB).
    public var bucketBytes = 25 << 20

    /// Joins the group of `worldSize` ranks meeting in `store` under `prefix`; its sockets bind
    /// `deviceHost`. Blocks until every rank has joined or `timeout` seconds pass.
    public init(store: DistributedStore, prefix: String, rank: Int, worldSize: Int, deviceHost: String,
                timeout: Double) throws {
        handle = try call("rank \(rank) of \(worldSize) could not join the Gloo group") {
            tw_group_gloo(store.handle, prefix, Int32(rank), Int32(worldSize), deviceHost, Int64(timeout * 1000), $0)
        }
        self.store = store
        self.rank = rank
        self.worldSize = worldSize
    }

    deinit { tw_group_free(handle) }

    /// In place: each tensor becomes its sum over all ranks.
    public func allReduceSum(_ tensors: [Tensor]) throws {
        try collective("all-reduce", tensors) { handles, err in
            tw_group_allreduce_sum(handle, handles, Int32(handles.count), Int64(bucketBytes), err)
        }
    }

    /// In place: each tensor becomes rank `root`'s.
    public func broadcast(_ tensors: [Tensor], root: Int = 0) throws {
        try collective("broadcast", tensors) { handles, err in
            tw_group_broadcast(handle, handles, Int32(handles.count), Int32(root), Int64(bucketBytes), err)
        }
    }

    /// Every rank's `tensor` (the same shape on every rank), stacked along a new first dimension.
    public func allGather(_ tensor: Tensor) throws -> Tensor {
        try tensor.checkValid()
        let h = try withExtendedLifetime(tensor) {
            try call("all-gather failed on rank \(rank)") { tw_group_allgather(handle, tensor.handle, $0) }
        }
        return Tensor(handle: h)
    }

    /// Every rank's values (the same count on every rank), in rank order.
    public func allGather(_ values: [Double]) throws -> [[Double]] {
        let gathered = try allGather(Tensor(values))
        let flat = try gathered.toArray(Double.self)
        let n = values.count
        return (0..<worldSize).map { Array(flat[($0 * n)..<($0 * n + n)]) }
    }

    /// The sums over ranks of `values`, in float64 (metrics and batch statistics).
    public func sum(_ values: [Double]) throws -> [Double] {
        guard worldSize > 1 else { return values }
        let t = Tensor(values)
        try allReduceSum([t])
        return try t.toArray(Double.self)
    }

    public func barrier() throws {
        try check("barrier failed on rank \(rank)") { tw_group_barrier(handle, $0) }
    }

    private func collective(_ what: String, _ tensors: [Tensor],
                            _ body: ([OpaquePointer?], ErrorOut) -> Int32) throws {
        guard !tensors.isEmpty else { return }
        for t in tensors { try t.checkValid() }
        try withExtendedLifetime(tensors) {
            let handles = tensors.map(\.handle)
            try check("\(what) failed on rank \(rank)") { body(handles, $0) }
        }
    }
}

/// Runs a shim constructor: its handle, or its message as a `DistributedError` after `context`.
private func call(_ context: String, _ body: (ErrorOut) -> OpaquePointer?) throws -> OpaquePointer {
    let (h, message) = ffi(body)
    guard let h, message == nil else {
        throw DistributedError("\(context): \(message ?? "no handle returned")")
    }
    return h
}

/// Runs a shim call that returns a status, throwing its message as a `DistributedError`.
private func check(_ context: String, _ body: (ErrorOut) -> Int32) throws {
    let (_, message) = ffi(body)
    if let message { throw DistributedError("\(context): \(message)") }
}

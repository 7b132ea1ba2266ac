import Foundation
import Torch

/// torchrun's contract: what a rank reads from its environment to find the others.
public struct DistributedEnvironment: Equatable, Sendable {
    public var rank: Int
    public var worldSize: Int
    public var localRank: Int
    public var localWorldSize: Int
    public var masterAddress: String
    public var masterPort: Int
    /// Under torchrun's agent (`TORCHELASTIC_USE_AGENT_STORE=True`) the agent hosts the store and
    /// every rank is a client, under the prefix `/worker/attempt_<restart count>`.
    public var agentStore: Bool
    public var restartCount: Int
    /// Seconds a rank waits for the others (joining, each collective): `TOKENWISE_DIST_TIMEOUT`,
    /// default 1800 as torch's.
    public var timeout: Double

    /// The contract read from `env`; nil when `WORLD_SIZE` is absent (one process). Every missing
    /// or malformed variable is an error naming it.
    public static func read(_ env: [String: String]) throws -> DistributedEnvironment? {
        guard env["WORLD_SIZE"] != nil else { return nil }
        func int(_ key: String, default value: Int? = nil, range: ClosedRange<Int>) throws -> Int {
            guard let text = env[key] else {
                if let value { return value }
                throw DistributedError("\(key) is not set (WORLD_SIZE is, so this process is one rank of a distributed run; launch it with tokenwise train --nproc or torchrun)")
            }
            guard let v = Int(text), range.contains(v) else { throw DistributedError("\(key)='\(text)' is not an integer in \(range.lowerBound)…\(range.upperBound)") }
            return v
        }
        let world = try int("WORLD_SIZE", range: 1...65536)
        let rank = try int("RANK", range: 0...(world - 1))
        let localWorld = try int("LOCAL_WORLD_SIZE", default: world, range: 1...world)
        let e = DistributedEnvironment(
            rank: rank, worldSize: world, localRank: try int("LOCAL_RANK", default: rank % localWorld, range: 0...(localWorld - 1)),
            localWorldSize: localWorld, masterAddress: env["MASTER_ADDR"] ?? "127.0.0.1", masterPort: try int("MASTER_PORT", default: 29500, range: 1...65535),
            agentStore: ["true", "1"].contains(env["TORCHELASTIC_USE_AGENT_STORE"]?.lowercased() ?? ""),
            restartCount: try int("TORCHELASTIC_RESTART_COUNT", default: 0, range: 0...Int(Int32.max)), timeout: 1800)
        var out = e
        if let t = env["TOKENWISE_DIST_TIMEOUT"] {
            guard let v = Double(t), v > 0 else { throw DistributedError("TOKENWISE_DIST_TIMEOUT='\(t)' is not a positive number of seconds") }
            out.timeout = v
        }
        return out
    }

    /// Whether the master is this machine's loopback: then nothing listens or binds beyond it.
    var loopback: Bool { masterAddress == "localhost" || masterAddress.hasPrefix("127.") || masterAddress == "::1" }

    /// Joins the group: connects to the agent's store, or (without an agent) rank 0 hosts the store
    /// on MASTER_ADDR:MASTER_PORT and the others connect. Gloo's sockets bind the loopback address
    /// when the master is local, else this machine's host name.
    public func join() throws -> DataParallel {
        let address = masterAddress == "localhost" ? "127.0.0.1" : masterAddress
        let store: DistributedStore
        if agentStore || rank != 0 {
            store = try DistributedStore.connect(address: address, port: masterPort, timeout: timeout)
        } else {
            store = try DistributedStore.host(address: address, port: masterPort, timeout: timeout)
        }
        let prefix = agentStore ? "/worker/attempt_\(restartCount)" : "tokenwise"
        let host = loopback ? "127.0.0.1" : ProcessInfo.processInfo.hostName
        return DataParallel(group: try ProcessGroup(store: store, prefix: prefix, rank: rank, worldSize: worldSize, deviceHost: host, timeout: timeout))
    }
}

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Torch
import Training

/// `tokenwise train --nproc N`: what torchrun's agent does for this machine's N ranks. It hosts the
/// rendezvous store (node 0; the others connect to it), starts each rank as this same binary with
/// torchrun's environment (each rank then takes its share of the cores from LOCAL_WORLD_SIZE unless
/// its --threads says), prefixes their output with the rank, forwards SIGINT/SIGTERM (each rank
/// then stops after the same step with a checkpoint) and, when one rank fails, gives the others a
/// few seconds to report their own error before stopping them.
struct Launcher {
    let nproc: Int
    let nnodes: Int
    let nodeRank: Int
    let masterAddress: String
    let masterPort: Int
    /// The rank's arguments: the command line without the launcher's options.
    let arguments: [String]
    /// Seconds the other ranks get to exit on their own after one fails.
    var grace = 10.0

    final class State: @unchecked Sendable {
        let lock = NSLock()
        var firstFailure: (rank: Int, status: Int32, signaled: Bool)?
        /// Whether the launcher had to signal ranks that outlived the grace period.
        var stopped = false
        /// Whether the launcher itself was sent SIGINT or SIGTERM (and passed it on).
        var signaled = false
        var running: [Int: Process] = [:]
    }

    func run() throws -> Int32 {
        let world = nproc * nnodes
        // The agent's store: hosted by node 0's launcher on the master address only, joined by the others'.
        let store = nodeRank == 0
            ? try DistributedStore.host(address: masterAddress, port: masterPort, timeout: 1800)
            : try DistributedStore.connect(address: masterAddress, port: masterPort, timeout: 1800)
        let state = State(), done = DispatchGroup(), out = LinePrinter()
        // Forwarding first: a stop asked for while the ranks start reaches the ones already running.
        let signals = forwardSignals(state)
        for local in 0..<nproc {
            let rank = nodeRank * nproc + local
            let p = Process()
            p.executableURL = Launcher.ownBinary
            p.arguments = arguments
            var env = ProcessInfo.processInfo.environment
            for (k, v) in ["RANK": rank, "WORLD_SIZE": world, "LOCAL_RANK": local, "LOCAL_WORLD_SIZE": nproc, "GROUP_RANK": nodeRank,
                           "MASTER_PORT": store.port, "TORCHELASTIC_RESTART_COUNT": 0] { env[k] = "\(v)" }
            env["MASTER_ADDR"] = masterAddress
            env["TORCHELASTIC_USE_AGENT_STORE"] = "True"
            p.environment = env
            p.standardOutput = out.pipe(prefix: "[rank \(rank)] ", to: FileHandle.standardOutput)
            p.standardError = out.pipe(prefix: "[rank \(rank)] ", to: FileHandle.standardError)
            done.enter()
            p.terminationHandler = { proc in
                state.lock.lock()
                state.running[rank] = nil
                let failed = proc.terminationStatus != 0 && state.firstFailure == nil
                if failed { state.firstFailure = (rank, proc.terminationStatus, proc.terminationReason == .uncaughtSignal) }
                // A rank that stopped as asked (128 + SIGINT/SIGTERM) is not a failure to stop the others for.
                let asked = state.signaled && proc.terminationStatus > 128 && proc.terminationReason == .exit
                state.lock.unlock()
                if failed && !asked { stopOthers(state, after: grace) }
                done.leave()
            }
            do { try p.run() } catch {
                // The ranks already started would wait for this one until their timeout.
                state.lock.lock()
                for q in state.running.values where q.isRunning { kill(q.processIdentifier, SIGKILL) }
                state.lock.unlock()
                throw DistributedError("cannot start rank \(rank): \(error)")
            }
            state.lock.lock(); state.running[rank] = p; state.lock.unlock()
        }
        done.wait()
        let asked = state.lock.withLock { state.signaled }
        signals.forEach { $0.cancel() }
        out.flush()
        withExtendedLifetime(store) {}
        guard let failure = state.firstFailure else { return 0 }
        // Asked to stop: every rank stopped after the same step and said so; its status is the run's.
        if asked, !failure.signaled, failure.status > 128 { return failure.status }
        let how = failure.signaled ? "was killed by signal \(failure.status)" : "exited with status \(failure.status)"
        let others = state.stopped ? "; the ranks still running after \(Int(grace)) s were stopped" : ""
        FileHandle.standardError.write(Data("tokenwise train: rank \(failure.rank) \(how)\(others)\n".utf8))
        return failure.signaled ? 128 + failure.status : failure.status
    }

    /// After `after` seconds, SIGTERM to every rank still running, and SIGKILL 5 s later.
    func stopOthers(_ state: State, after: Double) {
        DispatchQueue.global().asyncAfter(deadline: .now() + after) {
            for sig in [SIGTERM, SIGKILL] {
                state.lock.lock()
                let left = Array(state.running.values)
                state.lock.unlock()
                for p in left where p.isRunning {
                    state.lock.lock(); state.stopped = true; state.lock.unlock()
                    kill(p.processIdentifier, sig)
                }
                if sig == SIGTERM { Thread.sleep(forTimeInterval: 5) }
            }
        }
    }

    /// SIGINT and SIGTERM go on to every rank (each stops after the step in progress).
    func forwardSignals(_ state: State) -> [DispatchSourceSignal] {
        Launcher.forwardSignals { _ in
            state.lock.withLock {
                state.signaled = true
                return Array(state.running.values)
            }
        }
    }

    /// This binary's own path (not /proc/self/exe), so `ps` names the processes it starts.
    static var ownBinary: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "/proc/self/exe")
    }

    /// Ignores SIGINT and SIGTERM in this process and passes each on to the processes `children`
    /// returns for it (it records the signal first).
    static func forwardSignals(_ children: @escaping @Sendable (Int32) -> [Process]) -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                for p in children(sig) where p.isRunning { kill(p.processIdentifier, sig) }
            }
            source.resume()
            return source
        }
    }

    /// The command line without the launcher's own options (`--nproc 2` and `--nproc=2` alike).
    static func rankArguments(_ args: [String], removing options: Set<String>) -> [String] {
        var out: [String] = [], skip = false
        for a in args {
            if skip { skip = false; continue }
            if options.contains(a) { skip = true; continue }
            if let eq = a.firstIndex(of: "="), options.contains(String(a[..<eq])) { continue }
            out.append(a)
        }
        return out
    }
}

/// A line not yet complete, guarded by the printer's lock.
final class Buffer: @unchecked Sendable { var data = Data() }

/// Copies child output to this process's, line by line with a prefix, one line at a time.
final class LinePrinter: @unchecked Sendable {
    private let lock = NSLock()
    private var pipes: [Pipe] = []

    func pipe(prefix: String, to sink: FileHandle) -> Pipe {
        let p = Pipe()
        let pending = Buffer()
        p.fileHandleForReading.readabilityHandler = { [lock] h in
            let chunk = h.availableData
            lock.lock(); defer { lock.unlock() }
            if chunk.isEmpty {
                if !pending.data.isEmpty { sink.write(Data(prefix.utf8) + pending.data + Data("\n".utf8)); pending.data = Data() }
                h.readabilityHandler = nil
                return
            }
            pending.data.append(chunk)
            while let nl = pending.data.firstIndex(of: 0x0A) {
                sink.write(Data(prefix.utf8) + pending.data[pending.data.startIndex...nl])
                pending.data = Data(pending.data[(nl + 1)...])
            }
        }
        lock.lock(); pipes.append(p); lock.unlock()
        return p
    }

    /// Waits (briefly) until every pipe has been read to its end.
    func flush() {
        for _ in 0..<50 {
            lock.lock()
            let open = pipes.contains { $0.fileHandleForReading.readabilityHandler != nil }
            lock.unlock()
            if !open { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }
}

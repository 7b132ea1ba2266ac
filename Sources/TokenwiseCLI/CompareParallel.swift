import Foundation

/// `tokenwise compare [--parallel N]`: the comparison's unfinished runs, N at a time (default 1),
/// each as this binary training one run (`--only NAME`) with its share of the cores. With several
/// at once, output lines carry the run's name; SIGINT and SIGTERM go on to every run (each stops after its step with a
/// checkpoint). A run that fails starts no more runs; the ones running finish, and everything
/// finished is kept for the next call.
struct ParallelRuns {
    let names: [String]
    let parallel: Int
    /// Whether output lines start with the run's name (several runs at once).
    let marked: Bool
    /// A run's command line (without the binary).
    let arguments: (String) -> [String]

    final class State: @unchecked Sendable {
        let lock = NSLock()
        var running: [String: Process] = [:]
        var failures: [(name: String, status: Int32, signaled: Bool)] = []
        /// The signal the command was sent (and passed on), if any.
        var signal: Int32?
        var halted: Bool { lock.withLock { signal != nil || !failures.isEmpty } }
    }

    /// Returns the command's exit status: 0 when every run finished.
    func run() throws -> Int32 {
        let state = State(), out = LinePrinter(), done = DispatchGroup()
        let slots = DispatchSemaphore(value: parallel)
        let signals = forwardSignals(state)
        defer { signals.forEach { $0.cancel() } }
        for name in names {
            slots.wait()
            if state.halted { slots.signal(); break }
            let p = Process()
            p.executableURL = Launcher.ownBinary
            p.arguments = arguments(name)
            let prefix = marked ? "[\(name)] " : ""
            p.standardOutput = out.pipe(prefix: prefix, to: FileHandle.standardOutput)
            p.standardError = out.pipe(prefix: prefix, to: FileHandle.standardError)
            done.enter()
            p.terminationHandler = { proc in
                state.lock.withLock {
                    state.running[name] = nil
                    // A run that stopped as asked (128 + the signal) is not a failure.
                    let asked = state.signal != nil && proc.terminationReason == .exit && proc.terminationStatus > 128
                    if proc.terminationStatus != 0 && !asked {
                        state.failures.append((name, proc.terminationStatus, proc.terminationReason == .uncaughtSignal))
                    }
                }
                slots.signal()
                done.leave()
            }
            do {
                try state.lock.withLock {
                    try p.run()
                    state.running[name] = p
                }
            } catch {
                done.leave()
                slots.signal()
                state.lock.withLock { state.failures.append((name, -1, false)) }
                FileHandle.standardError.write(Data("tokenwise compare: cannot start run \(name): \(error)\n".utf8))
                break
            }
        }
        done.wait()
        out.flush()
        return report(state)
    }

    /// Says how the runs ended and returns the status: the signal's, or 1 after a failure.
    func report(_ state: State) -> Int32 {
        let (failures, signal) = state.lock.withLock { (state.failures, state.signal) }
        for f in failures where f.status >= 0 {
            let how = f.signaled ? "was killed by signal \(f.status)" : "exited with status \(f.status)"
            FileHandle.standardError.write(Data("tokenwise compare: run \(f.name) \(how)\(marked ? " (its lines are marked [\(f.name)])" : "")\n".utf8))
        }
        if let signal, failures.isEmpty { return 128 + signal }
        guard !failures.isEmpty else { return 0 }
        FileHandle.standardError.write(Data("tokenwise compare: the other runs are kept; run the command again to continue\n".utf8))
        return 1
    }

    /// SIGINT and SIGTERM go on to every run; no run starts after them.
    func forwardSignals(_ state: State) -> [DispatchSourceSignal] {
        Launcher.forwardSignals { sig in
            state.lock.withLock {
                state.signal = sig
                return Array(state.running.values)
            }
        }
    }
}

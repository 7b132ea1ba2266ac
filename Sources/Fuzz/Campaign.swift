import Credit
import Foundation
import Models
import Objectives
import Rewards
import Rollout
import Synchronization
import Torch
import Training

/// What a campaign found: crashes and hangs end the process (their input is left on disk and the
/// message says where); an error of a foreign type, or one that does not name the file, is kept.
public struct FuzzFinding: Sendable, CustomStringConvertible {
    public let target: String
    public let caseNumber: Int
    public let message: String
    public let input: URL
    public var description: String { "\(target) case \(caseNumber): \(message) (input: \(input.path))" }
}

public struct FuzzCounts: Sendable {
    public var cases = 0, accepted = 0, rejected = 0
    public var findings: [FuzzFinding] = []
    /// The first refusals' messages, to see what the mutations reach (`--show-refusals`).
    public var refusals: [String] = []
    public var keepRefusals = 0
    public init() {}
}

/// The state the crash handler and the watchdog read: the message to print if the current case
/// never returns, and when it started. Globals, because a signal handler can reach nothing else.
enum CaseWatch {
    nonisolated(unsafe) static var message = [CChar](repeating: 0, count: 4096)
    static let started = Atomic<UInt64>(0)
    nonisolated(unsafe) static var timeoutNanos: UInt64 = 10_000_000_000
    nonisolated(unsafe) static var altStack: UnsafeMutableRawPointer? = nil

    static func begin(_ text: String) {
        let bytes = Array(text.utf8.prefix(4000))
        message.withUnsafeMutableBufferPointer { buf in
            for (k, b) in bytes.enumerated() { buf[k] = CChar(bitPattern: b) }
            buf[bytes.count] = 0
        }
        started.store(DispatchTime.now().uptimeNanoseconds, ordering: .releasing)
    }
    static func end() { started.store(0, ordering: .releasing) }

    static func say(_ prefix: StaticString) {
        _ = write(2, prefix.utf8Start, prefix.utf8CodeUnitCount)
        message.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, strlen($0.baseAddress!)) }
        _ = write(2, "\n", 1)
    }

    /// Installs handlers for the signals a trap, a bad access or a stack overflow raise (on an
    /// alternate stack, so an overflow can still report), and starts the hang watchdog.
    static func install(signals: Bool) {
        if altStack == nil {
            let size = 1 << 16
            altStack = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            var ss = stack_t(ss_sp: altStack, ss_flags: 0, ss_size: size)
            sigaltstack(&ss, nil)
        }
        for sig in [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE] where signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                if CaseWatch.started.load(ordering: .acquiring) != 0 { CaseWatch.say("tokenwise-fuzz: CRASH (signal) in ") }
                signal(sig, SIG_DFL)
                raise(sig)
            }
            action.sa_flags = Int32(SA_ONSTACK) | Int32(bitPattern: UInt32(SA_RESETHAND))
            sigaction(sig, &action, nil)
        }
        Thread.detachNewThread {
            while true {
                usleep(50_000)
                let s = CaseWatch.started.load(ordering: .acquiring)
                if s != 0, DispatchTime.now().uptimeNanoseconds &- s > CaseWatch.timeoutNanos {
                    CaseWatch.say("tokenwise-fuzz: HANG (no answer within the case timeout) in ")
                    _exit(124)
                }
            }
        }
    }
}

/// Runs seeded mutation cases against one target in this process. Case k of seed s is always the
/// same input, so `--case k` replays it.
public struct Campaign {
    public let target: FuzzTarget
    public let seed: UInt64
    /// Where each case's files are written for the parser, and where findings are copied.
    public let scratch: URL
    public let findings: URL

    public init(target: FuzzTarget, seed: UInt64, work: URL) throws {
        self.target = target
        self.seed = seed
        scratch = work.appendingPathComponent("scratch-\(target.name)")
        findings = work.appendingPathComponent("findings")
        for d in [scratch, findings] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
    }

    /// `TOKENWISE_FUZZ_BACKTRACE=1` leaves the crash signals to Swift's backtracer (for replays).
    public static func installWatch(caseTimeout: Double) {
        CaseWatch.timeoutNanos = UInt64(caseTimeout * 1e9)
        CaseWatch.install(signals: ProcessInfo.processInfo.environment["TOKENWISE_FUZZ_BACKTRACE"] == nil)
    }

    /// The files of case `k`: a seed with one of its files mutated.
    public func input(case k: Int) -> (files: [String: Data], mutated: String) {
        var rng = FuzzRNG(seed: seed ^ (UInt64(k) &* 0xD1B5_4A32_D192_ED03))
        for _ in 0..<2 { _ = rng.next() }
        var files = rng.pick(target.seeds)
        let name = rng.pick(files.keys.sorted())
        let data = files[name]!
        if k == 0 { return (files, name) }   // case 0 is the seed itself
        if let hot = target.hot(name, data) {
            let other = target.seeds.compactMap { $0[name] }.filter { $0 != data }.first
            files[name] = Mutator.binary(data, hot: hot, rng: &rng, other: other ?? data)
        } else {
            files[name] = Mutator.text(data, dictionary: target.dictionary, rng: &rng)
        }
        return (files, name)
    }

    /// Runs cases `range`, adding to `counts`.
    public func run(_ range: Range<Int>, counts: inout FuzzCounts) throws {
        for k in range {
            let (files, mutated) = input(case: k)
            try write(files)
            let at = scratch.appendingPathComponent(mutated)
            CaseWatch.begin("\(target.name) case \(k) (seed \(seed)); the input is \(at.path); replay: tokenwise-fuzz --target \(target.name) --seed \(seed) --case \(k)")
            var failure: Error? = nil
            do { try target.run(scratch) } catch { failure = error }
            CaseWatch.end()
            counts.cases += 1
            guard let failure else { counts.accepted += 1; continue }
            if let problem = Self.problem(failure, naming: scratch.path) {
                let kept = findings.appendingPathComponent("\(target.name)-\(seed)-\(k)-\(mutated)")
                try? FileManager.default.removeItem(at: kept)
                try FileManager.default.copyItem(at: at, to: kept)
                counts.findings.append(FuzzFinding(target: target.name, caseNumber: k, message: problem, input: kept))
            } else {
                counts.rejected += 1
                if counts.refusals.count < counts.keepRefusals { counts.refusals.append("case \(k): \(failure)") }
            }
        }
    }

    func write(_ files: [String: Data]) throws {
        let present = Set((try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? [])
        for stale in present.subtracting(files.keys) { try FileManager.default.removeItem(at: scratch.appendingPathComponent(stale)) }
        for (name, data) in files { try data.write(to: scratch.appendingPathComponent(name)) }
    }

    /// Why a thrown error is a defect, or nil when it is a proper refusal: one of the project's
    /// error types, naming the file it is about.
    public static func problem(_ error: Error, naming path: String) -> String? {
        let text = "\(error)"
        let ours: Bool = switch error {
        case is ModelError, is TorchError, is TrainingError, is CreditError, is ObjectiveError, is RolloutError, is RewardError: true
        default: false
        }
        if !ours { return "a raw \(type(of: error)) escaped: \(text.prefix(300))" }
        if !text.contains(path) { return "the error does not name the file: \(text.prefix(300))" }
        return nil
    }
}

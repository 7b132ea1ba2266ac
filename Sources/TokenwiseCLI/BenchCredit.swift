import ArgumentParser
import Credit
import Foundation
import Training

struct BenchCredit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credit",
        abstract: "Time credit assignment on a synthetic batch, against a same-run baseline.",
        discussion: """
        The batch has --groups groups of --group-size trajectories of --tokens tokens each; responses in a \
        group share random-length prefixes so TEMPO's prefix tree has real branches. The baseline is \
        the cost every method pays: allocating and filling the per-token output arrays.
        """
    )

    @Option(help: "Groups (prompts) in the batch.") var groups = 64
    @Option(name: .customLong("group-size"), help: "Trajectories per group.") var groupSize = 16
    @Option(help: "Tokens per trajectory.") var tokens = 4096
    @Option(help: "Methods to time, comma-separated.") var methods = "grpo,tempo"
    @Option(help: "Timed repetitions per method (the best is reported).") var repeats = 3

    func validate() throws {
        guard groups > 0, groupSize > 0, tokens > 0, repeats > 0 else {
            throw ValidationError("--groups, --group-size, --tokens and --repeats must be positive")
        }
        // The batch is built in memory: about 100 bytes a token across its arrays.
        let (cells, over) = groups.multipliedReportingOverflow(by: groupSize)
        let (total, over2) = cells.multipliedReportingOverflow(by: tokens)
        guard !over, !over2, total <= 1 << 26, repeats <= 1000 else {
            throw ValidationError("--groups × --group-size × --tokens must be at most \(1 << 26) tokens and --repeats at most 1000")
        }
        for m in methods.split(separator: ",") where CreditMethod(rawValue: String(m)) == nil {
            throw ValidationError("--methods: unknown method '\(m)'")
        }
    }

    func syntheticBatch() -> CreditBatch {
        var rng = SplitMix64(seed: 1)
        let gs = (0..<groups).map { g in
            var trajs = [Trajectory]()
            let root = (0..<tokens).map { _ in Int(rng.next() % 50_000) }
            for _ in 0..<groupSize {
                let shared = Int(rng.next() % UInt64(tokens))
                var seq = Array(root.prefix(shared))
                while seq.count < tokens { seq.append(Int(rng.next() % 50_000)) }
                let entropies = (0..<tokens).map { _ in Double(rng.next() % 1000) / 500 }
                trajs.append(Trajectory(tokens: seq, reward: Double(rng.next() % 2), entropies: entropies))
            }
            return Group(id: "g\(g)", trajectories: trajs)
        }
        return CreditBatch(groups: gs)
    }

    func best(_ body: () throws -> Void) rethrows -> Double {
        var times = [Double]()
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return times.min()!
    }

    func run() throws {
        let batch = syntheticBatch()
        let n = groups * groupSize
        let baseline = best { _ = CreditResult(shapedLike: batch) }
        print("tokenwise bench credit — \(n) trajectories × \(tokens) tokens (\(groups) groups of \(groupSize))")
        print(pad("method", 14) + pad("seconds", 12) + pad("Mtokens/s", 12) + "× baseline")
        print(pad("(baseline)", 14) + pad(fmt(baseline, 4), 12) + pad(fmt(Double(n * tokens) / baseline / 1e6, 1), 12) + "1.0")
        for name in methods.split(separator: ",") {
            let estimator = CreditConfig(method: CreditMethod(rawValue: String(name))!).estimator
            let t = try best { _ = try estimator.estimate(batch) }
            print(pad(String(name), 14) + pad(fmt(t, 4), 12) + pad(fmt(Double(n * tokens) / t / 1e6, 1), 12) + fmt(t / baseline, 1))
        }
    }
}

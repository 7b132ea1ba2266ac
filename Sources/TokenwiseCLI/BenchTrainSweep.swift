import ArgumentParser
import Foundation
import Torch

/// Comparisons whose points each run in a process of their own: a process's peak resident memory
/// only grows (and freed memory is kept for reuse), so one point's peak would hide the next's.
extension BenchTrain {
    static func integers(_ list: String) -> [Int]? {
        let parts = list.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.contains(nil) ? nil : parts.compactMap { $0 }
    }

    /// Runs this command again without the comparison's own options, with `set` in their place,
    /// and reads back the point's `Phase`.
    func point(_ set: [String], removing: Set<String>, flags: Set<String>) throws -> Phase {
        let result = FileManager.default.temporaryDirectory.appendingPathComponent("tw-bench-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: result) }
        let args = Launcher.rankArguments(Array(CommandLine.arguments.dropFirst()), removing: removing).filter { !flags.contains($0) }
        let p = Process()
        p.executableURL = Launcher.ownBinary
        p.arguments = args + set
        var env = ProcessInfo.processInfo.environment
        env["TOKENWISE_BENCH_RESULT"] = result.path
        p.environment = env
        fflush(nil)   // this process's lines before the point's
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: result.path) else {
            throw ValidationError("the point \(set.joined(separator: " ")) failed (exit status \(p.terminationStatus))")
        }
        return try JSONDecoder().decode(Phase.self, from: data)
    }

    /// The same steps keeping every activation, with fused logprobs, and with gradient
    /// checkpointing and fused logprobs, each in its own process.
    func runMemoryComparison() throws {
        let own: Set<String> = ["--logprobs"], flags: Set<String> = ["--compare-memory", "--gradient-checkpointing"]
        let arms = [("activations kept", ["--logprobs", "unfused"]), ("fused logprobs", ["--logprobs", "fused"]),
                    ("gradient checkpointing, fused logprobs", ["--gradient-checkpointing", "--logprobs", "fused"])]
        var rows = [(String, Phase)]()
        for (name, set) in arms { rows.append((name, try point(set, removing: own, flags: flags))) }
        let base = rows[0].1
        print("\nmemory against time (same run, each in its own process, \(steps > 1 ? "steps after the first" : "one step, warm-up included"))")
        print("| training keeps | s/step | train s | peak MB | train time | peak memory |")
        print("| --- | --- | --- | --- | --- | --- |")
        for (name, r) in rows {
            print("| \(name) | \(fmt(r.stepSeconds, 2)) | \(fmt(r.trainSeconds, 2)) | \(fmt(r.peakMB, 0)) | \(fmt(r.trainSeconds / base.trainSeconds, 2))× | \(fmt(r.peakMB / base.peakMB, 2))× |")
        }
    }

    /// Seconds a step, tokens a second and peak memory for each response length × group size.
    func runSweep() throws {
        let lengths = Self.integers(sweepLengths)!, groups = Self.integers(sweepGroups)!
        var rows = [String]()
        for length in lengths {
            for group in groups {
                let r: Phase
                do {
                    r = try point(["--max-new-tokens", "\(length)", "--samples", "\(group)", "--fixed-length"],
                                  removing: ["--max-new-tokens", "--samples", "--sweep-lengths", "--sweep-groups"], flags: ["--sweep", "--fixed-length"])
                } catch {
                    // One point out of memory (or failing otherwise) leaves the others' figures.
                    rows.append("| \(length) | \(group) | \(error) | | | | |")
                    continue
                }
                rows.append("| \(length) | \(group) | \(fmt(r.stepSeconds, 1)) | \(fmt(r.rolloutSeconds, 1)) | \(fmt(r.trainSeconds, 1)) | "
                    + "\(fmt(r.tokensPerStep / r.stepSeconds, 1)) | \(fmt(r.peakMB, 0)) |")
            }
        }
        print("\nsweep: \(prompts) prompt(s) a step, LoRA r=8 q/k/v/o, \(Torch.threads) thread(s), micro-batch \(microBatch == 0 ? "all" : String(microBatch)), "
            + "\(gradientCheckpointing ? "gradient checkpointing, " : "")\(fused ? "fused" : "unfused") logprobs; each point in its own process, \(steps > 1 ? "steps after the first" : "one step, warm-up included")")
        print("| response tokens | group | s/step | rollout s | train s | response tokens/s | peak MB |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        rows.forEach { print($0) }
    }
}

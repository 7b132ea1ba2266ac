import Foundation
import Torch

/// Runs a comparison's (arm, seed) runs one after another (the CLI's `--parallel` starts several at once,
/// each as a process training one of them) and summarises them.
public final class Comparison {
    public let config: ComparisonConfig
    public let dir: URL
    let baseText: String, baseName: String

    /// `file` is the comparison file (a base `config:` is read relative to it).
    public init(config: ComparisonConfig, file: URL, dir: URL) throws {
        self.config = config
        self.dir = dir
        if let base = config.config {
            let url = URL(fileURLWithPath: base, relativeTo: file.deletingLastPathComponent())
            guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw TrainingError("\(file.path): 'config' \(url.path): cannot read") }
            baseText = text
            baseName = url.path
        } else {
            baseText = "{}"
            baseName = file.path
        }
        // Every run's config is checked before anything runs.
        for a in config.arms.indices { for s in config.seeds { _ = try config.runConfig(arm: a, seed: s, baseText: baseText, base: baseName) } }
    }

    public func folder(arm: String, seed: UInt64) -> URL { dir.appendingPathComponent(Self.runName(arm: arm, seed: seed)) }

    /// Whether a run folder holds a finished run (its after-training evaluation).
    static func finished(_ run: URL) -> Bool { JSONLines.contains(run.appendingPathComponent("eval.jsonl"), phase: "after") }

    /// The name of a run (its folder under the comparison folder).
    public static func runName(arm: String, seed: UInt64) -> String { "\(arm)-s\(seed)" }

    /// Every (arm, seed) in training order: arm by arm, seeds in file order.
    public var runs: [(arm: String, seed: UInt64)] { config.arms.flatMap { arm in config.seeds.map { (arm.name, $0) } } }

    /// The runs without their after-training evaluation yet.
    public var unfinished: [(arm: String, seed: UInt64)] { runs.filter { !Self.finished(folder(arm: $0.arm, seed: $0.seed)) } }

    /// The run a name such as `grpo-s2` stands for (an error lists the names there are).
    public func run(named name: String) throws -> (arm: String, seed: UInt64) {
        guard let r = runs.first(where: { Self.runName(arm: $0.arm, seed: $0.seed) == name }) else {
            throw TrainingError("no run '\(name)' in this comparison (its runs: \(runs.map { Self.runName(arm: $0.arm, seed: $0.seed) }.joined(separator: ", ")))")
        }
        return r
    }

    /// Trains every run not finished yet (`execute` runs one, e.g. with signal handling), then
    /// writes `compare.json`, `compare.md` and `compare.html` and returns the summary.
    @discardableResult
    public func run(console: TrainingRun.Console = .normal, device: Device = .cpu, say: (String) -> Void = { print($0) },
                    execute: (TrainingRun) throws -> Void = { try $0.run() }) throws -> ComparisonSummary {
        for r in runs { try train(arm: r.arm, seed: r.seed, console: console, device: device, say: say, execute: execute) }
        return try finish()
    }

    /// Trains one run: starts it, resumes it from its checkpoint, or leaves it when it finished.
    /// A folder whose config is not this run's is refused.
    public func train(arm: String, seed: UInt64, console: TrainingRun.Console = .normal, device: Device = .cpu, say: (String) -> Void = { print($0) },
                      execute: (TrainingRun) throws -> Void = { try $0.run() }) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let runDir = folder(arm: arm, seed: seed)
        if Self.finished(runDir) { say("compare: \(arm) seed \(seed) finished already (\(runDir.path))"); return }
        guard let a = config.arms.firstIndex(where: { $0.name == arm }) else { throw TrainingError("no arm '\(arm)' in this comparison") }
        let cfg = try config.runConfig(arm: a, seed: seed, baseText: baseText, base: baseName)
        let written = runDir.appendingPathComponent("config.yaml")
        if let text = try? String(contentsOf: written, encoding: .utf8) {
            guard try RunConfig.load(yaml: text, file: written.path, written: true) == cfg else {
                throw TrainingError("\(written.path) is not the config of arm \(arm) with seed \(seed) (the comparison file changed?): "
                    + "move the folder away or use another --out")
            }
            say("compare: resuming \(arm) seed \(seed)")
            try execute(try TrainingRun.resume(dir: runDir, console: console, device: device))
        } else {
            say("compare: \(arm) seed \(seed) → \(runDir.path)")
            try execute(try TrainingRun.start(config: cfg, dir: runDir, console: console, device: device))
        }
    }

    /// Writes `compare.json`, `compare.md` and `compare.html` from the finished runs.
    @discardableResult
    public func finish() throws -> ComparisonSummary {
        let summary = try summarize()
        let json = try JSONEncoder.sorted.encode(summary)
        try json.write(to: dir.appendingPathComponent("compare.json"), options: .atomic)
        try Data(summary.markdown.utf8).write(to: dir.appendingPathComponent("compare.md"), options: .atomic)
        try Data(ComparisonReport.render(self, summary).utf8).write(to: dir.appendingPathComponent("compare.html"), options: .atomic)
        return summary
    }

    /// compare.html's credit side-by-side: one run's recorded rollouts (its last step with differing
    /// rewards in a group) scored by every arm's credit config. The run is the baseline arm's first
    /// seed, or else the first arm's whose records carry every input the arms' methods read; when
    /// none does, the baseline's, with the arms it cannot score listed.
    public func creditSideBySide() throws -> CreditSideBySide {
        let seed = config.seeds[0], base = config.baseline ?? config.arms[0].name
        let methods = try config.arms.indices.map { a in
            let c = try config.runConfig(arm: a, seed: seed, baseText: baseText, base: baseName).credit
            return CreditSideBySide.Method(label: "\(config.arms[a].name) (\(c.method.rawValue))", config: c)
        }
        func view(_ arm: String, lenient: Bool) throws -> CreditSideBySide {
            let samples = folder(arm: arm, seed: seed).appendingPathComponent("samples.jsonl")
            let records = try CreditSideBySide.read(samples: samples)
            guard let step = CreditSideBySide.informativeStep(records) else { throw TrainingError("\(samples.path) holds no records (output.samples_per_step is 0)") }
            return try CreditSideBySide(records: records, step: step, methods: methods, source: "\(arm)-s\(seed)", lenient: lenient)
        }
        for arm in [base] + config.arms.map(\.name).filter({ $0 != base }) {
            if let v = try? view(arm, lenient: false) { return v }
        }
        return try view(base, lenient: true)
    }

    /// The summary of the finished runs (every run must be finished).
    public func summarize() throws -> ComparisonSummary {
        var arms = [ComparisonSummary.Arm]()
        for arm in config.arms {
            var runs = [ComparisonSummary.RunResult]()
            for seed in config.seeds {
                let d = folder(arm: arm.name, seed: seed)
                guard Self.finished(d), let r = ComparisonSummary.RunResult(run: d, seed: seed, threshold: config.threshold) else {
                    throw TrainingError("\(d.path): the run is not finished (run tokenwise compare again to continue it)")
                }
                runs.append(r)
            }
            arms.append(.init(name: arm.name, runs: runs))
        }
        let base = arms.first { $0.name == (config.baseline ?? config.arms[0].name) }!
        return ComparisonSummary(arms: arms, baseline: base.name,
                                 paired: arms.filter { $0.name != base.name }.map { .init(arm: $0, baseline: base) })
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}

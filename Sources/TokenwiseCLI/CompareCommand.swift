import ArgumentParser
import Foundation
import Training

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Train named arms over paired seeds and compare their held-out results (compare.json, compare.md).",
        discussion: """
            The file: preset, config (a base YAML), set (overrides for all), arms (name: {key: value, …}), seeds, baseline, threshold, budget.
            Each (arm, seed) is a run folder OUT/<arm>-s<seed>; running the command again continues an interrupted comparison.
            """
    )

    @Argument(help: "The comparison file (YAML).") var file: String
    @Option(help: "The comparison folder.") var out: String
    @Option(help: "Runs trained at once, each a process with its share of the cores (--threads, when given, is each run's).")
    var parallel = 1
    @Option(help: "Train only this run (ARM-sSEED) and write no summary: what --parallel starts for each run.")
    var only: String?
    @Flag(help: "Print only the summary.") var quiet = false
    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        guard parallel >= 1 else { throw ValidationError("--parallel must be at least 1, got \(parallel)") }
        if only != nil && parallel > 1 { throw ValidationError("--only trains one run: it does not go with --parallel") }
    }

    func run() throws {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("\(file): cannot read the file") }
        let config = try ComparisonConfig.load(yaml: text, file: file)
        let comparison = try Comparison(config: config, file: URL(fileURLWithPath: file), dir: URL(fileURLWithPath: out))
        let say: (String) -> Void = { if !quiet { print($0); fflush(nil) } }
        if let only {
            let r = try comparison.run(named: only)
            try comparison.train(arm: r.arm, seed: r.seed, console: quiet ? .quiet : .normal, device: try runtime.apply(), say: say,
                                 execute: { try TrainCommand.runStoppable($0) })
            return
        }
        let summary = try runAsProcesses(comparison, say: say)
        print(summary.markdown, terminator: "")
        print("written: \(comparison.dir.appendingPathComponent("compare.json").path), compare.md, compare.html")
    }

    /// The unfinished runs, each as an `--only` process (so each has its own memory figures and a
    /// crash ends only its run), `parallel` at a time; then the summary.
    func runAsProcesses(_ comparison: Comparison, say: (String) -> Void) throws -> ComparisonSummary {
        let unfinished = comparison.unfinished
        for r in comparison.runs where !unfinished.contains(where: { $0 == r }) {
            say("compare: \(Comparison.runName(arm: r.arm, seed: r.seed)) finished already (\(comparison.folder(arm: r.arm, seed: r.seed).path))")
        }
        let names = unfinished.map { Comparison.runName(arm: $0.arm, seed: $0.seed) }
        var args = Launcher.rankArguments(Array(CommandLine.arguments.dropFirst()), removing: ["--parallel"])
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = runtime.threads ?? max(1, cores / min(parallel, max(names.count, 1)))
        if runtime.threads == nil { args += ["--threads", "\(threads)"] }
        if !names.isEmpty {
            say("compare: \(names.count) run(s) to train, \(min(parallel, names.count)) at a time with \(threads) thread(s) each: \(names.joined(separator: ", "))")
            try FileManager.default.createDirectory(at: comparison.dir, withIntermediateDirectories: true)
            let status = try ParallelRuns(names: names, parallel: parallel, marked: parallel > 1, arguments: { args + ["--only", $0] }).run()
            if status != 0 { throw ExitCode(status) }
        }
        return try comparison.finish()
    }
}

import ArgumentParser
import Foundation
import Training

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Train named arms over paired seeds and compare their held-out results (compare.json, compare.md).",
        discussion: """
            The file: preset, config (a base YAML), set (overrides for all), arms (name: {key: value, …}), seeds, baseline, threshold.
            Each (arm, seed) is a run folder OUT/<arm>-s<seed>; running the command again continues an interrupted comparison.
            """
    )

    @Argument(help: "The comparison file (YAML).") var file: String
    @Option(help: "The comparison folder.") var out: String
    @Flag(help: "Print only the summary.") var quiet = false
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        let device = try runtime.apply()
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("\(file): cannot read the file") }
        let config = try ComparisonConfig.load(yaml: text, file: file)
        let comparison = try Comparison(config: config, file: URL(fileURLWithPath: file), dir: URL(fileURLWithPath: out))
        let summary = try comparison.run(console: quiet ? .quiet : .normal, device: device, say: { if !quiet { print($0) } },
                                         execute: { try TrainCommand.runStoppable($0) })
        print(summary.markdown, terminator: "")
        print("written: \(comparison.dir.appendingPathComponent("compare.json").path), compare.md")
    }
}

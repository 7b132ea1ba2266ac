import ArgumentParser
import Foundation
import Training

/// `tokenwise diff-config RUN`: what a run's config changed against a preset (by default the
/// closest one), one key per line.
struct DiffConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff-config",
        abstract: "Show the keys of a run's config.yaml that differ from a preset (the closest one unless --preset says).")

    @Argument(help: "A run folder (or a config.yaml).") var folder: String
    @Option(help: "The preset to compare against (default: the one with the fewest differences).") var preset: String?

    func validate() throws {
        if let preset, Preset(rawValue: preset) == nil {
            throw ValidationError("--preset '\(preset)' is not one of \(Preset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        var url = URL(fileURLWithPath: folder)
        if !url.path.hasSuffix(".yaml") { url.appendPathComponent("config.yaml") }
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw TrainingError("\(url.path): cannot read (is \(folder) a run folder?)") }
        let config = try RunConfig.load(yaml: text, file: url.path, written: true)
        let candidates = preset.map { [Preset(rawValue: $0)!] } ?? Preset.allCases
        let scored = try candidates.map { p in (p, try config.differences(from: p.config)) }
        let (closest, diffs) = scored.min { $0.1.count < $1.1.count }!
        print("\(url.path) against preset \(closest.rawValue): \(diffs.isEmpty ? "no differences" : "\(diffs.count) key(s) differ")")
        for d in diffs { print("  \(d.key): \(d.from ?? "(unset)") → \(d.to ?? "(unset)")") }
    }
}

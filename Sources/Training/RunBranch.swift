import Foundation

extension TrainingRun {
    /// The checkpoint folder `name` (`step-N` or `N`) of the run in `run`, verified.
    static func checkpoint(_ name: String, of run: URL) throws -> (URL, Checkpoint.State) {
        let step = Int(name.hasPrefix("step-") ? String(name.dropFirst(5)) : name)
        guard let step else { throw TrainingError("--from-checkpoint \(name): give a checkpoint as step-N or N") }
        let dir = Checkpoint.folder(run, step: step)
        guard FileManager.default.fileExists(atPath: dir.path) else {
            let have = Checkpoint.steps(run: run).sorted().map { "step-\($0)" }
            throw TrainingError("--from-checkpoint \(name): \(run.path) has no checkpoint step-\(step) (it has \(have.isEmpty ? "none" : have.joined(separator: ", ")))")
        }
        do { return (dir, try Checkpoint.verify(dir)) } catch let e as TrainingError {
            throw TrainingError("--from-checkpoint \(name): checkpoint \(e.message)")
        }
    }

    /// Where `--resume RUN --from-checkpoint step-N` continues: RUN itself when step N is its newest
    /// checkpoint, or (with `into`) a new folder holding RUN's config, its records up to step N and
    /// that checkpoint, a branch that leaves RUN as it is (resuming it rebuilds its TensorBoard files). Continuing an older checkpoint in RUN
    /// would overwrite the later steps' records, so that is refused.
    public static func branch(_ run: URL, at name: String, into: URL?) throws -> URL {
        let (source, state) = try checkpoint(name, of: run)
        let later = Checkpoint.steps(run: run).filter { $0 > state.step }.sorted()
        guard let into else {
            guard later.isEmpty else {
                throw TrainingError("--from-checkpoint step-\(state.step): \(run.path) has later checkpoints (\(later.map { "step-\($0)" }.joined(separator: ", "))), "
                    + "whose records continuing here would overwrite; give --out NEW to branch the run from step-\(state.step) into a new folder")
            }
            return run
        }
        try refuseOccupied(into)
        let fm = FileManager.default
        let configURL = run.appendingPathComponent("config.yaml")
        guard let text = try? String(contentsOf: configURL, encoding: .utf8) else { throw TrainingError("\(configURL.path): cannot read (is \(run.path) a run folder?)") }
        var config = try RunConfig.load(yaml: text, file: configURL.path, written: true)
        // A config that names its folder names the branch's.
        if config.output.dir != nil { config.output.dir = into.path }
        let made = !fm.fileExists(atPath: into.path)
        do {
            try fm.createDirectory(at: into.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
            try Data(try config.yaml().utf8).write(to: into.appendingPathComponent("config.yaml"), options: .atomic)
            for file in ["metrics.jsonl", "samples.jsonl", "eval.jsonl"] where fm.fileExists(atPath: run.appendingPathComponent(file).path) {
                try fm.copyItem(at: run.appendingPathComponent(file), to: into.appendingPathComponent(file))
                try JSONLines.truncate(into.appendingPathComponent(file)) { ($0["step"] as? Int ?? 0) <= state.step }
            }
            try fm.copyItem(at: source, to: Checkpoint.folder(into, step: state.step))
        } catch {
            // Only what this call made goes.
            if made { try? fm.removeItem(at: into) } else { for item in (try? fm.contentsOfDirectory(atPath: into.path)) ?? [] { try? fm.removeItem(at: into.appendingPathComponent(item)) } }
            throw error
        }
        return into
    }
}

import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Torch
import Training

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "RL post-training from a YAML config or a preset; writes a run folder with metrics, samples, checkpoints and a report.",
        discussion: "Presets: " + Preset.allCases.map { "\($0.rawValue) (\($0.summary))" }.joined(separator: "; ") + ".")

    @Option(help: "A YAML run config (merged over the preset).") var config: String?
    @Option(help: "A built-in config to start from.") var preset = "default"
    @Option(name: .customLong("set"), help: "Override one key: section.key=value (repeatable), e.g. --set optim.lr=1e-4.") var overrides: [String] = []
    @Option(help: "The run folder (default: runs/<name>-<time>; it must not exist or be empty).") var out: String?
    @Option(help: "Continue the run in this folder from its newest intact checkpoint.") var resume: String?
    @Option(name: .customLong("from-checkpoint"), help: "With --resume: continue from this checkpoint (step-N) instead of the newest; an older one needs --out NEW, a branch that copies the run up to step N there.")
    var fromCheckpoint: String?
    @Option(name: .customLong("init-from"), help: "Start a new run from the weights of a checkpoint (RUN/checkpoints/step-N), with this command's settings: a fork (model.init_from).")
    var initFrom: String?
    @Flag(name: .customLong("print-config"), help: "Print the resolved config as commented YAML and exit.") var printConfig = false
    @Flag(help: "Print nothing but errors.") var quiet = false
    @Flag(help: "Print each step's metrics and each evaluation as a JSON line.") var json = false
    @OptionGroup var runtime: RuntimeOptions
    @Option(help: "Data-parallel ranks to start on this machine (c10d over Gloo; each rank gets an equal share of the cores unless --threads says).")
    var nproc = 1
    @Option(help: "Machines taking part (each runs this command with its own --node-rank).") var nnodes = 1
    @Option(name: .customLong("node-rank"), help: "This machine's index among --nnodes.") var nodeRank = 0
    @Option(name: .customLong("master-addr"), help: "IPv4 address of node 0, where the rendezvous store listens (only there).")
    var masterAddr = "127.0.0.1"
    @Option(name: .customLong("master-port"), help: "Port of the rendezvous store (default: a free one for a single machine, 29500 across machines).")
    var masterPort: Int?

    func validate() throws {
        guard Preset(rawValue: preset) != nil else {
            throw ValidationError("--preset '\(preset)' is not one of \(Preset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if quiet && json { throw ValidationError("--quiet and --json exclude each other") }
        if nproc < 1 || nnodes < 1 { throw ValidationError("--nproc and --nnodes must be at least 1, got \(nproc) and \(nnodes)") }
        if nodeRank < 0 || nodeRank >= nnodes { throw ValidationError("--node-rank must be in 0…\(nnodes - 1), got \(nodeRank)") }
        if let masterPort, !(nnodes > 1 ? 1...65535 : 0...65535).contains(masterPort) {
            throw ValidationError("--master-port must be a port number, got \(masterPort)")
        }
        if printConfig && nproc * nnodes > 1 { throw ValidationError("--print-config prints and exits; drop --nproc and --nnodes") }
        if resume != nil && (config != nil || !overrides.isEmpty || (out != nil && fromCheckpoint == nil) || initFrom != nil) {
            throw ValidationError("--resume continues a run with its own config.yaml; drop --config, --set, --out and --init-from (--init-from starts a new run); "
                + "--out goes with --from-checkpoint, which branches the run")
        }
        if fromCheckpoint != nil && resume == nil { throw ValidationError("--from-checkpoint picks the checkpoint --resume continues from; give --resume RUN") }
        if fromCheckpoint != nil && printConfig { throw ValidationError("--print-config with --resume prints the run's config, whichever checkpoint; drop --from-checkpoint") }
    }

    func resolved() throws -> RunConfig {
        let base = Preset(rawValue: preset)!.config
        // Absolute, so the run folder's config.yaml names the checkpoint wherever it is resumed from.
        let overrides = overrides + (initFrom.map { ["model.init_from=\(URL(fileURLWithPath: $0).standardizedFileURL.path)"] } ?? [])
        guard let config else { return try RunConfig.load(yaml: "{}", file: "--set", base: base, overrides: overrides) }
        guard let text = try? String(contentsOfFile: config, encoding: .utf8) else { throw ValidationError("--config \(config): cannot read the file") }
        return try RunConfig.load(yaml: text, file: config, base: base, overrides: overrides)
    }

    func run() throws {
        if let resume, printConfig {
            // The config the run would continue with; nothing trains.
            let url = URL(fileURLWithPath: resume).appendingPathComponent("config.yaml")
            guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw ValidationError("\(url.path): cannot read (is \(resume) a run folder?)") }
            print(try RunConfig.load(yaml: text, file: url.path, written: true).yaml(), terminator: "")
            return
        }
        let env = try DistributedEnvironment.read(ProcessInfo.processInfo.environment)
        if env != nil && fromCheckpoint != nil {
            throw ValidationError("--from-checkpoint under a launcher would branch once per rank; branch with tokenwise train --nproc N (which branches once) or without --from-checkpoint")
        }
        if env == nil && nproc * nnodes > 1 { throw ExitCode(try launch()) }
        let device = try runtime.apply()
        let dp = try env.map { try $0.join() }
        let console: TrainingRun.Console = quiet ? .quiet : json ? .json : .normal
        if let resume {
            let dir = try continuing(resume)
            try Self.runStoppable(try TrainingRun.resume(dir: dir, console: console, device: device, dataParallel: dp))
            return
        }
        let cfg = try resolved()
        if printConfig {
            if overrides.isEmpty && config == nil { print(try Preset(rawValue: preset)!.template(), terminator: "") } else { print(try cfg.yaml(), terminator: "") }
            return
        }
        // Ranks started apart (torchrun) would each stamp their own folder name.
        if let env, env.worldSize > 1, out == nil, cfg.output.dir == nil {
            throw ValidationError("a distributed run needs its folder named: pass --out (every rank the same) or set output.dir")
        }
        try Self.runStoppable(try TrainingRun.start(config: cfg, dir: URL(fileURLWithPath: runDir(cfg)), console: console, device: device, dataParallel: dp))
    }

    /// The folder `--resume` continues: the run itself, or the branch `--from-checkpoint` makes.
    func continuing(_ resume: String) throws -> URL {
        let run = URL(fileURLWithPath: resume)
        guard let name = fromCheckpoint else { return run }
        let dir = try TrainingRun.branch(run, at: name, into: out.map { URL(fileURLWithPath: $0) })
        if dir != run { FileHandle.standardError.write(Data("branched \(run.path) at \(name) into \(dir.path)\n".utf8)) }
        return dir
    }

    /// --out, else the config's output.dir, else runs/<name>-<time>.
    func runDir(_ cfg: RunConfig) -> String {
        let name = config.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent } ?? preset
        let stamp = DateFormatter()
        stamp.dateFormat = "yyyyMMdd-HHmmss"
        return out ?? cfg.output.dir ?? "runs/\(name)-\(stamp.string(from: Date()))"
    }

    /// Checks the config once, fixes the run folder for every rank, and starts this machine's ranks.
    func launch() throws -> Int32 {
        var args = Launcher.rankArguments(Array(CommandLine.arguments.dropFirst()),
                                          removing: ["--nproc", "--nnodes", "--node-rank", "--master-addr", "--master-port"])
        if let resume, fromCheckpoint != nil {
            // Branched once, here; every rank then resumes the branch.
            let dir = try continuing(resume)
            args = Launcher.rankArguments(args, removing: ["--resume", "--from-checkpoint", "--out"]) + ["--resume", dir.path]
        }
        if resume == nil {
            let cfg = try resolved()
            try cfg.validate()
            try cfg.validateDataParallel(nproc * nnodes, device: try Device(parsing: runtime.device))
            // Each machine's launcher would stamp its own folder name.
            if nnodes > 1 && out == nil && cfg.output.dir == nil {
                throw ValidationError("a run across machines needs its folder named: pass --out (the same shared folder on every machine) or set output.dir")
            }
            let dir = runDir(cfg)
            if out == nil { args += ["--out", dir] }
            // Refused here once, not by rank 0 while the others wait for it.
            // (By node 0 only: on a shared filesystem the others may find its first files.)
            if nodeRank == 0 { try TrainingRun.refuseOccupied(URL(fileURLWithPath: dir)) }
        }
        let port = masterPort ?? (nnodes > 1 ? 29500 : 0)
        return try Launcher(nproc: nproc, nnodes: nnodes, nodeRank: nodeRank, masterAddress: masterAddr, masterPort: port, arguments: args).run()
    }

    /// Runs with SIGINT and SIGTERM asking the run to stop after the step in progress (with a
    /// checkpoint); a second SIGINT quits at once. A stopped run exits with 128 + the signal.
    static func runStoppable(_ run: TrainingRun) throws {
        let sources = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if sig == SIGINT, run.stop.requested != nil { _exit(130) }   // not exit(): atexit handlers would race libtorch
                run.stop.request(sig)
                FileHandle.standardError.write(Data("\nstopping after the step in progress; press Ctrl-C again to quit at once\n".utf8))
            }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        do {
            try run.run()
        } catch let stopped as TrainingStopped {
            if run.leader { FileHandle.standardError.write(Data((stopped.description + "\n").utf8)) }
            throw ExitCode(128 + stopped.signal)
        }
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write RUN_DIR/report.html: metric curves, the before/after evaluation and token-coloured samples (self-contained).")

    @Argument(help: "A run folder written by `tokenwise train`.") var runDir: String

    func run() throws {
        print(try Report.write(run: URL(fileURLWithPath: runDir)).path)
    }
}

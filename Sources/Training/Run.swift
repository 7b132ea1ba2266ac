import Foundation
import Models
import Torch

/// A training run in its folder: `config.yaml` (resolved), `metrics.jsonl`, `samples.jsonl`,
/// `eval.jsonl`, `checkpoints/step-N/`, `model/` (merged, Hugging Face format) and `report.html`.
///
/// Everything random in a step is derived from the run's seeds and the step number (which prompts,
/// the sampler's seed), so a run resumed from a checkpoint takes exactly the steps an
/// uninterrupted one would.
public final class TrainingRun {
    public enum Console: Sendable { case normal, quiet, json }

    public let config: RunConfig
    public let dir: URL
    /// Started here (not resumed), and whether the folder itself was made here: a run that fails
    /// before its first step removes what it wrote, so the same command can be retried.
    var fresh = false, madeFolder = false
    /// Past the steps (the final eval, model and report): what was written then is kept.
    var finishing = false
    /// Said once: a finite but exploding gradient norm (the guard only stops non-finite ones).
    var warnedExplosion = false
    let pretrained: Pretrained
    let data: TaskData
    /// The RL trainer, or (for a preference objective) the preference trainer.
    let trainer: Trainer?
    let preferenceTrainer: PreferenceTrainer?
    /// The supervised trainer (objective `sft`).
    let sftTrainer: SFTTrainer?
    var optimizer: AdamW { trainer?.optimizer ?? preferenceTrainer?.optimizer ?? sftTrainer!.optimizer }
    let console: Console
    public private(set) var startStep = 0
    /// Rollout tokens and training seconds the steps so far spent (the budgets').
    var spent = (tokens: 0.0, seconds: 0.0)
    /// Whether metrics also go to TensorBoard event files (`output.report_to`).
    var tensorboard: Bool { config.output.reportTo.contains("tensorboard") }
    /// Set (by a signal handler) to stop after the step in progress.
    public let stop = StopRequest()
    /// The process group of a data-parallel run; rank 0 alone writes the run's files.
    let dp: DataParallel?
    /// What starting from `model.init_from` loaded, said when the run starts.
    var forkNotes: [String] = []
    /// Whether this process writes the run's files and prints its progress.
    public var leader: Bool { dp?.isLeader ?? true }

    /// Checks the config, loads the model and the data, and only then creates the run folder
    /// (it must not exist or be empty), so a bad input leaves nothing behind.
    /// With `dataParallel`, this process is one rank: rank 0 makes the folder and writes its files.
    public static func start(config: RunConfig, dir: URL, console: Console = .normal, device: Device = .cpu,
                             dataParallel dp: DataParallel? = nil) throws -> TrainingRun {
        try config.validate()
        try config.validateDataParallel(dp?.worldSize ?? 1, device: device)
        let fm = FileManager.default
        if dp?.isLeader ?? true { try refuseOccupied(dir) }
        let run = try TrainingRun(config: config, dir: dir, console: console, device: device, dataParallel: dp)
        guard run.leader else { return run }
        run.madeFolder = !fm.fileExists(atPath: dir.path)
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        run.fresh = true
        try Data(try config.yaml().utf8).write(to: dir.appendingPathComponent("config.yaml"), options: .atomic)
        return run
    }

    /// A new run's folder must not exist or be empty: what is there is not the run's to overwrite.
    public static func refuseOccupied(_ dir: URL) throws {
        if let items = try? FileManager.default.contentsOfDirectory(atPath: dir.path), !items.isEmpty {
            throw TrainingError("\(dir.path): the run folder exists and is not empty (continue it with --resume \(dir.path))")
        }
    }

    /// Continues the run in `dir` from its newest intact checkpoint (from the start when it has none).
    /// Every rank of a data-parallel run restores the same checkpoint; rank 0's weights are then
    /// broadcast, and rank 0 alone cuts the records after it.
    public static func resume(dir: URL, console: Console = .normal, device: Device = .cpu, dataParallel dp: DataParallel? = nil) throws -> TrainingRun {
        let url = dir.appendingPathComponent("config.yaml")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw TrainingError("\(url.path): cannot read (is \(dir.path) a run folder?)") }
        let config = try RunConfig.load(yaml: text, file: url.path, written: true)
        try config.validateDataParallel(dp?.worldSize ?? 1, device: device)
        let run = try TrainingRun(config: config, dir: dir, console: console, device: device, dataParallel: dp)
        if let (checkpoint, state) = Checkpoint.latest(run: dir, notice: { run.warn($0) }) {
            guard state.step <= config.train.steps else {
                throw TrainingError("\(checkpoint.path) is after step \(state.step), past train.steps (\(config.train.steps)) in \(url.path)")
            }
            try Checkpoint.restore(checkpoint, pretrained: run.pretrained, optimizer: run.optimizer, critic: run.trainer?.critic, prm: run.trainer?.prm)
            run.trainer?.entropyStatistics = state.entropyStatistics
            run.trainer?.stepsDone = state.step
            if let aepo = state.aepo { run.trainer?.aepo?.state = aepo }
            run.startStep = state.step
            run.spent = (state.rolloutTokens ?? 0, state.seconds ?? 0)
            run.say("resuming \(dir.path) after step \(state.step) (\(checkpoint.lastPathComponent))")
        } else {
            run.say("resuming \(dir.path): no intact checkpoint, starting from step 0")
        }
        try run.rankFailure(step: run.startStep) {
            // Every rank must continue after the same step (a rank that sees other files would diverge).
            if let dp, case let steps = try dp.gather(run.startStep), Set(steps).count > 1 {
                throw TrainingError("\(dir.path): the ranks found different checkpoints (steps \(steps.map(String.init).joined(separator: ", ")) by rank); "
                    + "every rank must see the same run folder (a shared filesystem across machines)")
            }
            try run.broadcastWeights()
        }
        guard run.leader else { return run }
        // Records of steps after the checkpoint are taken again.
        for file in ["metrics.jsonl", "samples.jsonl", "eval.jsonl"] {
            try JSONLines.truncate(dir.appendingPathComponent(file)) { ($0["step"] as? Int ?? 0) <= run.startStep }
        }
        if run.tensorboard { try TensorBoard.rebuild(run: dir) }
        return run
    }

    init(config: RunConfig, dir: URL, console: Console, device: Device, dataParallel: DataParallel? = nil) throws {
        self.config = config
        self.dir = dir
        dp = dataParallel
        // Only rank 0 reports progress; every rank still prints its warnings and errors.
        self.console = dataParallel.map { $0.isLeader ? console : .quiet } ?? console
        pretrained = try Pretrained.load(config.model.path, device: device)
        pretrained.model.gradientCheckpointing = config.train.gradientCheckpointing
        pretrained.model.fusedLogprobs = config.train.logprobs == "fused"
        if let sft = config.sft {
            data = try TaskData.loadSFT(config.data, config: sft, tokenizer: pretrained.tokenizer, chat: try pretrained.chatTemplate(),
                                        context: pretrained.model.config.maxPositionEmbeddings)
            sftTrainer = try SFTTrainer(model: pretrained.model, config: sft, lora: config.model.lora, lr: config.optim.lr, weightDecay: config.optim.weightDecay,
                                        maxGradNorm: config.optim.maxGradNorm, microBatch: config.train.microBatch, seed: config.rollout.seed)
            sftTrainer?.dataParallel = dataParallel
            (trainer, preferenceTrainer) = (nil, nil)
        } else if let objective = config.preference {
            data = try TaskData.loadPairs(config.data, objective: objective, tokenizer: pretrained.tokenizer, chat: try pretrained.chatTemplate())
            let context = pretrained.model.config.maxPositionEmbeddings, tok = pretrained.tokenizer
            for (k, pair) in (data.trainPairs + data.evalPairs).enumerated() {
                let n = tok.encode(pair.prompt).count + Swift.max(tok.encode(pair.chosen).count, tok.encode(pair.rejected).count) + 1
                guard n <= context else {
                    throw TrainingError("\(config.data.task): pair \(k) (after the split) is \(n) tokens with its longer response, more than the model's context (\(context))")
                }
            }
            let rewardModel = try config.model.rewardModel.map { try Pretrained.load($0, device: device).model }
            preferenceTrainer = try PreferenceTrainer(model: pretrained.model, tokenizer: pretrained.tokenizer, objective: objective,
                                                      lora: config.model.lora, lr: config.optim.lr, weightDecay: config.optim.weightDecay,
                                                      maxGradNorm: config.optim.maxGradNorm, seed: config.rollout.seed, rewardModel: rewardModel)
            preferenceTrainer?.dataParallel = dataParallel
            (trainer, sftTrainer) = (nil, nil)
        } else {
            let chat = try pretrained.chatTemplate()
            if config.agent != nil {
                data = try TaskData.episodes(config.data)
            } else {
                data = try TaskData.load(config.data, reward: config.reward, chat: chat)
                try Self.checkLengths(data.train + data.eval, pretrained, newTokens: Swift.max(config.rollout.maxNewTokens, config.evalSampling.maxNewTokens))
            }
            trainer = try Trainer(model: pretrained.model, tokenizer: pretrained.tokenizer, reward: data.reward, config: config, chat: chat)
            trainer?.dataParallel = dataParallel
            (preferenceTrainer, sftTrainer) = (nil, nil)
        }
        if let from = config.model.initFrom {
            forkNotes = try Checkpoint.fork(URL(fileURLWithPath: from), pretrained: pretrained, critic: trainer?.critic)
        }
        try rankFailure(step: 0) { try broadcastWeights() }
    }

    /// Rank 0's trained weights (policy and critic) on every rank: at the start and after a resume.
    func broadcastWeights() throws {
        guard let dp else { return }
        try dp.broadcast(trainer.map { $0.optimizer.parameters + ($0.critic?.parameters ?? []) } ?? optimizer.parameters)
    }

    /// Every prompt plus the longest response must fit the model's context: checked before anything
    /// is written, naming the example, rather than at the step that samples it.
    static func checkLengths(_ samples: [TaskSample], _ p: Pretrained, newTokens: Int) throws {
        let context = p.model.config.maxPositionEmbeddings
        for (k, s) in samples.enumerated() {
            let n = p.tokenizer.encode(s.prompt).count
            guard n + newTokens <= context else {
                throw TrainingError("\(s.source ?? "data: prompt \(k)"): the prompt is \(n) tokens (in the chat format); with \(newTokens) new tokens "
                    + "it exceeds the model's context (\(context)); shorten it or lower rollout.max_new_tokens")
            }
        }
    }

    /// A warning goes to standard error (so `--json` output stays parseable), unless quiet.
    /// Warnings go to stderr in every console mode: `--quiet` and `--json` silence progress, not them.
    func warn(_ line: String) {
        FileHandle.standardError.write(Data("warning: \(line)\n".utf8))
    }

    func say(_ line: String) {
        guard console == .normal else { return }
        print(line)
        fflush(nil)
    }

    /// The items (prompts or pairs) of step `s`: consecutive slices of a seeded shuffle, reshuffled each pass.
    func batch<T>(_ items: [T], step s: Int) -> [T] {
        let n = config.train.promptsPerStep
        var orders: [Int: [Int]] = [:]   // each pass's shuffle, made once
        return (s * n..<(s + 1) * n).map { i in
            let pass = i / items.count
            let order = orders[pass] ?? {
                var rng = SplitMix64(seed: config.train.seed &+ UInt64(pass) &* 0x9E37_79B9_7F4A_7C15)
                let o = Array(items.indices).shuffled(using: &rng)
                orders[pass] = o
                return o
            }()
            return items[order[i % items.count]]
        }
    }

    /// Evaluates on the held-out prompts and appends the result to eval.jsonl.
    @discardableResult
    public func evaluate(step: Int, phase: String) throws -> EvalResult? {
        // The other ranks go on to the next step and wait for rank 0 at its first collective.
        guard leader else { return nil }
        let r: EvalResult
        if let sftTrainer {
            guard !data.evalSFT.isEmpty else { return nil }
            say("eval (\(phase), step \(step)): \(data.evalSFT.count) held-out examples …")
            r = try sftTrainer.evaluate(data.evalSFT)
        } else if let preferenceTrainer {
            guard !data.evalPairs.isEmpty else { return nil }
            say("eval (\(phase), step \(step)): \(data.evalPairs.count) held-out pairs …")
            r = try preferenceTrainer.evaluate(data.evalPairs)
        } else {
            guard !data.eval.isEmpty else { return nil }
            say("eval (\(phase), step \(step)): \(data.eval.count) \(config.agent == nil ? "prompts" : "environment seeds") × \(config.eval.samples) samples …")
            if config.agent != nil {
                r = try trainer!.evaluateEpisodes(data.eval, samples: config.eval.samples, sampling: config.evalSampling)
            } else {
                r = try Training.evaluate(model: pretrained.model, tokenizer: pretrained.tokenizer, samples: data.eval, reward: data.reward,
                                      samplesPerPrompt: config.eval.samples, config: config.evalSampling, step: step) { done, total, seconds in
                    if done < total { self.say("  " + EvalResult.progressLine(done: done, of: total, seconds: seconds)) }
                }
            }
        }
        var line = try JSONLines.object(r)
        line["step"] = step
        line["phase"] = phase
        try JSONLines.append(line, to: dir.appendingPathComponent("eval.jsonl"))
        if tensorboard { try TensorBoard.append(run: dir, line: line, eval: true) }
        if console == .normal { print(r.summary.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")) }
        if console == .json { print(try JSONLines.text(line)) }
        return r
    }

    /// Trains from `startStep` to `train.steps`, with the evaluations, checkpoints and final
    /// model the config asks for.
    public func run() throws {
        do {
            try runAll()
        } catch {
            if fresh && startStep == 0 && !finishing && leader { removeOwnFiles() }
            throw error
        }
    }

    /// What a fresh run wrote before its first step: the folder when it made it, else its files.
    func removeOwnFiles() {
        let fm = FileManager.default
        if madeFolder { try? fm.removeItem(at: dir); return }
        for f in ["config.yaml", "metrics.jsonl", "samples.jsonl", "eval.jsonl"] { try? fm.removeItem(at: dir.appendingPathComponent(f)) }
        // tensorboard/ is the run's own too: the folder was empty when the run started.
        try? fm.removeItem(at: TensorBoard.file(run: dir).deletingLastPathComponent())
    }

    func runAll() throws {
        let t = config.train
        let shape = config.offline == nil ? "\(t.promptsPerStep) prompts × \(t.samplesPerPrompt) samples" : "\(t.promptsPerStep) \(config.sft == nil ? "pairs" : "examples")"
        let task = config.offline != nil ? "data \(config.data.task), " : config.agent.map { "environment \($0.environment.rawValue), " }
            ?? "task \(config.data.task) (difficulty \(config.data.difficulty)), "
        say("tokenwise train — \(config.model.path), \(config.offline ?? config.credit.method.rawValue), \(task)\(t.steps) steps × \(shape), \(Torch.threads) thread(s) → \(dir.path)")
        if leader { for w in config.warnings + data.notes { warn(w) } }
        if startStep == 0 { forkNotes.forEach(say) }
        if startStep == 0 && config.eval.before && !JSONLines.contains(dir.appendingPathComponent("eval.jsonl"), phase: "before") {
            try evaluate(step: 0, phase: "before")
        }
        try runSteps(upTo: t.steps)
        finishing = true
        guard leader else { return }
        if config.eval.after && !JSONLines.contains(dir.appendingPathComponent("eval.jsonl"), phase: "after") {
            try evaluate(step: startStep, phase: "after")
        }
        if config.output.saveModel {
            try pretrained.save(to: dir.appendingPathComponent("model"))
            say("model (merged, Hugging Face format): \(dir.appendingPathComponent("model").path)")
        }
        if config.output.report {
            let url = try Report.write(run: dir)
            say("report: \(url.path)")
        }
    }

    /// Steps `startStep + 1 … end`: train, record, evaluate and checkpoint as configured.
    func runSteps(upTo end: Int) throws {
        let t = config.train
        let schedule = LRSchedule(kind: config.optim.schedule, warmupSteps: config.optim.warmupSteps, totalSteps: t.steps,
                                  minLRRatio: config.optim.minLRRatio)
        let began = Date()
        var counter = 0
        for s in startStep..<Swift.min(end, t.steps) where budgetLeft {
            optimizer.learningRate = schedule.learningRate(base: config.optim.lr, step: s)
            let seed = config.rollout.seed &+ UInt64(s + 1) &* 0xA24B_AED4_963E_E407
            var refills = 0
            let metrics: [String: Double]
            if let sftTrainer {
                metrics = try rankFailure(step: s + 1) { try sftTrainer.step(batch(data.trainSFT, step: s), first: s * config.train.promptsPerStep) }
            } else if let preferenceTrainer {
                metrics = try preferenceTrainer.step(batch(data.trainPairs, step: s))
            } else {
                metrics = try rankFailure(step: s + 1) { try trainer!.step(batch(data.train, step: s), progress: Double(s) / Double(Swift.max(t.steps, 1)), seed: seed) { n in
                    // Extra prompts for dynamic sampling: a seeded draw per step and call.
                    refills += 1
                    var rng = SplitMix64(seed: seed ^ UInt64(refills))
                    return (0..<n).map { _ in self.data.train[Int(rng.next() % UInt64(self.data.train.count))] }
                } }
            }
            var line: [String: Any] = metrics
            line["step"] = s + 1
            // This process's peak so far (rank 0's in a data-parallel run): the cost a comparison reports.
            line["peak_memory_mb"] = Torch.peakResidentMB
            if let g = metrics["grad_norm"], g > 1e6, !warnedExplosion {
                warnedExplosion = true
                warn("step \(s + 1): the gradient norm before clipping is \(String(format: "%.3g", g)) (clipped to \(config.optim.maxGradNorm)): "
                     + "the run looks divergent; lower optim.lr (\(config.optim.lr))")
            }
            if leader { try writing(step: s + 1) {
                try JSONLines.append(line, to: dir.appendingPathComponent("metrics.jsonl"))
                if tensorboard { try TensorBoard.append(run: dir, line: line, eval: false) }
                for r in SampleRecord.wholeGroups(trainer?.lastRecords ?? [], atLeast: config.output.samplesPerStep) {
                    var rec = try JSONLines.object(r)
                    rec["step"] = s + 1
                    try JSONLines.append(rec, to: dir.appendingPathComponent("samples.jsonl"))
                }
            } }
            counter += 1
            startStep = s + 1
            spend(metrics)
            progress(step: s + 1, metrics: metrics, line: line, perStep: Date().timeIntervalSince(began) / Double(counter))
            // Every rank stops after the same step, whichever of them the signal reached first.
            let stopping = try rankFailure(step: s + 1) { try dp.map { try $0.anyStop(stop.requested) } ?? stop.requested }
            if stopping == nil, config.eval.every > 0, (s + 1) % config.eval.every == 0, s + 1 < t.steps, budgetLeft { try evaluate(step: s + 1, phase: "during") }
            if leader, config.output.checkpointEvery > 0, (s + 1) % config.output.checkpointEvery == 0 || s + 1 == t.steps || stopping != nil || !budgetLeft {
                try writing(step: s + 1) {
                    var state = Checkpoint.State(step: s + 1, seed: config.train.seed, entropyStatistics: trainer?.entropyStatistics,
                                                 rolloutTokens: spent.tokens, seconds: spent.seconds)
                    state.aepo = trainer?.aepo?.state
                    try Checkpoint.write(run: dir, state: state, pretrained: pretrained, optimizer: optimizer, critic: trainer?.critic, prm: trainer?.prm)
                }
                Checkpoint.prune(run: dir, keep: config.output.keepCheckpoints, written: s + 1)
            }
            if let stopping {
                // The other ranks wait for rank 0's checkpoint before they exit, so none is cut short.
                try rankFailure(step: s + 1) { try dp?.group.barrier() }
                let saved = config.output.checkpointEvery > 0 ? ", checkpoint step-\(s + 1) written" : " (output.checkpoint_every is 0: no checkpoint)"
                throw TrainingStopped(signal: stopping, description: "stopped by \(StopRequest.name(stopping)) after step \(s + 1)\(saved); "
                    + "continue with: \(resumeCommand)")
            }
        }
    }

    /// What survived, for the messages of a run that cannot go on.
    var lastCheckpoint: String {
        Checkpoint.latest(run: dir, notice: { _ in }).map { "the last complete checkpoint is \($0.0.path) (step \($0.1.step))" } ?? "no checkpoint was completed"
    }

    /// The command that continues this run (with its number of ranks).
    var resumeCommand: String { "tokenwise train --resume \(dir.path)" + (dp.map { " --nproc \($0.worldSize)" } ?? "") }

    /// A collective that failed (another rank died or cannot be reached) becomes an error that says
    /// so and how to continue.
    func rankFailure<R>(step: Int, _ body: () throws -> R) throws -> R {
        do { return try body() } catch let e as DistributedError {
            throw TrainingError("step \(step): \(e.message). Another rank exited or cannot be reached; \(lastCheckpoint). "
                                + "Continue with: \(resumeCommand)")
        }
    }

    /// Runs a write of step `step`'s files; a full disk becomes an error that says what survived
    /// (the newest complete checkpoint) and how to continue once there is room.
    func writing(step: Int, _ body: () throws -> Void) throws {
        do { try body() } catch {
            guard FileErrors.isDiskFull(error) else { throw error }
            let detail = FileErrors.path(error).map { "\($0): \(FileErrors.reason(error))" } ?? "\(error)"
            throw TrainingError("the disk is full: step \(step)'s files could not be written (\(detail)); \(lastCheckpoint). "
                                + "Free space, then continue with: \(resumeCommand)")
        }
    }
}

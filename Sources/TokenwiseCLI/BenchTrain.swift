import ArgumentParser
import Foundation
import Models
import Rollout
import Torch
import Training

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time GRPO steps (rollout + reward + credit + loss + optimizer) on a procedural task; --critic adds PPO's.",
        discussion: "Defaults: 8 prompts × 8 samples, 64 new tokens, LoRA r=8 on q/k/v/o, the arithmetic task."
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var renamed: RenamedTokenLimit
    @Option(help: "Prompts per step.") var prompts = 8
    @Option(help: "Samples per prompt.") var samples = 8
    @Option(name: .customLong("max-new-tokens"), help: "Most new tokens per sample.") var newTokens = 64
    @Option(help: "Steps to time.") var steps = 2
    @Option(name: .customLong("micro-batch"), help: "Rows per forward/backward (0: all).") var microBatch = 8
    @Option(help: "Then the same steps data-parallel on this many local ranks (c10d over Gloo), against one process in the same run.")
    var nproc = 1
    @Flag(help: "Then the same steps with PPO's critic (GAE + a LoRA value model) on a fresh model, and the cost against the first.") var critic = false
    @Flag(name: .customLong("gradient-checkpointing"), help: "Recompute each layer in the backward instead of keeping its activations.")
    var gradientCheckpointing = false
    @Flag(name: .customLong("fixed-length"), help: "Every response runs to --max-new-tokens (end tokens are ignored).") var fixedLength = false
    @Option(help: "Per-token logprobs: fused (the backward recomputes each chunk's logits) or unfused (autograd keeps them), as train.logprobs.")
    var logprobs = "unfused"
    @Flag(name: .customLong("compare-memory"), help: "Run the steps keeping every activation, with fused logprobs, and with gradient checkpointing, each in its own process (time and peak memory).")
    var compareMemory = false
    @Flag(help: "Time every response length × group size of --sweep-lengths and --sweep-groups, each point in its own process, with --fixed-length.")
    var sweep = false
    @Option(name: .customLong("sweep-lengths"), help: "Response lengths of --sweep.") var sweepLengths = "64,256,1024"
    @Option(name: .customLong("sweep-groups"), help: "Group sizes (samples per prompt) of --sweep.") var sweepGroups = "4,8,16"

    func validate() throws {
        for (name, v, most) in [("--prompts", prompts, 4096), ("--samples", samples, RunConfig.Limits.samples), ("--max-new-tokens", newTokens, 1 << 20),
                                ("--steps", steps, 100_000)] where !(1...most).contains(v) {
            throw ValidationError("\(name) must be 1…\(most), got \(v)")
        }
        guard (1...64).contains(nproc) else { throw ValidationError("--nproc must be 1…64, got \(nproc)") }
        if nproc > prompts { throw ValidationError("--nproc (\(nproc)) must be at most --prompts (\(prompts)): each rank samples whole prompts") }
        if !["fused", "unfused"].contains(logprobs) { throw ValidationError("--logprobs must be fused or unfused, got '\(logprobs)'") }
        let separate = [(nproc > 1, "--nproc"), (critic, "--critic"), (compareMemory, "--compare-memory"), (sweep, "--sweep")].filter(\.0).map(\.1)
        if separate.count > 1 { throw ValidationError("\(separate.joined(separator: " and ")) are separate comparisons; ask for one") }
        for (name, list, most) in [("--sweep-lengths", sweepLengths, 1 << 20), ("--sweep-groups", sweepGroups, RunConfig.Limits.samples)] {
            guard let values = Self.integers(list), !values.isEmpty, values.allSatisfy({ (1...most).contains($0) }) else {
                throw ValidationError("\(name) must be integers in 1…\(most) separated by commas, got '\(list)'")
            }
        }
        guard microBatch >= 0 else { throw ValidationError("--micro-batch must be >= 0 (0: all rows), got \(microBatch)") }
    }

    func run() throws {
        if let env = try DistributedEnvironment.read(ProcessInfo.processInfo.environment) { return try rank(env) }
        let device = try runtime.apply()
        if nproc > 1 { return try dataParallel(device: device) }
        if compareMemory { return try runMemoryComparison() }
        if sweep { return try runSweep() }
        if let path = ProcessInfo.processInfo.environment["TOKENWISE_BENCH_RESULT"] {   // a point of a comparison
            return try JSONEncoder().encode(try phase(critic: false, device: device)).write(to: URL(fileURLWithPath: path))
        }
        var baseline: Phase? = nil
        for withCritic in critic ? [false, true] : [false] {
            let phase = try self.phase(critic: withCritic, device: device)
            if let baseline {
                print("critic cost: \(fmt(phase.stepSeconds, 1)) s a step against \(fmt(baseline.stepSeconds, 1)) s without "
                    + "(\(fmt(phase.stepSeconds / baseline.stepSeconds, 2))×, same run, steps after the first); resident memory "
                    + "\(fmt(phase.residentMB, 0)) MB against \(fmt(baseline.residentMB, 0)) MB; the critic's adapters, head and AdamW moments "
                    + "\(fmt(phase.criticMB, 1)) MB")
            }
            baseline = baseline ?? phase
        }
    }

    var fused: Bool { logprobs == "fused" }

    struct Phase: Codable {
        var stepSeconds: Double, residentMB: Double, criticMB: Double
        var peakMB = 0.0, rolloutSeconds = 0.0, trainSeconds = 0.0, tokensPerStep = 0.0
    }

    /// One process, then `nproc` ranks started as `train --nproc` starts them; rank 0 reports its
    /// step time through a file.
    func dataParallel(device: Device) throws {
        let one = try phase(critic: false, device: device)
        let result = FileManager.default.temporaryDirectory.appendingPathComponent("tw-bench-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: result) }
        setenv("TOKENWISE_BENCH_RESULT", result.path, 1)
        fflush(nil)   // the one-process lines first: the ranks write to the same terminal
        let args = Launcher.rankArguments(Array(CommandLine.arguments.dropFirst()), removing: ["--nproc"])
        let status = try Launcher(nproc: nproc, nnodes: 1, nodeRank: 0, masterAddress: "127.0.0.1", masterPort: 0, arguments: args).run()
        guard status == 0, let data = FileManager.default.contents(atPath: result.path) else { throw ExitCode(status == 0 ? 1 : status) }
        let ranks = try JSONDecoder().decode(Phase.self, from: data)
        print("data-parallel: \(fmt(ranks.stepSeconds, 2)) s a step on \(nproc) ranks against \(fmt(one.stepSeconds, 2)) s in one process "
            + "(\(fmt(one.stepSeconds / ranks.stepSeconds, 2))× the speed, same run, steps after the first; the same global batch)")
    }

    /// One rank of `dataParallel`.
    func rank(_ env: DistributedEnvironment) throws {
        let device = try runtime.apply()
        let dp = try env.join()
        let phase = try self.phase(critic: false, device: device, dp: dp)
        if dp.isLeader, let path = ProcessInfo.processInfo.environment["TOKENWISE_BENCH_RESULT"] {
            try JSONEncoder().encode(phase).write(to: URL(fileURLWithPath: path))
        }
    }

    /// `steps` steps on a freshly loaded model: GRPO, or GAE with PPO's critic.
    func phase(critic withCritic: Bool, device: Device, dp: DataParallel? = nil) throws -> Phase {
        let p = try modelOptions.load(device: device)
        var cfg = RunConfig()
        cfg.credit = withCritic ? .gae(.init(whiten: true)) : .grpo(.init())
        cfg.critic = withCritic ? .init() : nil
        cfg.train.samplesPerPrompt = samples
        cfg.train.microBatch = microBatch
        cfg.rollout = SamplingConfig(temperature: 1, maxNewTokens: newTokens, ignoreEos: fixedLength, seed: 1)
        p.model.fusedLogprobs = fused
        p.model.gradientCheckpointing = gradientCheckpointing
        let chat = try p.chatTemplate()
        let tasks = try ProceduralTask.arithmetic.samples(count: prompts * steps, difficulty: 1, seed: 7).map {
            TaskSample(prompt: chat.render([ChatMessage(role: "user", content: $0.prompt)], addGenerationPrompt: true), answer: $0.answer)
        }
        let trainer = try Trainer(model: p.model, tokenizer: p.tokenizer, reward: ProceduralTask.arithmetic.reward, config: cfg)
        trainer.dataParallel = dp
        let print: (String) -> Void = { line in if dp?.isLeader ?? true { Swift.print(line) } }
        print("tokenwise bench train — \(withCritic ? "GAE + critic (PPO)" : "GRPO"), \(prompts) prompts × \(samples) samples, ≤\(newTokens) new tokens, LoRA, "
            + "micro-batch \(microBatch == 0 ? "all" : String(microBatch)), \(Torch.threads) thread(s)" + (gradientCheckpointing ? ", gradient checkpointing" : "") + (dp.map { ", \($0.worldSize) ranks" } ?? ""))
        var times = [Double](), parts = [(Double, Double, Double)]()
        for s in 0..<steps {
            let m = try trainer.step(Array(tasks[(s * prompts)..<((s + 1) * prompts)]))
            times.append(m["step_seconds"]!)
            parts.append((m["rollout_seconds"]!, m["train_seconds"]!, m["response_length"]! * Double(prompts * samples)))
            print("step \(s + 1): \(fmt(m["step_seconds"]!, 1)) s (rollout \(fmt(m["rollout_seconds"]!, 1)) s, train \(fmt(m["train_seconds"]!, 1)) s), "
                + "reward \(fmt(m["reward_mean"]!, 3)), response \(fmt(m["response_length"]!, 1)) tokens"
                + (withCritic ? "; critic: values \(fmt(m["inputs_seconds"] ?? .nan, 1)) s, update \(fmt(m["critic_seconds"] ?? .nan, 1)) s (in train), vf_loss \(fmt(m["critic/vf_loss"] ?? .nan, 4))" : ""))
        }
        let timed = times.count > 1 ? Array(times.dropFirst()) : times, rest = parts.count > 1 ? Array(parts.dropFirst()) : parts
        let criticMB = Double(trainer.critic?.parameters.reduce(0) { $0 + $1.count } ?? 0) * 4 * 3 / 1_048_576
        let n = Double(rest.count)
        return Phase(stepSeconds: timed.reduce(0, +) / Double(timed.count), residentMB: Torch.residentMB, criticMB: criticMB,
                     peakMB: Torch.peakResidentMB, rolloutSeconds: rest.map(\.0).reduce(0, +) / n,
                     trainSeconds: rest.map(\.1).reduce(0, +) / n, tokensPerStep: rest.map(\.2).reduce(0, +) / n)
    }
}

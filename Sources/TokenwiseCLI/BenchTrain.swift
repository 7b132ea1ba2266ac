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

    func validate() throws {
        for (name, v, most) in [("--prompts", prompts, 4096), ("--samples", samples, RunConfig.Limits.samples), ("--max-new-tokens", newTokens, 1 << 20),
                                ("--steps", steps, 100_000)] where !(1...most).contains(v) {
            throw ValidationError("\(name) must be 1…\(most), got \(v)")
        }
        guard (1...64).contains(nproc) else { throw ValidationError("--nproc must be 1…64, got \(nproc)") }
        if nproc > 1 && critic { throw ValidationError("--nproc and --critic are separate comparisons; ask for one") }
        if nproc > prompts { throw ValidationError("--nproc (\(nproc)) must be at most --prompts (\(prompts)): each rank samples whole prompts") }
        guard microBatch >= 0 else { throw ValidationError("--micro-batch must be >= 0 (0: all rows), got \(microBatch)") }
    }

    func run() throws {
        if let env = try DistributedEnvironment.read(ProcessInfo.processInfo.environment) { return try rank(env) }
        let device = try runtime.apply()
        if nproc > 1 { return try dataParallel(device: device) }
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

    struct Phase: Codable { var stepSeconds: Double; var residentMB: Double; var criticMB: Double }

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
        cfg.rollout = SamplingConfig(temperature: 1, maxNewTokens: newTokens, seed: 1)
        let chat = try p.chatTemplate()
        let tasks = try ProceduralTask.arithmetic.samples(count: prompts * steps, difficulty: 1, seed: 7).map {
            TaskSample(prompt: chat.render([ChatMessage(role: "user", content: $0.prompt)], addGenerationPrompt: true), answer: $0.answer)
        }
        let trainer = try Trainer(model: p.model, tokenizer: p.tokenizer, reward: ProceduralTask.arithmetic.reward, config: cfg)
        trainer.dataParallel = dp
        let print: (String) -> Void = { line in if dp?.isLeader ?? true { Swift.print(line) } }
        print("tokenwise bench train — \(withCritic ? "GAE + critic (PPO)" : "GRPO"), \(prompts) prompts × \(samples) samples, ≤\(newTokens) new tokens, LoRA, "
            + "micro-batch \(microBatch == 0 ? "all" : String(microBatch)), \(Torch.threads) thread(s)" + (dp.map { ", \($0.worldSize) ranks" } ?? ""))
        var times = [Double]()
        for s in 0..<steps {
            let m = try trainer.step(Array(tasks[(s * prompts)..<((s + 1) * prompts)]))
            times.append(m["step_seconds"]!)
            print("step \(s + 1): \(fmt(m["step_seconds"]!, 1)) s (rollout \(fmt(m["rollout_seconds"]!, 1)) s, train \(fmt(m["train_seconds"]!, 1)) s), "
                + "reward \(fmt(m["reward_mean"]!, 3)), response \(fmt(m["response_length"]!, 1)) tokens"
                + (withCritic ? "; critic: values \(fmt(m["inputs_seconds"] ?? .nan, 1)) s, update \(fmt(m["critic_seconds"] ?? .nan, 1)) s (in train), vf_loss \(fmt(m["critic/vf_loss"] ?? .nan, 4))" : ""))
        }
        let timed = times.count > 1 ? Array(times.dropFirst()) : times
        let criticMB = Double(trainer.critic?.parameters.reduce(0) { $0 + $1.count } ?? 0) * 4 * 3 / 1_048_576
        return Phase(stepSeconds: timed.reduce(0, +) / Double(timed.count), residentMB: Torch.residentMB, criticMB: criticMB)
    }
}

import ArgumentParser
import Foundation
import Models
import Rollout
import Torch
import Training

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time GRPO steps (rollout + reward + credit + loss + optimizer) on a procedural task.",
        discussion: "Defaults: 8 prompts × 8 samples, 64 new tokens, LoRA r=8 on q/k/v/o, the arithmetic task."
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @Option(help: "Prompts per step.") var prompts = 8
    @Option(help: "Samples per prompt.") var samples = 8
    @Option(name: .customLong("new-tokens"), help: "Most new tokens per sample.") var newTokens = 64
    @Option(help: "Steps to time.") var steps = 2
    @Option(name: .customLong("micro-batch"), help: "Rows per forward/backward (0: all).") var microBatch = 8

    func validate() throws {
        for (name, v, most) in [("--prompts", prompts, 4096), ("--samples", samples, RunConfig.Limits.samples), ("--new-tokens", newTokens, 1 << 20),
                                ("--steps", steps, 100_000)] where !(1...most).contains(v) {
            throw ValidationError("\(name) must be 1…\(most), got \(v)")
        }
        guard microBatch >= 0 else { throw ValidationError("--micro-batch must be >= 0 (0: all rows), got \(microBatch)") }
    }

    func run() throws {
        let device = try runtime.apply()
        let p = try modelOptions.load(device: device)
        var cfg = RunConfig()
        cfg.credit = .grpo(.init())
        cfg.train.samplesPerPrompt = samples
        cfg.train.microBatch = microBatch
        cfg.rollout = SamplingConfig(temperature: 1, maxNewTokens: newTokens, seed: 1)
        let chat = try p.chatTemplate()
        let tasks = try ProceduralTask.arithmetic.samples(count: prompts * steps, difficulty: 1, seed: 7).map {
            TaskSample(prompt: chat.render([ChatMessage(role: "user", content: $0.prompt)], addGenerationPrompt: true), answer: $0.answer)
        }
        let trainer = try Trainer(model: p.model, tokenizer: p.tokenizer, reward: ProceduralTask.arithmetic.reward, config: cfg)
        print("tokenwise bench train — GRPO, \(prompts) prompts × \(samples) samples, ≤\(newTokens) new tokens, LoRA, micro-batch \(microBatch == 0 ? "all" : String(microBatch)), \(Torch.threads) thread(s)")
        for s in 0..<steps {
            let m = try trainer.step(Array(tasks[(s * prompts)..<((s + 1) * prompts)]))
            print("step \(s + 1): \(fmt(m["step_seconds"]!, 1)) s (rollout \(fmt(m["rollout_seconds"]!, 1)) s, train \(fmt(m["train_seconds"]!, 1)) s), "
                + "reward \(fmt(m["reward_mean"]!, 3)), response \(fmt(m["response_length"]!, 1)) tokens")
        }
    }
}

import ArgumentParser
import Foundation
import Models
import Rollout
import Torch

struct BenchRollout: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Rollout speed: prefill and decode tokens/s and peak memory; --compare-naive also times a no-KV-cache recompute.",
        discussion: "Every sequence runs to --max-new-tokens (end tokens are ignored) with temperature 1 sampling."
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var renamed: RenamedTokenLimit
    @Option(help: "Sequences decoded together.") var batch = 8
    @Option(name: .customLong("max-new-tokens"), help: "Tokens generated per sequence.") var newTokens = 128
    @Flag(name: .customLong("compare-naive"), help: "Also time decoding that recomputes the whole sequence every step.") var compareNaive = false
    @Option(help: "Rollout weights: fp32, or bf16 / int8 (a low-precision copy, timed against fp32 in the same run, with its logprob error).")
    var weights = "fp32"
    @Option(name: .customLong("probe-seconds"), help: "Seconds the memory-bandwidth probe reads (CPU only).") var probeSeconds = 2.0
    @Option(name: .customLong("lora-rank"), help: "With --weights: attach LoRA adapters of this rank (q/k/v/o, random B) and time the copy with them merged against applied on top.")
    var loraRank = 0

    func validate() throws {
        guard batch > 0, newTokens > 0 else { throw ValidationError("--batch and --max-new-tokens must be positive") }
        guard batch <= 4096 else { throw ValidationError("--batch must be at most 4096, got \(batch)") }
        guard probeSeconds > 0, probeSeconds <= 600 else { throw ValidationError("--probe-seconds must be in (0, 600], got \(probeSeconds)") }
        guard (0...256).contains(loraRank) else { throw ValidationError("--lora-rank must be 0…256, got \(loraRank)") }
        guard WeightPrecision(rawValue: weights) != nil else {
            throw ValidationError("--weights must be \(WeightPrecision.allCases.map(\.rawValue).joined(separator: ", ")), got '\(weights)'")
        }
    }

    func run() throws {
        let device = try runtime.apply()
        let p = try modelOptions.load(device: device)
        if loraRank > 0 { try Self.attachRandomLoRA(p.model, rank: loraRank) }
        let questions = ["What is the capital of France?", "Write a haiku about the sea.", "Explain photosynthesis briefly.",
                         "What is 17 times 23?", "Name three prime numbers.", "How do airplanes fly?",
                         "Give me a synonym for happy.", "What causes rain?"]
        let chat = try p.chatTemplate()
        let prompts = (0..<batch).map { p.tokenizer.encode(chat.render([ChatMessage(role: "user", content: questions[$0 % questions.count])], addGenerationPrompt: true)) }
        let sampler = Sampler(model: p.model, tokenizer: p.tokenizer)
        let config = SamplingConfig(temperature: 1, maxNewTokens: newTokens, ignoreEos: true, seed: 0)
        _ = try sampler.sample(prompts: [prompts[0]], config: SamplingConfig(temperature: 1, maxNewTokens: 4, ignoreEos: true))  // warm-up
        let out = try sampler.sample(prompts: prompts, config: config)
        let promptTokens = prompts.reduce(0) { $0 + $1.count }
        let decoded = out.reduce(0) { $0 + $1.tokens.count }
        let prefillRate = Double(promptTokens) / sampler.lastPrefillSeconds
        let decodeRate = Double(decoded) / sampler.lastDecodeSeconds
        print("tokenwise bench rollout — \(p.source), batch \(batch), \(newTokens) new tokens, \(Torch.threads) thread(s), \(device)")
        print("prefill: \(promptTokens) tokens in \(fmt(sampler.lastPrefillSeconds, 3)) s = \(fmt(prefillRate, 0)) tokens/s")
        print("decode:  \(decoded) tokens in \(fmt(sampler.lastDecodeSeconds, 3)) s = \(fmt(decodeRate, 1)) tokens/s")
        if device == .cpu { Self.printBound(model: p.model, batch: batch, decodeRate: decodeRate, seconds: probeSeconds) }
        print("peak resident memory: \(fmt(Torch.peakResidentMB, 0)) MB")
        if let precision = WeightPrecision(rawValue: weights), precision != .fp32 {
            try compareCopy(precision, model: p.model, sampler: sampler, prompts: prompts, fp32: out, fp32Rate: decodeRate, config: config)
        }
        guard compareNaive else { return }
        // The same decoding without a cache: every step runs the whole (left-padded) sequence again.
        let width = prompts.map(\.count).max()!
        var rows = prompts.map { Array(repeating: 0, count: width - $0.count) + $0 }
        var maskRows = prompts.map { Array(repeating: Int64(0), count: width - $0.count) + Array(repeating: Int64(1), count: $0.count) }
        let g = try Generator(seed: 0, device: device)
        let start = DispatchTime.now().uptimeNanoseconds
        try withTorchErrors {
            try withNoGrad {
                for _ in 0..<newTokens {
                    let t = rows[0].count
                    let ids = Tensor(rows.flatMap { $0.map(Int64.init) }, shape: [batch, t]).to(device)
                    let mask = Tensor(maskRows.flatMap { $0 }, shape: [batch, t]).to(device)
                    let logits = try p.model(ids, attentionMask: mask, positions: CausalLM.positions(fromMask: mask)).select(dim: 1, index: t - 1)
                    let next = try logits.to(dtype: .float32).softmax(dim: -1).multinomial(numSamples: 1, generator: g).int64s()
                    for i in 0..<batch { rows[i].append(Int(next[i])); maskRows[i].append(1) }
                }
            }
        }
        let naive = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let naiveRate = Double(batch * newTokens) / naive
        print("naive (no KV cache): \(batch * newTokens) tokens in \(fmt(naive, 3)) s = \(fmt(naiveRate, 1)) tokens/s; KV cache decode is \(fmt(decodeRate / naiveRate, 2))× faster")
    }
}

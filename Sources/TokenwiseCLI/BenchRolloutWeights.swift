import CTorch
import Foundation
import Models
import Rollout
import Torch

extension BenchRollout {
    /// Decodes the same batch with a `precision` copy of the weights (same seeds), prints its
    /// decode rate against the float32 run's, the copy's size, and how far its numbers are from
    /// float32's on the float32 run's own sequences: mean |logprob difference| of the sampled
    /// tokens and the share of positions whose greedy token agrees.
    func compareCopy(_ precision: WeightPrecision, model: CausalLM, sampler: Sampler, prompts: [[Int]], fp32: [Completion],
                     fp32Rate: Double, config: SamplingConfig) throws {
        var lowConfig = config
        lowConfig.weights = precision
        var warm = lowConfig
        warm.maxNewTokens = 4
        // With adapters: folded into the copy, or kept apart and added in float32 at every layer.
        for merges in model.lora == nil ? [true] : [true, false] {
            let copy = try RolloutWeights(model, precision: precision, mergesLoRA: merges)
            let low = Sampler(model: model, tokenizer: sampler.tokenizer, weights: copy)
            _ = try low.sample(prompts: [prompts[0]], config: warm)
            let out = try low.sample(prompts: prompts, config: lowConfig)
            let rate = Double(out.reduce(0) { $0 + $1.tokens.count }) / low.lastDecodeSeconds
            let label = precision.rawValue + (model.lora == nil ? "" : merges ? ", LoRA merged" : ", LoRA on top")
            print("\(label) copy: \(fmt(Double(copy.bytes) / 1e6, 1)) MB (float32 matrices: \(fmt(Double(Self.floatBytes(model)) / 1e6, 1)) MB)")
            print("decode \(label): \(fmt(rate, 1)) tokens/s = \(fmt(rate / fp32Rate, 2))× float32's \(fmt(fp32Rate, 1)) tokens/s (same run, same seeds)")
            let (diff, agree, n) = try agreement(model: model, copy: copy, prompts: prompts, completions: fp32)
            print("  against float32 on its \(n) sampled tokens: mean |logprob difference| \(fmt(diff, 5)), greedy-token agreement \(fmt(100 * agree, 2))%")
        }
    }

    /// LoRA adapters of `rank` on q/k/v/o with B drawn small and non-zero, as after some training.
    static func attachRandomLoRA(_ model: CausalLM, rank: Int) throws {
        let lora = try LoRA(attachingTo: model, config: .init(rank: rank, alpha: Double(2 * rank)), seed: 1)
        let g = try Generator(seed: 2, device: model.device)
        try withTorchErrors {
            withNoGrad { for ad in lora.adapters.values { ad.b.copy(from: Tensor.randn(ad.b.shape, generator: g, device: model.device) * 0.01) } }
        }
    }

    static func floatBytes(_ model: CausalLM) -> Int {
        model.weights.values.reduce(0) { $0 + ($1.rank == 2 ? $1.count * 4 : 0) }
    }

    /// Teacher-forces each prompt + completion through float32 and the copy: the mean |Δ logprob|
    /// of the completion's tokens, the share of those positions whose argmax agrees, and their count.
    func agreement(model: CausalLM, copy: RolloutWeights, prompts: [[Int]], completions: [Completion]) throws -> (Double, Double, Int) {
        var diff = 0.0, agree = 0, n = 0
        try withTorchErrors {
            try withNoGrad {
                for c in completions {
                    let prompt = prompts[c.promptIndex], seq = prompt + c.tokens
                    let ids = Tensor(seq.map(Int64.init), shape: [1, seq.count]).to(model.device)
                    let target = Tensor(c.tokens.map(Int64.init), shape: [c.tokens.count, 1]).to(model.device)
                    func scores(_ logits: Tensor) throws -> ([Double], [Int64]) {
                        let lp = logits.squeezed(dim: 0).narrowed(dim: 0, start: prompt.count - 1, length: c.tokens.count).to(dtype: .float32).logSoftmax(dim: -1)
                        return (try lp.gather(dim: 1, index: target).doubles(), try lp.argmax(dim: -1).int64s())
                    }
                    let (a, ga) = try scores(try model(ids))
                    let (b, gb) = try scores(try model.using(copy) { try model(ids) })
                    diff += zip(a, b).reduce(0) { $0 + abs($1.0 - $1.1) }
                    agree += zip(ga, gb).filter { $0 == $1 }.count
                    n += a.count
                }
            }
        }
        return (diff / Double(Swift.max(n, 1)), Double(agree) / Double(Swift.max(n, 1)), n)
    }
}

extension BenchRollout {
    /// Bytes of weights one decoding step reads: every matrix once (a tied embedding is the
    /// vocabulary projection; an untied one is only looked up, a row a token).
    static func decodeBytes(_ model: CausalLM) -> Int {
        let untied = model.weights["lm_head.weight"] != nil
        return model.weights.filter { $0.value.rank == 2 && !(untied && $0.key == "model.embed_tokens.weight") }
            .reduce(0) { $0 + $1.value.count * $1.value.dtype.byteSize }
    }

    /// Decode against what memory bandwidth allows: a step streams the weights once for the whole
    /// batch, so the bound is batch × bandwidth / weight bytes, with the bandwidth measured now by
    /// reading a buffer of that size on the same threads.
    static func printBound(model: CausalLM, batch: Int, decodeRate: Double, seconds: Double) {
        let bytes = decodeBytes(model)
        let gbps = tw_bench_read_bandwidth(Int32(Torch.threads), Int64(bytes), seconds)
        guard gbps > 0 else { return print("bandwidth probe: could not allocate \(bytes) bytes") }
        let bound = Double(batch) * gbps * 1e9 / Double(bytes)
        print("bandwidth probe: \(fmt(gbps, 1)) GB/s reading \(fmt(Double(bytes) / 1e6, 0)) MB (the weights a step reads) on \(Torch.threads) thread(s); "
            + "bound at batch \(batch): \(fmt(bound, 1)) tokens/s; decode is \(fmt(100 * decodeRate / bound, 1))% of it")
    }
}

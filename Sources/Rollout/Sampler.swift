import Foundation
import Models
import Torch

/// Batched sampling with a KV cache. Prompts (any lengths) are left-padded and prefilled once;
/// each prompt's cache rows are then copied to its `n` samples. Decoding runs one step for all
/// live sequences at a time, and finished sequences leave the batch. Every sequence draws from its
/// own generator seeded by (seed, prompt, sample), so results do not depend on batch composition.
public final class Sampler {
    /// How often each prompt already came earlier in the step, outside this call: a data-parallel
    /// rank's share starts past the other ranks' prompts, and a repeat of one of theirs must draw
    /// the stream the same repeat would draw in one process. Empty by default.
    public var priorRepeats: [[Int]: Int] = [:]
    public let model: CausalLM
    public let tokenizer: Tokenizer
    /// Tokens run through the model so far (prompt tokens at prefill, one per live row per step).
    public internal(set) var forwardTokens = 0
    /// Wall-clock seconds of the last `sample` call's prefill and decode phases.
    public internal(set) var lastPrefillSeconds = 0.0, lastDecodeSeconds = 0.0

    /// The rollout engine's low-precision copy of the model (nil: sample with the model's own
    /// float32 weights). `SamplingConfig.weights` must name its precision.
    public var weights: RolloutWeights?

    public init(model: CausalLM, tokenizer: Tokenizer, weights: RolloutWeights? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        self.weights = weights
    }

    /// `body` without autograd, on the rollout engine's weights.
    func engine<T>(_ body: () throws -> T) throws -> T {
        try model.using(weights) { try withNoGrad(body) }
    }

    /// The ids that end a sequence under `config`: the tokenizer's end ids (unless ignored) and its own.
    func stopIds(_ config: SamplingConfig) -> Set<Int> {
        Set((config.ignoreEos ? [] : tokenizer.eosIds) + config.stopTokenIds)
    }

    /// The new order of `count` rows when the rows at `gone` leave: each vacated slot below the new
    /// size takes one of the last rows that stay, so only those rows move.
    static func fillOrder(_ count: Int, removing gone: Set<Int>) -> [Int] {
        let kept = count - gone.count
        var movers = (kept..<count).filter { !gone.contains($0) }.makeIterator()
        return (0..<kept).map { gone.contains($0) ? movers.next()! : $0 }
    }

    /// A config that asks for a precision this sampler does not hold is refused, never sampled
    /// with other weights.
    func checkWeights(_ config: SamplingConfig) throws {
        guard config.engine == .local else { throw RolloutError("rollout: 'engine' is remote: this process's sampler does not sample for it") }
        let held = weights?.precision ?? .fp32
        guard config.weights == held else {
            throw RolloutError("rollout: 'weights' is \(config.weights.rawValue) but this sampler holds \(weights == nil ? "the model's float32 weights" : "a \(held.rawValue) copy")"
                + " (the trainer makes the copy from rollout.weights; evaluation samples with the learner's float32 weights)")
        }
    }

    /// The seed of one sequence's generator (SplitMix64 over the three numbers).
    public static func seed(_ base: UInt64, _ a: Int, _ b: Int) -> UInt64 {
        var z = base &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(truncatingIfNeeded: a &+ 1) &+ 0xBF58_476D_1CE4_E5B9 &* UInt64(truncatingIfNeeded: b &+ 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a over the prompt's token ids.
    static func contentKey(_ tokens: [Int]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for t in tokens { h = (h ^ UInt64(truncatingIfNeeded: t)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// One sequence in flight.
    final class Row {
        let promptIndex: Int, sampleIndex: Int
        let generator: Generator
        /// Tokens before this row's own (a tree node's ancestors), for stop strings and text.
        var prefix: [Int] = []
        var tokens: [Int] = [], samplingLogprobs: [Double] = [], logprobs: [Double] = [], entropies: [Double] = [], temperatures: [Double] = []
        var finish: FinishReason?
        var stopAt: String.Index?
        var text = ""

        init(_ p: Int, _ s: Int, _ g: Generator) { promptIndex = p; sampleIndex = s; generator = g }
    }

    func check(_ prompts: [[Int]], n: Int, _ config: SamplingConfig) throws {
        try config.validate()
        try checkWeights(config)
        guard !prompts.isEmpty else { throw RolloutError("rollout: the prompt list is empty") }
        guard n >= 1 else { throw RolloutError("rollout: n (samples per prompt) must be at least 1, got \(n)") }
        if let empty = prompts.firstIndex(where: \.isEmpty) { throw RolloutError("rollout: prompt \(empty) is empty") }
        let longest = prompts.map(\.count).max()!
        let context = model.config.maxPositionEmbeddings
        guard longest + config.maxNewTokens <= context else {
            throw RolloutError("rollout: the longest prompt (\(longest) tokens) + max_new_tokens (\(config.maxNewTokens)) exceeds the model's context (\(context))")
        }
        if let bad = prompts.flatMap({ $0 }).first(where: { !(0..<model.config.vocabSize).contains($0) }) {
            throw RolloutError("rollout: token id \(bad) is outside the vocabulary (\(model.config.vocabSize))")
        }
    }

    /// `n` completions of every prompt, ordered by prompt then sample.
    public func sample(prompts: [[Int]], n: Int = 1, config: SamplingConfig,
                       schedule: TemperatureSchedule = ConstantTemperature()) throws -> [Completion] {
        try check(prompts, n: n, config)
        let device = model.device
        // A sequence's stream depends on its prompt's content (and which repeat of that prompt it is)
        // and its sample index, never on the other prompts in the batch or their positions.
        var occurrences = priorRepeats
        let rows = try prompts.indices.flatMap { p in
            let repeatIndex = occurrences[prompts[p], default: 0]
            occurrences[prompts[p]] = repeatIndex + 1
            let key = Sampler.contentKey(prompts[p]) &+ UInt64(repeatIndex) &* 0x2545_F491_4F6C_DD1D
            return try (0..<n).map { s in Row(p, s, try Generator(seed: Sampler.seed(config.seed ^ key, 0, s), device: device)) }
        }
        let stopIds = stopIds(config)
        try withTorchErrors {
            try engine {
                let started = DispatchTime.now().uptimeNanoseconds
                // Prefill once per prompt (left-padded), then copy each prompt's cache to its n rows.
                let width = prompts.map(\.count).max()!
                var ids = [Int64](), maskValues = [Int64]()
                for p in prompts {
                    ids += Array(repeating: 0, count: width - p.count) + p.map(Int64.init)
                    maskValues += Array(repeating: 0, count: width - p.count) + Array(repeating: 1, count: p.count)
                }
                var mask = Tensor(maskValues, shape: [prompts.count, width]).to(device)
                let cache = KVCache(config: model.config, batch: prompts.count, capacity: width + config.maxNewTokens,
                                    dtype: model.dtype, device: device)
                // Only the last position's logits are needed: the vocabulary projection skips the rest.
                let prefill = try model.hidden(Tensor(ids, shape: [prompts.count, width]).to(device), attentionMask: mask,
                                               positions: CausalLM.positions(fromMask: mask), cache: cache)
                forwardTokens += prompts.reduce(0) { $0 + $1.count }
                let expand = Tensor(prompts.indices.flatMap { Array(repeating: Int64($0), count: n) }).to(device)
                cache.select(rows: expand)
                mask = mask.indexSelect(dim: 0, index: expand)
                var logits = model.logits(hidden: prefill.select(dim: 1, index: width - 1)).indexSelect(dim: 0, index: expand)   // [L, V]
                var nextPosition = Tensor(prompts.flatMap { p in Array(repeating: Int64(p.count), count: n) }).to(device)
                var seen: Tensor? = nil
                if config.repetitionPenalty != 1 {
                    let s = Tensor.zeros([rows.count, model.config.vocabSize], dtype: .bool, device: device)
                    let idx = Tensor(ids, shape: [prompts.count, width]).to(device).indexSelect(dim: 0, index: expand)
                    seen = s.scattered(dim: 1, index: idx, source: mask.to(dtype: .bool))
                }
                var live = Array(rows.indices)
                _ = try logits.sum().item()   // wait for the prefill (a no-op cost on the CPU)
                lastPrefillSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                let decodeStart = DispatchTime.now().uptimeNanoseconds
                defer { lastDecodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - decodeStart) / 1e9 }
                for step in 0..<config.maxNewTokens {
                    let (next, finished) = try decodeStep(logits: logits, rows: live.map { rows[$0] }, seen: seen,
                                                          config: config, schedule: schedule, stopIds: stopIds,
                                                          last: step == config.maxNewTokens - 1)
                    if let s = seen { seen = s.scattered(dim: 1, index: next.unsqueezed(dim: 1), source: Tensor.ones([next.size(0), 1], dtype: .bool, device: device)) }
                    var keep = next, keepPos = nextPosition
                    // Finished rows leave the batch at once (the cache moves only the rows that fill their slots).
                    if !finished.isEmpty {
                        guard let index = dropFinished(finished, from: &live, cache: cache) else { break }
                        mask = mask.indexSelect(dim: 0, index: index)
                        keep = next.indexSelect(dim: 0, index: index)
                        keepPos = nextPosition.indexSelect(dim: 0, index: index)
                        seen = seen?.indexSelect(dim: 0, index: index)
                    }
                    mask = Tensor.cat([mask, Tensor.ones([live.count, 1], dtype: mask.dtype, device: device)], dim: 1)
                    logits = try model(keep.unsqueezed(dim: 1), attentionMask: mask, positions: keepPos.unsqueezed(dim: 1), cache: cache)
                        .squeezed(dim: 1)
                    forwardTokens += live.count
                    nextPosition = keepPos + 1
                }
            }
        }
        return rows.map { r in
            Completion(promptIndex: r.promptIndex, sampleIndex: r.sampleIndex, tokens: r.tokens, samplingLogprobs: r.samplingLogprobs,
                       logprobs: r.logprobs, entropies: r.entropies, temperatures: r.temperatures, finishReason: r.finish ?? .length,
                       text: r.text)
        }
    }

    /// Removes the finished rows (positions in `live`) from `live` and the cache; returns the
    /// positions of the rows that stay, in their new order, or nil when none does. The last live
    /// rows move into the finished rows' slots, so the cache copies only those rows, in place.
    func dropFinished(_ finished: Set<Int>, from live: inout [Int], cache: KVCache) -> Tensor? {
        guard live.count > finished.count else { live = []; return nil }
        let order = Self.fillOrder(live.count, removing: finished)
        live = order.map { live[$0] }
        cache.keep(rows: order)
        return Tensor(order.map(Int64.init)).to(model.device)
    }

    /// Continuations of (prompt + partial response) prefixes, `m` each — the Monte-Carlo value
    /// estimates of SPO-chain sample these.
    public func continuations(prefixes: [[Int]], m: Int, config: SamplingConfig) throws -> [Completion] {
        try sample(prompts: prefixes, n: m, config: config)
    }

    /// Draws one token for every live row; records it and returns the ids [L] and which rows (by
    /// position in `rows`) finished.
    func decodeStep(logits raw: Tensor, rows: [Row], seen: Tensor?, config: SamplingConfig, schedule: TemperatureSchedule,
                    stopIds: Set<Int>, last: Bool) throws -> (Tensor, Set<Int>) {
        let logits = raw.to(dtype: .float32)                               // [L, V]
        let logp = logits.logSoftmax(dim: -1)
        let probs = logp.exp()
        let entropy = try (-(probs * logp).sum(dim: -1)).doubles()         // [L]
        let greedy = config.temperature == 0
        let temps = entropy.map { greedy ? 0 : schedule.temperature(base: config.temperature, entropy: $0) }
        let next: Tensor
        var samplingLogprobs = [Double](repeating: 0, count: rows.count)
        if greedy {
            var x = logits
            if let seen, config.repetitionPenalty != 1 { x = LogitsProcessing.repetitionPenalty(x, seen: seen, penalty: config.repetitionPenalty) }
            next = x.argmax(dim: -1)
        } else {
            // At temperature 1 with no truncation or penalty the sampling distribution is the policy.
            let untouched = temps.allSatisfy { $0 == 1 } && config.topK == 0 && config.topP == 1 && config.minP == 0 && config.repetitionPenalty == 1
            let slogp = untouched ? logp : LogitsProcessing.process(logits, temperatures: Tensor(temps, shape: [rows.count, 1]).to(logits.device, dtype: .float32),
                                                                    config: config, seen: seen).logSoftmax(dim: -1)
            let sprobs = untouched ? probs : slogp.exp()
            // Inverse CDF with one uniform per row from that row's own generator: the draw depends
            // only on the row's distribution and stream, never on the rest of the batch.
            let u = Tensor.cat(rows.map { Tensor.rand([1], generator: $0.generator, device: logits.device) })   // [L]
            let cdf = sprobs.cumsum(dim: -1)
            let total = cdf.narrowed(dim: -1, start: cdf.size(-1) - 1, length: 1)                          // [L, 1] ≈ 1
            // The first index whose cumulative mass exceeds u·total: a zero-probability token never
            // is (its cumulative mass equals its predecessor's), even for u = 0.
            next = (cdf .<= u.unsqueezed(dim: 1) * total).sum(dim: -1).clamp(max: Double(cdf.size(-1) - 1)).to(dtype: .int64)
            samplingLogprobs = try slogp.gather(dim: 1, index: next.unsqueezed(dim: 1)).doubles()
        }
        let ids = try next.int64s().map(Int.init)
        let policy = try logp.gather(dim: 1, index: next.unsqueezed(dim: 1)).doubles()
        var finished = Set<Int>()
        for (i, r) in rows.enumerated() where r.finish == nil {
            r.tokens.append(ids[i])
            r.samplingLogprobs.append(samplingLogprobs[i])
            r.logprobs.append(policy[i])
            r.entropies.append(entropy[i])
            r.temperatures.append(temps[i])
            if stopIds.contains(ids[i]) {
                r.finish = .eos
                r.text = tokenizer.decode(r.prefix + r.tokens.dropLast())
            } else if !config.stop.isEmpty, let cut = stopMatch(r.prefix + r.tokens, config.stop) {
                r.finish = .stop
                r.text = cut
            } else if last {
                r.finish = .length
                r.text = tokenizer.decode(r.prefix + r.tokens)
            }
            if r.finish != nil { finished.insert(i) }
        }
        return (next, finished)
    }

    /// The text before the first stop string, if the decoded response now contains one.
    func stopMatch(_ tokens: [Int], _ stops: [String]) -> String? {
        let text = tokenizer.decode(tokens)
        var best: String.Index? = nil
        for s in stops {
            if let r = text.range(of: s), best == nil || r.lowerBound < best! { best = r.lowerBound }
        }
        return best.map { String(text[..<$0]) }
    }
}

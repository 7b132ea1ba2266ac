import Foundation
import Models
import Torch

/// Multi-turn sampling for a batch of dialogues whose KV cache lives across turns: each turn
/// appends the new tokens (an observation, a tool result) to every live dialogue's cache and
/// samples the next action from there, so the history is never prefilled again. Rows of a batch
/// are aligned by masking: a chunk shorter than the turn's longest is left-padded, and a row whose
/// action finished early takes masked padding until the others finish; positions count real
/// tokens only, so a row's logits are those of its dialogue alone. Each dialogue draws from its own
/// generator (seeded by the episode's seed), so what it samples does not depend on the batch.
public final class DialogueSampler {
    public let sampler: Sampler
    let cache: KVCache
    var mask: Tensor
    /// Dialogue ids of the rows, in row order.
    public private(set) var live: [Int]
    /// Every real token of each dialogue so far (by dialogue id).
    public private(set) var history: [[Int]]
    var nextPosition: [Int]
    var generators: [Generator]
    /// Each row's next-token logits after its last real token ([rows, V]).
    var pending: Tensor?

    /// `seeds[i]` seeds dialogue i's sampling; `capacity` bounds the cached positions (padding included).
    public init(sampler: Sampler, seeds: [UInt64], capacity: Int) throws {
        guard !seeds.isEmpty else { throw RolloutError("dialogues: none to run") }
        self.sampler = sampler
        let m = sampler.model
        cache = KVCache(config: m.config, batch: seeds.count, capacity: capacity, dtype: m.dtype, device: m.device)
        mask = Tensor.zeros([seeds.count, 0], dtype: .int64, device: m.device)
        live = Array(seeds.indices)
        history = seeds.map { _ in [] }
        nextPosition = seeds.map { _ in 0 }
        generators = try seeds.map { try Generator(seed: $0, device: m.device) }
    }

    /// Cached positions left.
    public var room: Int { cache.capacity - cache.length }

    /// Appends `chunks[k]` (non-empty) to the dialogue of row k.
    public func append(_ chunks: [[Int]]) throws {
        guard chunks.count == live.count else { throw RolloutError("dialogues: \(chunks.count) chunks for \(live.count) live dialogues") }
        guard !chunks.isEmpty else { throw RolloutError("dialogues: none is live") }
        guard chunks.allSatisfy({ !$0.isEmpty }) else { throw RolloutError("dialogues: an appended chunk is empty") }
        let width = chunks.map(\.count).max()!
        guard width <= room else { throw RolloutError("dialogues: \(width) more positions do not fit the cache (\(room) left)") }
        if let bad = chunks.joined().first(where: { !(0..<sampler.model.config.vocabSize).contains($0) }) {
            throw RolloutError("dialogues: token id \(bad) is outside the vocabulary (\(sampler.model.config.vocabSize))")
        }
        let device = sampler.model.device
        var ids = [Int64](), keys = [Int64](), pos = [Int64]()
        for (k, c) in chunks.enumerated() {
            let pad = width - c.count
            ids += Array(repeating: 0, count: pad) + c.map(Int64.init)
            keys += Array(repeating: 0, count: pad) + Array(repeating: 1, count: c.count)
            pos += Array(repeating: 0, count: pad) + (0..<c.count).map { Int64(nextPosition[k] + $0) }
            history[live[k]] += c
            nextPosition[k] += c.count
        }
        try withTorchErrors {
            try sampler.engine {
                mask = Tensor.cat([mask, Tensor(keys, shape: [chunks.count, width]).to(device)], dim: 1)
                let h = try sampler.model.hidden(Tensor(ids, shape: [chunks.count, width]).to(device), attentionMask: mask,
                                                 positions: Tensor(pos, shape: [chunks.count, width]).to(device), cache: cache)
                pending = sampler.model.logits(hidden: h.select(dim: 1, index: width - 1))
                sampler.forwardTokens += chunks.reduce(0) { $0 + $1.count }
            }
        }
    }

    /// One action for every live dialogue, sampled from where its history ends; the sampled tokens
    /// (an end-of-turn token included) join the history. `promptIndex` is the dialogue id.
    public func sampleTurn(config: SamplingConfig, schedule: TemperatureSchedule = ConstantTemperature()) throws -> [Completion] {
        try config.validate()
        try sampler.checkWeights(config)
        guard config.repetitionPenalty == 1 else { throw RolloutError("dialogues: repetition_penalty is not supported across turns (set it to 1)") }
        guard var logits = pending else { throw RolloutError("dialogues: append the first observation before sampling") }
        guard config.maxNewTokens <= room else {
            throw RolloutError("dialogues: max_new_tokens (\(config.maxNewTokens)) exceeds the cache's room (\(room) positions left)")
        }
        let device = sampler.model.device
        let rows = live.indices.map { k in Sampler.Row(live[k], 0, generators[k]) }
        let stopIds = sampler.stopIds(config)
        try withTorchErrors {
            try sampler.engine {
                var lastLogits = logits
                for step in 0..<config.maxNewTokens {
                    let open = rows.indices.filter { rows[$0].finish == nil }
                    guard !open.isEmpty else { break }
                    let pick = Tensor(open.map(Int64.init)).to(device)
                    let (next, _) = try sampler.decodeStep(logits: logits.indexSelect(dim: 0, index: pick), rows: open.map { rows[$0] }, seen: nil,
                                                          config: config, schedule: schedule, stopIds: stopIds, last: step == config.maxNewTokens - 1)
                    let drawn = try next.int64s()
                    var ids = [Int64](repeating: 0, count: rows.count), keys = [Int64](repeating: 0, count: rows.count)
                    var pos = [Int64](repeating: 0, count: rows.count)
                    for (j, k) in open.enumerated() {
                        ids[k] = drawn[j]
                        keys[k] = 1
                        pos[k] = Int64(nextPosition[k])
                        nextPosition[k] += 1
                        history[live[k]].append(Int(drawn[j]))
                    }
                    // The drawn tokens enter the cache (a row already done takes masked padding).
                    mask = Tensor.cat([mask, Tensor(keys, shape: [rows.count, 1]).to(device)], dim: 1)
                    let out = try sampler.model(Tensor(ids, shape: [rows.count, 1]).to(device), attentionMask: mask,
                                                positions: Tensor(pos, shape: [rows.count, 1]).to(device), cache: cache).squeezed(dim: 1)
                    sampler.forwardTokens += open.count
                    // Rows that drew keep their new logits; a finished row keeps its end-of-turn logits.
                    let drew = Tensor(keys.map { Double($0) }, shape: [rows.count, 1]).to(device, dtype: out.dtype)
                    lastLogits = out * drew + lastLogits * (1 - drew)
                    logits = lastLogits
                }
                pending = lastLogits
            }
        }
        return rows.map { r in
            Completion(promptIndex: r.promptIndex, sampleIndex: 0, tokens: r.tokens, samplingLogprobs: r.samplingLogprobs, logprobs: r.logprobs,
                       entropies: r.entropies, temperatures: r.temperatures, finishReason: r.finish ?? .length,
                       text: r.text.isEmpty && r.finish == nil ? sampler.tokenizer.decode(r.tokens) : r.text)
        }
    }

    /// Keeps only the dialogues `ids` (finished episodes leave the batch). A kept row in the first
    /// `n` (the new batch size) stays where it is, and the holes take the kept rows from beyond, so
    /// the cache moves only those rows in place instead of gathering every buffer anew (each is as
    /// long as the whole context). Rows are found by dialogue id (`live`), so their order is free.
    public func keep(_ ids: Set<Int>) {
        let kept = live.indices.filter { ids.contains(live[$0]) }, n = kept.count
        guard n < live.count else { return }
        guard n > 0 else { live = []; nextPosition = []; generators = []; pending = nil; return }
        let order = Sampler.fillOrder(live.count, removing: Set(live.indices).subtracting(kept))
        let index = Tensor(order.map(Int64.init)).to(sampler.model.device)
        cache.keep(rows: order)
        mask = mask.indexSelect(dim: 0, index: index)
        pending = pending?.indexSelect(dim: 0, index: index)
        live = order.map { live[$0] }
        nextPosition = order.map { nextPosition[$0] }
        generators = order.map { generators[$0] }
    }
}

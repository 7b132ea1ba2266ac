import Models
import Torch

/// The policy and its frozen reference, and the forward passes both trainers run over responses
/// that continue shared prompts. The reference is the base model with LoRA switched off, or a
/// frozen copy when every weight trains.
struct ResponseForward {
    let model: CausalLM
    let reference: CausalLM?

    /// Attaches new LoRA adapters to `model` (or makes every weight trainable) and returns the
    /// parameters to train. A frozen copy is made only when a reference is needed and there are
    /// no adapters to switch off.
    static func attach(_ model: CausalLM, lora: LoRA.Config?, seed: UInt64, reference: Bool) throws -> (ResponseForward, [Tensor]) {
        if let lora {
            let params = try LoRA(attachingTo: model, config: lora, seed: seed).parameters
            return (ResponseForward(model: model, reference: nil), params)
        }
        try withTorchErrors { for p in model.parameters { p.requiresGrad = true } }
        let copy = reference ? try CausalLM(config: model.config, weights: withTorchErrors { model.weights.mapValues { $0.detached().clone() } }) : nil
        return (ResponseForward(model: model, reference: copy), model.parameters)
    }

    /// `body` under no-grad with the reference policy: the frozen copy when there is one, else the
    /// model with its LoRA adapters switched off for the duration.
    func withReference<T>(_ body: (CausalLM) throws -> T) throws -> T {
        try withNoGrad {
            if let reference { return try body(reference) }
            let adapters = model.lora
            model.lora = nil
            defer { model.lora = adapters }
            return try body(model)
        }
    }

    /// Right-padded token rows as ids and a 0/1 mask.
    static func batch(_ rows: [[Int]]) -> (Tensor, Tensor) {
        let t = rows.map(\.count).max()!
        let ids = rows.flatMap { $0.map(Int64.init) + Array(repeating: 0, count: t - $0.count) }
        let mask = rows.flatMap { Array(repeating: Int64(1), count: $0.count) + Array(repeating: 0, count: t - $0.count) }
        return (Tensor(ids, shape: [rows.count, t]), Tensor(mask, shape: [rows.count, t]))
    }

    /// Runs `compute` over micro-batches of rows (`microBatch` 0: all at once) and splits each `[n, W]`
    /// result into its rows' first `responses[r].count` values, in row order.
    static func rowValues(responses: [[Int]], microBatch: Int, _ compute: (Range<Int>) throws -> Tensor) throws -> [[Double]] {
        let micro = microBatch > 0 ? microBatch : responses.count
        var out = [[Double]]()
        for start in stride(from: 0, to: responses.count, by: micro) {
            let part = start..<Swift.min(responses.count, start + micro)
            out += try split(try compute(part), rows: part, responses: responses)
        }
        return out
    }

    /// Per-token logprobs (and, when `entropies`, entropies) under `m` of each row's response after
    /// its prompt, in row order, without autograd: each distinct prompt runs once, the responses in
    /// micro-batches of `microBatch` rows (0: all at once).
    static func rowLogprobs(_ m: CausalLM, prompts: [[Int]], responses: [[Int]], microBatch: Int,
                            entropies: Bool = false) throws -> (logprobs: [[Double]], entropies: [[Double]]?) {
        let (unique, owner) = distinct(prompts)
        var entropyRows = [[Double]]()
        let values = try withTorchErrors {
            try withNoGrad {
                let prefix = try m.sharedPrefix(unique)
                return try rowValues(responses: responses, microBatch: microBatch) { part in
                    let (lp, ent) = try Self.logprobs(m, prefix: prefix, owner: Array(owner[part]), responses: Array(responses[part]))
                    if entropies { entropyRows += try split(ent, rows: part, responses: responses) }
                    return lp
                }
            }
        }
        return (values, entropies ? entropyRows : nil)
    }

    /// The rows of an `[n, W]` result for rows `part`, each cut to its response's length.
    static func split(_ t: Tensor, rows part: Range<Int>, responses: [[Int]]) throws -> [[Double]] {
        let width = t.size(1), flat = try t.to(.cpu, dtype: .float64).doubles()
        return part.enumerated().map { n, r in Array(flat[(n * width)..<(n * width + responses[r].count)]) }
    }

    /// The distinct prompts among `prompts` and, per entry, the index of its distinct prompt.
    static func distinct(_ prompts: [[Int]]) -> (unique: [[Int]], owner: [Int]) {
        var unique = [[Int]](), slot = [[Int]: Int]()
        let owner = prompts.map { p in
            if let i = slot[p] { return i }
            slot[p] = unique.count
            unique.append(p)
            return unique.count - 1
        }
        return (unique, owner)
    }

    /// The hidden states `[N, R, H]` that predict each token of responses continuing `prefix` (row n
    /// continues prefix row `owner[n]`; R = the longest response, at least 1): the prompt's last
    /// state predicts the first token, each response token's state the next.
    static func hidden(_ m: CausalLM, prefix: SharedPrefix, owner: [Int], responses: [[Int]]) throws -> Tensor {
        let longest = Swift.max(1, responses.map(\.count).max() ?? 1)
        let first = prefix.last.indexSelect(dim: 0, index: Tensor(owner.map(Int64.init)).to(m.device)).unsqueezed(dim: 1)   // [N, 1, H]
        guard longest > 1 else { return first }
        // Token k's input predicts token k + 1, so the last token of the longest response is no input.
        let inputs = batch(responses.map { Array($0.prefix(longest - 1)) }).0
        return Tensor.cat([first, try m.hidden(inputs, continuing: prefix, owner: owner)], dim: 1)
    }

    /// Per-token logprobs (and entropies) under `m` of responses that continue `prefix` (row n
    /// continues prefix row `owner[n]`), [N, R] right-padded (R = `width`, default the longest
    /// response; past a row's end its last value repeats). A group's n samples share one prompt, so
    /// the prompt is computed once for all of them; the vocabulary projection runs only over
    /// response positions.
    static func logprobs(_ m: CausalLM, prefix: SharedPrefix, owner: [Int], responses: [[Int]], width: Int? = nil) throws -> (Tensor, Tensor) {
        let lengths = responses.map(\.count), longest = Swift.max(1, lengths.max() ?? 1)
        let hidden = try hidden(m, prefix: prefix, owner: owner, responses: responses)
        let targets = batch(responses.map { $0.isEmpty ? [0] : $0 }).0
        let (lp, ent) = m.tokenLogprobs(hidden: hidden, targets: targets.narrowed(dim: 1, start: 0, length: longest).to(m.device),
                                        chunk: Swift.max(1, 512 / responses.count))   // ~100 MB of logits per chunk
        let idx = columns(lengths: lengths, width: width ?? longest, device: m.device)
        return (lp.gather(dim: 1, index: idx), ent.gather(dim: 1, index: idx))
    }

    /// The `[N, width]` gather index that reads each row's own values and, past a row's end, its
    /// last value again (position 0 for an empty row): how per-token results are right-padded.
    static func columns(lengths: [Int], width: Int, device: Device) -> Tensor {
        Tensor(lengths.flatMap { r in (0..<width).map { Int64(Swift.min($0, Swift.max(r, 1) - 1)) } }, shape: [lengths.count, width]).to(device)
    }
}

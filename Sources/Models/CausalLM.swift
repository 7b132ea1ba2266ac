import Foundation
import Torch

/// A config-driven decoder-only transformer (Llama / SmolLM2, Qwen2, Qwen3) in the Hugging Face
/// layout: embedding → N × (RMSNorm → GQA attention with RoPE → residual → RMSNorm → SwiGLU →
/// residual) → RMSNorm → LM head (tied to the embedding when the config says so).
/// Weights live in one map keyed by Hugging Face names, so loading, saving and LoRA all work on it.
public final class CausalLM {
    public let config: ModelConfig
    public private(set) var weights: [String: Tensor]
    /// LoRA adapters on linear layers, by the layer's name (`model.layers.0.self_attn.q_proj`).
    public var lora: LoRA?
    /// The rollout engine's low-precision copy while `using(_:_:)` runs (sampling), else nil.
    private(set) var engine: RolloutWeights?
    /// Whether `tokenLogprobs` recomputes each chunk's logits in the backward instead of keeping
    /// them (`train.logprobs: fused`): 0.78–0.80× the peak memory of a step for 0.99–1.23× its
    /// training time (`bench train --compare-memory`).
    public var fusedLogprobs = false
    /// Whether forward passes with autograd keep only each layer's input and recompute the layer in
    /// the backward (`train.gradient_checkpointing`): less memory for long responses, one more
    /// forward of the layers in time.
    public var gradientCheckpointing = false
    let invFreq: Tensor   // [head_dim / 2], float32

    /// Checks every weight against the config: a missing, unused or mis-shaped one is an error naming it.
    public init(config: ModelConfig, weights: [String: Tensor], source: String = "model") throws {
        try config.validate()
        let expected = config.expectedWeights
        var w = weights
        if config.tieWordEmbeddings, let head = w["lm_head.weight"] {
            // Some checkpoints store the tied head too; it must equal the embedding.
            guard head.shape == w["model.embed_tokens.weight"]?.shape else {
                throw ModelError("\(source): lm_head.weight has shape \(head.shape) but the embedding is tied")
            }
            w["lm_head.weight"] = nil
        }
        for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard let t = w[name] else { throw ModelError("\(source): missing weight '\(name)' (shape \(shape))") }
            guard t.shape == shape else {
                throw ModelError("\(source): weight '\(name)' has shape \(t.shape) but config.json implies \(shape)")
            }
        }
        if let extra = w.keys.filter({ expected[$0] == nil }).sorted().first {
            throw ModelError("\(source): unused weight '\(extra)' (not part of a \(config.modelType.rawValue) model with this config)")
        }
        self.config = config
        self.weights = w
        let half = config.headDim / 2
        let exponents = (0..<half).map { Double(2 * $0) / Double(config.headDim) }
        invFreq = try withTorchErrors { Tensor(exponents.map { Float(1 / Foundation.pow(config.ropeTheta, $0)) }) }
    }

    /// A model with random weights (normal, std 0.02; norms at 1), for tests and experiments.
    public static func random(config: ModelConfig, seed: UInt64 = 0, dtype: DType = .float32) throws -> CausalLM {
        let g = try Generator(seed: seed)
        var w: [String: Tensor] = [:]
        try withTorchErrors {
            for (name, shape) in config.expectedWeights.sorted(by: { $0.key < $1.key }) {
                w[name] = name.hasSuffix("norm.weight") ? Tensor.ones(shape, dtype: dtype)
                    : (Tensor.randn(shape, generator: g) * 0.02).to(dtype: dtype)
            }
        }
        return try CausalLM(config: config, weights: w)
    }

    var embedding: Tensor { weights["model.embed_tokens.weight"]! }
    /// The output projection (the tied embedding when the model has no separate head).
    public var lmHead: Tensor { weights["lm_head.weight"] ?? embedding }
    public var dtype: DType { embedding.dtype }
    public var device: Device { embedding.device }

    /// Replaces a weight (same shape), e.g. after merging LoRA or loading a checkpoint.
    public func setWeight(_ name: String, _ value: Tensor) throws {
        guard let old = weights[name] else { throw ModelError("no weight named '\(name)'") }
        guard old.shape == value.shape else { throw ModelError("weight '\(name)' has shape \(old.shape), not \(value.shape)") }
        weights[name] = value
    }

    /// Moves every weight to a device and/or dtype (norms stay float32 only when dtype is float32).
    public func to(_ device: Device? = nil, dtype: DType? = nil) {
        weights = weights.mapValues { $0.to(device, dtype: dtype) }
        lora?.to(device, dtype: dtype)
    }

    /// The base weights a full fine-tune trains.
    public var parameters: [Tensor] { weights.keys.sorted().map { weights[$0]! } }

    // MARK: forward

    func rmsNorm(_ x: Tensor, _ weight: Tensor) -> Tensor {
        let x32 = x.to(dtype: .float32)
        let normed = x32 * (x32.square().mean(dim: -1, keepDim: true) + config.rmsNormEps).rsqrt()
        return weight * normed.to(dtype: x.dtype)
    }

    /// `body` with the matrices of `weights` in place of the float32 ones (nil: the model's own);
    /// the rollout engine samples inside it, the learner outside.
    public func using<T>(_ weights: RolloutWeights?, _ body: () throws -> T) rethrows -> T {
        let outer = engine
        engine = weights
        defer { engine = outer }
        return try body()
    }

    /// x·Wᵀ + b for the linear layer `name`, plus its LoRA update when one is attached (unless the
    /// rollout engine's copy has the adapters merged in).
    func project(_ x: Tensor, _ name: String) -> Tensor {
        if let e = engine, let y = e.linear(x, name + ".weight", bias: weights[name + ".bias"]) {
            guard !e.mergesLoRA, let adapter = lora?.adapters[name] else { return y }
            return y + adapter(x.to(dtype: .float32), lora!.scale)
        }
        let y = linear(x, weights[name + ".weight"]!, weights[name + ".bias"])
        guard let adapter = lora?.adapters[name] else { return y }
        return y + adapter(x, lora!.scale)
    }

    /// Rows up to which decoding on the CPU uses the shim's kernel rather than BLAS: it reads each
    /// weight row once for all rows instead of repacking the weights on every call, 1.2–1.8× faster
    /// from 16 to 64 rows on this project's 2-core machine.
    static let kernelRows = 64

    /// Whether `x` is a decoding step's input that the small-batch kernel takes: float32 on the CPU,
    /// no autograd, at most `kernelRows` rows.
    func takesKernel(_ x: Tensor) -> Bool {
        x.shape.dropLast().reduce(1, *) <= Self.kernelRows && device == .cpu && x.dtype == .float32 && !Torch.isGradEnabled
    }

    /// x·Wᵀ + b. Decoding steps on the CPU without autograd use the small-batch kernel.
    func linear(_ x: Tensor, _ w: Tensor, _ b: Tensor? = nil) -> Tensor {
        guard takesKernel(x) else { return x.linear(weight: w, bias: b) }
        let rows = x.shape.dropLast().reduce(1, *)
        return x.reshaped([rows, x.size(-1)]).smallLinear(weight: w, bias: b).reshaped(Array(x.shape.dropLast()) + [w.size(0)])
    }

    /// RoPE in Hugging Face's rotate-half layout. `x`: [B, H, T, D]; cos/sin: [B, 1, T, D].
    func rotate(_ x: Tensor, _ cos: Tensor, _ sin: Tensor) -> Tensor {
        let half = config.headDim / 2
        let x1 = x.narrowed(dim: -1, start: 0, length: half), x2 = x.narrowed(dim: -1, start: half, length: half)
        return x * cos + Tensor.cat([-x2, x1], dim: -1) * sin
    }

    func rope(_ positions: Tensor) -> (cos: Tensor, sin: Tensor) {
        let freqs = positions.to(dtype: .float32).unsqueezed(dim: -1) * invFreq.to(positions.device)  // [B, T, D/2]
        let emb = Tensor.cat([freqs, freqs], dim: -1).unsqueezed(dim: 1)                             // [B, 1, T, D]
        return (emb.cos().to(dtype: dtype), emb.sin().to(dtype: dtype))
    }

    /// Where a layer's keys and values come from besides the new positions.
    enum PastKV {
        case none
        /// Written in place into a preallocated cache (decoding; no autograd through the cache).
        case cache(KVCache)
        /// Kept, with their autograd history, to become a `SharedPrefix`.
        case record(PrefixRecorder)
        /// Prepended from a shared prefix: row n attends to prefix row `owner[n]`.
        case prefix(SharedPrefix, owner: Tensor)
    }

    /// Collects activation maps during a forward pass (SparsePO's activation-based masks).
    public final class ActivationProbe {
        public enum Group: String, CaseIterable, Sendable { case mlp, attention, residual, logits }
        public private(set) var maps: [Group: [Tensor]] = [:]
        func record(_ group: Group, _ x: Tensor) { maps[group, default: []].append(x.to(dtype: .float32).mean(dim: -1).detached()) }
    }

    final class PrefixRecorder {
        var keys = [Tensor](), values = [Tensor]()
    }

    /// Keeps one layer's attention probabilities, averaged over heads, during a forward pass
    /// (ssToken's attention score); no autograd history is kept.
    public final class AttentionTap {
        /// The layer (negative: counted from the last, −1 the last).
        public let layer: Int
        /// [B, T, keys] after the pass.
        public internal(set) var probabilities: Tensor?
        public init(layer: Int = -1) { self.layer = layer }
    }

    func attention(_ h: Tensor, layer i: Int, cos: Tensor, sin: Tensor, mask: Tensor?, past: PastKV, tap: AttentionTap? = nil) throws -> Tensor {
        let (b, t) = (h.size(0), h.size(1))
        let c = config, p = "model.layers.\(i).self_attn."
        func heads(_ x: Tensor, _ n: Int) -> Tensor { x.view([b, t, n, c.headDim]).transposed(1, 2) }  // [B, n, T, D]
        var q = heads(project(h, p + "q_proj"), c.numAttentionHeads)
        var k = heads(project(h, p + "k_proj"), c.numKeyValueHeads)
        var v = heads(project(h, p + "v_proj"), c.numKeyValueHeads)
        if c.qkNorm {
            q = rmsNorm(q, weights[p + "q_norm.weight"]!)
            k = rmsNorm(k, weights[p + "k_norm.weight"]!)
        }
        q = rotate(q, cos, sin)
        k = rotate(k, cos, sin)
        switch past {
        case .none: break
        case .cache(let cache): (k, v) = try cache.write(layer: i, k: k, v: v)
        case .record(let r): r.keys.append(k); r.values.append(v)
        case .prefix(let p, let owner):
            let one = p.batch == 1
            func rows(_ t: Tensor) -> Tensor { one ? t.expanded(to: [b] + Array(t.shape.dropFirst())) : t.indexSelect(dim: 0, index: owner) }
            k = Tensor.cat([rows(p.keys[i]), k], dim: 2)
            v = Tensor.cat([rows(p.values[i]), v], dim: 2)
        }
        let gqa = c.numKeyValueHeads != c.numAttentionHeads
        if let tap, (tap.layer + c.numHiddenLayers) % c.numHiddenLayers == i { tap.probabilities = try withNoGrad { try headMeanProbabilities(q, k, mask: mask) } }
        // No mask means no padding and no past: plain causal attention (also when prefilling a cache).
        let out = Tensor.scaledDotProductAttention(query: q, key: k, value: v, mask: mask,
                                                   causal: mask == nil, groupedQuery: gqa)  // [B, H, T, D]
        return project(out.transposed(1, 2).reshaped([b, t, c.numAttentionHeads * c.headDim]), p + "o_proj")
    }

    /// Attention mask [B, 1, T, past + T] (true = attend): causal, keys allowed by `keyMask`
    /// [B, past + T], and each query always sees itself so padded rows never become NaN.
    func buildMask(keyMask: Tensor?, past: Int, t: Int, batch: Int) -> Tensor? {
        guard keyMask != nil || past > 0 else { return nil }
        let total = past + t
        var allowed = Tensor.ones([t, total], dtype: .bool, device: device).tril(diagonal: past).unsqueezed(dim: 0)  // [1, T, K]
        if let keyMask {
            allowed = allowed.logicalAnd(keyMask.to(device, dtype: .bool).unsqueezed(dim: 1))                        // [B, T, K]
            let selfMask = Tensor.cat([Tensor.zeros([t, past], dtype: .bool, device: device),
                                       Tensor.eye(t, dtype: .bool, device: device)], dim: 1)
            allowed = allowed.logicalOr(selfMask.unsqueezed(dim: 0))
        }
        return allowed.expanded(to: [batch, t, total]).unsqueezed(dim: 1)
    }

    /// Final hidden states [B, T, hidden] (after the last norm).
    /// - ids: [B, T] int64 token ids.
    /// - attentionMask: [B, past + T], 1 for real tokens (nil: all real). Needed for padding.
    /// - positions: [B, T] position ids (nil: past, past + 1, …).
    /// - cache: appended to; its length is `past`.
    public func hidden(_ ids: Tensor, attentionMask: Tensor? = nil, positions: Tensor? = nil, cache: KVCache? = nil) throws -> Tensor {
        let (b, t) = (ids.size(0), ids.size(1))
        let past = cache?.length ?? 0
        if let m = attentionMask, m.shape != [b, past + t] {
            throw ModelError("attention mask has shape \(m.shape) but [\(b), \(past + t)] is needed (past \(past) + \(t) new tokens)")
        }
        let pos = positions ?? Tensor.arange(Double(past), Double(past + t), device: device).unsqueezed(dim: 0).expanded(to: [b, t])
        let h = try layers(ids, positions: pos, mask: buildMask(keyMask: attentionMask, past: past, t: t, batch: b),
                           past: cache.map { .cache($0) } ?? .none)
        cache?.advance(by: t)
        return h
    }

    /// Final hidden states [B, T, hidden] of rows that each hold several sequences back to back
    /// (packing): `segments[b]` lists row b's sequence lengths in order, and the rest of the row is
    /// padding. A token attends only to earlier tokens of its own sequence and positions restart
    /// at each, so every sequence gets the states it would get alone.
    /// A `tap` keeps one layer's head-mean attention probabilities.
    public func hidden(_ ids: Tensor, segments: [[Int]], tap: AttentionTap? = nil) throws -> Tensor {
        let (b, t) = (ids.size(0), ids.size(1))
        guard segments.count == b, let widest = segments.map({ $0.reduce(0, +) }).max(), widest <= t,
              segments.allSatisfy({ $0.allSatisfy { $0 > 0 } }) else {
            throw ModelError("packed rows: \(segments.count) rows of positive sequence lengths that fit \(t) positions are needed for ids of shape \(ids.shape)")
        }
        var segment = [Int64](), position = [Int64]()
        for row in segments {
            for (k, n) in row.enumerated() { segment += Array(repeating: Int64(k), count: n); position += (0..<n).map(Int64.init) }
            // Padding is a sequence of its own, so its queries still see themselves.
            let pad = t - row.reduce(0, +)
            segment += Array(repeating: Int64(row.count), count: pad); position += (0..<pad).map(Int64.init)
        }
        let seg = Tensor(segment, shape: [b, t]).to(device)
        let same = seg.unsqueezed(dim: 2) .== seg.unsqueezed(dim: 1)                                             // [B, T, T]
        let causal = Tensor.ones([t, t], dtype: .bool, device: device).tril(diagonal: 0).unsqueezed(dim: 0)
        let mask = same.logicalAnd(causal).unsqueezed(dim: 1)                                                       // [B, 1, T, T]
        return try layers(ids.to(device, dtype: .int64), positions: Tensor(position, shape: [b, t]).to(device), mask: mask, past: .none, tap: tap)
    }

    /// Embedding → every layer → final norm. A `probe` records the feature mean of each activation.
    func layers(_ ids: Tensor, positions: Tensor, mask: Tensor?, past: PastKV, probe: ActivationProbe? = nil, tap: AttentionTap? = nil) throws -> Tensor {
        let (cos, sin) = rope(positions)
        let index = ids.to(device, dtype: .int64)
        var h = engine?.embed(index, "model.embed_tokens.weight") ?? Tensor.embedding(embedding, index)   // [B, T, D]
        probe?.record(.residual, h)
        // Checkpointed layers keep only their inputs; the shared prompt pass is not checkpointed
        // (its keys and values are kept with their history anyway).
        let checkpoints: [Tensor]? = {
            guard gradientCheckpointing, probe == nil, tap == nil, Torch.isGradEnabled else { return nil }
            switch past {
            case .none: return []
            case .prefix(let p, _): return p.keys + p.values
            case .cache, .record: return nil
            }
        }()
        let trainable = checkpoints == nil ? [] : parameters.filter(\.requiresGrad) + (lora?.parameters ?? [])
        for i in 0..<config.numHiddenLayers {
            if let extra = checkpoints {
                h = Tensor.checkpoint(h, reading: trainable + extra) { [unowned self] x in
                    try self.layer(x, i, cos: cos, sin: sin, mask: mask, past: past, probe: nil, tap: nil)
                }
            } else {
                h = try layer(h, i, cos: cos, sin: sin, mask: mask, past: past, probe: probe, tap: tap)
            }
        }
        let out = rmsNorm(h, weights["model.norm.weight"]!)
        probe?.record(.residual, out)
        return out
    }

    /// Decoder layer `i`: attention and MLP, each a residual branch after its RMSNorm.
    func layer(_ input: Tensor, _ i: Int, cos: Tensor, sin: Tensor, mask: Tensor?, past: PastKV, probe: ActivationProbe?, tap: AttentionTap?) throws -> Tensor {
        let p = "model.layers.\(i)."
        let a = try attention(rmsNorm(input, weights[p + "input_layernorm.weight"]!), layer: i, cos: cos, sin: sin, mask: mask, past: past, tap: tap)
        probe?.record(.attention, a)
        var h = input + a
        probe?.record(.residual, h)
        let x = rmsNorm(h, weights[p + "post_attention_layernorm.weight"]!)
        let act = project(x, p + "mlp.gate_proj").silu()
        probe?.record(.mlp, act)
        h = h + project(act * project(x, p + "mlp.up_proj"), p + "mlp.down_proj")
        probe?.record(.residual, h)
        return h
    }

    /// Per-position feature means of the activations of `ids` [B, T] (right-padded; `attentionMask`
    /// marks real tokens), by group: the MLP's post-activation and the attention output of every
    /// layer, the residual stream after the embedding, each sub-block and the final norm, and the
    /// logits. Each map is [B, T]; no autograd history is kept.
    public func activationMaps(_ ids: Tensor, attentionMask: Tensor) throws -> [ActivationProbe.Group: [Tensor]] {
        let probe = ActivationProbe()
        try withNoGrad {
            let (b, t) = (ids.size(0), ids.size(1))
            let h = try layers(ids.to(device, dtype: .int64), positions: CausalLM.positions(fromMask: attentionMask.to(device)),
                               mask: buildMask(keyMask: attentionMask.to(device), past: 0, t: t, batch: b), past: .none, probe: probe)
            probe.record(.logits, h.wideLinear(weight: lmHead))
        }
        return probe.maps
    }

    // MARK: shared prefixes

    /// Runs `prompts` (left-padded into one batch) once and keeps every layer's keys and values with
    /// their autograd history, so many continuations of the same prompt can attend to it without
    /// recomputing it, and gradients still reach the prompt's computation.
    public func sharedPrefix(_ prompts: [[Int]]) throws -> SharedPrefix {
        guard let longest = prompts.map(\.count).max(), prompts.allSatisfy({ !$0.isEmpty }) else {
            throw ModelError("a shared prefix needs one or more prompts, none of them empty")
        }
        let ids = prompts.flatMap { Array(repeating: Int64(0), count: longest - $0.count) + $0.map(Int64.init) }
        let real = prompts.flatMap { Array(repeating: Int64(0), count: longest - $0.count) + Array(repeating: Int64(1), count: $0.count) }
        let mask = Tensor(real, shape: [prompts.count, longest]).to(device)
        let recorder = PrefixRecorder()
        let padded = prompts.contains { $0.count != longest }
        let h = try layers(Tensor(ids, shape: [prompts.count, longest]).to(device), positions: CausalLM.positions(fromMask: mask),
                           mask: padded ? buildMask(keyMask: mask, past: 0, t: longest, batch: prompts.count) : nil, past: .record(recorder))
        return SharedPrefix(keys: recorder.keys, values: recorder.values, mask: mask, lengths: prompts.map(\.count),
                            last: h.narrowed(dim: 1, start: longest - 1, length: 1).squeezed(dim: 1))
    }

    /// Final hidden states [N, T, hidden] of `ids` [N, T] continuing prefix row `owner[n]`; padding
    /// goes on the right (causal attention keeps it from affecting earlier positions).
    public func hidden(_ ids: Tensor, continuing prefix: SharedPrefix, owner: [Int]) throws -> Tensor {
        let (n, t) = (ids.size(0), ids.size(1))
        guard owner.count == n, owner.allSatisfy({ prefix.lengths.indices.contains($0) }) else {
            throw ModelError("\(n) continuations need \(n) owners among \(prefix.batch) prefixes; got \(owner)")
        }
        let rows = Tensor(owner.map(Int64.init)).to(device)
        let start = Tensor(owner.map { Int64(prefix.lengths[$0]) }).to(device).unsqueezed(dim: 1)
        let pos = start + Tensor.arange(0, Double(t), device: device).to(dtype: .int64).unsqueezed(dim: 0)   // [N, T]
        let width = prefix.mask.size(1)
        let old = prefix.mask.to(dtype: .bool).indexSelect(dim: 0, index: rows).unsqueezed(dim: 1).expanded(to: [n, t, width])
        let causal = Tensor.ones([t, t], dtype: .bool, device: device).tril(diagonal: 0).unsqueezed(dim: 0).expanded(to: [n, t, t])
        let mask = Tensor.cat([old, causal], dim: 2).unsqueezed(dim: 1)                                     // [N, 1, T, P + T]
        return try layers(ids.to(device, dtype: .int64), positions: pos, mask: mask, past: .prefix(prefix, owner: rows))
    }

    /// Logits [B, T, vocab] in the model's dtype.
    public func callAsFunction(_ ids: Tensor, attentionMask: Tensor? = nil, positions: Tensor? = nil, cache: KVCache? = nil) throws -> Tensor {
        logits(hidden: try hidden(ids, attentionMask: attentionMask, positions: positions, cache: cache))
    }

    /// Logits [..., vocab] of final hidden states [..., hidden] (e.g. only a prompt's last position).
    public func logits(hidden: Tensor) -> Tensor {
        if let engine, let y = engine.linear(hidden, weights["lm_head.weight"] == nil ? "model.embed_tokens.weight" : "lm_head.weight", bias: nil) {
            return y
        }
        // Decoding: the small-batch kernel; otherwise the chunked product.
        return takesKernel(hidden) ? linear(hidden, lmHead) : hidden.wideLinear(weight: lmHead)
    }

    /// Per-token log-probabilities of `targets` ([B, T] int64) and the entropies of the predicted
    /// distributions, both [B, T] float32, from hidden states [B, T, hidden]. Logits are formed
    /// `chunk` positions at a time, so at most one [B, chunk, vocab] tensor exists at once.
    /// With `fusedLogprobs` the backward recomputes each chunk's logits instead of keeping them all
    /// for it; off (the default), autograd keeps every chunk's softmax until the backward.
    public func tokenLogprobs(hidden: Tensor, targets: Tensor, chunk: Int? = nil) -> (logprobs: Tensor, entropies: Tensor) {
        let t = hidden.size(1), step = Swift.max(1, chunk ?? t)
        if fusedLogprobs && engine == nil { return hidden.tokenLogprobs(weight: lmHead, targets: targets.to(dtype: .int64), chunk: step) }
        var lps = [Tensor](), ents = [Tensor]()
        for start in stride(from: 0, to: t, by: step) {
            let n = Swift.min(step, t - start)
            let logits = self.logits(hidden: hidden.narrowed(dim: 1, start: start, length: n)).to(dtype: .float32)
            let logp = logits.logSoftmax(dim: -1)                                          // [B, n, V]
            lps.append(logp.gather(dim: -1, index: targets.narrowed(dim: 1, start: start, length: n).to(dtype: .int64).unsqueezed(dim: -1)).squeezed(dim: -1))
            ents.append(-(logp.exp() * logp).sum(dim: -1))
        }
        return (Tensor.cat(lps, dim: 1), Tensor.cat(ents, dim: 1))
    }

    /// Positions for left-padded batches: cumulative count of real tokens − 1 (0 on padding).
    public static func positions(fromMask mask: Tensor) -> Tensor {
        (mask.to(dtype: .int64).cumsum(dim: 1) - 1).clamp(min: 0).to(dtype: .int64)
    }
}

/// Keys and values of a batch of left-padded prompts, per layer `[U, KV heads, P, head dim]`, with
/// their autograd history; `last` is each prompt's final hidden state `[U, hidden]` (it predicts
/// the first continuation token).
public struct SharedPrefix {
    public let keys: [Tensor]
    public let values: [Tensor]
    /// [U, P], 1 on real tokens (padding is on the left).
    public let mask: Tensor
    public let lengths: [Int]
    public let last: Tensor
    public var batch: Int { lengths.count }

    var tensors: [Tensor] { keys + values + [last] }

    /// The same values as new autograd leaves. Continuations built on them backpropagate into the
    /// leaves (one micro-batch after another, accumulating), and `backward(from:)` then sends the
    /// sum through the prompt pass once — so the prompts' graph is neither kept per micro-batch
    /// nor recomputed.
    public func leaves() -> SharedPrefix {
        func leaf(_ t: Tensor) -> Tensor { t.detached().requiringGrad(t.requiresGrad) }
        return SharedPrefix(keys: keys.map(leaf), values: values.map(leaf), mask: mask, lengths: lengths, last: leaf(last))
    }

    /// Backpropagates the gradients accumulated on `leaves` (made by `leaves()`) through this
    /// prefix's computation; nothing when no gradient reached them.
    public func backward(from leaves: SharedPrefix) {
        var surrogate: Tensor? = nil
        for (t, leaf) in zip(tensors, leaves.tensors) {
            guard let g = leaf.grad else { continue }
            let term = (t * g).sum()   // d/dt = g: the chain rule through t with the leaf's gradient
            surrogate = surrogate.map { $0 + term } ?? term
        }
        if let surrogate, surrogate.requiresGrad { surrogate.backward() }
    }
}

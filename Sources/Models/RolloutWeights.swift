import Torch

/// How the rollout engine stores its weights (`rollout.weights`).
public enum WeightPrecision: String, Codable, CaseIterable, Sendable {
    /// The learner's own float32 weights: no separate copy.
    case fp32
    /// bfloat16 copies of every matrix.
    case bf16
    /// int8 copies with one float32 scale per output row (symmetric, max |w| → 127).
    case int8

    /// Bytes one stored weight takes.
    public var bytesPerWeight: Int { self == .fp32 ? 4 : self == .bf16 ? 2 : 1 }
}

/// A low-precision copy of a model's matrices (every linear layer, the embedding and the LM head)
/// for a rollout engine apart from the learner: decoding reads bf16 or int8 weights and
/// accumulates in float32, as a bf16/int8 inference engine does, while the learner keeps float32.
/// LoRA adapters are merged into the copy by default, so decoding pays no adapter products
/// (`mergesLoRA` false keeps them apart, applied in float32 on top); norms stay the learner's
/// float32 vectors. `refresh(from:)` rebuilds the copy after the weights change.
public final class RolloutWeights {
    public let precision: WeightPrecision
    /// Whether the model's LoRA adapters are folded into the copy (else added on top at decode).
    public let mergesLoRA: Bool
    struct Matrix {
        let values: Tensor
        /// int8 only: one float32 scale per row.
        let scale: Tensor?
    }
    private(set) var matrices: [String: Matrix] = [:]
    /// Bytes the copy holds (values and scales).
    public private(set) var bytes = 0

    /// The copy of `model`'s current weights (LoRA merged) in `precision`, which must not be fp32.
    public init(_ model: CausalLM, precision: WeightPrecision, mergesLoRA: Bool = true) throws {
        guard precision != .fp32 else { throw ModelError("rollout weights: fp32 needs no copy (the learner's weights are the rollout's)") }
        guard model.dtype == .float32 else {
            throw ModelError("rollout weights: the \(precision.rawValue) copy is made from float32 weights; this model is \(model.dtype)")
        }
        self.precision = precision
        self.mergesLoRA = mergesLoRA
        try refresh(from: model)
    }

    /// Names of the matrices a copy holds: the linear layers' weights and the embedding.
    static func names(_ model: CausalLM) -> [String] {
        model.weights.keys.filter { $0.hasSuffix(".weight") && model.weights[$0]!.rank == 2 }.sorted()
    }

    /// Rebuilds the copy from `model`'s weights (with its LoRA adapters merged, when it merges them).
    public func refresh(from model: CausalLM) throws {
        try withTorchErrors {
            try withNoGrad {
                let source = mergesLoRA ? model.lora?.merged(model.weights) ?? model.weights : model.weights
                var out: [String: Matrix] = [:], total = 0
                for name in Self.names(model) {
                    let w = source[name]!.detached()
                    let m: Matrix
                    switch precision {
                    case .bf16: m = Matrix(values: w.to(dtype: .bfloat16).contiguous(), scale: nil)
                    case .int8:
                        let (q, s) = w.quantizedRowsInt8()
                        m = Matrix(values: q, scale: s)
                    case .fp32: throw ModelError("rollout weights: fp32 needs no copy")
                    }
                    total += m.values.count * precision.bytesPerWeight + (m.scale?.count ?? 0) * 4
                    out[name] = m
                }
                matrices = out
                bytes = total
            }
        }
    }

    /// x·dequant(W)ᵀ + b for the matrix `name`, or nil when the copy has none by that name.
    func linear(_ x: Tensor, _ name: String, bias: Tensor?) -> Tensor? {
        guard let m = matrices[name] else { return nil }
        return x.to(dtype: .float32).lowPrecisionLinear(weight: m.values, scale: m.scale, bias: bias, kernelRows: CausalLM.kernelRows)
    }

    /// The embedding rows of `ids` as float32, from the copy (`name`: the embedding's weight).
    func embed(_ ids: Tensor, _ name: String) -> Tensor? {
        guard let m = matrices[name] else { return nil }
        let rows = Tensor.embedding(m.values, ids).to(dtype: .float32)
        guard let s = m.scale else { return rows }
        return rows * Tensor.embedding(s.unsqueezed(dim: 1), ids)
    }

    /// The float32 values the copy stands for (tests and reports): W rounded to bf16, or q·s.
    public func dequantized(_ name: String) -> Tensor? {
        guard let m = matrices[name] else { return nil }
        let f = m.values.to(dtype: .float32)
        return m.scale.map { f * $0.unsqueezed(dim: 1) } ?? f
    }
}

import Foundation

/// AdamW — "Decoupled Weight Decay Regularization" (Loshchilov & Hutter, arXiv:1711.05101),
/// with PyTorch's defaults and bias correction. For each parameter p with gradient g at step t:
///   p ← p · (1 − lr·λ)
///   m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²
///   p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
public final class AdamW: Optimizer {
    public struct Options: Codable, Equatable, Sendable {
        public var lr: Double
        public var beta1: Double
        public var beta2: Double
        public var eps: Double
        public var weightDecay: Double

        public init(lr: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                    weightDecay: Double = 0.01) {
            self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        }

        enum CodingKeys: String, CodingKey {
            case lr, beta1, beta2, eps, weightDecay = "weight_decay"
        }
    }

    public var options: Options
    public let groups: [ParamGroup]
    public var learningRate: Double {
        get { options.lr }
        set { options.lr = newValue }
    }
    private var steps: [Int]
    private var expAvg: [Tensor?]
    private var expAvgSq: [Tensor?]

    public init(groups: [ParamGroup], options: Options = Options()) throws {
        guard (0..<1).contains(options.beta1), (0..<1).contains(options.beta2) else {
            throw TorchError("AdamW betas must be in [0, 1), got (\(options.beta1), \(options.beta2))")
        }
        guard options.lr >= 0, options.eps >= 0, options.weightDecay >= 0 else {
            throw TorchError("AdamW lr, eps and weight_decay must be non-negative")
        }
        self.groups = groups
        self.options = options
        let n = groups.reduce(0) { $0 + $1.parameters.count }
        steps = Array(repeating: 0, count: n)
        expAvg = Array(repeating: nil, count: n)
        expAvgSq = Array(repeating: nil, count: n)
    }

    public convenience init(parameters: [Tensor], options: Options = Options()) throws {
        try self.init(groups: [ParamGroup(parameters)], options: options)
    }

    public func step() {
        withNoGrad {
            var i = 0
            for group in groups {
                let lr = options.lr * group.lrScale
                let wd = group.weightDecay ?? options.weightDecay
                for p in group.parameters {
                    defer { i += 1 }
                    guard let g = p.grad else { continue }
                    let m = expAvg[i] ?? Tensor.zeros(like: p)
                    let v = expAvgSq[i] ?? Tensor.zeros(like: p)
                    expAvg[i] = m
                    expAvgSq[i] = v
                    steps[i] += 1
                    let t = Double(steps[i])
                    if wd != 0 { p.mul_(1 - lr * wd) }
                    m.lerp_(g, weight: 1 - options.beta1)
                    v.mul_(options.beta2)
                    v.addcmul_(g, g, value: 1 - options.beta2)
                    let bc1 = 1 - Foundation.pow(options.beta1, t)
                    let bc2 = 1 - Foundation.pow(options.beta2, t)
                    let denom = v.sqrt() / bc2.squareRoot() + options.eps
                    p.addcdiv_(m, denom, value: -lr / bc1)
                }
            }
        }
    }

    public func stateTensors() throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        var tensors: [String: Tensor] = [:]
        for (i, m) in expAvg.enumerated() {
            if let m { tensors["exp_avg.\(i)"] = m }
            if let v = expAvgSq[i] { tensors["exp_avg_sq.\(i)"] = v }
        }
        // Sorted keys: the same state writes the same bytes (checkpoints compare equal).
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let opts = String(decoding: try encoder.encode(options), as: UTF8.self)
        return (tensors, ["optimizer": "adamw", "steps": encodeSteps(steps), "options": opts])
    }

    public func loadState(tensors: [String: Tensor], metadata: [String: String]) throws {
        let saved = try checkSavedState(kind: "adamw", metadata: metadata)
        var m = [Tensor?](), v = [Tensor?]()
        for i in saved.indices {
            m.append(try savedBuffer(tensors, "exp_avg", i))
            v.append(try savedBuffer(tensors, "exp_avg_sq", i))
            if saved[i] > 0 && (m[i] == nil || v[i] == nil) {
                throw TorchError("optimizer state lacks the moments of parameter \(i)")
            }
        }
        if let data = metadata["options"]?.data(using: .utf8) {
            options = try JSONDecoder().decode(Options.self, from: data)
        }
        steps = saved
        expAvg = m
        expAvgSq = v
    }
}

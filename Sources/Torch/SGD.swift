import Foundation

/// Stochastic gradient descent with optional momentum (PyTorch's formulation), dampening,
/// Nesterov momentum and L2 weight decay added to the gradient:
///   g ← g + λ·p;   b ← μ·b + (1 − τ)·g (b = g at the first step);   g ← g + μ·b (Nesterov) or b
///   p ← p − lr·g
public final class SGD: Optimizer {
    public struct Options: Codable, Equatable, Sendable {
        public var lr: Double
        public var momentum: Double
        public var dampening: Double
        public var weightDecay: Double
        public var nesterov: Bool

        public init(lr: Double = 1e-2, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0,
                    nesterov: Bool = false) {
            self.lr = lr; self.momentum = momentum; self.dampening = dampening
            self.weightDecay = weightDecay; self.nesterov = nesterov
        }

        enum CodingKeys: String, CodingKey {
            case lr, momentum, dampening, weightDecay = "weight_decay", nesterov
        }
    }

    public var options: Options
    public let groups: [ParamGroup]
    public var learningRate: Double {
        get { options.lr }
        set { options.lr = newValue }
    }
    private var steps: [Int]
    private var buffers: [Tensor?]

    public init(groups: [ParamGroup], options: Options = Options()) throws {
        guard options.lr >= 0, options.momentum >= 0, options.weightDecay >= 0 else {
            throw TorchError("SGD lr, momentum and weight_decay must be non-negative")
        }
        if options.nesterov && (options.momentum <= 0 || options.dampening != 0) {
            throw TorchError("SGD nesterov needs momentum > 0 and dampening 0")
        }
        self.groups = groups
        self.options = options
        let n = groups.reduce(0) { $0 + $1.parameters.count }
        steps = Array(repeating: 0, count: n)
        buffers = Array(repeating: nil, count: n)
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
                    guard var g = p.grad else { continue }
                    steps[i] += 1
                    if wd != 0 { g = g + wd * p }
                    if options.momentum != 0 {
                        let b: Tensor
                        if let existing = buffers[i] {
                            b = existing
                            b.mul_(options.momentum)
                            b.add_(g, alpha: 1 - options.dampening)
                        } else {
                            b = g.clone()
                            buffers[i] = b
                        }
                        g = options.nesterov ? g + options.momentum * b : b
                    }
                    p.add_(g, alpha: -lr)
                }
            }
        }
    }

    public func stateTensors() throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        var tensors: [String: Tensor] = [:]
        for (i, b) in buffers.enumerated() { if let b { tensors["momentum_buffer.\(i)"] = b } }
        // Sorted keys: the same state writes the same bytes (checkpoints compare equal).
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let opts = String(decoding: try encoder.encode(options), as: UTF8.self)
        return (tensors, ["optimizer": "sgd", "steps": encodeSteps(steps), "options": opts])
    }

    public func loadState(tensors: [String: Tensor], metadata: [String: String]) throws {
        let saved = try checkSavedState(kind: "sgd", metadata: metadata)
        var b = [Tensor?]()
        for i in saved.indices { b.append(try savedBuffer(tensors, "momentum_buffer", i)) }
        if let data = metadata["options"]?.data(using: .utf8) {
            options = try JSONDecoder().decode(Options.self, from: data)
        }
        steps = saved
        buffers = b
    }
}

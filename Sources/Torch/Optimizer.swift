import Foundation

/// Parameters that share optimizer settings (e.g. no weight decay for norms and biases).
public struct ParamGroup {
    public var parameters: [Tensor]
    /// Overrides the optimizer's weight decay for this group.
    public var weightDecay: Double?
    /// Multiplies the optimizer's learning rate for this group.
    public var lrScale: Double

    public init(_ parameters: [Tensor], weightDecay: Double? = nil, lrScale: Double = 1) {
        self.parameters = parameters
        self.weightDecay = weightDecay
        self.lrScale = lrScale
    }
}

/// An optimizer over a fixed list of parameters, updated in place from their `.grad`.
public protocol Optimizer: AnyObject {
    /// The base learning rate; schedules set it before each step.
    var learningRate: Double { get set }
    var groups: [ParamGroup] { get }
    /// Applies one update to every parameter that has a gradient.
    func step()
    /// The optimizer's state (moments, step counts) as named tensors plus metadata.
    func stateTensors() throws -> (tensors: [String: Tensor], metadata: [String: String])
    func loadState(tensors: [String: Tensor], metadata: [String: String]) throws
}

extension Optimizer {
    public var parameters: [Tensor] { groups.flatMap(\.parameters) }

    /// Drops every parameter's gradient.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }

    /// Writes the state to a safetensors file (atomically).
    public func save(to url: URL) throws {
        let (tensors, metadata) = try stateTensors()
        try Safetensors.write(tensors, metadata: metadata, to: url)
    }

    /// Restores state written by `save(to:)`; fails if it belongs to another optimizer or model.
    public func load(from url: URL) throws {
        let file = try Safetensors.File(url: url)
        var tensors: [String: Tensor] = [:]
        for name in file.names { tensors[name] = try file.tensor(name) }
        do {
            try loadState(tensors: tensors, metadata: file.metadata)
        } catch let e as TorchError {
            throw TorchError("\(url.path): \(e.message)")
        }
    }

    /// Checks the metadata and the parameter count of a saved state, and returns the step counts.
    func checkSavedState(kind: String, metadata: [String: String]) throws -> [Int] {
        guard metadata["optimizer"] == kind else {
            throw TorchError("optimizer state is for '\(metadata["optimizer"] ?? "unknown")', not '\(kind)'")
        }
        guard let data = metadata["steps"]?.data(using: .utf8),
              let steps = try? JSONDecoder().decode([Int].self, from: data) else {
            throw TorchError("optimizer state has no valid 'steps' entry")
        }
        let n = parameters.count
        guard steps.count == n else {
            throw TorchError("optimizer state holds \(steps.count) parameters but this optimizer has \(n)")
        }
        return steps
    }

    /// Fetches a saved buffer for parameter `i` and checks its shape against the parameter.
    func savedBuffer(_ tensors: [String: Tensor], _ name: String, _ i: Int) throws -> Tensor? {
        guard let t = tensors["\(name).\(i)"] else { return nil }
        let p = parameters[i]
        guard t.shape == p.shape else {
            throw TorchError("optimizer state '\(name).\(i)' has shape \(t.shape) but parameter \(i) has \(p.shape)")
        }
        return t.to(p.device, dtype: p.dtype)
    }
}

func encodeSteps(_ steps: [Int]) -> String {
    String(decoding: try! JSONEncoder().encode(steps), as: UTF8.self)
}

extension Torch {
    /// Scales all gradients so that their global `p`-norm is at most `maxNorm`; returns the norm
    /// before clipping (NaN if it could not be computed). As `torch.nn.utils.clip_grad_norm_`.
    @discardableResult
    public static func clipGradNorm(_ parameters: [Tensor], maxNorm: Double, p: Double = 2) -> Double {
        let grads = parameters.compactMap(\.grad)
        guard !grads.isEmpty else { return 0 }
        return withNoGrad {
            // Norms in float64 for float64 grads, else float32 (never in bf16/fp16).
            let norms = grads.map { ($0.dtype == .float64 ? $0 : $0.to(dtype: .float32)).norm(p: p).to(dtype: .float64) }
            let total = Tensor.stack(norms).norm(p: p)
            let coef = (maxNorm / (total + 1e-6)).clamp(max: 1)
            for g in grads { g.mul_(coef.to(g.device, dtype: g.dtype)) }
            return (try? total.item()) ?? .nan
        }
    }
}

import CTorch

extension Tensor {
    /// Whether autograd records ops on this tensor. Only floating-point tensors can require grad.
    public var requiresGrad: Bool {
        get { withExtendedLifetime(self) { tw_requires_grad(handle) != 0 } }
        set { withExtendedLifetime(self) { _ = ffiRecording { tw_set_requires_grad(handle, newValue ? 1 : 0, $0) } } }
    }

    /// Sets `requiresGrad` and returns self, for chaining at creation.
    @discardableResult
    public func requiringGrad(_ value: Bool = true) -> Tensor {
        requiresGrad = value
        return self
    }

    /// True for tensors created by the user (not produced by a recorded op).
    public var isLeaf: Bool { withExtendedLifetime(self) { tw_is_leaf(handle) != 0 } }

    /// The gradient accumulated by `backward()`, or nil if none has been computed.
    public var grad: Tensor? {
        get {
            withExtendedLifetime(self) {
                let h = ffiRecording { tw_grad(handle, $0) }
                return h.map { Tensor(handle: $0) }
            }
        }
        set {
            withExtendedLifetime((self, newValue)) {
                _ = ffiRecording { tw_set_grad(handle, newValue?.handle, $0) }
            }
        }
    }

    /// Drops the accumulated gradient (as PyTorch's `zero_grad(set_to_none=True)`).
    public func zeroGrad() {
        withExtendedLifetime(self) { _ = ffiRecording { tw_zero_grad(handle, $0) } }
    }

    /// Accumulates d(self)/d(leaf) into every leaf's `grad`. A non-scalar output needs `gradient`.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) {
        withExtendedLifetime((self, gradient)) {
            _ = ffiRecording { tw_backward(handle, gradient?.handle, retainGraph ? 1 : 0, $0) }
        }
    }
}

extension Torch {
    /// Functional gradients: d(Σ outputs·gradOutputs)/d(inputs), without touching `.grad`.
    /// An input the outputs do not depend on yields nil when `allowUnused` is set (else an error).
    public static func grad(
        outputs: [Tensor], inputs: [Tensor], gradOutputs: [Tensor]? = nil,
        retainGraph: Bool = false, createGraph: Bool = false, allowUnused: Bool = false
    ) -> [Tensor?] {
        if let g = gradOutputs, g.count != outputs.count {
            ErrorScope.record("grad: \(outputs.count) outputs but \(g.count) gradOutputs")
            return inputs.map { _ in nil }
        }
        var out = [OpaquePointer?](repeating: nil, count: inputs.count)
        Tensor.withHandles(outputs) { outs in
            Tensor.withHandles(inputs) { ins in
                Tensor.withHandles(gradOutputs ?? []) { gouts in
                    _ = ffiRecording {
                        tw_autograd_grad(outs, Int32(outputs.count), gradOutputs == nil ? nil : gouts,
                                         ins, Int32(inputs.count), retainGraph ? 1 : 0, createGraph ? 1 : 0,
                                         allowUnused ? 1 : 0, &out, $0)
                    }
                }
            }
        }
        return out.map { h in h.map { Tensor(handle: $0) } }
    }
}

/// Runs `body` with autograd recording off on this thread (as `torch.no_grad()`), restoring the
/// previous mode afterwards even if `body` throws.
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    let previous = tw_set_grad_enabled(0)
    defer { tw_set_grad_enabled(previous) }
    return try body()
}

/// Runs `body` with autograd recording on (inside a `withNoGrad` scope, say).
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
    let previous = tw_set_grad_enabled(1)
    defer { tw_set_grad_enabled(previous) }
    return try body()
}

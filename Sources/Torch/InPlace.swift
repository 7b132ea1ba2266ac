import CTorch

// In-place updates, for optimizers, KV caches and buffers. On a leaf that requires grad they
// must run inside `withNoGrad`, as in PyTorch.
extension Tensor {
    private func inplace(_ code: tw_inplace_op, _ a: Tensor, _ b: Tensor? = nil, _ alpha: Double = 1) {
        withExtendedLifetime((self, a, b)) {
            _ = ffiRecording { tw_inplace(Int32(code.rawValue), handle, a.handle, b?.handle, alpha, $0) }
        }
    }

    private func inplace(_ code: tw_inplace_scalar_op, _ s: Double) {
        withExtendedLifetime(self) { _ = ffiRecording { tw_inplace_scalar(Int32(code.rawValue), handle, s, $0) } }
    }

    /// Copies `source` (broadcast, converted) into this tensor's storage — also into a view's base.
    public func copy(from source: Tensor) { inplace(TW_I_COPY, source) }
    /// self += alpha · other
    public func add_(_ other: Tensor, alpha: Double = 1) { inplace(TW_I_ADD, other, nil, alpha) }
    public func mul_(_ other: Tensor) { inplace(TW_I_MUL, other) }
    public func div_(_ other: Tensor) { inplace(TW_I_DIV, other) }
    /// self += value · a · b
    public func addcmul_(_ a: Tensor, _ b: Tensor, value: Double = 1) { inplace(TW_I_ADDCMUL, a, b, value) }
    /// self += value · a / b
    public func addcdiv_(_ a: Tensor, _ b: Tensor, value: Double = 1) { inplace(TW_I_ADDCDIV, a, b, value) }
    /// self += weight · (end - self)
    public func lerp_(_ end: Tensor, weight: Double) { inplace(TW_I_LERP, end, nil, weight) }
    public func fill_(_ value: Double) { inplace(TW_IS_FILL, value) }
    public func zero_() { inplace(TW_IS_FILL, 0) }
    public func add_(_ value: Double) { inplace(TW_IS_ADD, value) }
    public func mul_(_ value: Double) { inplace(TW_IS_MUL, value) }
    public func clampMin_(_ value: Double) { inplace(TW_IS_CLAMP_MIN, value) }
    public func clampMax_(_ value: Double) { inplace(TW_IS_CLAMP_MAX, value) }
}

import CTorch

// Elementwise arithmetic broadcasts as in PyTorch; comparisons return bool tensors.
extension Tensor {
    func unary(_ code: tw_unary_op) -> Tensor { op { tw_unary(Int32(code.rawValue), $0, $1) } }
    func binary(_ code: tw_binary_op, _ other: Tensor) -> Tensor {
        op(other) { tw_binary(Int32(code.rawValue), $0, $1, $2) }
    }
    func scalar(_ code: tw_scalar_op, _ s: Double) -> Tensor { op { tw_scalar(Int32(code.rawValue), $0, s, $1) } }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.binary(TW_ADD, b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.binary(TW_SUB, b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.binary(TW_MUL, b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { a.binary(TW_DIV, b) }
    public static func + (a: Tensor, s: Double) -> Tensor { a.scalar(TW_S_ADD, s) }
    public static func - (a: Tensor, s: Double) -> Tensor { a.scalar(TW_S_SUB, s) }
    public static func * (a: Tensor, s: Double) -> Tensor { a.scalar(TW_S_MUL, s) }
    public static func / (a: Tensor, s: Double) -> Tensor { a.scalar(TW_S_DIV, s) }
    public static func + (s: Double, a: Tensor) -> Tensor { a.scalar(TW_S_ADD, s) }
    public static func - (s: Double, a: Tensor) -> Tensor { a.scalar(TW_S_RSUB, s) }
    public static func * (s: Double, a: Tensor) -> Tensor { a.scalar(TW_S_MUL, s) }
    public static func / (s: Double, a: Tensor) -> Tensor { a.scalar(TW_S_RDIV, s) }
    public static prefix func - (a: Tensor) -> Tensor { a.unary(TW_NEG) }

    public static func .== (a: Tensor, b: Tensor) -> Tensor { a.binary(TW_EQ, b) }
    public static func .!= (a: Tensor, b: Tensor) -> Tensor { a.binary(TW_NE, b) }
    public static func .< (a: Tensor, b: Tensor) -> Tensor { a.binary(TW_LT, b) }
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { a.binary(TW_LE, b) }
    public static func .> (a: Tensor, b: Tensor) -> Tensor { a.binary(TW_GT, b) }
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { a.binary(TW_GE, b) }
    public static func .== (a: Tensor, s: Double) -> Tensor { a.scalar(TW_S_EQ, s) }
    public static func .!= (a: Tensor, s: Double) -> Tensor { a.scalar(TW_S_NE, s) }
    public static func .< (a: Tensor, s: Double) -> Tensor { a.scalar(TW_S_LT, s) }
    public static func .<= (a: Tensor, s: Double) -> Tensor { a.scalar(TW_S_LE, s) }
    public static func .> (a: Tensor, s: Double) -> Tensor { a.scalar(TW_S_GT, s) }
    public static func .>= (a: Tensor, s: Double) -> Tensor { a.scalar(TW_S_GE, s) }

    public func logicalAnd(_ other: Tensor) -> Tensor { binary(TW_LOGICAL_AND, other) }
    public func logicalOr(_ other: Tensor) -> Tensor { binary(TW_LOGICAL_OR, other) }
    public func logicalNot() -> Tensor { unary(TW_LOGICAL_NOT) }

    public func exp() -> Tensor { unary(TW_EXP) }
    public func log() -> Tensor { unary(TW_LOG) }
    public func log1p() -> Tensor { unary(TW_LOG1P) }
    public func expm1() -> Tensor { unary(TW_EXPM1) }
    public func sqrt() -> Tensor { unary(TW_SQRT) }
    public func rsqrt() -> Tensor { unary(TW_RSQRT) }
    public func square() -> Tensor { unary(TW_SQUARE) }
    public func reciprocal() -> Tensor { unary(TW_RECIPROCAL) }
    public func abs() -> Tensor { unary(TW_ABS) }
    public func sign() -> Tensor { unary(TW_SIGN) }
    public func floor() -> Tensor { unary(TW_FLOOR) }
    public func ceil() -> Tensor { unary(TW_CEIL) }
    public func rounded() -> Tensor { unary(TW_ROUND) }
    public func sin() -> Tensor { unary(TW_SIN) }
    public func cos() -> Tensor { unary(TW_COS) }
    public func tanh() -> Tensor { unary(TW_TANH) }
    public func sigmoid() -> Tensor { unary(TW_SIGMOID) }
    public func relu() -> Tensor { unary(TW_RELU) }
    public func silu() -> Tensor { unary(TW_SILU) }
    /// GELU; `tanhApproximation` selects the tanh form used by GPT-2 style models.
    public func gelu(tanhApproximation: Bool = false) -> Tensor { unary(tanhApproximation ? TW_GELU_TANH : TW_GELU) }
    public func isNaN() -> Tensor { unary(TW_ISNAN) }
    /// log σ(x), stable for large |x|.
    public func logSigmoid() -> Tensor { unary(TW_LOG_SIGMOID) }
    /// log(1 + eˣ), stable for large |x|.
    public func softplus() -> Tensor { unary(TW_SOFTPLUS) }
    public func isFinite() -> Tensor { unary(TW_ISFINITE) }

    public func pow(_ exponent: Double) -> Tensor { scalar(TW_S_POW, exponent) }
    public func pow(_ exponent: Tensor) -> Tensor { binary(TW_POW, exponent) }
    /// base ** self, elementwise.
    public func exponentiating(base: Double) -> Tensor { scalar(TW_S_RPOW, base) }
    public func remainder(_ divisor: Double) -> Tensor { scalar(TW_S_REMAINDER, divisor) }
    public func remainder(_ divisor: Tensor) -> Tensor { binary(TW_REMAINDER, divisor) }
    public func floorDivide(_ divisor: Tensor) -> Tensor { binary(TW_FLOOR_DIVIDE, divisor) }

    /// Elementwise max / min of two tensors (broadcast) or of a tensor and a scalar.
    public func maximum(_ other: Tensor) -> Tensor { binary(TW_MAXIMUM, other) }
    public func minimum(_ other: Tensor) -> Tensor { binary(TW_MINIMUM, other) }
    public func maximum(_ s: Double) -> Tensor { scalar(TW_S_MAXIMUM, s) }
    public func minimum(_ s: Double) -> Tensor { scalar(TW_S_MINIMUM, s) }

    public func clamp(min lo: Double? = nil, max hi: Double? = nil) -> Tensor {
        op { tw_clamp($0, lo ?? 0, hi ?? 0, lo == nil ? 0 : 1, hi == nil ? 0 : 1, $1) }
    }

    // MARK: reductions. `dims: []` reduces over every element.

    func reduce(_ code: tw_reduce_op, _ dims: [Int], _ keepDim: Bool) -> Tensor {
        let d = Tensor.shapeArgs(dims)
        return op { tw_reduce(Int32(code.rawValue), $0, d, Int32(d.count), keepDim ? 1 : 0, $1) }
    }

    public func sum(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(TW_SUM, dims, keepDim) }
    public func sum(dim: Int, keepDim: Bool = false) -> Tensor { reduce(TW_SUM, [dim], keepDim) }
    public func mean(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(TW_MEAN, dims, keepDim) }
    public func mean(dim: Int, keepDim: Bool = false) -> Tensor { reduce(TW_MEAN, [dim], keepDim) }
    public func prod(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(TW_PROD, dims, keepDim) }
    /// Largest value over `dims` (no indices; see `max(dim:)`).
    public func amax(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(TW_AMAX, dims, keepDim) }
    public func amin(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(TW_AMIN, dims, keepDim) }
    public func logsumexp(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(TW_LOGSUMEXP, dims, keepDim) }
    public func logsumexp(dim: Int, keepDim: Bool = false) -> Tensor { reduce(TW_LOGSUMEXP, [dim], keepDim) }
    public func all(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(TW_ALL, dims, keepDim) }
    public func any(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(TW_ANY, dims, keepDim) }

    /// Variance with Bessel's correction by default (`correction: 0` is the population variance).
    public func variance(dims: [Int] = [], correction: Int = 1, keepDim: Bool = false) -> Tensor {
        let d = Tensor.shapeArgs(dims)
        return op { tw_var($0, d, Int32(d.count), Int64(correction), keepDim ? 1 : 0, 0, $1) }
    }

    public func std(dims: [Int] = [], correction: Int = 1, keepDim: Bool = false) -> Tensor {
        let d = Tensor.shapeArgs(dims)
        return op { tw_var($0, d, Int32(d.count), Int64(correction), keepDim ? 1 : 0, 1, $1) }
    }

    /// Vector p-norm over `dims` (all elements by default).
    public func norm(p: Double = 2, dims: [Int] = [], keepDim: Bool = false) -> Tensor {
        let d = Tensor.shapeArgs(dims)
        return op { tw_norm($0, p, d, Int32(d.count), keepDim ? 1 : 0, $1) }
    }

    private func minmax(_ which: Int32, _ dim: Int, _ keepDim: Bool) -> (values: Tensor, indices: Tensor) {
        withExtendedLifetime(self) {
            var v: OpaquePointer? = nil, i: OpaquePointer? = nil
            ffiRecording { tw_minmax_dim(which, handle, Int64(dim), keepDim ? 1 : 0, &v, &i, $0) }
            return (Tensor(handle: v), Tensor(handle: i))
        }
    }

    /// Largest value along `dim` and its index.
    public func max(dim: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) { minmax(0, dim, keepDim) }
    public func min(dim: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) { minmax(1, dim, keepDim) }

    /// Index of the largest value along `dim`, or in the flattened tensor when `dim` is nil.
    public func argmax(dim: Int? = nil, keepDim: Bool = false) -> Tensor {
        op { tw_argmax($0, Int64(dim ?? 0), dim == nil ? 0 : 1, keepDim ? 1 : 0, 0, $1) }
    }

    public func argmin(dim: Int? = nil, keepDim: Bool = false) -> Tensor {
        op { tw_argmax($0, Int64(dim ?? 0), dim == nil ? 0 : 1, keepDim ? 1 : 0, 1, $1) }
    }

    public func cumsum(dim: Int) -> Tensor { op { tw_cumsum($0, Int64(dim), $1) } }

    private func cumulative(_ which: Int32, _ dim: Int) -> (values: Tensor, indices: Tensor) {
        withExtendedLifetime(self) {
            var v: OpaquePointer? = nil, i: OpaquePointer? = nil
            ffiRecording { tw_cumminmax(which, handle, Int64(dim), &v, &i, $0) }
            return (Tensor(handle: v), Tensor(handle: i))
        }
    }

    /// Running minimum along `dim` and where each was reached.
    public func cummin(dim: Int) -> (values: Tensor, indices: Tensor) { cumulative(0, dim) }
    /// Running maximum along `dim` and where each was reached.
    public func cummax(dim: Int) -> (values: Tensor, indices: Tensor) { cumulative(1, dim) }
}

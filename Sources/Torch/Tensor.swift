import CTorch

/// A libtorch tensor. Owns one shim handle and frees it when the last reference goes away.
///
/// Ops follow PyTorch semantics (broadcasting, dtype promotion, views share storage) with Swift
/// names. A failed op yields an *invalid* tensor (no handle) and records the error in the current
/// `withTorchErrors` scope; see `TorchError.swift`.
public final class Tensor {
    let handle: OpaquePointer?

    init(handle: OpaquePointer?) { self.handle = handle }

    deinit { if let handle { tw_tensor_free(handle) } }

    /// False when the op that produced this tensor failed.
    public var isValid: Bool { handle != nil }

    // MARK: calling the shim with operands kept alive

    /// Wraps the handle returned by a shim call, recording its error if it failed.
    @inline(__always)
    static func make(_ body: (ErrorOut) -> OpaquePointer?) -> Tensor {
        Tensor(handle: ffiRecording(body))
    }

    /// Unary op on self; `self` stays alive for the whole call.
    @inline(__always)
    func op(_ body: (OpaquePointer?, ErrorOut) -> OpaquePointer?) -> Tensor {
        withExtendedLifetime(self) { Tensor.make { body(handle, $0) } }
    }

    /// Binary op; both operands stay alive for the whole call.
    @inline(__always)
    func op(_ other: Tensor, _ body: (OpaquePointer?, OpaquePointer?, ErrorOut) -> OpaquePointer?) -> Tensor {
        withExtendedLifetime((self, other)) { Tensor.make { body(handle, other.handle, $0) } }
    }

    /// Calls the shim with the handles of `tensors` in a C array, keeping them alive.
    static func withHandles<R>(_ tensors: [Tensor], _ body: (UnsafePointer<OpaquePointer?>) -> R) -> R {
        withExtendedLifetime(tensors) {
            let handles: [OpaquePointer?] = tensors.map(\.handle)
            return handles.withUnsafeBufferPointer { body($0.baseAddress!) }
        }
    }

    // MARK: metadata

    public var rank: Int { Int(tw_dim(handle)) }

    public var shape: [Int] {
        withExtendedLifetime(self) {
            let n = tw_dim(handle)
            guard n > 0 else { return [] }
            var out = [Int64](repeating: 0, count: Int(n))
            tw_shape(handle, &out)
            return out.map(Int.init)
        }
    }

    public var strides: [Int] {
        withExtendedLifetime(self) {
            let n = tw_dim(handle)
            guard n > 0 else { return [] }
            var out = [Int64](repeating: 0, count: Int(n))
            tw_strides(handle, &out)
            return out.map(Int.init)
        }
    }

    /// Size of one dimension (negative dims count from the end). A dimension the tensor does not
    /// have (an op before it failed and left an invalid tensor) is recorded as an error like a
    /// failing op, and reads as 0, so the scope ends with the first error instead of a trap.
    public func size(_ dim: Int) -> Int {
        let s = shape
        let d = dim < 0 ? dim + s.count : dim
        guard s.indices.contains(d) else {
            ErrorScope.record("tensor of shape \(s) has no dimension \(dim)")
            return 0
        }
        return s[d]
    }

    /// Number of elements.
    public var count: Int { withExtendedLifetime(self) { Int(tw_numel(handle)) } }

    public var dtype: DType { withExtendedLifetime(self) { DType(code: tw_dtype(handle)) ?? .float32 } }

    public var device: Device {
        withExtendedLifetime(self) {
            tw_device_type(handle) == Int32(TW_CUDA) ? .cuda(Int(tw_device_index(handle))) : .cpu
        }
    }

    public var isContiguous: Bool { withExtendedLifetime(self) { tw_is_contiguous(handle) != 0 } }

    // MARK: creation from Swift values

    /// A tensor holding a copy of `values` with the given shape (default: one dimension).
    public convenience init<T: TensorElement>(_ values: [T], shape: [Int]? = nil) {
        let shape = shape ?? [values.count]
        let expected = shape.reduce(1, *)
        guard expected == values.count, shape.allSatisfy({ $0 >= 0 }) else {
            ErrorScope.record("shape \(shape) holds \(expected) elements but \(values.count) values were given")
            self.init(handle: nil)
            return
        }
        let dims = shape.map(Int64.init)
        let h = values.withUnsafeBytes { raw in
            ffiRecording { tw_from_data(raw.baseAddress, T.dtype.code, dims, Int32(dims.count), $0) }
        }
        self.init(handle: h)
    }

    /// A tensor from a 2-D Swift array; every row must have the same length.
    public convenience init<T: TensorElement>(rows: [[T]]) {
        let width = rows.first?.count ?? 0
        guard rows.allSatisfy({ $0.count == width }) else {
            ErrorScope.record("rows have different lengths: \(rows.map(\.count))")
            self.init(handle: nil)
            return
        }
        self.init(rows.flatMap { $0 }, shape: [rows.count, width])
    }

    /// A 0-dimensional tensor.
    public convenience init(scalar: Double, dtype: DType = .float32, device: Device = .cpu) {
        self.init(handle: ffiRecording { tw_full(nil, 0, scalar, dtype.code, device.typeCode, device.index, $0) })
    }

    /// A tensor over raw little-endian bytes of `dtype` (copied), as read from a weights file.
    public convenience init(bytes: UnsafeRawBufferPointer, dtype: DType, shape: [Int]) {
        let expected = shape.reduce(1, *) * dtype.byteSize
        guard expected == bytes.count else {
            ErrorScope.record("shape \(shape) of \(dtype) needs \(expected) bytes but \(bytes.count) were given")
            self.init(handle: nil)
            return
        }
        let dims = shape.map(Int64.init)
        self.init(handle: ffiRecording { tw_from_data(bytes.baseAddress, dtype.code, dims, Int32(dims.count), $0) })
    }

    // MARK: back to Swift values

    /// Fails when this tensor is invalid, with the error that made it so when the scope has it.
    func checkValid() throws {
        guard handle == nil else { return }
        if let first = ErrorScope.stack.scopes.last?.first { throw first }
        throw TorchError("cannot read an invalid tensor (an earlier operation failed)")
    }

    /// All elements in row-major order, converted to `T` (and copied to the CPU).
    public func toArray<T: TensorElement>(_ type: T.Type = T.self) throws -> [T] {
        try withExtendedLifetime(self) {
            try checkValid()
            let n = count
            var out = [T](unsafeUninitializedCapacity: n) { _, initialized in initialized = n }
            try out.withUnsafeMutableBytes { raw in
                _ = try ffiThrowing { tw_copy_to_buffer(handle, T.dtype.code, raw.baseAddress, Int64(n), $0) }
            }
            return out
        }
    }

    /// The raw bytes of the elements in `dtype` (default: the tensor's own), row-major.
    public func bytes(as dtype: DType? = nil) throws -> [UInt8] {
        try withExtendedLifetime(self) {
            try checkValid()
            let dt = dtype ?? self.dtype
            let n = count
            var out = [UInt8](repeating: 0, count: n * dt.byteSize)
            try out.withUnsafeMutableBytes { raw in
                _ = try ffiThrowing { tw_copy_to_buffer(handle, dt.code, raw.baseAddress, Int64(n), $0) }
            }
            return out
        }
    }

    public func floats() throws -> [Float] { try toArray(Float.self) }
    public func doubles() throws -> [Double] { try toArray(Double.self) }
    public func int64s() throws -> [Int64] { try toArray(Int64.self) }
    public func bools() throws -> [Bool] { try toArray(Bool.self) }

    /// The single element of a one-element tensor, as a Double.
    public func item() throws -> Double {
        try checkValid()
        let c = count
        guard c == 1 else { throw TorchError("item() needs a tensor with one element, got shape \(shape)") }
        return try toArray(Double.self)[0]
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        withExtendedLifetime(self) {
            guard handle != nil else { return "Tensor(invalid)" }
            var err: UnsafeMutablePointer<CChar>? = nil
            guard let s = tw_to_string(handle, &err) else {
                if let err { tw_error_free(err) }
                return "Tensor(\(shape), \(dtype))"
            }
            defer { tw_error_free(s) }
            return String(cString: s)
        }
    }
}

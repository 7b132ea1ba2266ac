import CTorch

// Views share storage with their base (as in PyTorch); reshape copies only when it must.
extension Tensor {
    /// Converts to a device and/or dtype (a no-op returns the same storage).
    public func to(_ device: Device? = nil, dtype: DType? = nil) -> Tensor {
        let d = device ?? self.device
        let t = dtype ?? self.dtype
        return op { tw_to($0, t.code, d.typeCode, d.index, $1) }
    }

    public func to(dtype: DType) -> Tensor { to(nil, dtype: dtype) }

    public func contiguous() -> Tensor { op { tw_contiguous($0, $1) } }
    public func clone() -> Tensor { op { tw_clone($0, $1) } }
    /// The same values cut off from the autograd graph.
    public func detached() -> Tensor { op { tw_detach($0, $1) } }

    /// New shape with the same elements; one dim may be -1.
    public func reshaped(_ shape: [Int]) -> Tensor {
        let dims = Tensor.shapeArgs(shape)
        return op { tw_reshape($0, dims, Int32(dims.count), $1) }
    }

    /// Like `reshaped` but never copies; fails on a layout that needs a copy.
    public func view(_ shape: [Int]) -> Tensor {
        let dims = Tensor.shapeArgs(shape)
        return op { tw_view($0, dims, Int32(dims.count), $1) }
    }

    /// Broadcasts size-1 dims to `shape` without copying (-1 keeps a dim).
    public func expanded(to shape: [Int]) -> Tensor {
        let dims = Tensor.shapeArgs(shape)
        return op { tw_expand($0, dims, Int32(dims.count), $1) }
    }

    public func permuted(_ dims: [Int]) -> Tensor {
        let d = Tensor.shapeArgs(dims)
        return op { tw_permute($0, d, Int32(d.count), $1) }
    }

    public func transposed(_ d0: Int, _ d1: Int) -> Tensor {
        op { tw_transpose($0, Int64(d0), Int64(d1), $1) }
    }

    /// `length` entries of `dim` from `start`.
    public func narrowed(dim: Int, start: Int, length: Int) -> Tensor {
        op { tw_narrow($0, Int64(dim), Int64(start), Int64(length), $1) }
    }

    /// Python's `t[..., start:end:step, ...]` on `dim`; `end` is clamped to the size.
    public func sliced(dim: Int, start: Int = 0, end: Int = Int(Int64.max), step: Int = 1) -> Tensor {
        op { tw_slice($0, Int64(dim), Int64(start), Int64(end), Int64(step), $1) }
    }

    /// Removes `dim` by taking entry `index` of it.
    public func select(dim: Int, index: Int) -> Tensor {
        op { tw_select($0, Int64(dim), Int64(index), $1) }
    }

    /// `t[i]`: entry `i` of the first dim (negative counts from the end).
    public subscript(index: Int) -> Tensor { select(dim: 0, index: index) }

    /// Removes every size-1 dim, or only `dim` when given (if it has size 1).
    public func squeezed(dim: Int? = nil) -> Tensor {
        op { tw_squeeze($0, Int64(dim ?? 0), dim == nil ? 1 : 0, $1) }
    }

    public func unsqueezed(dim: Int) -> Tensor { op { tw_unsqueeze($0, Int64(dim), $1) } }

    public func flattened(start: Int = 0, end: Int = -1) -> Tensor {
        op { tw_flatten($0, Int64(start), Int64(end), $1) }
    }

    public static func cat(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
        withHandles(tensors) { hs in make { tw_cat(hs, Int32(tensors.count), Int64(dim), $0) } }
    }

    public static func stack(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
        withHandles(tensors) { hs in make { tw_stack(hs, Int32(tensors.count), Int64(dim), $0) } }
    }

    /// out[i][j] = self[i][index[i][j]] for dim 1 (int64 index of the output's shape).
    public func gather(dim: Int, index: Tensor) -> Tensor {
        op(index) { tw_gather($0, Int64(dim), $1, $2) }
    }

    /// A copy with `src` written at `index` along `dim`; `add` accumulates instead (scatter_add).
    public func scattered(dim: Int, index: Tensor, source: Tensor, add: Bool = false) -> Tensor {
        withExtendedLifetime((self, index, source)) {
            Tensor.make { tw_scatter(handle, Int64(dim), index.handle, source.handle, add ? 1 : 0, $0) }
        }
    }

    public func indexSelect(dim: Int, index: Tensor) -> Tensor {
        op(index) { tw_index_select($0, Int64(dim), $1, $2) }
    }

    /// A copy with `value` wherever the (broadcast) bool `mask` is true.
    public func maskedFill(_ mask: Tensor, value: Double) -> Tensor {
        op(mask) { tw_masked_fill($0, $1, value, $2) }
    }

    /// Elementwise `condition ? a : b` with broadcasting.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        withExtendedLifetime((condition, a, b)) {
            make { tw_where(condition.handle, a.handle, b.handle, $0) }
        }
    }

    /// Lower triangle (entries j <= i + diagonal kept, others zero).
    public func tril(diagonal: Int = 0) -> Tensor { op { tw_tril($0, Int64(diagonal), 0, $1) } }
    /// Upper triangle (entries j >= i + diagonal kept, others zero).
    public func triu(diagonal: Int = 0) -> Tensor { op { tw_tril($0, Int64(diagonal), 1, $1) } }

    /// `[size, size]` bool mask, true where attention is allowed (j <= i).
    public static func causalMask(_ size: Int, device: Device = .cpu) -> Tensor {
        ones([size, size], dtype: .bool, device: device).tril()
    }
}

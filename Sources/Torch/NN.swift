import CTorch

// Neural-network building blocks: matrix products, normalised exponentials, attention, selection.
extension Tensor {
    /// Matrix product with PyTorch's broadcasting rules (1-D, 2-D and batched).
    public func matmul(_ other: Tensor) -> Tensor { op(other) { tw_matmul($0, $1, $2) } }

    /// Batched matrix product of `[B, N, M]` and `[B, M, P]`.
    public func bmm(_ other: Tensor) -> Tensor { op(other) { tw_bmm($0, $1, $2) } }

    /// `self · weightᵀ + bias` with `weight: [out, in]`.
    public func linear(weight: Tensor, bias: Tensor? = nil) -> Tensor {
        withExtendedLifetime((self, weight, bias)) {
            Tensor.make { tw_linear(handle, weight.handle, bias?.handle, $0) }
        }
    }

    /// `self · weightᵀ + bias` for a few rows (decoding) without autograd: streams each row of
    /// `weight` once for every row of `self` ([M, K] float32 on the CPU); other inputs fall back
    /// to `linear`.
    public func smallLinear(weight: Tensor, bias: Tensor? = nil) -> Tensor {
        withExtendedLifetime((self, weight, bias)) {
            Tensor.make { tw_small_linear(handle, weight.handle, bias?.handle, $0) }
        }
    }

    /// `self · dequant(weight)ᵀ + bias` for a low-precision weight `[N, K]`: bfloat16, or int8 with
    /// one float32 `scale` per row. `self` is float32 `[..., K]` and products accumulate in float32.
    /// Up to `kernelRows` rows on the CPU read the weight as stored (decoding); more rows multiply
    /// float32 copies of 2048 weight rows at a time. No autograd.
    public func lowPrecisionLinear(weight: Tensor, scale: Tensor? = nil, bias: Tensor? = nil, kernelRows: Int = 64) -> Tensor {
        withExtendedLifetime((self, weight, scale, bias)) {
            Tensor.make { tw_lowp_linear(handle, weight.handle, scale?.handle, bias?.handle, Int64(kernelRows), $0) }
        }
    }

    /// Symmetric per-row int8 quantisation of a 2-D weight: `q = round(w / s)` with
    /// `s = max|row| / 127` (1 for an all-zero row); returns q (int8) and s (float32 `[rows]`).
    public func quantizedRowsInt8() -> (values: Tensor, scales: Tensor) {
        withExtendedLifetime(self) {
            var scale: OpaquePointer? = nil
            let q = Tensor.make { tw_quantize_rows_int8(handle, &scale, $0) }
            return (q, Tensor(handle: scale))
        }
    }

    /// `self · weightᵀ` for a weight with many rows (a vocabulary projection): on the CPU the
    /// output is computed `chunk` columns at a time, which BLAS runs faster than one huge product.
    public func wideLinear(weight: Tensor, chunk: Int = 2048) -> Tensor {
        withExtendedLifetime((self, weight)) {
            Tensor.make { tw_wide_linear(handle, weight.handle, Int64(chunk), $0) }
        }
    }

    /// Per-token log-probabilities of `targets` ([B, T] int64) under `softmax(self · weightᵀ)` for
    /// hidden states `self` [B, T, H], and the distributions' entropies, both [B, T] float32. Logits
    /// are formed `chunk` positions at a time and the backward recomputes them, so no [B, T, V]
    /// tensor outlives its chunk.
    public func tokenLogprobs(weight: Tensor, targets: Tensor, chunk: Int) -> (logprobs: Tensor, entropies: Tensor) {
        withExtendedLifetime((self, weight, targets)) {
            var lp: OpaquePointer? = nil, ent: OpaquePointer? = nil
            _ = ffiRecording { tw_token_logprobs(handle, weight.handle, targets.handle, Int64(chunk), &lp, &ent, $0) }
            return (Tensor(handle: lp), Tensor(handle: ent))
        }
    }

    public func softmax(dim: Int) -> Tensor { op { tw_softmax($0, Int64(dim), 0, $1) } }
    public func logSoftmax(dim: Int) -> Tensor { op { tw_softmax($0, Int64(dim), 1, $1) } }

    /// Rows of `weight: [V, D]` picked by the int64 `indices`; result shape `indices.shape + [D]`.
    public static func embedding(_ weight: Tensor, _ indices: Tensor) -> Tensor {
        weight.op(indices) { tw_embedding($0, $1, $2) }
    }

    /// Attention `softmax(q·kᵀ·scale + mask)·v` over `[B, H, T, D]` tensors.
    /// - mask: bool (true = attend) or additive float, broadcastable to `[B, H, Tq, Tk]`.
    /// - causal: lower-triangular masking (not combinable with `mask`).
    /// - scale: default `1/sqrt(D)`.
    /// - groupedQuery: k and v may have fewer heads than q (GQA); heads are repeated.
    public static func scaledDotProductAttention(
        query: Tensor, key: Tensor, value: Tensor, mask: Tensor? = nil, causal: Bool = false,
        scale: Double? = nil, groupedQuery: Bool = false, dropout: Double = 0
    ) -> Tensor {
        withExtendedLifetime((query, key, value, mask)) {
            make {
                tw_sdpa(query.handle, key.handle, value.handle, mask?.handle, dropout, causal ? 1 : 0,
                        scale ?? 0, groupedQuery ? 1 : 0, $0)
            }
        }
    }

    private func pair(_ body: (inout OpaquePointer?, inout OpaquePointer?, ErrorOut) -> Int32)
        -> (values: Tensor, indices: Tensor)
    {
        withExtendedLifetime(self) {
            var v: OpaquePointer? = nil, i: OpaquePointer? = nil
            ffiRecording { body(&v, &i, $0) }
            return (Tensor(handle: v), Tensor(handle: i))
        }
    }

    /// The `k` largest (or smallest) entries along `dim` and their indices.
    public func topk(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true)
        -> (values: Tensor, indices: Tensor)
    {
        pair { tw_topk(handle, Int64(k), Int64(dim), largest ? 1 : 0, sorted ? 1 : 0, &$0, &$1, $2) }
    }

    /// Sorted values along `dim` and the permutation that sorts them.
    public func sorted(dim: Int = -1, descending: Bool = false, stable: Bool = false)
        -> (values: Tensor, indices: Tensor)
    {
        pair { tw_sort(handle, Int64(dim), descending ? 1 : 0, stable ? 1 : 0, &$0, &$1, $2) }
    }
}

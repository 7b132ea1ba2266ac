// linear_kernels.h — the decoding matmul kernels, free of libtorch headers (internal to CTorch).
#pragma once
#include <cstdint>
#include <functional>

namespace tw_kernels {

// How a weight matrix is stored: float32, bfloat16 (the upper half of a float32), or int8 with
// one float32 scale per output row.
enum class Weights { f32, bf16, i8 };

// Whether this CPU runs the AVX2+FMA kernels.
bool available();

// y[m, n] = scale[n] · Σ_k x[m, k]·w[n, k] for all M rows of x (float32, row-major, x [M, K],
// y [M, N]); w [N, K] in `kind`, `scale` only for i8 (null otherwise). Each weight row is read
// from memory once for all rows of x; the rows of w are split over `threads` OpenMP threads.
void linear(const float *x, int64_t M, int64_t K, const void *w, Weights kind, const float *scale, float *y, int64_t N,
            int threads);

// Whether bf16_linear runs here: AVX512-BF16 and K a multiple of 32.
bool bf16_dot_available(int64_t K);

// y = round_bf16(x)·wᵀ with bf16 w [N, K], products accumulated in float32 (a bf16 engine's matmul).
void bf16_linear(const float *x, int64_t M, int64_t K, const uint16_t *w, float *y, int64_t N, int threads);

// body(begin, end) over 0..<n in `threads` even shares, one per OpenMP thread (libtorch's own).
void parallel_shares(int64_t n, int threads, const std::function<void(int64_t, int64_t)> &body);

}  // namespace tw_kernels

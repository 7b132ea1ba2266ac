// linear_kernels.cpp — x·Wᵀ for the few rows of a decoding step, with float32, bfloat16 or int8
// weights and float32 accumulation. Decoding is bound by reading the weights, so it runs at the
// rate the weights stream from memory: half the bytes (bf16) or a quarter (int8) is what makes a
// low-precision rollout copy faster.
#include "linear_kernels.h"

#include <immintrin.h>
#include <dlfcn.h>
#include <algorithm>
#include <type_traits>
#include <cstring>
#include <vector>

namespace tw_kernels {
namespace {

// ATen's header-inline at::parallel_for only forks when the including file is compiled with
// OpenMP, which SwiftPM does not do: there it ran every chunk on the calling thread while torch's
// OpenMP worker waited. The kernels therefore enter the OpenMP runtime libtorch_cpu already
// loaded (libgomp) directly, sharing torch's worker threads; without it they run serially.
struct Gomp {
  void (*parallel)(void (*)(void *), void *, unsigned, unsigned) = nullptr;
  int (*threadNum)() = nullptr;
  int (*numThreads)() = nullptr;
};
const Gomp &gomp() {
  static const Gomp g = [] {
    Gomp g;
    void *h = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!h) return g;
    g.parallel = reinterpret_cast<decltype(g.parallel)>(dlsym(h, "GOMP_parallel"));
    g.threadNum = reinterpret_cast<decltype(g.threadNum)>(dlsym(h, "omp_get_thread_num"));
    g.numThreads = reinterpret_cast<decltype(g.numThreads)>(dlsym(h, "omp_get_num_threads"));
    if (!g.parallel || !g.threadNum || !g.numThreads) g = Gomp();
    return g;
  }();
  return g;
}
struct Shares {
  const std::function<void(int64_t, int64_t)> *body;
  int64_t n;
};
void runShare(void *p) {
  const Shares &job = *static_cast<Shares *>(p);
  const int64_t threads = gomp().numThreads(), t = gomp().threadNum();
  const int64_t begin = job.n * t / threads, end = job.n * (t + 1) / threads;
  if (begin < end) (*job.body)(begin, end);
}

// Calls f with std::integral_constant<int, min(8, rows)>: the kernels take their row count at
// compile time, so their accumulators stay in registers.
template <typename F> void by_rows(int64_t rows, F &&f) {
  switch (std::min<int64_t>(8, rows)) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    case 7: f(std::integral_constant<int, 7>{}); break;
    default: f(std::integral_constant<int, 8>{}); break;
  }
}

// Eight weights of a row as floats, and one weight (for a row's tail).
#define TW_AVX2 __attribute__((target("avx2,fma")))
#define TW_AVX512 __attribute__((target("avx512f,avx512bw,avx2,fma")))
struct F32 {
  using T = float;
  TW_AVX2 static inline __m256 load(const float *p) { return _mm256_loadu_ps(p); }
  TW_AVX512 static inline __m512 load16(const float *p) { return _mm512_loadu_ps(p); }
  static inline float one(const float *p) { return *p; }
};
struct BF16 {
  using T = uint16_t;
  TW_AVX2 static inline __m256 load(const uint16_t *p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  TW_AVX512 static inline __m512 load16(const uint16_t *p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  static inline float one(const uint16_t *p) {
    const uint32_t bits = uint32_t(*p) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
};
struct I8 {
  using T = int8_t;
  TW_AVX2 static inline __m256 load(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p))));
  }
  TW_AVX512 static inline __m512 load16(const int8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))));
  }
  static inline float one(const int8_t *p) { return float(*p); }
};

// The sum of a vector's 8 floats.
TW_AVX2 static inline float hsum8(__m256 a) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

// y[m, n] = s_n·Σ_k x[m, k]·w[n, k] for rows n0..<n1 and MC (compile-time, ≤ 8) rows of x, so the
// accumulators stay in registers and each 8-weight slice of a row is loaded once.
template <typename W, int MC>
TW_AVX2 void row_block(const float *x, int64_t K, const typename W::T *w, const float *scale, int64_t n0, int64_t n1,
                       float *y, int64_t N) {
  const int64_t K8 = K / 8 * 8;
  for (int64_t n = n0; n < n1; n++) {
    const typename W::T *wr = w + n * K;
    __m256 acc[MC];
    for (int j = 0; j < MC; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K8; k += 8) {
      const __m256 wv = W::load(wr + k);
      for (int j = 0; j < MC; j++) acc[j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + j * K + k), acc[j]);
    }
    const float s = scale ? scale[n] : 1.0f;
    for (int j = 0; j < MC; j++) {
      float sum = hsum8(acc[j]);
      for (int64_t k = K8; k < K; k++) sum += W::one(wr + k) * x[j * K + k];
      y[j * N + n] = sum * s;
    }
  }
}

// row_block with 16-wide vectors (K a multiple of 16), for CPUs with AVX-512.
template <typename W, int MC>
TW_AVX512 void row_block16(const float *x, int64_t K, const typename W::T *w, const float *scale, int64_t n0, int64_t n1,
                           float *y, int64_t N) {
  for (int64_t n = n0; n < n1; n++) {
    const typename W::T *wr = w + n * K;
    __m512 acc[MC];
    for (int j = 0; j < MC; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
      const __m512 wv = W::load16(wr + k);
      for (int j = 0; j < MC; j++) acc[j] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + j * K + k), acc[j]);
    }
    const float s = scale ? scale[n] : 1.0f;
    for (int j = 0; j < MC; j++) y[j * N + n] = _mm512_reduce_add_ps(acc[j]) * s;
  }
}

// MC rows of x times NC weight rows (K a multiple of 8): MC·NC accumulators and NC weight slices
// stay in registers (≤ 16 for 4 × 3), each x slice is loaded once per NC weight rows.
template <typename W, int MC, int NC>
TW_AVX2 void tile(const float *x, int64_t K, const typename W::T *w, const float *scale, float *y, int64_t N) {
  __m256 acc[MC][NC];
  for (int j = 0; j < MC; j++)
    for (int i = 0; i < NC; i++) acc[j][i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k += 8) {
    __m256 wv[NC];
    for (int i = 0; i < NC; i++) wv[i] = W::load(w + i * K + k);
    for (int j = 0; j < MC; j++) {
      const __m256 xv = _mm256_loadu_ps(x + j * K + k);
      for (int i = 0; i < NC; i++) acc[j][i] = _mm256_fmadd_ps(xv, wv[i], acc[j][i]);
    }
  }
  for (int j = 0; j < MC; j++)
    for (int i = 0; i < NC; i++) y[j * N + i] = hsum8(acc[j][i]) * (scale ? scale[i] : 1.0f);
}

template <typename W, int MC>
void tile_rows(const float *x, int64_t K, const typename W::T *w, const float *scale, int64_t n0, int64_t n1, float *y, int64_t N) {
  int64_t n = n0;
  for (; n + 3 <= n1; n += 3) tile<W, MC, 3>(x, K, w + n * K, scale ? scale + n : nullptr, y + n, N);
  for (; n < n1; n++) tile<W, MC, 1>(x, K, w + n * K, scale ? scale + n : nullptr, y + n, N);
}

// Weight rows n0..<n1 for all M rows of x, 48 weight rows (≤ 295 KB of float32 at K = 1536,
// L2-resident) at a time: each weight row is read from memory once however many rows x has, which
// is what makes 9–64 rows faster than BLAS here (it repacks the weights on every call).
template <typename W>
void tiles(const float *x, int64_t M, int64_t K, const typename W::T *w, const float *scale, int64_t n0, int64_t n1, float *y,
           int64_t N) {
  for (int64_t c0 = n0; c0 < n1; c0 += 48) {
    const int64_t c1 = std::min(n1, c0 + 48);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) tile_rows<W, 4>(x + m * K, K, w, scale, c0, c1, y + m * N, N);
    switch (M - m) {
      case 3: tile_rows<W, 3>(x + m * K, K, w, scale, c0, c1, y + m * N, N); break;
      case 2: tile_rows<W, 2>(x + m * K, K, w, scale, c0, c1, y + m * N, N); break;
      case 1: tile_rows<W, 1>(x + m * K, K, w, scale, c0, c1, y + m * N, N); break;
      default: break;
    }
  }
}

template <typename W>
void rows(const float *x, int64_t M, int64_t K, const typename W::T *w, const float *scale, int64_t n0, int64_t n1, float *y,
          int64_t N) {
  // Up to 8 rows the per-row kernel streams the weights at memory speed; beyond, the tiles do.
  if (M > 8 && K % 8 == 0) return tiles<W>(x, M, K, w, scale, n0, n1, y, N);
  // 16-wide vectors halve the instructions per weight (measured 15 vs 17–18 ms per model pass at 8 rows).
  static const bool wide = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  if (wide && K % 16 == 0) {
    for (int64_t m0 = 0; m0 < M; m0 += 8) {
      const float *xs = x + m0 * K;
      float *ys = y + m0 * N;
      by_rows(M - m0, [&](auto mc) { row_block16<W, decltype(mc)::value>(xs, K, w, scale, n0, n1, ys, N); });
    }
    return;
  }
  for (int64_t m0 = 0; m0 < M; m0 += 8) {
    const float *xs = x + m0 * K;
    float *ys = y + m0 * N;
    by_rows(M - m0, [&](auto mc) { row_block<W, decltype(mc)::value>(xs, K, w, scale, n0, n1, ys, N); });
  }
}
// bf16 × bf16 products accumulated in float32 with AVX512-BF16 (32 products per instruction, twice
// the float32 FMA rate), as a bf16 inference engine multiplies: x is rounded to bf16 once per call.
#define TW_BF16DOT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
template <int MC>
TW_BF16DOT void bf16_dot(const uint16_t *xb, int64_t K, const uint16_t *wr, float *y, int64_t N) {
  __m512 acc[MC];
  for (int j = 0; j < MC; j++) acc[j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 32) {
    const __m512bh wv = __builtin_bit_cast(__m512bh, _mm512_loadu_si512(wr + k));
    for (int j = 0; j < MC; j++) acc[j] = _mm512_dpbf16_ps(acc[j], __builtin_bit_cast(__m512bh, _mm512_loadu_si512(xb + j * K + k)), wv);
  }
  for (int j = 0; j < MC; j++) y[j * N] = _mm512_reduce_add_ps(acc[j]);
}

// Weight row by weight row (each read from memory once, then from L1 for every 8 rows of x).
void bf16_dot_rows(const uint16_t *xb, int64_t M, int64_t K, const uint16_t *w, int64_t n0, int64_t n1, float *y, int64_t N) {
  for (int64_t n = n0; n < n1; n++) {
    for (int64_t m0 = 0; m0 < M; m0 += 8) {
      const uint16_t *xs = xb + m0 * K, *wr = w + n * K;
      float *ys = y + m0 * N + n;
      by_rows(M - m0, [&](auto mc) { bf16_dot<decltype(mc)::value>(xs, K, wr, ys, N); });
    }
  }
}

// x rounded to bf16 (nearest even), 32 values at a time (K a multiple of 32).
TW_BF16DOT void to_bf16(const float *x, int64_t count, uint16_t *out) {
  for (int64_t i = 0; i < count; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(out + i, __builtin_bit_cast(__m512i, v));
  }
}
}  // namespace

bool bf16_dot_available(int64_t K) {
  static const bool ok = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
  return ok && K % 32 == 0;
}

void bf16_linear(const float *x, int64_t M, int64_t K, const uint16_t *w, float *y, int64_t N, int threads) {
  std::vector<uint16_t> xb(static_cast<size_t>(M * K));
  to_bf16(x, M * K, xb.data());
  parallel_shares(N, std::max(1, threads), [&](int64_t n0, int64_t n1) { bf16_dot_rows(xb.data(), M, K, w, n0, n1, y, N); });
}

bool available() {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2;
}

void parallel_shares(int64_t n, int threads, const std::function<void(int64_t, int64_t)> &body) {
  const Gomp &g = gomp();
  if (!g.parallel || threads <= 1 || n < 2 || g.numThreads() > 1) return body(0, n);
  Shares job{&body, n};
  g.parallel(runShare, &job, static_cast<unsigned>(std::min<int64_t>(threads, n)), 0);
}

void linear(const float *x, int64_t M, int64_t K, const void *w, Weights kind, const float *scale, float *y, int64_t N,
            int threads) {
  // One even share of the rows per thread: a fixed grain leaves threads idle on narrow layers.
  parallel_shares(N, std::max(1, threads), [&](int64_t n0, int64_t n1) {
    switch (kind) {
      case Weights::f32: rows<F32>(x, M, K, static_cast<const float *>(w), nullptr, n0, n1, y, N); break;
      case Weights::bf16: rows<BF16>(x, M, K, static_cast<const uint16_t *>(w), nullptr, n0, n1, y, N); break;
      case Weights::i8: rows<I8>(x, M, K, static_cast<const int8_t *>(w), scale, n0, n1, y, N); break;
    }
  });
}

}  // namespace tw_kernels

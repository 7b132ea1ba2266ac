// bench.cpp — the CPU's measured float32 peak, the baseline `tokenwise bench matmul` compares with.
// Each thread keeps 12 independent accumulators in registers so FMA latency is hidden and no memory
// traffic is involved: what it measures is the arithmetic ceiling, not a matmul.
#include "ctorch.h"
#include "linear_kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <chrono>
#include <thread>
#include <vector>

namespace {

constexpr int kAcc = 12;
constexpr long kInner = 1 << 16;

__attribute__((target("avx512f"))) double run_avx512(long rounds) {
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; i++) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long r = 0; r < rounds; r++)
    for (long k = 0; k < kInner; k++)
      for (int i = 0; i < kAcc; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  float s = 0;
  for (int i = 0; i < kAcc; i++) s += _mm512_reduce_add_ps(acc[i]);
  return s;
}

__attribute__((target("avx2,fma"))) double run_avx2(long rounds) {
  __m256 acc[kAcc];
  for (int i = 0; i < kAcc; i++) acc[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long r = 0; r < rounds; r++)
    for (long k = 0; k < kInner; k++)
      for (int i = 0; i < kAcc; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float out[8], s = 0;
  for (int i = 0; i < kAcc; i++) {
    _mm256_storeu_ps(out, acc[i]);
    for (float v : out) s += v;
  }
  return s;
}

double run_sse(long rounds) {
  __m128 acc[kAcc];
  for (int i = 0; i < kAcc; i++) acc[i] = _mm_set1_ps(1.0f + i * 1e-3f);
  const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
  for (long r = 0; r < rounds; r++)
    for (long k = 0; k < kInner; k++)
      for (int i = 0; i < kAcc; i++) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
  float out[4], s = 0;
  for (int i = 0; i < kAcc; i++) {
    _mm_storeu_ps(out, acc[i]);
    for (float v : out) s += v;
  }
  return s;
}

// Sums floats [begin, end) of `data` with 8 independent vector accumulators, so the loads, not the
// adds, set the pace.
__attribute__((target("avx2"))) float sum_avx2(const float *data, int64_t begin, int64_t end) {
  __m256 acc[8];
  for (auto &a : acc) a = _mm256_setzero_ps();
  int64_t i = begin;
  for (; i + 64 <= end; i += 64)
    for (int j = 0; j < 8; j++) acc[j] = _mm256_add_ps(acc[j], _mm256_loadu_ps(data + i + 8 * j));
  float out[8], s = 0;
  for (int j = 1; j < 8; j++) acc[0] = _mm256_add_ps(acc[0], acc[j]);
  _mm256_storeu_ps(out, acc[0]);
  for (float v : out) s += v;
  for (; i < end; i++) s += data[i];
  return s;
}

float sum_plain(const float *data, int64_t begin, int64_t end) {
  float s = 0;
  for (int64_t i = begin; i < end; i++) s += data[i];
  return s;
}

}  // namespace

extern "C" double tw_bench_read_bandwidth(int threads, int64_t bytes, double seconds) {
  const int64_t n = std::max<int64_t>(bytes / 4, 1 << 16);
  float *data = static_cast<float *>(std::aligned_alloc(64, static_cast<size_t>((n * 4 + 63) / 64 * 64)));
  if (!data) return -1;
  // Each thread writes the share it will read, so its pages sit on that thread's memory node.
  tw_kernels::parallel_shares(n, std::max(1, threads), [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; i++) data[i] = 1.0f;
  });
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2");
  std::atomic<int64_t> sink{0};
  auto pass = [&] {
    tw_kernels::parallel_shares(n, std::max(1, threads), [&](int64_t a, int64_t b) {
      sink += static_cast<int64_t>(avx2 ? sum_avx2(data, a, b) : sum_plain(data, a, b));
    });
  };
  pass();  // warm-up: page-table entries, frequency
  int passes = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    pass();
    passes++;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  std::free(data);
  return sink.load() < 0 ? -1 : static_cast<double>(n) * 4 * passes / elapsed / 1e9;
}

extern "C" double tw_bench_peak_gflops(int threads, double seconds, const char **isa) {
  if (threads < 1) threads = 1;
  double (*kernel)(long) = run_sse;
  int lanes = 4, flopsPerLane = 2;  // SSE: a mul and an add, 2 flops, as 2 instructions
  const char *name = "sse";
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    kernel = run_avx512, lanes = 16, name = "avx512f";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    kernel = run_avx2, lanes = 8, name = "avx2+fma";
  }
  if (isa) *isa = name;
  // Calibrate on one thread, then run every thread for about `seconds`.
  auto t0 = std::chrono::steady_clock::now();
  volatile double sink = kernel(1);
  double one = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long rounds = one > 0 ? static_cast<long>(seconds / one) : 1;
  if (rounds < 1) rounds = 1;
  std::vector<std::thread> pool;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> sinks(threads);
  for (int t = 0; t < threads; t++)
    pool.emplace_back([&, t] {
      ready++;
      while (!go.load()) std::this_thread::yield();
      sinks[t] = kernel(rounds);
    });
  while (ready.load() < threads) std::this_thread::yield();
  auto start = std::chrono::steady_clock::now();
  go = true;
  for (auto &th : pool) th.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (double v : sinks) sink = sink + v;
  double flops = static_cast<double>(threads) * rounds * kInner * kAcc * lanes * flopsPerLane;
  return flops / secs / 1e9;
}

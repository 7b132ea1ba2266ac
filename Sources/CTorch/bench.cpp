// bench.cpp — the CPU's measured float32 peak, the baseline `tokenwise bench matmul` compares with.
// Each thread keeps 12 independent accumulators in registers so FMA latency is hidden and no memory
// traffic is involved: what it measures is the arithmetic ceiling, not a matmul.
#include "ctorch.h"

#include <immintrin.h>

#include <atomic>
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

}  // namespace

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

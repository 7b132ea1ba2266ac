// ctorch.h — the C interface of Tokenwise's libtorch shim.
//
// Conventions (see DESIGN.md):
// - Handles are opaque; `tw_tensor` owns one at::Tensor and is released with tw_tensor_free.
// - Every function that can fail takes `char **err` last. On failure it stores a malloc'd message
//   there (release it with tw_error_free) and returns NULL / -1 / 0. No C++ exception crosses this
//   boundary and nothing aborts the process.
// - Every function rejects NULL handles first, so a chain of calls after a failure fails softly.
#ifndef TOKENWISE_CTORCH_H
#define TOKENWISE_CTORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_tensor_s *tw_tensor;
typedef struct tw_generator_s *tw_generator;

// Element types. Values are Tokenwise's own, stable across libtorch versions.
enum {
  TW_FLOAT32 = 0, TW_BFLOAT16 = 1, TW_FLOAT16 = 2, TW_INT64 = 3, TW_INT32 = 4,
  TW_BOOL = 5, TW_FLOAT64 = 6, TW_UINT8 = 7, TW_INT8 = 8
};
// Device types; a device is (type, index).
enum { TW_CPU = 0, TW_CUDA = 1 };

enum tw_unary_op {
  TW_NEG, TW_EXP, TW_LOG, TW_SQRT, TW_RSQRT, TW_ABS, TW_SIGMOID, TW_SILU, TW_GELU, TW_GELU_TANH,
  TW_RELU, TW_TANH, TW_SIN, TW_COS, TW_LOG1P, TW_EXPM1, TW_SIGN, TW_FLOOR, TW_CEIL, TW_ROUND,
  TW_LOGICAL_NOT, TW_SQUARE, TW_RECIPROCAL, TW_ISNAN, TW_ISFINITE, TW_LOG_SIGMOID, TW_SOFTPLUS
};
enum tw_binary_op {
  TW_ADD, TW_SUB, TW_MUL, TW_DIV, TW_POW, TW_MAXIMUM, TW_MINIMUM, TW_EQ, TW_NE, TW_LT, TW_LE,
  TW_GT, TW_GE, TW_LOGICAL_AND, TW_LOGICAL_OR, TW_REMAINDER, TW_FLOOR_DIVIDE
};
// Tensor-scalar ops; the R* variants put the scalar on the left (s - t, s / t, s ** t).
enum tw_scalar_op {
  TW_S_ADD, TW_S_SUB, TW_S_RSUB, TW_S_MUL, TW_S_DIV, TW_S_RDIV, TW_S_POW, TW_S_RPOW,
  TW_S_MAXIMUM, TW_S_MINIMUM, TW_S_EQ, TW_S_NE, TW_S_LT, TW_S_LE, TW_S_GT, TW_S_GE,
  TW_S_REMAINDER
};
// Reductions over a list of dims (ndims == 0: over all elements).
enum tw_reduce_op { TW_SUM, TW_MEAN, TW_AMAX, TW_AMIN, TW_LOGSUMEXP, TW_PROD, TW_ALL, TW_ANY };
// In-place updates used by optimizers and caches: self op= other (scaled by alpha where it applies).
enum tw_inplace_op {
  TW_I_COPY, TW_I_ADD, TW_I_MUL, TW_I_DIV, TW_I_ADDCMUL, TW_I_ADDCDIV, TW_I_LERP
};
enum tw_inplace_scalar_op { TW_IS_FILL, TW_IS_ADD, TW_IS_MUL, TW_IS_CLAMP_MIN, TW_IS_CLAMP_MAX };

void tw_error_free(char *err);

// --- library ---
const char *tw_version(void);
void tw_set_num_threads(int n);
/* Keeps freed memory in the process heap for reuse (glibc: no mmap for big blocks, no trimming). */
void tw_retain_freed_memory(void);
int tw_get_num_threads(void);
void tw_manual_seed(uint64_t seed);
// Loads libtorch_cuda.so (once) and reports whether a CUDA device can be used.
// Returns 1 if available, 0 if not; on 0, *reason (if not NULL) holds why (free with tw_error_free).
int tw_cuda_available(char **reason);
int tw_cuda_device_count(void);
int tw_cuda_synchronize(int index, char **err);
int tw_set_grad_enabled(int enabled);  // returns the previous mode
int tw_is_grad_enabled(void);

// --- generators ---
tw_generator tw_generator_new(uint64_t seed, int device_type, int device_index, char **err);
void tw_generator_free(tw_generator g);
tw_tensor tw_generator_get_state(tw_generator g, char **err);
int tw_generator_set_state(tw_generator g, tw_tensor state, char **err);

// --- creation and data ---
void tw_tensor_free(tw_tensor t);
tw_tensor tw_from_data(const void *data, int dtype, const int64_t *shape, int ndim, char **err);
// Copies the elements (row-major, converted to dtype, moved to the CPU) into out (count elements).
int tw_copy_to_buffer(tw_tensor t, int dtype, void *out, int64_t count, char **err);
tw_tensor tw_full(const int64_t *shape, int ndim, double value, int dtype, int dev, int dev_index, char **err);
tw_tensor tw_arange(double start, double end, double step, int dtype, int dev, int dev_index, char **err);
tw_tensor tw_linspace(double start, double end, int64_t steps, int dtype, int dev, int dev_index, char **err);
tw_tensor tw_eye(int64_t n, int dtype, int dev, int dev_index, char **err);
// kind: 0 = randn (normal), 1 = rand (uniform [0,1)), 2 = randint in [low, high).
tw_tensor tw_random(int kind, const int64_t *shape, int ndim, double low, double high, tw_generator g,
                    int dtype, int dev, int dev_index, char **err);
tw_tensor tw_multinomial(tw_tensor probs, int64_t n, int replacement, tw_generator g, char **err);
tw_tensor tw_bernoulli(tw_tensor probs, tw_generator g, char **err);

// --- metadata ---
int tw_dim(tw_tensor t);
int tw_shape(tw_tensor t, int64_t *out);    // returns ndim; out holds at least ndim values
int tw_strides(tw_tensor t, int64_t *out);
int tw_dtype(tw_tensor t);
int tw_device_type(tw_tensor t);
int tw_device_index(tw_tensor t);
int64_t tw_numel(tw_tensor t);
int tw_is_contiguous(tw_tensor t);
char *tw_to_string(tw_tensor t, char **err);  // free the result with tw_error_free

// --- conversion and copies ---
tw_tensor tw_to(tw_tensor t, int dtype, int dev, int dev_index, char **err);
tw_tensor tw_contiguous(tw_tensor t, char **err);
tw_tensor tw_clone(tw_tensor t, char **err);
tw_tensor tw_detach(tw_tensor t, char **err);
tw_tensor tw_alias(tw_tensor t, char **err);  // a second handle on the same tensor

// --- views and indexing ---
tw_tensor tw_reshape(tw_tensor t, const int64_t *shape, int ndim, char **err);
tw_tensor tw_view(tw_tensor t, const int64_t *shape, int ndim, char **err);
tw_tensor tw_expand(tw_tensor t, const int64_t *shape, int ndim, char **err);
tw_tensor tw_permute(tw_tensor t, const int64_t *dims, int ndim, char **err);
tw_tensor tw_transpose(tw_tensor t, int64_t d0, int64_t d1, char **err);
tw_tensor tw_narrow(tw_tensor t, int64_t dim, int64_t start, int64_t length, char **err);
tw_tensor tw_slice(tw_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, char **err);
tw_tensor tw_select(tw_tensor t, int64_t dim, int64_t index, char **err);
tw_tensor tw_squeeze(tw_tensor t, int64_t dim, int all, char **err);
tw_tensor tw_unsqueeze(tw_tensor t, int64_t dim, char **err);
tw_tensor tw_flatten(tw_tensor t, int64_t start, int64_t end, char **err);
tw_tensor tw_cat(const tw_tensor *ts, int n, int64_t dim, char **err);
tw_tensor tw_stack(const tw_tensor *ts, int n, int64_t dim, char **err);
tw_tensor tw_gather(tw_tensor t, int64_t dim, tw_tensor index, char **err);
// reduce: 0 = replace, 1 = add (scatter_add)
tw_tensor tw_scatter(tw_tensor t, int64_t dim, tw_tensor index, tw_tensor src, int reduce, char **err);
tw_tensor tw_index_select(tw_tensor t, int64_t dim, tw_tensor index, char **err);
tw_tensor tw_masked_fill(tw_tensor t, tw_tensor mask, double value, char **err);
tw_tensor tw_where(tw_tensor cond, tw_tensor a, tw_tensor b, char **err);
tw_tensor tw_tril(tw_tensor t, int64_t diagonal, int upper, char **err);  // upper != 0: triu

// --- math ---
tw_tensor tw_unary(int op, tw_tensor t, char **err);
tw_tensor tw_binary(int op, tw_tensor a, tw_tensor b, char **err);
tw_tensor tw_scalar(int op, tw_tensor t, double s, char **err);
tw_tensor tw_clamp(tw_tensor t, double lo, double hi, int has_lo, int has_hi, char **err);
tw_tensor tw_reduce(int op, tw_tensor t, const int64_t *dims, int ndims, int keepdim, char **err);
tw_tensor tw_var(tw_tensor t, const int64_t *dims, int ndims, int64_t correction, int keepdim, int std, char **err);
tw_tensor tw_norm(tw_tensor t, double p, const int64_t *dims, int ndims, int keepdim, char **err);
// max/min along one dim with indices. which: 0 = max, 1 = min.
int tw_minmax_dim(int which, tw_tensor t, int64_t dim, int keepdim, tw_tensor *values, tw_tensor *indices, char **err);
tw_tensor tw_argmax(tw_tensor t, int64_t dim, int has_dim, int keepdim, int argmin, char **err);
tw_tensor tw_softmax(tw_tensor t, int64_t dim, int log, char **err);
tw_tensor tw_cumsum(tw_tensor t, int64_t dim, char **err);
// Running min (which = 0) or max (which = 1) along dim, with the index where it was reached.
int tw_cumminmax(int which, tw_tensor t, int64_t dim, tw_tensor *values, tw_tensor *indices, char **err);
tw_tensor tw_matmul(tw_tensor a, tw_tensor b, char **err);
tw_tensor tw_bmm(tw_tensor a, tw_tensor b, char **err);
tw_tensor tw_linear(tw_tensor x, tw_tensor w, tw_tensor bias_or_null, char **err);
tw_tensor tw_embedding(tw_tensor weight, tw_tensor indices, char **err);
// Per-token log-probabilities of `targets` [B, T] (int64) under softmax(hidden·weightᵀ) and the
// entropies of those distributions, both [B, T] float32 (float64 for float64 inputs), from hidden [B, T, H] and weight [V, H],
// `chunk` positions at a time. Differentiable in hidden and weight; the backward recomputes each
// chunk's logits, so no [B, T, V] tensor is kept for it. Returns 0, or -1 with *err set.
int tw_token_logprobs(tw_tensor hidden, tw_tensor weight, tw_tensor targets, int64_t chunk, tw_tensor *logprobs,
                      tw_tensor *entropies, char **err);
// x·Wᵀ (+ b) for a few rows of x (decoding): float32 CPU tensors, x [M, K], W [N, K]. Streams each
// row of W once for all rows of x (AVX2+FMA when the CPU has it), parallel over N. No autograd.
tw_tensor tw_small_linear(tw_tensor x, tw_tensor w, tw_tensor bias_or_null, char **err);
// x·dequant(W)ᵀ (+ b) with a low-precision W [N, K]: bfloat16, or int8 with one float32 scale per
// row (scale_or_null, only for int8). x is float32 [..., K], rounded to bfloat16 for a bfloat16 W
// (a bf16 engine's activations); products accumulate in float32. Up to
// kernel_rows rows on the CPU stream W as stored (decoding); more rows multiply float32 copies of
// 2048 rows of W at a time. No autograd.
tw_tensor tw_lowp_linear(tw_tensor x, tw_tensor w, tw_tensor scale_or_null, tw_tensor bias_or_null, int64_t kernel_rows, char **err);
// Symmetric per-row int8 quantisation of a 2-D weight: q = round(w / s), s = max|w_row| / 127.
tw_tensor tw_quantize_rows_int8(tw_tensor w, tw_tensor *scale_out, char **err);
/* x·wᵀ for a weight with many rows (a vocabulary projection), `chunk` output columns at a time on the CPU. */
tw_tensor tw_wide_linear(tw_tensor x, tw_tensor w, int64_t chunk, char **err);
// scale <= 0 means the default 1/sqrt(head_dim).
tw_tensor tw_sdpa(tw_tensor q, tw_tensor k, tw_tensor v, tw_tensor mask_or_null, double dropout, int causal,
                  double scale, int enable_gqa, char **err);
int tw_topk(tw_tensor t, int64_t k, int64_t dim, int largest, int sorted, tw_tensor *values, tw_tensor *indices, char **err);
int tw_sort(tw_tensor t, int64_t dim, int descending, int stable, tw_tensor *values, tw_tensor *indices, char **err);

// Gradient checkpointing: fn(ctx, x) computes a block from x (a handle fn owns and frees) and
// returns a new handle the shim takes, or NULL with *err set (malloc'd); release(ctx) is called once when neither the forward nor a backward needs it any more.
// tw_checkpoint runs the block on `input` without autograd and, when gradients are wanted (of
// input or of the `count` params the block reads), records a node whose backward reruns it with
// autograd and differentiates that. Owns ctx from the call on, even when it fails.
typedef tw_tensor (*tw_block_fn)(void *ctx, tw_tensor x, char **err);
typedef void (*tw_release_fn)(void *ctx);
tw_tensor tw_checkpoint(tw_tensor input, const tw_tensor *params, int64_t count, void *ctx, tw_block_fn fn, tw_release_fn release,
                        char **err);

// --- in-place ---
int tw_inplace(int op, tw_tensor self, tw_tensor a, tw_tensor b_or_null, double alpha, char **err);
int tw_inplace_scalar(int op, tw_tensor self, double s, char **err);

// --- autograd ---
int tw_set_requires_grad(tw_tensor t, int requires, char **err);
int tw_requires_grad(tw_tensor t);
int tw_is_leaf(tw_tensor t);
// Returns NULL with *err unset when t has no gradient.
tw_tensor tw_grad(tw_tensor t, char **err);
int tw_zero_grad(tw_tensor t, char **err);  // drops the gradient
int tw_set_grad(tw_tensor t, tw_tensor grad_or_null, char **err);
int tw_backward(tw_tensor t, tw_tensor grad_or_null, int retain_graph, char **err);
// Functional gradients d(sum outputs·grad_outputs)/d inputs. out[i] is NULL for an unused input
// when allow_unused is set.
int tw_autograd_grad(const tw_tensor *outputs, int n_out, const tw_tensor *grad_outputs_or_null,
                     const tw_tensor *inputs, int n_in, int retain_graph, int create_graph,
                     int allow_unused, tw_tensor *out, char **err);

// --- GGUF tensor data ---
// ggml type ids (as stored in GGUF files) that tw_gguf_dequantize understands.
enum {
  TW_GGML_F32 = 0, TW_GGML_F16 = 1, TW_GGML_Q4_0 = 2, TW_GGML_Q4_1 = 3, TW_GGML_Q8_0 = 8,
  TW_GGML_Q4_K = 12, TW_GGML_Q6_K = 14, TW_GGML_BF16 = 30
};
// Bytes that n elements of a ggml type occupy; -1 for an unknown type or a count that is not a
// whole number of blocks.
int64_t tw_gguf_type_size(int ggml_type, int64_t n);
// Dequantises n elements of `data` (tw_gguf_type_size(type, n) bytes) into float32 `out`.
// Returns 0, or -1 with *err set (unknown type, partial block).
int tw_gguf_dequantize(int ggml_type, const void *data, int64_t n, float *out, char **err);

// --- benchmarks ---
// Measured float32 peak of this CPU: register-only fused multiply-adds with the widest vectors the
// CPU supports (AVX-512, AVX2+FMA, else SSE), on `threads` threads for about `seconds` seconds.
// Returns GFLOP/s (2 flops per FMA lane); *isa names the instruction set used (static string).
double tw_bench_peak_gflops(int threads, double seconds, const char **isa);
// Measured read bandwidth in GB/s: `threads` of libtorch's OpenMP threads sum a float32 buffer of
// `bytes` bytes (each its own share) again and again for about `seconds` seconds. -1: no memory.
double tw_bench_read_bandwidth(int threads, int64_t bytes, double seconds);

// --- distributed (c10d: a TCPStore for rendezvous, a Gloo process group for collectives) ---
typedef struct tw_store_s *tw_store;
typedef struct tw_group_s *tw_group;
// Hosts a TCP store listening on addr:port only (port 0: a free port; tw_store_port says which).
tw_store tw_store_host(const char *addr, int port, int64_t timeout_ms, char **err);
// Connects to the store at addr:port, retrying until timeout_ms.
tw_store tw_store_connect(const char *addr, int port, int64_t timeout_ms, char **err);
int tw_store_port(tw_store s);
void tw_store_free(tw_store s);
// A Gloo group of `world` ranks meeting in `s` under `prefix` (may be empty); its sockets bind
// `device_host`. Blocks until every rank has joined or timeout_ms passes.
tw_group tw_group_gloo(tw_store s, const char *prefix, int rank, int world, const char *device_host, int64_t timeout_ms,
                       char **err);
void tw_group_free(tw_group g);
int tw_group_rank(tw_group g);
int tw_group_size(tw_group g);
// In place: every tensor becomes the sum over ranks. Tensors travel packed into flat buffers of
// at most bucket_bytes per dtype. Returns 0, or -1 with *err set.
int tw_group_allreduce_sum(tw_group g, const tw_tensor *ts, int n, int64_t bucket_bytes, char **err);
// In place: every tensor becomes root's.
int tw_group_broadcast(tw_group g, const tw_tensor *ts, int n, int root, int64_t bucket_bytes, char **err);
// Every rank's t (same shape everywhere) stacked along a new first dimension.
tw_tensor tw_group_allgather(tw_group g, tw_tensor t, char **err);
int tw_group_barrier(tw_group g, char **err);

#ifdef __cplusplus
}
#endif
#endif

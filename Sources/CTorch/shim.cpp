// shim.cpp — libtorch behind ctorch.h. Every body runs inside TW_TRY, which turns any C++
// exception into an error message for the caller; nothing here may abort the process.
#include "ctorch.h"
#include "linear_kernels.h"
#include "shim_common.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/variable.h>

#include <immintrin.h>
#include <dlfcn.h>
#include <malloc.h>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

struct tw_generator_s { at::Generator g; };

// The tensor of a handle (defined after every header: libtorch's own templates name parameters T).
#define T(h) (tw_shim::need((h), "tensor")->t)

namespace {

using tw_shim::need;
using tw_shim::set_error;
using tw_shim::wrap;

at::ScalarType to_scalar_type(int dtype) {
  switch (dtype) {
    case TW_FLOAT32: return at::kFloat;
    case TW_BFLOAT16: return at::kBFloat16;
    case TW_FLOAT16: return at::kHalf;
    case TW_INT64: return at::kLong;
    case TW_INT32: return at::kInt;
    case TW_BOOL: return at::kBool;
    case TW_FLOAT64: return at::kDouble;
    case TW_UINT8: return at::kByte;
    case TW_INT8: return at::kChar;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
}

int from_scalar_type(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return TW_FLOAT32;
    case at::kBFloat16: return TW_BFLOAT16;
    case at::kHalf: return TW_FLOAT16;
    case at::kLong: return TW_INT64;
    case at::kInt: return TW_INT32;
    case at::kBool: return TW_BOOL;
    case at::kDouble: return TW_FLOAT64;
    case at::kByte: return TW_UINT8;
    case at::kChar: return TW_INT8;
    default: return -1;
  }
}

at::Device to_device(int type, int index) {
  if (type == TW_CPU) return at::Device(at::kCPU);
  if (type == TW_CUDA) {
    if (!tw_cuda_available(nullptr)) throw std::runtime_error("CUDA device requested but CUDA is not available");
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("unknown device type code " + std::to_string(type));
}

at::TensorOptions options(int dtype, int dev, int dev_index) {
  return at::TensorOptions().dtype(to_scalar_type(dtype)).device(to_device(dev, dev_index));
}

std::vector<int64_t> vec(const int64_t *p, int n) {
  if (n < 0) throw std::invalid_argument("negative rank");
  return n == 0 ? std::vector<int64_t>{} : std::vector<int64_t>(p, p + n);
}

std::vector<at::Tensor> tensors(const tw_tensor *ts, int n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

std::optional<at::Generator> gen(tw_generator g) {
  if (!g) return std::nullopt;
  return g->g;
}

}  // namespace

extern "C" {

void tw_error_free(char *err) { free(err); }

// ---------------------------------------------------------------- library

const char *tw_version(void) { return TORCH_VERSION; }
void tw_set_num_threads(int n) { if (n > 0) at::set_num_threads(n); }

// glibc serves blocks above 32 MB with a fresh mmap and unmaps them on free, so every
// training step page-faults and zero-fills its ~100 MB logits chunks anew (half the step's time
// in the kernel). Serving them from the heap and never trimming it lets the next step reuse them.
void tw_retain_freed_memory(void) {
#ifdef __GLIBC__
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);  // -1: never trim (mallopt(3))
  mallopt(M_TOP_PAD, 256 << 20);
#endif
}
int tw_get_num_threads(void) { return at::get_num_threads(); }
void tw_manual_seed(uint64_t seed) {
  auto g = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_current_seed(seed);
}

// libtorch_cuda.so is loaded only when asked for, so a CPU machine never needs the CUDA libraries.
// It is looked for beside libtorch_cpu.so first, then on the loader's search path.
static std::once_flag cuda_once;
static bool cuda_ok = false;
static std::string cuda_reason;

int tw_cuda_available(char **reason) {
  std::call_once(cuda_once, [] {
    try {
      std::string dir;
      Dl_info info;
      if (dladdr(reinterpret_cast<void *>(&at::set_num_threads), &info) && info.dli_fname) {
        std::string f = info.dli_fname;
        auto slash = f.rfind('/');
        if (slash != std::string::npos) dir = f.substr(0, slash + 1);
      }
      void *h = dir.empty() ? nullptr : dlopen((dir + "libtorch_cuda.so").c_str(), RTLD_NOW | RTLD_GLOBAL);
      if (!h) h = dlopen("libtorch_cuda.so", RTLD_NOW | RTLD_GLOBAL);
      if (!h) {
        const char *e = dlerror();
        cuda_reason = std::string("cannot load libtorch_cuda.so: ") + (e ? e : "unknown dlopen error");
        return;
      }
      if (!at::detail::getCUDAHooks().hasCUDA()) {
        cuda_reason = "libtorch_cuda.so loaded, but no CUDA device is visible";
        return;
      }
      cuda_ok = true;
    } catch (const std::exception &e) {
      cuda_reason = std::string("CUDA initialisation failed: ") + e.what();
    }
  });
  if (!cuda_ok && reason) *reason = strdup(cuda_reason.c_str());
  return cuda_ok ? 1 : 0;
}

int tw_cuda_device_count(void) {
  if (!tw_cuda_available(nullptr)) return 0;
  try { return at::detail::getCUDAHooks().deviceCount(); } catch (...) { return 0; }
}

int tw_cuda_synchronize(int index, char **err) {
  TW_TRY(-1, {
    if (!tw_cuda_available(nullptr)) throw std::runtime_error("CUDA is not available");
    at::detail::getCUDAHooks().deviceSynchronize(static_cast<c10::DeviceIndex>(index));
    return 0;
  })
}

int tw_set_grad_enabled(int enabled) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(enabled != 0);
  return prev ? 1 : 0;
}
int tw_is_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }

// ---------------------------------------------------------------- generators

tw_generator tw_generator_new(uint64_t seed, int device_type, int device_index, char **err) {
  TW_TRY(nullptr, {
    at::Generator g;
    if (device_type == TW_CPU) {
      g = at::detail::createCPUGenerator(seed);
    } else {
      to_device(device_type, device_index);  // checks availability
      g = at::detail::getCUDAHooks().getNewGenerator(static_cast<c10::DeviceIndex>(device_index));
      g.set_current_seed(seed);
    }
    return new tw_generator_s{std::move(g)};
  })
}

void tw_generator_free(tw_generator g) { delete g; }

tw_tensor tw_generator_get_state(tw_generator g, char **err) {
  TW_TRY(nullptr, {
    auto &gen = need(g, "generator")->g;
    std::lock_guard<std::mutex> lock(gen.mutex());
    return wrap(gen.get_state());
  })
}

int tw_generator_set_state(tw_generator g, tw_tensor state, char **err) {
  TW_TRY(-1, {
    auto &gen = need(g, "generator")->g;
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(T(state));
    return 0;
  })
}

// ---------------------------------------------------------------- creation and data

void tw_tensor_free(tw_tensor t) { delete t; }

tw_tensor tw_from_data(const void *data, int dtype, const int64_t *shape, int ndim, char **err) {
  TW_TRY(nullptr, {
    auto sizes = vec(shape, ndim);
    for (auto s : sizes)
      if (s < 0) throw std::invalid_argument("negative dimension in shape");
    auto out = at::empty(sizes, at::TensorOptions().dtype(to_scalar_type(dtype)));
    if (out.numel() > 0) {
      if (!data) throw std::invalid_argument("null data pointer");
      std::memcpy(out.data_ptr(), data, out.numel() * out.element_size());
    }
    return wrap(out);
  })
}

int tw_copy_to_buffer(tw_tensor t, int dtype, void *out, int64_t count, char **err) {
  TW_TRY(-1, {
    auto src = T(t).detach().to(at::kCPU, to_scalar_type(dtype)).contiguous();
    if (src.numel() != count)
      throw std::invalid_argument("buffer holds " + std::to_string(count) + " elements but the tensor has " +
                                  std::to_string(src.numel()));
    if (count > 0) std::memcpy(out, src.data_ptr(), count * src.element_size());
    return 0;
  })
}

tw_tensor tw_full(const int64_t *shape, int ndim, double value, int dtype, int dev, int dev_index, char **err) {
  TW_TRY(nullptr, { return wrap(at::full(vec(shape, ndim), value, options(dtype, dev, dev_index))); })
}

tw_tensor tw_arange(double start, double end, double step, int dtype, int dev, int dev_index, char **err) {
  TW_TRY(nullptr, { return wrap(at::arange(start, end, step, options(dtype, dev, dev_index))); })
}

tw_tensor tw_linspace(double start, double end, int64_t steps, int dtype, int dev, int dev_index, char **err) {
  TW_TRY(nullptr, { return wrap(at::linspace(start, end, steps, options(dtype, dev, dev_index))); })
}

tw_tensor tw_eye(int64_t n, int dtype, int dev, int dev_index, char **err) {
  TW_TRY(nullptr, { return wrap(at::eye(n, options(dtype, dev, dev_index))); })
}

tw_tensor tw_random(int kind, const int64_t *shape, int ndim, double low, double high, tw_generator g,
                    int dtype, int dev, int dev_index, char **err) {
  TW_TRY(nullptr, {
    auto sizes = vec(shape, ndim);
    auto opts = options(dtype, dev, dev_index);
    switch (kind) {
      case 0: return wrap(at::randn(sizes, gen(g), opts));
      case 1: return wrap(at::rand(sizes, gen(g), opts));
      case 2: return wrap(at::randint(static_cast<int64_t>(low), static_cast<int64_t>(high), sizes, gen(g), opts));
    }
    throw std::invalid_argument("unknown random kind " + std::to_string(kind));
  })
}

tw_tensor tw_multinomial(tw_tensor probs, int64_t n, int replacement, tw_generator g, char **err) {
  TW_TRY(nullptr, { return wrap(at::multinomial(T(probs), n, replacement != 0, gen(g))); })
}

tw_tensor tw_bernoulli(tw_tensor probs, tw_generator g, char **err) {
  TW_TRY(nullptr, { return wrap(at::bernoulli(T(probs), gen(g))); })
}

// ---------------------------------------------------------------- metadata

int tw_dim(tw_tensor t) { return t ? static_cast<int>(t->t.dim()) : -1; }
int tw_shape(tw_tensor t, int64_t *out) {
  if (!t) return -1;
  auto s = t->t.sizes();
  for (size_t i = 0; i < s.size(); i++) out[i] = s[i];
  return static_cast<int>(s.size());
}
int tw_strides(tw_tensor t, int64_t *out) {
  if (!t) return -1;
  auto s = t->t.strides();
  for (size_t i = 0; i < s.size(); i++) out[i] = s[i];
  return static_cast<int>(s.size());
}
int tw_dtype(tw_tensor t) { return t ? from_scalar_type(t->t.scalar_type()) : -1; }
int tw_device_type(tw_tensor t) { return !t ? -1 : (t->t.is_cuda() ? TW_CUDA : TW_CPU); }
int tw_device_index(tw_tensor t) { return t ? t->t.device().index() : -1; }
int64_t tw_numel(tw_tensor t) { return t ? t->t.numel() : -1; }
int tw_is_contiguous(tw_tensor t) { return t && t->t.is_contiguous() ? 1 : 0; }

char *tw_to_string(tw_tensor t, char **err) {
  TW_TRY(nullptr, {
    std::ostringstream s;
    s << T(t);
    return strdup(s.str().c_str());
  })
}

// ---------------------------------------------------------------- conversion and copies

tw_tensor tw_to(tw_tensor t, int dtype, int dev, int dev_index, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).to(to_device(dev, dev_index), to_scalar_type(dtype))); })
}
tw_tensor tw_contiguous(tw_tensor t, char **err) { TW_TRY(nullptr, { return wrap(T(t).contiguous()); }) }
tw_tensor tw_clone(tw_tensor t, char **err) { TW_TRY(nullptr, { return wrap(T(t).clone()); }) }
tw_tensor tw_detach(tw_tensor t, char **err) { TW_TRY(nullptr, { return wrap(T(t).detach()); }) }
tw_tensor tw_alias(tw_tensor t, char **err) { TW_TRY(nullptr, { return wrap(T(t)); }) }

// ---------------------------------------------------------------- views and indexing

tw_tensor tw_reshape(tw_tensor t, const int64_t *shape, int ndim, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).reshape(vec(shape, ndim))); })
}
tw_tensor tw_view(tw_tensor t, const int64_t *shape, int ndim, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).view(vec(shape, ndim))); })
}
tw_tensor tw_expand(tw_tensor t, const int64_t *shape, int ndim, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).expand(vec(shape, ndim))); })
}
tw_tensor tw_permute(tw_tensor t, const int64_t *dims, int ndim, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).permute(vec(dims, ndim))); })
}
tw_tensor tw_transpose(tw_tensor t, int64_t d0, int64_t d1, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).transpose(d0, d1)); })
}
tw_tensor tw_narrow(tw_tensor t, int64_t dim, int64_t start, int64_t length, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).narrow(dim, start, length)); })
}
tw_tensor tw_slice(tw_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).slice(dim, start, end, step)); })
}
tw_tensor tw_select(tw_tensor t, int64_t dim, int64_t index, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).select(dim, index)); })
}
tw_tensor tw_squeeze(tw_tensor t, int64_t dim, int all, char **err) {
  TW_TRY(nullptr, { return wrap(all ? T(t).squeeze() : T(t).squeeze(dim)); })
}
tw_tensor tw_unsqueeze(tw_tensor t, int64_t dim, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).unsqueeze(dim)); })
}
tw_tensor tw_flatten(tw_tensor t, int64_t start, int64_t end, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).flatten(start, end)); })
}
tw_tensor tw_cat(const tw_tensor *ts, int n, int64_t dim, char **err) {
  TW_TRY(nullptr, { return wrap(at::cat(tensors(ts, n), dim)); })
}
tw_tensor tw_stack(const tw_tensor *ts, int n, int64_t dim, char **err) {
  TW_TRY(nullptr, { return wrap(at::stack(tensors(ts, n), dim)); })
}
tw_tensor tw_gather(tw_tensor t, int64_t dim, tw_tensor index, char **err) {
  TW_TRY(nullptr, { return wrap(at::gather(T(t), dim, T(index))); })
}
tw_tensor tw_scatter(tw_tensor t, int64_t dim, tw_tensor index, tw_tensor src, int reduce, char **err) {
  TW_TRY(nullptr, {
    return wrap(reduce ? at::scatter_add(T(t), dim, T(index), T(src)) : at::scatter(T(t), dim, T(index), T(src)));
  })
}
tw_tensor tw_index_select(tw_tensor t, int64_t dim, tw_tensor index, char **err) {
  TW_TRY(nullptr, { return wrap(at::index_select(T(t), dim, T(index))); })
}
tw_tensor tw_masked_fill(tw_tensor t, tw_tensor mask, double value, char **err) {
  TW_TRY(nullptr, { return wrap(T(t).masked_fill(T(mask), value)); })
}
tw_tensor tw_where(tw_tensor cond, tw_tensor a, tw_tensor b, char **err) {
  TW_TRY(nullptr, { return wrap(at::where(T(cond), T(a), T(b))); })
}
tw_tensor tw_tril(tw_tensor t, int64_t diagonal, int upper, char **err) {
  TW_TRY(nullptr, { return wrap(upper ? at::triu(T(t), diagonal) : at::tril(T(t), diagonal)); })
}

// ---------------------------------------------------------------- math

tw_tensor tw_unary(int op, tw_tensor t, char **err) {
  TW_TRY(nullptr, {
    const at::Tensor &x = T(t);
    switch (op) {
      case TW_NEG: return wrap(at::neg(x));
      case TW_EXP: return wrap(at::exp(x));
      case TW_LOG: return wrap(at::log(x));
      case TW_SQRT: return wrap(at::sqrt(x));
      case TW_RSQRT: return wrap(at::rsqrt(x));
      case TW_ABS: return wrap(at::abs(x));
      case TW_SIGMOID: return wrap(at::sigmoid(x));
      case TW_SILU: return wrap(at::silu(x));
      case TW_GELU: return wrap(at::gelu(x));
      case TW_GELU_TANH: return wrap(at::gelu(x, "tanh"));
      case TW_RELU: return wrap(at::relu(x));
      case TW_TANH: return wrap(at::tanh(x));
      case TW_SIN: return wrap(at::sin(x));
      case TW_COS: return wrap(at::cos(x));
      case TW_LOG1P: return wrap(at::log1p(x));
      case TW_EXPM1: return wrap(at::expm1(x));
      case TW_SIGN: return wrap(at::sign(x));
      case TW_FLOOR: return wrap(at::floor(x));
      case TW_CEIL: return wrap(at::ceil(x));
      case TW_ROUND: return wrap(at::round(x));
      case TW_LOGICAL_NOT: return wrap(at::logical_not(x));
      case TW_SQUARE: return wrap(at::square(x));
      case TW_RECIPROCAL: return wrap(at::reciprocal(x));
      case TW_ISNAN: return wrap(at::isnan(x));
      case TW_ISFINITE: return wrap(at::isfinite(x));
      case TW_LOG_SIGMOID: return wrap(at::log_sigmoid(x));
      case TW_SOFTPLUS: return wrap(at::softplus(x));
    }
    throw std::invalid_argument("unknown unary op " + std::to_string(op));
  })
}

tw_tensor tw_binary(int op, tw_tensor a, tw_tensor b, char **err) {
  TW_TRY(nullptr, {
    const at::Tensor &x = T(a);
    const at::Tensor &y = T(b);
    switch (op) {
      case TW_ADD: return wrap(at::add(x, y));
      case TW_SUB: return wrap(at::sub(x, y));
      case TW_MUL: return wrap(at::mul(x, y));
      case TW_DIV: return wrap(at::div(x, y));
      case TW_POW: return wrap(at::pow(x, y));
      case TW_MAXIMUM: return wrap(at::maximum(x, y));
      case TW_MINIMUM: return wrap(at::minimum(x, y));
      case TW_EQ: return wrap(at::eq(x, y));
      case TW_NE: return wrap(at::ne(x, y));
      case TW_LT: return wrap(at::lt(x, y));
      case TW_LE: return wrap(at::le(x, y));
      case TW_GT: return wrap(at::gt(x, y));
      case TW_GE: return wrap(at::ge(x, y));
      case TW_LOGICAL_AND: return wrap(at::logical_and(x, y));
      case TW_LOGICAL_OR: return wrap(at::logical_or(x, y));
      case TW_REMAINDER: return wrap(at::remainder(x, y));
      case TW_FLOOR_DIVIDE: return wrap(at::floor_divide(x, y));
    }
    throw std::invalid_argument("unknown binary op " + std::to_string(op));
  })
}

tw_tensor tw_scalar(int op, tw_tensor t, double s, char **err) {
  TW_TRY(nullptr, {
    const at::Tensor &x = T(t);
    switch (op) {
      case TW_S_ADD: return wrap(at::add(x, s));
      case TW_S_SUB: return wrap(at::sub(x, s));
      case TW_S_RSUB: return wrap(at::rsub(x, s));
      case TW_S_MUL: return wrap(at::mul(x, s));
      case TW_S_DIV: return wrap(at::div(x, s));
      case TW_S_RDIV: return wrap(at::mul(at::reciprocal(x), s));
      case TW_S_POW: return wrap(at::pow(x, s));
      case TW_S_RPOW: return wrap(at::pow(at::Scalar(s), x));
      case TW_S_MAXIMUM: return wrap(at::clamp_min(x, s));
      case TW_S_MINIMUM: return wrap(at::clamp_max(x, s));
      case TW_S_EQ: return wrap(at::eq(x, s));
      case TW_S_NE: return wrap(at::ne(x, s));
      case TW_S_LT: return wrap(at::lt(x, s));
      case TW_S_LE: return wrap(at::le(x, s));
      case TW_S_GT: return wrap(at::gt(x, s));
      case TW_S_GE: return wrap(at::ge(x, s));
      case TW_S_REMAINDER: return wrap(at::remainder(x, s));
    }
    throw std::invalid_argument("unknown scalar op " + std::to_string(op));
  })
}

tw_tensor tw_clamp(tw_tensor t, double lo, double hi, int has_lo, int has_hi, char **err) {
  TW_TRY(nullptr, {
    std::optional<at::Scalar> l, h;
    if (has_lo) l = lo;
    if (has_hi) h = hi;
    return wrap(at::clamp(T(t), l, h));
  })
}

tw_tensor tw_reduce(int op, tw_tensor t, const int64_t *dims, int ndims, int keepdim, char **err) {
  TW_TRY(nullptr, {
    const at::Tensor &x = T(t);
    auto d = vec(dims, ndims);
    bool all = d.empty();
    bool k = keepdim != 0;
    if (all && k) {  // reduce over every dim but keep them all
      for (int64_t i = 0; i < x.dim(); i++) d.push_back(i);
      all = d.empty();
    }
    switch (op) {
      case TW_SUM: return wrap(all ? at::sum(x) : at::sum(x, d, k));
      case TW_MEAN: return wrap(all ? at::mean(x) : at::mean(x, d, k));
      case TW_AMAX: return wrap(at::amax(x, d, k));
      case TW_AMIN: return wrap(at::amin(x, d, k));
      case TW_LOGSUMEXP: {
        if (all) return wrap(at::logsumexp(x.reshape({-1}), {0}, false));
        return wrap(at::logsumexp(x, d, k));
      }
      case TW_PROD: {
        if (all) return wrap(at::prod(x));
        auto r = x;
        std::vector<int64_t> sorted = d;
        for (auto &v : sorted) v = c10::maybe_wrap_dim(v, x.dim());
        std::sort(sorted.rbegin(), sorted.rend());
        for (auto v : sorted) r = at::prod(r, v, k);
        return wrap(r);
      }
      case TW_ALL:
      case TW_ANY: {
        bool isAll = op == TW_ALL;
        if (all) return wrap(isAll ? at::all(x) : at::any(x));
        return wrap(isAll ? at::all(x, at::OptionalIntArrayRef(d), k) : at::any(x, at::OptionalIntArrayRef(d), k));
      }
    }
    throw std::invalid_argument("unknown reduction " + std::to_string(op));
  })
}

tw_tensor tw_var(tw_tensor t, const int64_t *dims, int ndims, int64_t correction, int keepdim, int std, char **err) {
  TW_TRY(nullptr, {
    auto d = vec(dims, ndims);
    at::OptionalIntArrayRef dd = d.empty() ? at::OptionalIntArrayRef() : at::OptionalIntArrayRef(d);
    std::optional<at::Scalar> c = at::Scalar(correction);
    return wrap(std ? at::std(T(t), dd, c, keepdim != 0) : at::var(T(t), dd, c, keepdim != 0));
  })
}

tw_tensor tw_norm(tw_tensor t, double p, const int64_t *dims, int ndims, int keepdim, char **err) {
  TW_TRY(nullptr, {
    auto d = vec(dims, ndims);
    at::OptionalIntArrayRef dd = d.empty() ? at::OptionalIntArrayRef() : at::OptionalIntArrayRef(d);
    return wrap(at::linalg_vector_norm(T(t), p, dd, keepdim != 0));
  })
}

int tw_minmax_dim(int which, tw_tensor t, int64_t dim, int keepdim, tw_tensor *values, tw_tensor *indices, char **err) {
  TW_TRY(-1, {
    auto r = which == 0 ? at::max(T(t), dim, keepdim != 0) : at::min(T(t), dim, keepdim != 0);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
    return 0;
  })
}

tw_tensor tw_argmax(tw_tensor t, int64_t dim, int has_dim, int keepdim, int argmin, char **err) {
  TW_TRY(nullptr, {
    std::optional<int64_t> d;
    if (has_dim) d = dim;
    return wrap(argmin ? at::argmin(T(t), d, keepdim != 0) : at::argmax(T(t), d, keepdim != 0));
  })
}

tw_tensor tw_softmax(tw_tensor t, int64_t dim, int log, char **err) {
  TW_TRY(nullptr, { return wrap(log ? at::log_softmax(T(t), dim) : at::softmax(T(t), dim)); })
}

tw_tensor tw_cumsum(tw_tensor t, int64_t dim, char **err) {
  TW_TRY(nullptr, { return wrap(at::cumsum(T(t), dim)); })
}

int tw_cumminmax(int which, tw_tensor t, int64_t dim, tw_tensor *values, tw_tensor *indices, char **err) {
  TW_TRY(-1, {
    auto r = which == 0 ? at::cummin(T(t), dim) : at::cummax(T(t), dim);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
    return 0;
  })
}

tw_tensor tw_matmul(tw_tensor a, tw_tensor b, char **err) {
  TW_TRY(nullptr, { return wrap(at::matmul(T(a), T(b))); })
}
tw_tensor tw_bmm(tw_tensor a, tw_tensor b, char **err) {
  TW_TRY(nullptr, { return wrap(at::bmm(T(a), T(b))); })
}
tw_tensor tw_linear(tw_tensor x, tw_tensor w, tw_tensor bias_or_null, char **err) {
  TW_TRY(nullptr, {
    std::optional<at::Tensor> b;
    if (bias_or_null) b = bias_or_null->t;
    return wrap(at::linear(T(x), T(w), b));
  })
}

tw_tensor tw_small_linear(tw_tensor xh, tw_tensor wh, tw_tensor bias_or_null, char **err) {
  TW_TRY(nullptr, {
    const at::Tensor &x = T(xh), &w = T(wh);
    const bool fits = tw_kernels::available() && x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1) && !x.is_cuda() &&
                      !w.is_cuda() && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat && w.is_contiguous();
    std::optional<at::Tensor> b;
    if (bias_or_null) b = bias_or_null->t;
    if (!fits) return wrap(at::linear(x, w, b));
    const at::Tensor xc = x.contiguous();
    const int64_t M = xc.size(0), K = xc.size(1), N = w.size(0);
    at::Tensor y = at::empty({M, N}, xc.options());
    tw_kernels::linear(xc.data_ptr<float>(), M, K, w.data_ptr<float>(), tw_kernels::Weights::f32, nullptr, y.data_ptr<float>(), N,
                       at::get_num_threads());
    if (b) y.add_(*b);
    return wrap(y);
  })
}

namespace {
// A bf16 or int8 weight as float32 (int8 rows times their scales).
at::Tensor dequantized(const at::Tensor &w, const std::optional<at::Tensor> &scale) {
  at::Tensor f = w.to(at::kFloat);
  return scale ? f * scale->unsqueeze(1) : f;
}
}  // namespace

tw_tensor tw_lowp_linear(tw_tensor xh, tw_tensor wh, tw_tensor scale_or_null, tw_tensor bias_or_null, int64_t kernel_rows,
                         char **err) {
  TW_TRY(nullptr, {
    const at::Tensor &x = T(xh), &w = T(wh);
    std::optional<at::Tensor> scale, b;
    if (scale_or_null) scale = scale_or_null->t;
    if (bias_or_null) b = bias_or_null->t;
    const bool i8 = w.scalar_type() == at::kChar;
    if (w.dim() != 2 || x.size(-1) != w.size(1) || x.scalar_type() != at::kFloat || !(i8 || w.scalar_type() == at::kBFloat16))
      throw std::invalid_argument("low-precision linear: x must be float32 [..., K] and w bfloat16 or int8 [N, K]");
    if (i8 != scale.has_value() || (scale && (scale->scalar_type() != at::kFloat || scale->numel() != w.size(0))))
      throw std::invalid_argument("low-precision linear: an int8 weight needs one float32 scale per row (and only it)");
    const int64_t N = w.size(0), K = w.size(1), M = x.numel() / std::max<int64_t>(K, 1);
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = N;
    at::Tensor x2 = x.reshape({M, K}).contiguous();
    at::Tensor y = at::empty({M, N}, x2.options());
    const bool kernel = M <= kernel_rows && !x.is_cuda() && !w.is_cuda() && w.is_contiguous();
    if (!i8 && kernel && tw_kernels::bf16_dot_available(K)) {
      tw_kernels::bf16_linear(x2.data_ptr<float>(), M, K, static_cast<const uint16_t *>(w.data_ptr()), y.data_ptr<float>(), N,
                              at::get_num_threads());
      if (b) y.add_(*b);
      return wrap(y.view(shape));
    }
    // A bf16 engine multiplies bf16 activations (as the AVX512-BF16 kernel does); int8 weights take float32 ones.
    if (!i8) x2 = x2.to(at::kBFloat16).to(at::kFloat);
    if (kernel && tw_kernels::available()) {
      tw_kernels::linear(x2.data_ptr<float>(), M, K, w.data_ptr(), i8 ? tw_kernels::Weights::i8 : tw_kernels::Weights::bf16,
                         scale ? scale->contiguous().data_ptr<float>() : nullptr, y.data_ptr<float>(), N, at::get_num_threads());
    } else {
      // Many rows (a prefill): BLAS on float32 copies of 2048 weight rows at a time, so a vocabulary
      // projection never holds a whole float32 copy of its weight.
      for (int64_t c = 0; c < N; c += 2048) {
        const int64_t n = std::min<int64_t>(2048, N - c);
        at::Tensor out = y.narrow(1, c, n);
        std::optional<at::Tensor> s;
        if (scale) s = scale->narrow(0, c, n);
        at::mm_out(out, x2, dequantized(w.narrow(0, c, n), s).t());
      }
    }
    if (b) y.add_(*b);
    return wrap(y.view(shape));
  })
}

tw_tensor tw_quantize_rows_int8(tw_tensor wh, tw_tensor *scale_out, char **err) {
  TW_TRY(nullptr, {
    const at::Tensor w = T(wh).to(at::kFloat);
    if (w.dim() != 2) throw std::invalid_argument("int8 quantisation needs a 2-D weight");
    // Symmetric per row: the largest |w| maps to 127; an all-zero row keeps scale 1.
    at::Tensor amax = w.abs().amax(1);
    at::Tensor scale = at::where(amax > 0, amax / 127.0, at::ones_like(amax));
    at::Tensor q = (w / scale.unsqueeze(1)).round().clamp(-127, 127).to(at::kChar).contiguous();
    *scale_out = wrap(scale.contiguous());
    return wrap(q);
  })
}

// MKL multiplies by a 49k-row weight at 40–65% of the rate it reaches on a few thousand rows (a
// fixed blocking over one huge output), so the CPU path splits the output columns. Without
// autograd each chunk is written into one output; with it, the chunks are concatenated.
tw_tensor tw_wide_linear(tw_tensor xh, tw_tensor wh, int64_t chunk, char **err) {
  TW_TRY(nullptr, {
    const at::Tensor &x = T(xh), &w = T(wh);
    const int64_t N = w.size(0);
    if (x.is_cuda() || chunk <= 0 || N <= chunk || w.dim() != 2) return wrap(at::linear(x, w));
    const bool graph = at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad());
    if (graph) {
      std::vector<at::Tensor> parts;
      for (int64_t c = 0; c < N; c += chunk) parts.push_back(at::linear(x, w.narrow(0, c, std::min(chunk, N - c))));
      return wrap(at::cat(parts, -1));
    }
    const at::Tensor x2 = x.reshape({-1, x.size(-1)});
    at::Tensor y = at::empty({x2.size(0), N}, x2.options());
    for (int64_t c = 0; c < N; c += chunk) {
      at::Tensor out = y.narrow(1, c, std::min(chunk, N - c));
      at::mm_out(out, x2, w.narrow(0, c, std::min(chunk, N - c)).t());
    }
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = N;
    return wrap(y.view(shape));
  })
}

tw_tensor tw_embedding(tw_tensor weight, tw_tensor indices, char **err) {
  TW_TRY(nullptr, { return wrap(at::embedding(T(weight), T(indices))); })
}

tw_tensor tw_sdpa(tw_tensor q, tw_tensor k, tw_tensor v, tw_tensor mask_or_null, double dropout, int causal,
                  double scale, int enable_gqa, char **err) {
  TW_TRY(nullptr, {
    std::optional<at::Tensor> mask;
    if (mask_or_null) mask = mask_or_null->t;
    std::optional<double> s;
    if (scale > 0) s = scale;
    return wrap(at::scaled_dot_product_attention(T(q), T(k), T(v), mask, dropout, causal != 0, s, enable_gqa != 0));
  })
}

int tw_topk(tw_tensor t, int64_t k, int64_t dim, int largest, int sorted, tw_tensor *values, tw_tensor *indices, char **err) {
  TW_TRY(-1, {
    auto r = at::topk(T(t), k, dim, largest != 0, sorted != 0);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
    return 0;
  })
}

int tw_sort(tw_tensor t, int64_t dim, int descending, int stable, tw_tensor *values, tw_tensor *indices, char **err) {
  TW_TRY(-1, {
    auto r = at::sort(T(t), stable != 0, dim, descending != 0);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
    return 0;
  })
}

// ---------------------------------------------------------------- in-place

int tw_inplace(int op, tw_tensor self, tw_tensor a, tw_tensor b_or_null, double alpha, char **err) {
  TW_TRY(-1, {
    at::Tensor &s = need(self, "tensor")->t;
    const at::Tensor &x = T(a);
    auto second = [&]() -> const at::Tensor & {
      if (!b_or_null) throw std::invalid_argument("this in-place op needs a second tensor");
      return b_or_null->t;
    };
    switch (op) {
      case TW_I_COPY: s.copy_(x); return 0;
      case TW_I_ADD: s.add_(x, alpha); return 0;
      case TW_I_MUL: s.mul_(x); return 0;
      case TW_I_DIV: s.div_(x); return 0;
      case TW_I_ADDCMUL: s.addcmul_(x, second(), alpha); return 0;
      case TW_I_ADDCDIV: s.addcdiv_(x, second(), alpha); return 0;
      case TW_I_LERP: s.lerp_(x, alpha); return 0;
    }
    throw std::invalid_argument("unknown in-place op " + std::to_string(op));
  })
}

int tw_inplace_scalar(int op, tw_tensor self, double v, char **err) {
  TW_TRY(-1, {
    at::Tensor &s = need(self, "tensor")->t;
    switch (op) {
      case TW_IS_FILL: s.fill_(v); return 0;
      case TW_IS_ADD: s.add_(v); return 0;
      case TW_IS_MUL: s.mul_(v); return 0;
      case TW_IS_CLAMP_MIN: s.clamp_min_(v); return 0;
      case TW_IS_CLAMP_MAX: s.clamp_max_(v); return 0;
    }
    throw std::invalid_argument("unknown in-place scalar op " + std::to_string(op));
  })
}

// ---------------------------------------------------------------- autograd

int tw_set_requires_grad(tw_tensor t, int requires, char **err) {
  TW_TRY(-1, {
    T(t).set_requires_grad(requires != 0);
    return 0;
  })
}
int tw_requires_grad(tw_tensor t) { return t && t->t.requires_grad() ? 1 : 0; }
int tw_is_leaf(tw_tensor t) { return t && t->t.is_leaf() ? 1 : 0; }

tw_tensor tw_grad(tw_tensor t, char **err) {
  TW_TRY(nullptr, {
    const auto &g = T(t).grad();
    return g.defined() ? wrap(g) : nullptr;
  })
}

int tw_zero_grad(tw_tensor t, char **err) {
  TW_TRY(-1, {
    T(t).mutable_grad().reset();
    return 0;
  })
}

int tw_set_grad(tw_tensor t, tw_tensor grad_or_null, char **err) {
  TW_TRY(-1, {
    T(t).mutable_grad() = grad_or_null ? grad_or_null->t : at::Tensor();
    return 0;
  })
}

int tw_backward(tw_tensor t, tw_tensor grad_or_null, int retain_graph, char **err) {
  TW_TRY(-1, {
    std::optional<at::Tensor> g;
    if (grad_or_null) g = grad_or_null->t;
    std::optional<bool> retain;
    if (retain_graph) retain = true;
    T(t).backward(g.value_or(at::Tensor()), retain, false);
    return 0;
  })
}

int tw_autograd_grad(const tw_tensor *outputs, int n_out, const tw_tensor *grad_outputs_or_null,
                     const tw_tensor *inputs, int n_in, int retain_graph, int create_graph,
                     int allow_unused, tw_tensor *out, char **err) {
  TW_TRY(-1, {
    auto outs = tensors(outputs, n_out);
    auto ins = tensors(inputs, n_in);
    std::vector<at::Tensor> gouts;
    if (grad_outputs_or_null) gouts = tensors(grad_outputs_or_null, n_out);
    std::optional<bool> retain;
    if (retain_graph) retain = true;
    auto grads = torch::autograd::grad(outs, ins, gouts, retain, create_graph != 0, allow_unused != 0);
    for (int i = 0; i < n_in; i++) out[i] = grads[i].defined() ? wrap(grads[i]) : nullptr;
    return 0;
  })
}

}  // extern "C"

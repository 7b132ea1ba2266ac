// token_logprobs.cpp — per-token log-probabilities and entropies of a vocabulary projection, chunk
// by chunk, with a backward that recomputes each chunk's logits instead of keeping them. Autograd
// over the plain ops would hold every chunk's [rows, chunk, vocab] softmax until the backward (for
// 8 rows of 1,024 tokens and a 49k vocabulary, 1.6 GB a copy); this keeps only the hidden states.
#include "shim_common.h"

#include <torch/csrc/autograd/custom_function.h>

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

// The dtype results are computed in: float32, or float64 for float64 inputs.
at::ScalarType compute(const at::Tensor &x) { return at::promote_types(x.scalar_type(), at::kFloat); }

// x [M, H] · w[V, H]ᵀ in the compute dtype, `cols` vocabulary rows at a time: BLAS runs a few narrow products
// faster on the CPU than one very wide one (as tw_wide_linear).
at::Tensor logits(const at::Tensor &x, const at::Tensor &w) {
  constexpr int64_t cols = 2048;
  const int64_t V = w.size(0);
  if (x.is_cuda() || V <= cols) return at::mm(x, w.t()).to(compute(x));
  at::Tensor y = at::empty({x.size(0), V}, x.options());
  for (int64_t c = 0; c < V; c += cols) {
    at::Tensor out = y.narrow(1, c, std::min(cols, V - c));
    at::mm_out(out, x, w.narrow(0, c, std::min(cols, V - c)).t());
  }
  return y.to(compute(x));
}

// log_softmax over the last dimension, in z's own buffer.
at::Tensor logSoftmax(at::Tensor z) { return z.sub_(z.logsumexp(-1, true)); }

struct TokenLogprobs : public torch::autograd::Function<TokenLogprobs> {
  // hidden [B, T, H], weight [V, H], targets [B, T] int64 → logprobs, entropies [B, T].
  static variable_list forward(AutogradContext *ctx, const at::Tensor &hidden, const at::Tensor &weight,
                               const at::Tensor &targets, int64_t chunk) {
    const int64_t B = hidden.size(0), T = hidden.size(1), H = hidden.size(2);
    at::Tensor lp = at::empty({B, T}, hidden.options().dtype(compute(hidden)));
    at::Tensor ent = at::empty_like(lp);
    for (int64_t s = 0; s < T; s += chunk) {
      const int64_t n = std::min(chunk, T - s);
      at::Tensor logp = logSoftmax(logits(hidden.narrow(1, s, n).reshape({B * n, H}), weight));  // [B·n, V]
      at::Tensor tgt = targets.narrow(1, s, n).reshape({B * n, 1});
      lp.narrow(1, s, n).copy_(logp.gather(1, tgt).view({B, n}));
      ent.narrow(1, s, n).copy_(logp.exp().mul_(logp).sum(-1).neg().view({B, n}));
    }
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["chunk"] = chunk;
    return {lp, ent};
  }

  // With p = softmax(z): d logp[y]/dz = onehot(y) − p and dH/dz = −p ⊙ (log p + H).
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const int64_t B = hidden.size(0), T = hidden.size(1), H = hidden.size(2);
    const at::Tensor &glp = grads[0], &gent = grads[1];
    const bool wantsWeight = ctx->needs_input_grad(1);
    at::Tensor gh = at::zeros_like(hidden), gw = wantsWeight ? at::zeros_like(weight, compute(weight)) : at::Tensor();
    for (int64_t s = 0; s < T; s += chunk) {
      const int64_t n = std::min(chunk, T - s);
      at::Tensor h = hidden.narrow(1, s, n).reshape({B * n, H});
      // gz = onehot(y)·g_lp − p ⊙ (g_lp + g_H·(log p + H)), formed in place in log p's buffer.
      at::Tensor gz = logSoftmax(logits(h, weight)), p = gz.exp();
      const auto type = p.scalar_type();
      at::Tensor gl = glp.defined() ? glp.narrow(1, s, n).reshape({B * n, 1}).to(type) : at::zeros({B * n, 1}, p.options());
      if (gent.defined()) {
        at::Tensor entropy = (p * gz).sum(-1, true).neg();
        gz.add_(entropy).mul_(gent.narrow(1, s, n).reshape({B * n, 1}).to(type)).add_(gl);
      } else {
        gz.copy_(gl.expand_as(gz));
      }
      gz.mul_(p).neg_().scatter_add_(1, targets.narrow(1, s, n).reshape({B * n, 1}), gl);
      gz = gz.to(hidden.scalar_type());
      gh.narrow(1, s, n).copy_(at::mm(gz, weight).view({B, n, H}));
      if (wantsWeight) gw.add_(at::mm(gz.t(), h).to(gw.scalar_type()));
    }
    return {gh, wantsWeight ? gw.to(weight.scalar_type()) : at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

extern "C" int tw_token_logprobs(tw_tensor hidden, tw_tensor weight, tw_tensor targets, int64_t chunk, tw_tensor *logprobs,
                                 tw_tensor *entropies, char **err) {
  using tw_shim::need;
  TW_TRY(-1, {
    const at::Tensor &h = need(hidden, "hidden")->t, &w = need(weight, "weight")->t, &y = need(targets, "targets")->t;
    if (h.dim() != 3 || w.dim() != 2 || y.dim() != 2 || h.size(2) != w.size(1) || y.size(0) != h.size(0) || y.size(1) != h.size(1))
      throw std::invalid_argument("token logprobs need hidden [B, T, H], weight [V, H] and targets [B, T]; got hidden " +
                                  c10::str(h.sizes()) + ", weight " + c10::str(w.sizes()) + ", targets " + c10::str(y.sizes()));
    if (y.scalar_type() != at::kLong) throw std::invalid_argument("token logprobs: targets must be int64");
    if (chunk < 1) throw std::invalid_argument("token logprobs: chunk must be positive");
    auto out = TokenLogprobs::apply(h.contiguous(), w, y, chunk);
    *logprobs = tw_shim::wrap(out[0]);
    *entropies = tw_shim::wrap(out[1]);
    return 0;
  })
}

// checkpoint.cpp — gradient checkpointing of a block whose body is the caller's (a Swift closure
// behind a C callback). The forward runs the body without autograd and keeps only its input; the
// backward runs it again with autograd and differentiates that copy (torch's reentrant checkpoint).
// A hand-made autograd node holds the callback, so the caller's context is released exactly when
// the graph that needs it is freed (after the backward, or when the graph is dropped unused).
#include "shim_common.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <memory>

using torch::autograd::variable_list;

namespace {

struct Body {
  void *ctx;
  tw_block_fn fn;
  tw_release_fn release;
  ~Body() { release(ctx); }

  at::Tensor operator()(const at::Tensor &x) const {
    char *err = nullptr;
    tw_tensor out = fn(ctx, tw_shim::wrap(x), &err);   // the callee owns (and frees) its input's handle
    if (!out) {
      std::string msg = err ? err : "checkpointed block failed";
      free(err);
      throw std::runtime_error(msg);
    }
    at::Tensor y = out->t;
    delete out;
    return y;
  }
};

struct CheckpointBackward : public torch::autograd::Node {
  std::shared_ptr<Body> body;
  torch::autograd::SavedVariable input;
  std::vector<at::Tensor> params;   // tensors the block reads that want gradients (its next edges after the input)

  variable_list apply(variable_list &&grads) override {
    if (!body) throw std::runtime_error("a checkpointed block was differentiated twice (its graph is freed after one backward)");
    if (!grads[0].defined()) return variable_list(1 + params.size());
    at::Tensor x = input.unpack().detach().requires_grad_(true);
    at::Tensor out;
    {
      at::AutoGradMode on(true);
      out = (*body)(x);
    }
    std::vector<at::Tensor> wrt{x};
    wrt.insert(wrt.end(), params.begin(), params.end());
    return torch::autograd::grad({out}, wrt, {grads[0]}, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
  }

  void release_variables() override {
    input.reset_data();
    body.reset();
  }
};

}  // namespace

extern "C" tw_tensor tw_checkpoint(tw_tensor input, const tw_tensor *params, int64_t count, void *ctx, tw_block_fn fn,
                                   tw_release_fn release, char **err) {
  // The context is the caller's until here; from now on Body releases it, whatever happens.
  std::shared_ptr<Body> body(new Body{ctx, fn, release});
  TW_TRY(nullptr, {
    const at::Tensor &x = tw_shim::need(input, "input")->t;
    std::vector<at::Tensor> wanted;
    for (int64_t i = 0; i < count; i++) {
      const at::Tensor &p = tw_shim::need(params[i], "parameter")->t;
      if (p.requires_grad()) wanted.push_back(p);
    }
    at::Tensor out;
    {
      at::NoGradGuard off;
      out = (*body)(x);
    }
    if (!at::GradMode::is_enabled() || (!x.requires_grad() && wanted.empty())) return tw_shim::wrap(out);
    auto node = std::shared_ptr<CheckpointBackward>(new CheckpointBackward(), torch::autograd::deleteNode);
    node->body = body;
    node->input = torch::autograd::SavedVariable(x, false);
    node->params = wanted;
    std::vector<at::Tensor> edges{x};
    edges.insert(edges.end(), wanted.begin(), wanted.end());
    node->set_next_edges(torch::autograd::collect_next_edges(edges));
    torch::autograd::set_history(out, node);
    return tw_shim::wrap(out);
  })
}

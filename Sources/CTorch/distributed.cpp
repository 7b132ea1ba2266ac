// distributed.cpp — torch's own c10d behind ctorch.h: a TCPStore for rendezvous and a Gloo process
// group for collectives on CPU tensors. Every body runs inside TW_TRY: a peer that dies, a timeout
// or a refused connection comes back as c10d's message, never as an abort.
//
// The torch wheel ships ProcessGroupGloo.hpp (whose body needs USE_C10D_GLOO) and compiles gloo
// into libtorch_cpu.so, but ships no gloo headers. The header only names gloo types: pointers to
// them, one base class and one method called from an inline function this file never uses. The
// declarations in gloo_decl/ cover exactly those names; this file never creates or calls a gloo
// object itself (devices come from libtorch's createDeviceForHostname), so no gloo code is compiled
// here and the class layouts are those of the real header.
#define USE_C10D_GLOO 1
#include "shim_common.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <vector>

// The tensor of a handle (after every header: libtorch's templates name parameters T).
#define T(h) (tw_shim::need((h), "tensor")->t)

struct tw_store_s {
  c10::intrusive_ptr<c10d::Store> store;
  int port;
};
struct tw_group_s {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout;
};

namespace {

using tw_shim::need;

// A listening socket on addr:port (port 0: a free one), so the store never binds the wildcard
// address: nothing listens beyond the address the caller names.
int listen_on(const char *addr, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
    throw std::invalid_argument(std::string("store address '") + addr + "' is not an IPv4 address");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket(): ") + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0 || listen(fd, 128) != 0) {
    std::string why = strerror(errno);
    close(fd);
    throw std::runtime_error("cannot listen on " + std::string(addr) + ":" + std::to_string(port) + ": " + why);
  }
  return fd;
}

int bound_port(int fd) {
  sockaddr_in sa{};
  socklen_t n = sizeof sa;
  if (getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &n) != 0) throw std::runtime_error("getsockname failed");
  return ntohs(sa.sin_port);
}

void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>> &works, std::chrono::milliseconds timeout) {
  for (auto &w : works) w->wait(timeout);
}

// Tensors packed into flat buffers of one dtype, at most `bucket_bytes` each (a tensor larger than
// that gets a buffer of its own), so a collective over many small gradients is a few large calls.
struct Buckets {
  struct Slot { size_t tensor; int64_t offset; };
  std::vector<at::Tensor> flat;
  std::vector<std::vector<Slot>> slots;

  Buckets(const std::vector<at::Tensor> &ts, int64_t bucket_bytes) {
    std::map<at::ScalarType, int> open;  // dtype -> index of its bucket being filled
    std::vector<int64_t> fill;
    for (size_t i = 0; i < ts.size(); i++) {
      const at::Tensor &t = ts[i];
      if (!t.device().is_cpu()) throw std::invalid_argument("the Gloo group reduces CPU tensors only");
      auto it = open.find(t.scalar_type());
      if (it == open.end() || (fill[it->second] + t.numel()) * static_cast<int64_t>(t.element_size()) > bucket_bytes) {
        slots.emplace_back();
        fill.push_back(0);
        flat.emplace_back();
        open[t.scalar_type()] = static_cast<int>(slots.size() - 1);
        it = open.find(t.scalar_type());
      }
      slots[it->second].push_back({i, fill[it->second]});
      fill[it->second] += t.numel();
    }
    for (size_t b = 0; b < slots.size(); b++)
      flat[b] = at::empty({fill[b]}, ts[slots[b].front().tensor].options());
  }

  void pack(const std::vector<at::Tensor> &ts) {
    for (size_t b = 0; b < slots.size(); b++)
      for (auto &s : slots[b]) {
        const at::Tensor &t = ts[s.tensor];
        flat[b].narrow(0, s.offset, t.numel()).copy_(t.reshape({-1}));
      }
  }

  void unpack(std::vector<at::Tensor> &ts) {
    for (size_t b = 0; b < slots.size(); b++)
      for (auto &s : slots[b]) {
        at::Tensor &t = ts[s.tensor];
        t.copy_(flat[b].narrow(0, s.offset, t.numel()).view(t.sizes()));
      }
  }
};

std::vector<at::Tensor> tensor_list(const tw_tensor *ts, int n) {
  std::vector<at::Tensor> v;
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

// One collective per bucket of `ts` (`op` starts it on a bucket), all in flight together, then the
// buckets' results copied back into the tensors. `pack`: whether this rank's values go in.
template <typename Op>
void over_buckets(tw_group g, const tw_tensor *ts, int n, int64_t bucket_bytes, bool pack, Op op) {
  auto list = tensor_list(ts, n);
  Buckets buckets(list, bucket_bytes);
  if (pack) buckets.pack(list);
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto &f : buckets.flat) {
    std::vector<at::Tensor> one{f};
    works.push_back(op(one));
  }
  wait_all(works, g->timeout);
  buckets.unpack(list);
}

}  // namespace

extern "C" {

tw_store tw_store_host(const char *addr, int port, int64_t timeout_ms, char **err) {
  TW_TRY(nullptr, {
    int fd = listen_on(need(addr, "address"), port);
    try {
      c10d::TCPStoreOptions o;
      o.port = static_cast<uint16_t>(bound_port(fd));
      o.isServer = true;
      o.waitWorkers = false;
      o.timeout = std::chrono::milliseconds(timeout_ms);
      o.masterListenFd = fd;
      auto store = c10::make_intrusive<c10d::TCPStore>(std::string(addr), o);
      return new tw_store_s{store, o.port};
    } catch (...) {
      close(fd);  // the store never took it
      throw;
    }
  })
}

tw_store tw_store_connect(const char *addr, int port, int64_t timeout_ms, char **err) {
  TW_TRY(nullptr, {
    if (port <= 0 || port > 65535) throw std::invalid_argument("store port " + std::to_string(port) + " is out of range");
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(port);
    o.isServer = false;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(need(addr, "address")), o);
    return new tw_store_s{store, port};
  })
}

int tw_store_port(tw_store s) { return s ? s->port : -1; }
void tw_store_free(tw_store s) { delete s; }

tw_group tw_group_gloo(tw_store s, const char *prefix, int rank, int world, const char *device_host, int64_t timeout_ms,
                       char **err) {
  TW_TRY(nullptr, {
    if (world < 1 || rank < 0 || rank >= world)
      throw std::invalid_argument("rank " + std::to_string(rank) + " is outside a world of " + std::to_string(world));
    c10::intrusive_ptr<c10d::Store> store = need(s, "store")->store;
    if (prefix && *prefix) store = c10::make_intrusive<c10d::PrefixStore>(prefix, store);
    auto timeout = std::chrono::milliseconds(timeout_ms);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(need(device_host, "device host")));
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
    return new tw_group_s{pg, timeout};
  })
}

void tw_group_free(tw_group g) { delete g; }
int tw_group_rank(tw_group g) { return g ? g->pg->getRank() : -1; }
int tw_group_size(tw_group g) { return g ? g->pg->getSize() : -1; }

int tw_group_allreduce_sum(tw_group g, const tw_tensor *ts, int n, int64_t bucket_bytes, char **err) {
  TW_TRY(-1, {
    auto &pg = need(g, "process group")->pg;
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;  // Gloo has no AVG: callers divide
    over_buckets(g, ts, n, bucket_bytes, true, [&](std::vector<at::Tensor> &one) { return pg->allreduce(one, opts); });
    return 0;
  })
}

int tw_group_broadcast(tw_group g, const tw_tensor *ts, int n, int root, int64_t bucket_bytes, char **err) {
  TW_TRY(-1, {
    at::NoGradGuard no_grad;  // the tensors are often parameters (leaves that require grad)
    auto &pg = need(g, "process group")->pg;
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    over_buckets(g, ts, n, bucket_bytes, pg->getRank() == root, [&](std::vector<at::Tensor> &one) { return pg->broadcast(one, opts); });
    return 0;
  })
}

tw_tensor tw_group_allgather(tw_group g, tw_tensor t, char **err) {
  TW_TRY(nullptr, {
    auto &pg = need(g, "process group")->pg;
    at::Tensor in = T(t).contiguous();
    std::vector<int64_t> shape{pg->getSize()};
    for (auto d : in.sizes()) shape.push_back(d);
    at::Tensor out = at::empty({pg->getSize() * in.numel()}, in.options());
    at::Tensor flat = in.reshape({-1});
    auto w = pg->_allgather_base(out, flat);
    w->wait(g->timeout);
    return tw_shim::wrap(out.view(shape));
  })
}

int tw_group_barrier(tw_group g, char **err) {
  TW_TRY(-1, {
    auto &pg = need(g, "process group")->pg;
    pg->barrier()->wait(g->timeout);
    return 0;
  })
}

}  // extern "C"

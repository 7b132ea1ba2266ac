// shim_common.h — what every libtorch-facing file of the shim shares (internal to CTorch): the
// tensor handle's body and TW_TRY, which turns any C++ exception into the caller's error string.
#pragma once
#include "ctorch.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

struct tw_tensor_s { at::Tensor t; };

namespace tw_shim {

inline void set_error(char **err, const char *msg) {
  if (err) *err = strdup(msg ? msg : "unknown error");
}

// Throws a readable error for a NULL handle: a previous call failed or the caller passed nothing.
template <typename H> H need(H h, const char *what) {
  if (!h) throw std::invalid_argument(std::string("null ") + what + " handle (an earlier operation failed?)");
  return h;
}

inline tw_tensor wrap(at::Tensor t) { return new tw_tensor_s{std::move(t)}; }

}  // namespace tw_shim

#define TW_TRY(fail, ...)                                              \
  try {                                                                \
    __VA_ARGS__                                                        \
  } catch (const c10::Error &e) {                                      \
    tw_shim::set_error(err, e.what_without_backtrace());               \
  } catch (const std::exception &e) {                                  \
    tw_shim::set_error(err, e.what());                                 \
  } catch (...) {                                                      \
    tw_shim::set_error(err, "unknown C++ exception");                  \
  }                                                                    \
  return fail;

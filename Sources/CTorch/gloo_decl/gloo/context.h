// See distributed.cpp. ProcessGroupGloo.hpp holds contexts by shared_ptr and, in an inline method
// Tokenwise never calls, sets their timeout; only that member needs a declaration.
#pragma once
#include <chrono>

namespace gloo {
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo

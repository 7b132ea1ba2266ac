// See distributed.cpp: held only through smart pointers, so incomplete types suffice.
#pragma once

namespace gloo {
namespace transport {
class Device;
class UnboundBuffer;
}  // namespace transport
}  // namespace gloo

// Simulated time. Every model computes in integer femtoseconds so that link
// serialization at 64 GT/s x32 (~0.5 ps per byte) keeps its precision, and
// results are bit-identical run to run. The SystemC kernel runs at the same
// 1 fs resolution (fabric::KernelContext sets it), which bounds one simulation
// to 2^64 fs, about 5.1 hours of simulated time.
#pragma once

#include <cstdint>
#include <string>

namespace pciesim::fabric {

using Time = std::uint64_t;  // femtoseconds

constexpr Time kFs = 1;
constexpr Time kPs = 1000 * kFs;
constexpr Time kNs = 1000 * kPs;
constexpr Time kUs = 1000 * kNs;
constexpr Time kMs = 1000 * kUs;
constexpr Time kSec = 1000 * kMs;
constexpr Time kTimeMax = ~Time{0};

constexpr Time ns(double v) {
  return static_cast<Time>(v * static_cast<double>(kNs) + 0.5);
}
constexpr Time us(double v) {
  return static_cast<Time>(v * static_cast<double>(kUs) + 0.5);
}
constexpr Time ms(double v) {
  return static_cast<Time>(v * static_cast<double>(kMs) + 0.5);
}

constexpr double to_ns(Time t) {
  return static_cast<double>(t) / static_cast<double>(kNs);
}
constexpr double to_us(Time t) {
  return static_cast<double>(t) / static_cast<double>(kUs);
}
constexpr double to_sec(Time t) {
  return static_cast<double>(t) / static_cast<double>(kSec);
}

// "1.5 us", "100 ns", "2 ms": the shortest exact unit that reads well.
std::string format_time(Time t);

// Parses "10us", "1.5 ms", "250ns", "3s", "40ps", "7fs". A bare number is
// rejected: units are mandatory. Returns false on malformed text.
bool parse_time(const std::string& text, Time* out);

}  // namespace pciesim::fabric

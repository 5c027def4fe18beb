// A resource that serves one thing at a time, booked by timestamp rather
// than by call order: with temporal decoupling, requests reach a shared
// resource out of time order (one delayed by an IOTLB walk is called before
// a later one that was not). A FIFO busy-until pointer would make every
// later call wait behind the delayed one; this book puts each request in
// the first free gap at or after its time, as the hardware would serve it.
// Intervals that end before the kernel's time are dropped (no request can
// arrive before it), so the book stays small.
#pragma once

#include <algorithm>
#include <iterator>
#include <map>

#include "fabric/common/sim_time.h"

namespace pciesim::fabric {

class IntervalBook {
 public:
  // Books `duration` at the first free gap starting at or after t; returns
  // the start. `floor`: no later request starts before it (the kernel's
  // time), so what ends before it is forgotten.
  Time reserve(Time t, Time duration, Time floor) {
    while (!busy_.empty() && busy_.begin()->second <= floor)
      busy_.erase(busy_.begin());
    if (duration == 0) return t;
    Time start = t;
    // The interval that could contain `start`, then walk the gaps.
    auto it = busy_.upper_bound(start);
    if (it != busy_.begin()) {
      auto prev = std::prev(it);
      if (prev->second > start) start = prev->second;
    }
    while (it != busy_.end() && it->first < start + duration) {
      start = std::max(start, it->second);
      ++it;
    }
    // Insert [start, start + duration), merging with touching neighbours.
    const Time booked = start;
    Time lo = start, hi = start + duration;
    auto next = busy_.lower_bound(lo);
    if (next != busy_.begin()) {
      auto prev = std::prev(next);
      if (prev->second == lo) {
        lo = prev->first;
        busy_.erase(prev);
      }
    }
    next = busy_.find(hi);
    if (next != busy_.end()) {
      hi = next->second;
      busy_.erase(next);
    }
    busy_[lo] = hi;
    return booked;
  }
  std::size_t size() const { return busy_.size(); }

 private:
  std::map<Time, Time> busy_;  // start -> end, disjoint
};

}  // namespace pciesim::fabric

// A resource that serves one thing at a time, booked by timestamp rather
// than by call order: with temporal decoupling, requests reach a shared
// resource out of time order (one delayed by an IOTLB walk is called before
// a later one that was not). A FIFO busy-until pointer would make every
// later call wait behind the delayed one; this book puts each request in
// the first free gap at or after its time, as the hardware would serve it.
// Intervals that end before the kernel's time are dropped (no request can
// arrive before it), so the book stays small.
//
// Storage: the busy intervals, disjoint and sorted, in a vector with a
// consumed head. Nearly every booking lands at or after the last interval
// (requests mostly arrive in time order), which is an append or an in-place
// extension: no allocation, no tree walk. Out-of-order bookings binary-search
// the gap and insert in the middle; they are rare and the book is short.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "fabric/common/sim_time.h"

namespace pciesim::fabric {

class IntervalBook {
 public:
  // Books `duration` at the first free gap starting at or after t; returns
  // the start. `floor`: no later request starts before it (the kernel's
  // time), so what ends before it is forgotten.
  Time reserve(Time t, Time duration, Time floor) {
    prune(floor);
    if (duration == 0) return t;
    if (head_ == busy_.size() || t >= busy_.back().end) {
      if (head_ < busy_.size() && busy_.back().end == t)
        busy_.back().end = t + duration;
      else
        busy_.push_back({t, t + duration});
      return t;
    }
    // The first interval that ends after t; everything before it is over.
    auto first = busy_.begin() + static_cast<std::ptrdiff_t>(head_);
    auto it = std::upper_bound(first, busy_.end(), t,
                               [](Time v, const Interval& iv) { return v < iv.end; });
    Time start = t;
    // Walk the gaps: skip every interval that overlaps [start, start + d).
    while (it != busy_.end() && it->start < start + duration) {
      start = std::max(start, it->end);
      ++it;
    }
    // Insert [start, start + duration) before `it`, merging with touching
    // neighbours (every interval before `it` ends at or before start).
    const Time hi = start + duration;
    const bool join_prev = it != first && std::prev(it)->end == start;
    const bool join_next = it != busy_.end() && it->start == hi;
    if (join_prev && join_next) {
      std::prev(it)->end = it->end;
      busy_.erase(it);
    } else if (join_prev) {
      std::prev(it)->end = hi;
    } else if (join_next) {
      it->start = start;
    } else {
      busy_.insert(it, {start, hi});
    }
    return start;
  }
  std::size_t size() const { return busy_.size() - head_; }

 private:
  struct Interval {
    Time start, end;
  };
  void prune(Time floor) {
    while (head_ < busy_.size() && busy_[head_].end <= floor)
      ++head_;
    if (head_ == busy_.size()) {
      busy_.clear();
      head_ = 0;
    } else if (head_ >= 64 && head_ * 2 >= busy_.size()) {
      busy_.erase(busy_.begin(), busy_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  std::vector<Interval> busy_;  // [head_, end): disjoint, sorted by start
  std::size_t head_ = 0;
};

}  // namespace pciesim::fabric

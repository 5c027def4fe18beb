// Amounts over simulated time in fixed bins (time series: sim/trace's
// sampler). Models book an amount at the exact time it happens -- a span
// of wire time, bytes at their completion -- which may be ahead of the
// kernel (loosely-timed initiators) but never behind it, so a bin that
// ended before the kernel's time is final.
#pragma once

#include <cstdint>
#include <deque>

#include "fabric/common/sim_time.h"

namespace pciesim::fabric {

class TimeBins {
 public:
  explicit TimeBins(Time interval) : interval_(interval ? interval : 1) {}
  Time interval() const { return interval_; }
  // Adds the length of [s, e) to the bins it covers.
  void add_span(Time s, Time e) {
    while (s < e) {
      const std::uint64_t k = s / interval_;
      const Time bin_end = (k + 1) * interval_;
      const Time upto = e < bin_end ? e : bin_end;
      slot(k) += static_cast<double>(upto - s);
      s = upto;
    }
  }
  void add_at(Time t, double v) { slot(t / interval_) += v; }
  // The total of bin k ([k, k+1) intervals); forgets the bins before it.
  double take(std::uint64_t k) {
    while (first_ < k && !v_.empty()) {
      v_.pop_front();
      ++first_;
    }
    if (first_ < k) first_ = k;
    if (v_.empty()) return 0;
    const double x = v_.front();
    v_.pop_front();
    ++first_;
    return x;
  }

 private:
  double& slot(std::uint64_t k) {
    if (k < first_) k = first_;  // never happens for bookings at or after the kernel time
    while (first_ + v_.size() <= k)
      v_.push_back(0);
    return v_[k - first_];
  }
  Time interval_;
  std::uint64_t first_ = 0;
  std::deque<double> v_;
};

}  // namespace pciesim::fabric

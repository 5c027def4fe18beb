// Latency distribution in constant memory: exact below 1024 ns, then 64
// buckets per power of two (under 1.6% relative error) up to ~2^40 ns.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

namespace pciesim::fabric {

class Histogram {
 public:
  Histogram() = default;
  Histogram(const Histogram& o);
  Histogram& operator=(const Histogram& o);
  Histogram(Histogram&&) = default;
  Histogram& operator=(Histogram&&) = default;
  void add(double ns);
  std::uint64_t count() const { return count_; }
  double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
  double min() const { return count_ ? min_ : 0.0; }
  double max() const { return count_ ? max_ : 0.0; }
  // p in [0, 100].
  double percentile(double p) const;
  void merge(const Histogram& o);

 private:
  static constexpr unsigned kLinear = 1024;
  static constexpr unsigned kSub = 64;
  static constexpr unsigned kOctaves = 31;
  static unsigned bucket(std::uint64_t v);
  static double bucket_value(unsigned b);
  using Buckets = std::array<std::uint64_t, kLinear + kSub * kOctaves>;
  // Allocated on the first sample: thousands of idle VFs cost nothing.
  std::unique_ptr<Buckets> buckets_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
  double min_ = 0;
  double max_ = 0;
};

}  // namespace pciesim::fabric

#include "fabric/common/histogram.h"

#include <algorithm>
#include <cmath>

namespace pciesim::fabric {

unsigned Histogram::bucket(std::uint64_t v) {
  if (v < kLinear) return static_cast<unsigned>(v);
  unsigned msb = 63 - static_cast<unsigned>(__builtin_clzll(v));  // >= 10
  unsigned octave = std::min(msb - 10, kOctaves - 1);
  unsigned shift = msb - 6;  // keep 6 bits below the leading one
  unsigned sub = static_cast<unsigned>((v >> shift) & (kSub - 1));
  return kLinear + octave * kSub + sub;
}

double Histogram::bucket_value(unsigned b) {
  if (b < kLinear) return b;
  unsigned octave = (b - kLinear) / kSub;
  unsigned sub = (b - kLinear) % kSub;
  unsigned msb = octave + 10;
  double lo =
      std::ldexp(1.0, static_cast<int>(msb)) + sub * std::ldexp(1.0, static_cast<int>(msb - 6));
  return lo + std::ldexp(1.0, static_cast<int>(msb - 6)) / 2;  // bucket centre
}

Histogram::Histogram(const Histogram& o)
    : buckets_(o.buckets_ ? std::make_unique<Buckets>(*o.buckets_) : nullptr),
      count_(o.count_),
      sum_(o.sum_),
      min_(o.min_),
      max_(o.max_) {}

Histogram& Histogram::operator=(const Histogram& o) {
  if (this != &o) {
    buckets_ = o.buckets_ ? std::make_unique<Buckets>(*o.buckets_) : nullptr;
    count_ = o.count_;
    sum_ = o.sum_;
    min_ = o.min_;
    max_ = o.max_;
  }
  return *this;
}

void Histogram::add(double ns) {
  if (ns < 0) ns = 0;
  if (count_ == 0) min_ = max_ = ns;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
  sum_ += ns;
  ++count_;
  if (!buckets_) buckets_ = std::make_unique<Buckets>(Buckets{});
  ++(*buckets_)[bucket(static_cast<std::uint64_t>(ns))];
}

double Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  std::uint64_t rank =
      static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (unsigned b = 0; b < buckets_->size(); ++b) {
    seen += (*buckets_)[b];
    if (seen >= rank) return std::clamp(bucket_value(b), min_, max_);
  }
  return max_;
}

void Histogram::merge(const Histogram& o) {
  if (o.count_ == 0) return;
  if (count_ == 0) {
    *this = o;
    return;
  }
  for (unsigned b = 0; b < buckets_->size(); ++b)
    (*buckets_)[b] += (*o.buckets_)[b];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

}  // namespace pciesim::fabric

#include "fabric/link/flow_control.h"

#include <algorithm>
#include <string>

#include "fabric/common/error.h"

namespace pciesim::fabric {

FcClass fc_class(TlpKind kind) {
  switch (kind) {
    case TlpKind::MWr:
    case TlpKind::Msg:
      return FcClass::kPosted;
    case TlpKind::Cpl:
    case TlpKind::CplD:
      return FcClass::kCompletion;
    default:
      return FcClass::kNonPosted;
  }
}

const char* to_string(FcClass c) {
  switch (c) {
    case FcClass::kPosted:
      return "posted";
    case FcClass::kNonPosted:
      return "nonposted";
    case FcClass::kCompletion:
      return "completion";
  }
  return "?";
}

CreditPool::CreditPool(std::uint32_t header_limit, std::uint32_t data_limit)
    : header_limit_(header_limit), data_limit_(data_limit) {
  // Every outstanding TLP holds a header credit, so with a header limit the
  // ring never grows past it.
  std::size_t n = 16;
  while (n < header_limit_)
    n *= 2;
  if (!infinite()) ring_.resize(n);
}

Time CreditPool::acquire_wait(std::uint32_t hdr, std::uint32_t data, Time ready, FcStats* stats) {
  // A receiver must advertise room for the largest TLP it accepts; a TLP
  // larger than the whole pool could never be sent.
  if ((header_limit_ && hdr > header_limit_) || (data_limit_ && data > data_limit_))
    throw ModelError("flow control", "TLP needs " + std::to_string(data) +
                                         " data credits but the receiver advertises only " +
                                         std::to_string(data_limit_));
  Time t = ready;
  while (!fits(hdr, data)) {
    t = std::max(t, ring_[head_].release);
    pop();
  }
  if (t > ready && stats) {
    ++stats->stalls;
    stats->stall_time += t - ready;
  }
  hdr_used_ += hdr;
  data_used_ += data;
  return t;
}

void CreditPool::grow() {
  std::vector<Entry> bigger(ring_.empty() ? 16 : 2 * ring_.size());
  for (std::size_t i = 0; i < count_; ++i)
    bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
  ring_ = std::move(bigger);
  head_ = 0;
}

std::uint32_t CreditPool::in_use(Time t, std::uint32_t Entry::*field) const {
  std::uint32_t n = 0;
  for (std::size_t i = 0; i < count_; ++i) {
    const Entry& e = ring_[(head_ + i) & (ring_.size() - 1)];
    if (e.release > t) n += e.*field;
  }
  return n;
}

std::uint32_t CreditPool::headers_in_use(Time t) const {
  return in_use(t, &Entry::hdr);
}
std::uint32_t CreditPool::data_in_use(Time t) const {
  return in_use(t, &Entry::data);
}

void CreditPool::reset() {
  head_ = 0;
  count_ = 0;
  hdr_used_ = 0;
  data_used_ = 0;
}

TagPool::TagPool(unsigned count) {
  resize(count);
}

void TagPool::resize(unsigned count) {
  release_.assign(count, 0);
  ring_.assign(count, Slot{0, 0});
  for (unsigned i = 0; i < count; ++i)
    ring_[i] = {0, static_cast<std::uint16_t>(i)};
  ring_head_ = 0;
  ring_count_ = count;
  late_.clear();
  held_ = 0;
  max_release_ = 0;
}

TagPool::Grant TagPool::acquire(Time ready) {
  Slot s;
  if (ring_count_ && (late_.empty() || ring_[ring_head_] < late_.front())) {
    s = ring_[ring_head_];
    ring_head_ = ring_head_ + 1 == ring_.size() ? 0 : ring_head_ + 1;
    --ring_count_;
  } else if (!late_.empty()) {
    std::pop_heap(late_.begin(), late_.end(), later);
    s = late_.back();
    late_.pop_back();
  } else {
    throw ModelError("tags", "tag pool has no tags");
  }
  release_[s.second] = kTimeMax;  // held until release_at()
  ++held_;
  return {s.second, std::max(ready, s.first)};
}

void TagPool::release_at(std::uint16_t tag, Time when) {
  if (tag >= release_.size())
    throw ModelError("tags", "tag " + std::to_string(tag) + " out of range");
  if (release_[tag] == kTimeMax) --held_;  // (a tag given back after a reset was not held)
  release_[tag] = when;
  max_release_ = std::max(max_release_, when);
  const Slot s{when, tag};
  if (ring_count_ == 0 || !(s < ring_[(ring_head_ + ring_count_ - 1) % ring_.size()])) {
    ring_[(ring_head_ + ring_count_) % ring_.size()] = s;
    ++ring_count_;
  } else {
    late_.push_back(s);
    std::push_heap(late_.begin(), late_.end(), later);
  }
}

unsigned TagPool::outstanding(Time t) const {
  return static_cast<unsigned>(
      std::count_if(release_.begin(), release_.end(), [t](Time r) { return r > t; }));
}

void TagPool::reset() {
  resize(count());
}

}  // namespace pciesim::fabric

#include "fabric/link/flow_control.h"

#include <algorithm>

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
    : header_limit_(header_limit), data_limit_(data_limit) {}

Time CreditPool::acquire(std::uint32_t hdr, std::uint32_t data, Time ready, FcStats* stats) {
  if (infinite()) return ready;
  // A receiver must advertise room for the largest TLP it accepts; a TLP
  // larger than the whole pool could never be sent.
  if ((header_limit_ && hdr > header_limit_) || (data_limit_ && data > data_limit_))
    throw ModelError("flow control", "TLP needs " + std::to_string(data) +
                                         " data credits but the receiver advertises only " +
                                         std::to_string(data_limit_));
  Time t = ready;
  auto fits = [&] {
    return (!header_limit_ || hdr_used_ + hdr <= header_limit_) &&
           (!data_limit_ || data_used_ + data <= data_limit_);
  };
  auto pop = [&] {
    const Entry& e = pending_.front();
    hdr_used_ -= e.hdr;
    data_used_ -= e.data;
    pending_.pop_front();
  };
  while (!pending_.empty() && pending_.front().release <= t)
    pop();
  while (!fits()) {
    t = std::max(t, pending_.front().release);
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

void CreditPool::commit(std::uint32_t hdr, std::uint32_t data, Time release) {
  if (infinite()) return;
  if (!pending_.empty()) release = std::max(release, pending_.back().release);
  pending_.push_back(Entry{release, hdr, data});
}

std::uint32_t CreditPool::headers_in_use(Time t) const {
  std::uint32_t n = 0;
  for (const Entry& e : pending_)
    if (e.release > t) n += e.hdr;
  return n;
}

void CreditPool::reset() {
  pending_.clear();
  hdr_used_ = 0;
  data_used_ = 0;
}

TagPool::TagPool(unsigned count) {
  resize(count);
}

void TagPool::resize(unsigned count) {
  release_.assign(count, 0);
  free_ = {};
  for (unsigned i = 0; i < count; ++i)
    free_.push({0, static_cast<std::uint16_t>(i)});
}

TagPool::Grant TagPool::acquire(Time ready) {
  if (free_.empty()) throw ModelError("tags", "tag pool has no tags");
  Slot s = free_.top();
  free_.pop();
  release_[s.second] = kTimeMax;  // held until release_at()
  return {s.second, std::max(ready, s.first)};
}

void TagPool::release_at(std::uint16_t tag, Time when) {
  release_[tag] = when;
  free_.push({when, tag});
}

unsigned TagPool::outstanding(Time t) const {
  return static_cast<unsigned>(
      std::count_if(release_.begin(), release_.end(), [t](Time r) { return r > t; }));
}

Time TagPool::all_released() const {
  Time m = 0;
  for (Time r : release_)
    m = std::max(m, r);
  return m;
}

void TagPool::reset() {
  resize(count());
}

}  // namespace pciesim::fabric

// Flow-control credits and tags, accounted analytically in simulated time.
//
// In loosely-timed TLM a transmitter learns, when its call returns, when the
// receiver took each TLP out of its buffer. A credit is therefore a slot
// with a release time: to send at time t, a transmitter needs enough credits
// whose release time is <= t, and otherwise waits until enough are released
// (a stall, counted). Tags work the same way per requester.
#pragma once

#include <algorithm>
#include <cstdint>
#include <queue>
#include <utility>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/tlp.h"

namespace pciesim::fabric {

enum class FcClass : std::uint8_t { kPosted = 0, kNonPosted = 1, kCompletion = 2 };
FcClass fc_class(TlpKind kind);
const char* to_string(FcClass c);

// Credits advertised by a receiver, per class: header credits (one per
// TLP) and data credits (one per 16 bytes, PCIe Base 2.6.1). 0 = infinite.
struct FcCredits {
  std::uint32_t posted_header = 0;
  std::uint32_t posted_data = 0;
  std::uint32_t nonposted_header = 0;
  std::uint32_t nonposted_data = 0;
  std::uint32_t completion_header = 0;
  std::uint32_t completion_data = 0;
};

constexpr std::uint32_t data_credits_for(std::uint32_t payload_bytes) {
  return (payload_bytes + 15) / 16;
}

struct FcStats {
  std::uint64_t stalls = 0;
  Time stall_time = 0;
};

class CreditPool {
 public:
  CreditPool() = default;
  CreditPool(std::uint32_t header_limit, std::uint32_t data_limit);

  bool infinite() const { return header_limit_ == 0 && data_limit_ == 0; }
  std::uint32_t header_limit() const { return header_limit_; }
  std::uint32_t data_limit() const { return data_limit_; }
  // Earliest time >= `ready` at which `hdr`/`data` credits are free; takes
  // them. Must be followed by commit() with the release time.
  Time acquire(std::uint32_t hdr, std::uint32_t data, Time ready, FcStats* stats) {
    if (infinite()) return ready;
    release_until(ready);
    if (fits(hdr, data)) {
      hdr_used_ += hdr;
      data_used_ += data;
      return ready;
    }
    return acquire_wait(hdr, data, ready, stats);
  }
  void commit(std::uint32_t hdr, std::uint32_t data, Time release) {
    if (infinite()) return;
    if (count_)
      release = std::max(release, ring_[(head_ + count_ - 1) & (ring_.size() - 1)].release);
    if (count_ == ring_.size()) grow();
    ring_[(head_ + count_) & (ring_.size() - 1)] = Entry{release, hdr, data};
    ++count_;
  }
  // Credits in use at time `t` (for inspection, tests and sampling).
  std::uint32_t headers_in_use(Time t) const;
  std::uint32_t data_in_use(Time t) const;
  // Forgets all outstanding entries (link reset: the DL re-inits FC).
  void reset();

 private:
  // Credits come back in order: UpdateFC DLLPs carry cumulative counters,
  // so a TLP's credits are visible to the transmitter only after those of
  // every earlier TLP of the class (PCIe Base 3.4.2). A release earlier than
  // its predecessor's is therefore seen at the predecessor's time, and the
  // outstanding entries form a FIFO ordered by release time (a ring).
  struct Entry {
    Time release;
    std::uint32_t hdr;
    std::uint32_t data;
  };
  std::uint32_t in_use(Time t, std::uint32_t Entry::*field) const;
  bool fits(std::uint32_t hdr, std::uint32_t data) const {
    return (!header_limit_ || hdr_used_ + hdr <= header_limit_) &&
           (!data_limit_ || data_used_ + data <= data_limit_);
  }
  void pop() {
    const Entry& e = ring_[head_];
    hdr_used_ -= e.hdr;
    data_used_ -= e.data;
    head_ = (head_ + 1) & (ring_.size() - 1);
    --count_;
  }
  void release_until(Time t) {
    while (count_ && ring_[head_].release <= t)
      pop();
  }
  Time acquire_wait(std::uint32_t hdr, std::uint32_t data, Time ready, FcStats* stats);
  void grow();

  std::uint32_t header_limit_ = 0;
  std::uint32_t data_limit_ = 0;
  std::uint32_t hdr_used_ = 0;
  std::uint32_t data_used_ = 0;
  std::vector<Entry> ring_;  // size a power of two (or empty)
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

// Tags of one requester: each outstanding non-posted request holds one
// until its completion arrives.
//
// The free tags are ordered by (release time, tag number): a request takes
// the one free earliest, the lowest number among equals (deterministic).
// Completions mostly release tags in time order, so the free list is a ring
// sorted by construction (a release at or after the ring's last entry is an
// append); a release that arrives out of order (a completion delayed by an
// IOTLB walk, say) goes to a small heap, and acquire takes the smaller head
// of the two. Acquire and in-order release are O(1), an out-of-order release
// O(log n); the order is exactly the single heap's.
class TagPool {
 public:
  explicit TagPool(unsigned count = 256);
  unsigned count() const { return static_cast<unsigned>(release_.size()); }
  void resize(unsigned count);
  // Earliest time >= ready at which a tag is free; returns it (lowest
  // number among the free ones, for determinism) and its availability time.
  struct Grant {
    std::uint16_t tag;
    Time at;
  };
  Grant acquire(Time ready);
  void release_at(std::uint16_t tag, Time when);
  // When the next tag becomes free (kTimeMax if all are held).
  Time next_free() const {
    if (ring_count_ == 0) return late_.empty() ? kTimeMax : late_.front().first;
    const Time r = ring_[ring_head_].first;
    return late_.empty() ? r : std::min(r, late_.front().first);
  }
  // Tags still held at time t.
  unsigned outstanding(Time t) const;
  // Latest release time among all tags (when everything has completed).
  Time all_released() const { return held_ ? kTimeMax : max_release_; }
  void reset();

 private:
  using Slot = std::pair<Time, std::uint16_t>;  // (release time, tag)
  static bool later(const Slot& a, const Slot& b) { return a > b; }
  std::vector<Time> release_;
  std::vector<Slot> ring_;  // capacity count(): in-order releases, sorted
  std::size_t ring_head_ = 0;
  std::size_t ring_count_ = 0;
  std::vector<Slot> late_;  // min-heap (by later()) of out-of-order releases
  unsigned held_ = 0;
  Time max_release_ = 0;
};

}  // namespace pciesim::fabric

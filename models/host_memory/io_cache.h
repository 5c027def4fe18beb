// The host's last-level cache as DMA sees it (docs/timing.md, "Host
// caches"): which 64-byte lines of host memory are in the LLC, so that a
// DMA access costs the LLC's latency or DRAM's.
//
// The rules are Intel's Data Direct I/O (Intel, "Intel Data Direct I/O
// Technology (Intel DDIO): A Primer", 2012), the mechanism every Xeon since
// Sandy Bridge-EP has:
//  - a DMA read that hits gets the line from the LLC; one that misses reads
//    DRAM and does not allocate (the line stays uncached);
//  - a DMA write updates the line in place when it is cached anywhere in
//    the LLC, and otherwise allocates it in the ways DDIO may use (a share
//    of the LLC, `io_bytes`), evicting the least recently used line there;
//  - what the CPU writes is cached (write-back, write-allocate) in the
//    whole LLC (`bytes`), least recently used first out.
// Both partitions are LRU over lines; the DDIO ways are counted apart from
// the CPU's (an approximation: in hardware they are part of the same sets).
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>

namespace pciesim::models {

class IoCache {
 public:
  static constexpr std::uint64_t kLine = 64;

  IoCache(std::uint64_t bytes, std::uint64_t io_bytes)
      : cpu_cap_(bytes / kLine), io_cap_(io_bytes / kLine) {}

  bool enabled() const { return cpu_cap_ > 0; }
  // True when every line of [addr, addr + len) is cached (a DMA read that
  // hits); touches the lines it finds. No allocation on a miss.
  bool dma_read(std::uint64_t addr, std::uint64_t len) {
    bool all = true;
    for (std::uint64_t l = addr / kLine; l <= (addr + len - 1) / kLine; ++l) {
      auto it = where_.find(l);
      if (it == where_.end()) {
        all = false;
        continue;
      }
      touch(it->second);
    }
    hits_ += all;
    misses_ += !all;
    return all;
  }
  // A read by an agent of the uncore that caches what it reads (the
  // IOMMU's page walks: cacheable reads through the caching agent, like a
  // core's page walks): hit, or allocate in the LLC.
  bool agent_read(std::uint64_t addr, std::uint64_t len) {
    bool all = true;
    for (std::uint64_t l = addr / kLine; l <= (addr + len - 1) / kLine; ++l) {
      auto it = where_.find(l);
      if (it != where_.end()) {
        touch(it->second);
        continue;
      }
      all = false;
      insert(l, false);
    }
    return all;
  }
  // A DMA write: update in place or allocate in the DDIO ways.
  void dma_write(std::uint64_t addr, std::uint64_t len) {
    for (std::uint64_t l = addr / kLine; l <= (addr + len - 1) / kLine; ++l) {
      auto it = where_.find(l);
      if (it != where_.end()) {
        touch(it->second);
        continue;
      }
      insert(l, true);
    }
  }
  // A CPU store (host software): the lines are cached in the LLC.
  void cpu_write(std::uint64_t addr, std::uint64_t len) {
    if (len == 0) return;
    for (std::uint64_t l = addr / kLine; l <= (addr + len - 1) / kLine; ++l) {
      auto it = where_.find(l);
      if (it != where_.end()) {
        if (!it->second.io) {
          touch(it->second);
          continue;
        }
        erase(it);
      }
      insert(l, false);
    }
  }
  // clflush of every line of [addr, addr + len).
  void flush(std::uint64_t addr, std::uint64_t len) {
    if (len == 0) return;
    for (std::uint64_t l = addr / kLine; l <= (addr + len - 1) / kLine; ++l) {
      auto it = where_.find(l);
      if (it != where_.end()) erase(it);
    }
  }
  // wbinvd: everything; the next accesses miss.
  void flush() {
    where_.clear();
    cpu_lru_.clear();
    io_lru_.clear();
  }
  std::uint64_t hits() const { return hits_; }
  std::uint64_t misses() const { return misses_; }
  std::uint64_t resident_lines() const { return where_.size(); }

 private:
  struct Slot {
    bool io;
    std::list<std::uint64_t>::iterator pos;
  };
  using Map = std::unordered_map<std::uint64_t, Slot>;
  std::list<std::uint64_t>& lru(bool io) { return io ? io_lru_ : cpu_lru_; }
  void touch(Slot& s) {
    std::list<std::uint64_t>& l = lru(s.io);
    l.splice(l.begin(), l, s.pos);
  }
  void erase(Map::iterator it) {
    lru(it->second.io).erase(it->second.pos);
    where_.erase(it);
  }
  void insert(std::uint64_t line, bool io) {
    const std::uint64_t cap = io ? io_cap_ : cpu_cap_;
    if (cap == 0) return;
    std::list<std::uint64_t>& l = lru(io);
    if (l.size() >= cap) {
      where_.erase(l.back());
      l.pop_back();
    }
    l.push_front(line);
    where_[line] = Slot{io, l.begin()};
  }

  std::uint64_t cpu_cap_, io_cap_;
  Map where_;
  std::list<std::uint64_t> cpu_lru_, io_lru_;
  std::uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace pciesim::models

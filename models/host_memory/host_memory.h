// Host DRAM: sparse, 64-bit addressable, byte-exact. Bytes never written
// read as zero. It is a TLM target (timed accesses from the root complex)
// and has zero-time accessors for host software and debug reads.
#pragma once

#include <tlm_utils/simple_target_socket.h>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <systemc>
#include <tlm>
#include <unordered_map>
#include <vector>

#include "fabric/common/interval_book.h"
#include "fabric/common/sim_time.h"
#include "fabric/tlp/tlp.h"
#include "models/host_memory/io_cache.h"

namespace pciesim::models {

struct MemoryRange {
  std::uint64_t base = 0;
  std::uint64_t size = 0;
  bool contains(std::uint64_t addr, std::uint64_t len) const {
    return len > 0 && addr >= base && addr - base < size && len <= size - (addr - base);
  }
};

struct HostMemoryParams {
  // Load-to-use latency of the memory controller for a line that misses
  // the caches: ~80-90 ns on DDR4 servers (Intel MLC idle latency).
  fabric::Time latency = 90 * fabric::kNs;
  // Sustained bandwidth available to I/O; 0 = unlimited. Default: 8
  // channels of DDR4-3200 (25.6 GB/s each) = 1638.4 Gb/s.
  double bandwidth_gbps = 1638.4;
  // DRAM ranges; the default is a 16 GiB machine with the usual x86 hole
  // below 4 GiB for MMIO: 2 GiB at 0 and 14 GiB at 4 GiB.
  std::vector<MemoryRange> ranges = {{0, 2ull << 30}, {4ull << 30, 14ull << 30}};
  // The last-level cache as DMA sees it (io_cache.h); llc_bytes 0 = no
  // cache model, every access takes `latency`. The platform presets set
  // these (sim/config/platform.cpp, docs/timing.md).
  std::uint64_t llc_bytes = 0;
  std::uint64_t ddio_bytes = 0;  // the share device writes may allocate (DDIO ways)
  fabric::Time llc_latency = 0;  // a DMA access whose lines are all cached
};

class HostMemory : public sc_core::sc_module {
 public:
  tlm_utils::simple_target_socket<HostMemory> socket;

  HostMemory(sc_core::sc_module_name name, const HostMemoryParams& params);

  const HostMemoryParams& params() const { return params_; }
  bool contains(std::uint64_t addr, std::uint64_t len) const;

  // Zero-time accessors (host software, debug). Bytes outside every range
  // are rejected with UsageError.
  void read(std::uint64_t addr, std::uint8_t* dst, std::size_t len) const;
  void write(std::uint64_t addr, const std::uint8_t* src, std::size_t len);
  std::vector<std::uint8_t> read(std::uint64_t addr, std::size_t len) const;

  // The TLPs of a posted-write burst to [addr, addr + total) in DRAM, each
  // arriving `delay` after its BurstTlp::time: timed one by one as
  // b_transport times single writes (consumed = start, done), data written
  // in one go. False (nothing done) if the range is not all DRAM.
  bool write_burst(std::uint64_t addr, const std::uint8_t* data, std::vector<fabric::BurstTlp>& b,
                   fabric::Time delay, fabric::RoutingId requester = fabric::RoutingId());

  // Temporal decoupling lets a device write host memory ahead of the
  // kernel's time (the data is stored when the write is issued, DESIGN.md
  // 4). Software that polls memory a device writes (a completion ring)
  // watches the range; visible_at() then tells when the last device write
  // into [addr, addr + len) reached DRAM, so the poller can wait until then
  // and never act on data before it physically arrived, whatever the
  // quantum.
  void watch(std::uint64_t addr, std::uint64_t len);
  fabric::Time visible_at(std::uint64_t addr, std::uint64_t len) const;

  // Called for every write stored in DRAM, before the bytes change:
  // `device` for writes that arrived through the socket (DMA, the IOMMU's
  // A/D updates; `requester`: the TLP's requester ID), false for zero-time
  // writes of host software. The dirty page ground truth of live migration
  // watches guest memory with it.
  std::function<void(std::uint64_t addr, std::uint64_t len, bool device,
                     fabric::RoutingId requester)>
      on_write;

  // The latency the last timed access took (the LLC's or DRAM's): the
  // root complex streams a request's lines behind it.
  fabric::Time last_latency() const { return last_latency_; }
  // Host software flushed the caches (wbinvd), or the lines of one range
  // (clflush): DMA then misses there until the CPU or a device writes the
  // lines again.
  void flush_cache() { cache_.flush(); }
  void flush_cache(std::uint64_t addr, std::uint64_t len) { cache_.flush(addr, len); }
  // The latency of a timed read too small to count against the bandwidth
  // (page-table entries).
  // The reader caches what it reads (the IOMMU's walks, io_cache.h).
  fabric::Time small_read_latency(std::uint64_t addr, std::uint64_t len) {
    if (!cache_.enabled() || len == 0) return params_.latency;
    return cache_.agent_read(addr, len) ? params_.llc_latency : params_.latency;
  }
  const IoCache& cache() const { return cache_; }

  std::uint64_t bytes_read() const { return bytes_read_; }
  std::uint64_t bytes_written() const { return bytes_written_; }
  std::size_t resident_pages() const { return pages_.size(); }

 private:
  static constexpr unsigned kPageShift = 12;
  static constexpr std::uint64_t kPageSize = std::uint64_t{1} << kPageShift;
  using Page = std::array<std::uint8_t, kPageSize>;

  void b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  unsigned transport_dbg(tlm::tlm_generic_payload& gp);
  const Page* find_page(std::uint64_t page) const;
  Page& page_for_write(std::uint64_t page);
  void check(std::uint64_t addr, std::size_t len) const;

  HostMemoryParams params_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Page>> pages_;  // lookup only
  mutable std::uint64_t cached_page_ = ~std::uint64_t{0};
  mutable Page* cached_ = nullptr;
  fabric::IntervalBook book_;
  double fs_per_byte_ = 0;
  IoCache cache_;
  fabric::Time last_latency_ = 0;
  // The latency of a device access to [addr, addr + len), updating the cache.
  fabric::Time access_latency(std::uint64_t addr, std::uint64_t len, bool write);
  std::uint64_t bytes_read_ = 0;
  std::uint64_t bytes_written_ = 0;
  bool in_device_write_ = false;
  fabric::RoutingId writer_;  // requester of the device write being stored
  void note_device_write(std::uint64_t addr, std::uint64_t len, fabric::Time at);
  struct Watched {
    std::uint64_t base, len;
    std::vector<fabric::Time> line_time;  // per 64-byte line: last device write reached DRAM
  };
  std::vector<Watched> watched_;
};

}  // namespace pciesim::models

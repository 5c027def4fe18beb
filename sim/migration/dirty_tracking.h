// Dirty-page tracking for live migration (MIGRATION.md 4, docs/migration.md
// "Dirty tracking of guest memory") and its ground truth.
//
// DirtyLedger is the simulator's own record of every write stored into the
// host memory it watches (a VM's RAM): per 4 KiB page, the event number of
// its last DMA write and of its last host (CPU) write. It sees every write
// because it hooks host DRAM itself (models::HostMemory::on_write), so it
// does not depend on any tracker being right.
//
// IommuDirtyTracking is the host's iommufd-like view of the IOMMU's dirty
// bits (IommuDriver::set_dirty_tracking / read_dirty), with the check that
// matters: every page of the range a device wrote since the last clearing
// read of that page must be reported. Missed pages are counted (and their
// IOVAs kept): a missed page is silent guest memory corruption after a
// migration; an over-reported one only costs bandwidth.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace pciesim::models {
class HostMemory;
}

namespace pciesim::sim {

class IommuDriver;
struct IommuDomain;

class DirtyLedger {
 public:
  explicit DirtyLedger(models::HostMemory& memory);
  ~DirtyLedger();
  DirtyLedger(const DirtyLedger&) = delete;
  DirtyLedger& operator=(const DirtyLedger&) = delete;

  // Starts recording writes into [base, base + len) (4 KiB aligned); the
  // first watch hooks host memory. Watching the same range twice is a no-op.
  void watch(const std::string& name, std::uint64_t base, std::uint64_t len);
  bool watched(std::uint64_t hpa) const { return find(hpa) != nullptr; }
  // The current event number: every recorded write takes the next one.
  std::uint64_t now() const { return seq_; }
  // A reader is about to read a tracker: the event number it must account
  // for. Until the next mark, the ledger can still tell the last write of
  // each page at or before it, however often the page is written since.
  std::uint64_t mark() { return marker_ = seq_; }
  static constexpr std::uint64_t kUnknown = ~std::uint64_t{0};
  // Event number of the last DMA write (of any device / of `requester`) of
  // the 4 KiB page holding `hpa` at or before event `at` (0: none;
  // kUnknown: `at` is an older mark and the page was written since).
  std::uint64_t device_write_at(std::uint64_t hpa, std::uint64_t at) const;
  std::uint64_t write_by_at(std::uint64_t hpa, std::uint16_t requester, std::uint64_t at) const;
  std::uint64_t last_host_write(std::uint64_t hpa) const;

  static constexpr std::uint64_t kMaxWatched = 64ull << 30;  // bytes over all regions

 private:
  // The last write of a page, and the last one at or before the mark that
  // was current when it was overwritten.
  struct Seen {
    std::uint64_t last = 0, before_mark = 0;
  };
  struct Region {
    std::string name;
    std::uint64_t base, len;
    std::vector<Seen> device;                              // per page, any device
    std::vector<std::uint64_t> host;                       // per page
    std::unordered_map<std::uint64_t, Seen> by_requester;  // page << 16 | rid
  };
  void note(Seen& s) const {
    if (s.last <= marker_) s.before_mark = s.last;
    s.last = seq_;
  }
  std::uint64_t at_or_before(const Seen& s, std::uint64_t at) const;
  void record(std::uint64_t addr, std::uint64_t len, bool device, std::uint16_t requester);
  const Region* find(std::uint64_t hpa) const;

  models::HostMemory& memory_;
  std::vector<Region> regions_;
  std::uint64_t watched_bytes_ = 0;
  std::uint64_t seq_ = 0;
  std::uint64_t marker_ = 0;
  bool hooked_ = false;
};

// What one read of a tracker reported, checked against the ledger.
struct DirtyReport {
  int status = 0;                         // 0 or a negative errno
  std::vector<std::uint64_t> bitmap;      // bit (addr - iova) / page_size of 64-bit words
  std::uint64_t page_size = 4096;         // of the bitmap
  std::uint64_t units = 0;                // bits in the bitmap
  std::uint64_t dirty_units = 0;          // bits set
  std::uint64_t written_pages = 0;        // 4 KiB pages written since each was last read
  std::uint64_t missed_pages = 0;         // ... of them not reported
  std::vector<std::uint64_t> missed;      // their IOVAs (the first 64)
  std::uint64_t over_reported_units = 0;  // bits set with no page written
  std::uint64_t unchecked_pages = 0;      // mapped outside watched memory (peer BARs)
};

// The ground-truth side of one tracker (a domain's dirty bits, a device's
// DMA log): when it started, when each page was last read with clearing,
// and the totals. check() compares a report with the ledger.
class DirtyWindow {
 public:
  // The ground truth walks a read's range page by page: one read covers
  // at most this much (larger reads are refused with EINVAL).
  static constexpr std::uint64_t kMaxRead = 64ull << 30;
  void start(const DirtyLedger& ledger);
  bool started() const { return started_; }
  void stop() { started_ = false; }
  // `translate`: the host address an IOVA page reaches (false: unmapped);
  // `last_write(hpa, at)`: the ledger's event number of the last write that
  // counts for this tracker at or before `at`. `read_at`: the ledger's mark
  // taken before the tracker's bits were read; `copied_at`: when the caller
  // has the bitmap (and copies the pages).
  void check(const DirtyLedger& ledger, DirtyReport& rep, std::uint64_t iova, std::uint64_t length,
             bool no_clear, std::uint64_t read_at, std::uint64_t copied_at,
             const std::function<bool(std::uint64_t iova, std::uint64_t* hpa)>& translate,
             const std::function<std::uint64_t(std::uint64_t hpa, std::uint64_t at)>& last_write);
  void failed() { ++failed_reads_; }
  nlohmann::ordered_json stats() const;

 private:
  bool started_ = false;
  std::uint64_t started_at_ = 0;
  std::unordered_map<std::uint64_t, std::uint64_t> harvested_;  // iova page -> event number
  std::uint64_t reads_ = 0, failed_reads_ = 0, dirty_units_ = 0, written_pages_ = 0,
                missed_pages_ = 0, over_reported_units_ = 0;
  std::vector<std::uint64_t> missed_;  // first 64 IOVAs over all reads
};

class IommuDirtyTracking {
 public:
  IommuDirtyTracking(IommuDriver& iommu, DirtyLedger& ledger) : iommu_(iommu), ledger_(ledger) {}

  // IOMMU_HWPT_SET_DIRTY_TRACKING: 0 or a negative errno (IommuDriver).
  // Enabling starts the ground truth of every page from now; `memory` is
  // the host memory the domain maps that the ledger must watch (a VM's
  // RAM: base, length).
  int set(IommuDomain& d, bool enable,
          const std::vector<std::pair<std::uint64_t, std::uint64_t>>& memory);

  using Report = DirtyReport;
  // IOMMU_HWPT_GET_DIRTY_BITMAP (with IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR
  // for no_clear), checked against the ledger (DMA writes of any device).
  Report read(IommuDomain& d, std::uint64_t iova, std::uint64_t length, std::uint64_t page_size,
              bool no_clear);

  // dirty_tracking.iommu.<domain>: enabled, reads, pages reported, missed.
  nlohmann::ordered_json stats() const;

 private:
  IommuDriver& iommu_;
  DirtyLedger& ledger_;
  std::map<std::string, DirtyWindow> domains_;
};

// The hypervisor's log of the guest's own stores (KVM_MEM_LOG_DIRTY_PAGES,
// KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG): exact, as KVM's write
// protection of logged memory makes it, so it reads the ledger's record of
// CPU stores into the VM's RAM. Bit (gpa / 4 KiB) of 64-bit words.
class CpuDirtyLog {
 public:
  // Starts logging [0, size) of guest RAM at host address `base`.
  void start(DirtyLedger& ledger, const std::string& vm, std::uint64_t base, std::uint64_t size);
  bool started() const { return started_; }
  void stop() { started_ = false; }
  // The pages stored into since each was last read with clearing (or since
  // start): 0, or -22 (EINVAL) when not started.
  int read(const DirtyLedger& ledger, bool clear, std::vector<std::uint64_t>* bitmap,
           std::uint64_t* pages);
  std::uint64_t reads() const { return reads_; }
  std::uint64_t pages_reported() const { return pages_; }

 private:
  bool started_ = false;
  std::uint64_t base_ = 0, size_ = 0;
  std::vector<std::uint64_t> since_;  // per page: event number of the last clearing read
  std::uint64_t reads_ = 0, pages_ = 0;
};

}  // namespace pciesim::sim

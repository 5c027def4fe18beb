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
  // Event number of the last DMA write / host write of the 4 KiB page
  // holding `hpa` (0: never, or not watched).
  std::uint64_t last_device_write(std::uint64_t hpa) const;
  std::uint64_t last_host_write(std::uint64_t hpa) const;

  static constexpr std::uint64_t kMaxWatched = 64ull << 30;  // bytes over all regions

 private:
  struct Region {
    std::string name;
    std::uint64_t base, len;
    std::vector<std::uint64_t> device, host;  // per page
  };
  void record(std::uint64_t addr, std::uint64_t len, bool device);
  const Region* find(std::uint64_t hpa) const;

  models::HostMemory& memory_;
  std::vector<Region> regions_;
  std::uint64_t watched_bytes_ = 0;
  std::uint64_t seq_ = 0;
  bool hooked_ = false;
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

  struct Report {
    int status = 0;                         // 0 or a negative errno
    std::vector<std::uint64_t> bitmap;      // as IommuDriver::read_dirty
    std::uint64_t units = 0;                // bits in the bitmap
    std::uint64_t dirty_units = 0;          // bits set
    std::uint64_t written_pages = 0;        // 4 KiB pages a device wrote since last read
    std::uint64_t missed_pages = 0;         // ... of them not reported
    std::vector<std::uint64_t> missed;      // their IOVAs (the first 64)
    std::uint64_t over_reported_units = 0;  // bits set with no page written
    std::uint64_t unchecked_pages = 0;      // mapped outside watched memory (peer BARs)
  };
  // IOMMU_HWPT_GET_DIRTY_BITMAP (with IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR
  // for no_clear), checked against the ledger.
  Report read(IommuDomain& d, std::uint64_t iova, std::uint64_t length, std::uint64_t page_size,
              bool no_clear);

  // dirty_tracking.iommu.<domain>: enabled, reads, pages reported, missed.
  nlohmann::ordered_json stats() const;

 private:
  struct DomainState {
    bool enabled = false;
    std::uint64_t enabled_at = 0;                                // ledger event number
    std::unordered_map<std::uint64_t, std::uint64_t> harvested;  // iova page -> event number
    std::uint64_t reads = 0, failed_reads = 0, dirty_units = 0, written_pages = 0, missed_pages = 0,
                  over_reported_units = 0;
    std::vector<std::uint64_t> missed;  // first 64 IOVAs over all reads
  };
  IommuDriver& iommu_;
  DirtyLedger& ledger_;
  std::map<std::string, DomainState> domains_;
};

}  // namespace pciesim::sim

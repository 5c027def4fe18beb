#include "sim/migration/dirty_tracking.h"

#include <algorithm>

#include "fabric/common/error.h"
#include "models/host_memory/host_memory.h"
#include "sim/host/iommu_driver.h"

namespace pciesim::sim {

namespace {
constexpr std::uint64_t k4K = 4096;
constexpr std::size_t kKeepMissed = 64;
}  // namespace

// ------------------------------------------------------------ DirtyLedger

DirtyLedger::DirtyLedger(models::HostMemory& memory) : memory_(memory) {}

DirtyLedger::~DirtyLedger() {
  if (hooked_) memory_.on_write = nullptr;
}

void DirtyLedger::watch(const std::string& name, std::uint64_t base, std::uint64_t len) {
  if (base % k4K || len % k4K || len == 0)
    throw UsageError(name, "dirty ground truth watches 4 KiB-aligned memory");
  for (const Region& r : regions_)
    if (r.base == base && r.len == len) return;
  if (len > kMaxWatched - watched_bytes_)
    throw UsageError(name, "dirty ground truth is limited to " + std::to_string(kMaxWatched >> 30) +
                               " GiB of watched memory");
  Region r;
  r.name = name;
  r.base = base;
  r.len = len;
  r.device.assign(len / k4K, 0);
  r.host.assign(len / k4K, 0);
  regions_.push_back(std::move(r));
  watched_bytes_ += len;
  if (!hooked_) {
    memory_.on_write = [this](std::uint64_t a, std::uint64_t l, bool device) {
      record(a, l, device);
    };
    hooked_ = true;
  }
}

const DirtyLedger::Region* DirtyLedger::find(std::uint64_t hpa) const {
  for (const Region& r : regions_)
    if (hpa >= r.base && hpa - r.base < r.len) return &r;
  return nullptr;
}

void DirtyLedger::record(std::uint64_t addr, std::uint64_t len, bool device) {
  if (len == 0) return;
  ++seq_;
  for (Region& r : regions_) {
    if (addr >= r.base + r.len || addr + len <= r.base) continue;
    const std::uint64_t lo = std::max(addr, r.base), hi = std::min(addr + len, r.base + r.len);
    std::vector<std::uint64_t>& v = device ? r.device : r.host;
    for (std::uint64_t p = (lo - r.base) / k4K; p <= (hi - 1 - r.base) / k4K; ++p)
      v[p] = seq_;
  }
}

std::uint64_t DirtyLedger::last_device_write(std::uint64_t hpa) const {
  const Region* r = find(hpa);
  return r ? r->device[(hpa - r->base) / k4K] : 0;
}

std::uint64_t DirtyLedger::last_host_write(std::uint64_t hpa) const {
  const Region* r = find(hpa);
  return r ? r->host[(hpa - r->base) / k4K] : 0;
}

// ------------------------------------------------------------ IOMMU dirty bits

int IommuDirtyTracking::set(IommuDomain& d, bool enable,
                            const std::vector<std::pair<std::uint64_t, std::uint64_t>>& memory) {
  const int r = iommu_.set_dirty_tracking(d, enable);
  if (r) return r;
  DomainState& st = domains_[d.name];
  if (enable && !st.enabled) {
    for (const auto& [base, len] : memory)
      ledger_.watch(d.name, base, len);
    st.enabled_at = ledger_.now();
    st.harvested.clear();
  }
  st.enabled = enable;
  return 0;
}

IommuDirtyTracking::Report IommuDirtyTracking::read(IommuDomain& d, std::uint64_t iova,
                                                    std::uint64_t length, std::uint64_t page_size,
                                                    bool no_clear) {
  Report rep;
  DomainState& st = domains_[d.name];
  // The bits are read at once; the IOTLB invalidation after the clearing
  // takes simulated time while devices keep writing. Writes until `read_at`
  // must be in the bitmap; those during the invalidation are in memory
  // before the caller copies the pages it was told about, or set D again
  // afterwards — they belong to the next window (`copied_at`).
  const std::uint64_t read_at = ledger_.now();
  rep.status = iommu_.read_dirty(d, iova, length, page_size, no_clear, &rep.bitmap);
  const std::uint64_t copied_at = ledger_.now();
  if (rep.status) {
    ++st.failed_reads;
    return rep;
  }
  ++st.reads;
  rep.units = length / page_size;
  for (std::uint64_t w : rep.bitmap)
    rep.dirty_units += static_cast<std::uint64_t>(__builtin_popcountll(w));
  // Ground truth: the 4 KiB pages of the range a device wrote since the
  // last clearing read of each (or since tracking was enabled).
  std::vector<bool> unit_written(rep.units, false);
  for (std::uint64_t page = iova; page < iova + length; page += k4K) {
    IommuDriver::Leaf leaf;
    if (!iommu_.lookup_leaf(d, page, &leaf)) continue;
    if (!ledger_.watched(leaf.hpa)) {
      ++rep.unchecked_pages;
      continue;
    }
    const auto h = st.harvested.find(page);
    const std::uint64_t since = h == st.harvested.end() ? st.enabled_at : h->second;
    const std::uint64_t last = ledger_.last_device_write(leaf.hpa);
    if (last > since && last <= read_at) {
      const std::uint64_t u = (page - iova) / page_size;
      unit_written[u] = true;
      ++rep.written_pages;
      if (!((rep.bitmap[u / 64] >> (u % 64)) & 1)) {
        ++rep.missed_pages;
        if (rep.missed.size() < kKeepMissed) rep.missed.push_back(page);
        if (st.missed.size() < kKeepMissed) st.missed.push_back(page);
      }
    }
    if (!no_clear) st.harvested[page] = copied_at;
  }
  for (std::uint64_t u = 0; u < rep.units; ++u)
    if (((rep.bitmap[u / 64] >> (u % 64)) & 1) && !unit_written[u]) ++rep.over_reported_units;
  st.dirty_units += rep.dirty_units;
  st.written_pages += rep.written_pages;
  st.missed_pages += rep.missed_pages;
  st.over_reported_units += rep.over_reported_units;
  return rep;
}

nlohmann::ordered_json IommuDirtyTracking::stats() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [name, st] : domains_) {
    nlohmann::ordered_json missed = nlohmann::ordered_json::array();
    for (std::uint64_t m : st.missed)
      missed.push_back(m);
    j[name] = {{"enabled", st.enabled},
               {"reads", st.reads},
               {"failed_reads", st.failed_reads},
               {"dirty_units", st.dirty_units},
               {"written_pages", st.written_pages},
               {"missed_pages", st.missed_pages},
               {"missed_iovas", missed},
               {"over_reported_units", st.over_reported_units}};
  }
  return j;
}

}  // namespace pciesim::sim

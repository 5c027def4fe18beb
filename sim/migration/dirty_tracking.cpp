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
  r.device.assign(len / k4K, Seen{});
  r.host.assign(len / k4K, 0);
  regions_.push_back(std::move(r));
  watched_bytes_ += len;
  if (!hooked_) {
    memory_.on_write = [this](std::uint64_t a, std::uint64_t l, bool device,
                              fabric::RoutingId rid) { record(a, l, device, rid.value()); };
    hooked_ = true;
  }
}

const DirtyLedger::Region* DirtyLedger::find(std::uint64_t hpa) const {
  for (const Region& r : regions_)
    if (hpa >= r.base && hpa - r.base < r.len) return &r;
  return nullptr;
}

void DirtyLedger::record(std::uint64_t addr, std::uint64_t len, bool device,
                         std::uint16_t requester) {
  if (len == 0) return;
  ++seq_;
  for (Region& r : regions_) {
    if (addr >= r.base + r.len || addr + len <= r.base) continue;
    const std::uint64_t lo = std::max(addr, r.base), hi = std::min(addr + len, r.base + r.len);
    for (std::uint64_t p = (lo - r.base) / k4K; p <= (hi - 1 - r.base) / k4K; ++p) {
      if (!device) {
        r.host[p] = seq_;
        continue;
      }
      note(r.device[p]);
      note(r.by_requester[p << 16 | requester]);
    }
  }
}

std::uint64_t DirtyLedger::at_or_before(const Seen& s, std::uint64_t at) const {
  if (s.last <= at) return s.last;
  // Overwritten after `at`: what the latest mark kept is exact for it.
  // An older mark (another tracker was read since): not known any more.
  return at == marker_ ? s.before_mark : kUnknown;
}

std::uint64_t DirtyLedger::device_write_at(std::uint64_t hpa, std::uint64_t at) const {
  const Region* r = find(hpa);
  return r ? at_or_before(r->device[(hpa - r->base) / k4K], at) : 0;
}

std::uint64_t DirtyLedger::write_by_at(std::uint64_t hpa, std::uint16_t requester,
                                       std::uint64_t at) const {
  const Region* r = find(hpa);
  if (!r) return 0;
  auto it = r->by_requester.find(((hpa - r->base) / k4K) << 16 | requester);
  return it == r->by_requester.end() ? 0 : at_or_before(it->second, at);
}

std::uint64_t DirtyLedger::last_host_write(std::uint64_t hpa) const {
  const Region* r = find(hpa);
  return r ? r->host[(hpa - r->base) / k4K] : 0;
}

// ------------------------------------------------------------ DirtyWindow

void DirtyWindow::start(const DirtyLedger& ledger) {
  if (started_) return;
  started_ = true;
  started_at_ = ledger.now();
  harvested_.clear();
}

void DirtyWindow::check(
    const DirtyLedger& ledger, DirtyReport& rep, std::uint64_t iova, std::uint64_t length,
    bool no_clear, std::uint64_t read_at, std::uint64_t copied_at,
    const std::function<bool(std::uint64_t, std::uint64_t*)>& translate,
    const std::function<std::uint64_t(std::uint64_t, std::uint64_t)>& last_write) {
  ++reads_;
  const std::uint64_t page_size = rep.page_size;
  rep.units = length / page_size;
  rep.dirty_units = 0;
  for (std::uint64_t w : rep.bitmap)
    rep.dirty_units += static_cast<std::uint64_t>(__builtin_popcountll(w));
  // Ground truth: the 4 KiB pages of the range written since the last
  // clearing read of each (or since the tracker started), up to read_at.
  std::vector<bool> unit_written(rep.units, false);
  for (std::uint64_t page = iova; page < iova + length; page += k4K) {
    std::uint64_t hpa;
    if (!translate(page, &hpa)) continue;
    if (!ledger.watched(hpa)) {
      ++rep.unchecked_pages;
      continue;
    }
    const auto h = harvested_.find(page);
    const std::uint64_t since = h == harvested_.end() ? started_at_ : h->second;
    const std::uint64_t last = last_write(hpa, read_at);
    if (last != DirtyLedger::kUnknown && last > since) {
      const std::uint64_t u = (page - iova) / page_size;
      unit_written[u] = true;
      ++rep.written_pages;
      if (!((rep.bitmap[u / 64] >> (u % 64)) & 1)) {
        ++rep.missed_pages;
        if (rep.missed.size() < kKeepMissed) rep.missed.push_back(page);
        if (missed_.size() < kKeepMissed) missed_.push_back(page);
      }
    }
    if (!no_clear) harvested_[page] = copied_at;
  }
  for (std::uint64_t u = 0; u < rep.units; ++u)
    if (((rep.bitmap[u / 64] >> (u % 64)) & 1) && !unit_written[u]) ++rep.over_reported_units;
  dirty_units_ += rep.dirty_units;
  written_pages_ += rep.written_pages;
  missed_pages_ += rep.missed_pages;
  over_reported_units_ += rep.over_reported_units;
}

nlohmann::ordered_json DirtyWindow::stats() const {
  nlohmann::ordered_json missed = nlohmann::ordered_json::array();
  for (std::uint64_t m : missed_)
    missed.push_back(m);
  return {{"enabled", started_},
          {"reads", reads_},
          {"failed_reads", failed_reads_},
          {"dirty_units", dirty_units_},
          {"written_pages", written_pages_},
          {"missed_pages", missed_pages_},
          {"missed_iovas", missed},
          {"over_reported_units", over_reported_units_}};
}

// ------------------------------------------------------------ IOMMU dirty bits

int IommuDirtyTracking::set(IommuDomain& d, bool enable,
                            const std::vector<std::pair<std::uint64_t, std::uint64_t>>& memory) {
  const int r = iommu_.set_dirty_tracking(d, enable);
  if (r) return r;
  DirtyWindow& w = domains_[d.name];
  if (enable) {
    for (const auto& [base, len] : memory)
      ledger_.watch(d.name, base, len);
    w.start(ledger_);
  } else {
    w.stop();
  }
  return 0;
}

IommuDirtyTracking::Report IommuDirtyTracking::read(IommuDomain& d, std::uint64_t iova,
                                                    std::uint64_t length, std::uint64_t page_size,
                                                    bool no_clear) {
  Report rep;
  rep.page_size = page_size;
  DirtyWindow& w = domains_[d.name];
  // The bits are read at once; the IOTLB invalidation after the clearing
  // takes simulated time while devices keep writing. Writes until `read_at`
  // must be in the bitmap; those during the invalidation are in memory
  // before the caller copies the pages it was told about, or set D again
  // afterwards: they belong to the next window (`copied_at`).
  if (length > DirtyWindow::kMaxRead) {
    rep.status = -22;
    w.failed();
    return rep;
  }
  const std::uint64_t read_at = ledger_.mark();
  rep.status = iommu_.read_dirty(d, iova, length, page_size, no_clear, &rep.bitmap);
  const std::uint64_t copied_at = ledger_.now();
  if (rep.status) {
    w.failed();
    return rep;
  }
  w.check(
      ledger_, rep, iova, length, no_clear, read_at, copied_at,
      [&](std::uint64_t v, std::uint64_t* hpa) {
        IommuDriver::Leaf leaf;
        if (!iommu_.lookup_leaf(d, v, &leaf)) return false;
        *hpa = leaf.hpa;
        return true;
      },
      [&](std::uint64_t hpa, std::uint64_t at) { return ledger_.device_write_at(hpa, at); });
  return rep;
}

nlohmann::ordered_json IommuDirtyTracking::stats() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [name, w] : domains_)
    j[name] = w.stats();
  return j;
}

// ------------------------------------------------------------ CPU dirty log

void CpuDirtyLog::start(DirtyLedger& ledger, const std::string& vm, std::uint64_t base,
                        std::uint64_t size) {
  if (size > DirtyWindow::kMaxRead)
    throw UsageError(vm, "the CPU dirty log covers at most 64 GiB of guest RAM");
  ledger.watch(vm, base, size);
  base_ = base;
  size_ = size;
  since_.assign(size / k4K, ledger.now());
  started_ = true;
}

int CpuDirtyLog::read(const DirtyLedger& ledger, bool clear, std::vector<std::uint64_t>* bitmap,
                      std::uint64_t* pages) {
  if (!started_) return -22;
  const std::uint64_t n = size_ / k4K;
  bitmap->assign((n + 63) / 64, 0);
  *pages = 0;
  const std::uint64_t now = ledger.now();
  for (std::uint64_t p = 0; p < n; ++p) {
    if (ledger.last_host_write(base_ + p * k4K) <= since_[p]) continue;
    (*bitmap)[p / 64] |= std::uint64_t{1} << (p % 64);
    ++*pages;
    if (clear) since_[p] = now;
  }
  ++reads_;
  pages_ += *pages;
  return 0;
}

}  // namespace pciesim::sim

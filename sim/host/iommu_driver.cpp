#include "sim/host/iommu_driver.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "fabric/common/error.h"
#include "sim/host/dma_driver.h"
#include "sim/host/host_cpu.h"
#include "sim/trace/trace_span.h"

namespace pciesim::sim {

using namespace fabric;
namespace io = models::iommu;

namespace {
constexpr int kEinval = -22, kEexist = -17, kEnoent = -2, kEnomem = -12, kEopnotsupp = -95;
// One map call writes at most this many leaf entries (16 GiB of 4 KiB
// pages): bigger requests are refused instead of exhausting memory.
constexpr std::size_t kMaxLeavesPerMap = std::size_t{1} << 22;
constexpr std::uint64_t k4K = 4096, k2M = 2ull << 20, k1G = 1ull << 30;
}  // namespace

const char* IommuDomain::type_name(Type t) {
  switch (t) {
    case kDma:
      return "dma";
    case kIdentity:
      return "identity";
    case kBlocked:
      return "blocked";
  }
  return "?";
}

IommuDriver::IommuDriver(HostCpu& cpu, HostAllocator& alloc, const IommuSpec& spec)
    : cpu_(cpu), alloc_(alloc), spec_(spec), base_(spec.params.base) {}

// ------------------------------------------------------------ memory and registers

std::uint64_t IommuDriver::get64(std::uint64_t addr) const {
  std::uint8_t b[8];
  cpu_.memory().read(addr, b, 8);
  std::uint64_t v;
  std::memcpy(&v, b, 8);
  return v;
}

void IommuDriver::set64(std::uint64_t addr, std::uint64_t v) {
  // Table updates are ordinary stores to DRAM; the IOMMU reads DRAM
  // coherently (VT-d ECAP.C), so no cache flush is modelled.
  std::uint8_t b[8];
  std::memcpy(b, &v, 8);
  cpu_.memory().write(addr, b, 8);
}

std::uint64_t IommuDriver::new_table() {
  std::uint64_t p = alloc_.alloc(k4K, k4K);
  static const std::uint8_t zero[4096] = {};
  cpu_.memory().write(p, zero, sizeof zero);
  ++stats_.table_pages;
  return p;
}

void IommuDriver::write_reg64(std::uint32_t reg, std::uint64_t v) {
  cpu_.mmio_write(base_ + reg, 8, v);
}

void IommuDriver::wait_clear(std::uint32_t reg, std::uint64_t bit) {
  // Poll like intel-iommu's IOMMU_WAIT_OP: back-to-back register reads.
  const Time t0 = HostCpu::now();
  for (int i = 0; i < 1000000; ++i)
    if (!(cpu_.mmio_read(base_ + reg, 8) & bit)) {
      stats_.flush_wait += HostCpu::now() - t0;
      return;
    }
  throw ModelError("iommu", "invalidation did not complete");
}

void IommuDriver::init() {
  root_table_ = new_table();
  write_reg64(io::kRtaddr, root_table_);
  cpu_.mmio_write(base_ + io::kGcmd, 4, io::kGcmdSrtp);
  cpu_.mmio_write(base_ + io::kGcmd, 4, io::kGcmdTe);
  if (!(cpu_.mmio_read(base_ + io::kGsts, 4) & io::kGstsTes))
    throw ModelError("iommu", "translation did not become enabled");
  flush_context(io::kGlobal);
  flush_iotlb(io::kGlobal);
}

// ------------------------------------------------------------ domains

IommuDomain& IommuDriver::create_domain(const std::string& name, IommuDomain::Type type) {
  if (domains_.count(name)) throw UsageError("iommu", "a domain named '" + name + "' exists");
  if (next_id_ == 0) throw UsageError("iommu", "out of domain IDs");
  auto d = std::make_unique<IommuDomain>();
  d->name = name;
  d->type = type;
  d->id = next_id_++;
  if (type == IommuDomain::kDma) d->root = new_table();
  IommuDomain& ref = *d;
  domains_[name] = std::move(d);
  return ref;
}

IommuDomain* IommuDriver::domain(const std::string& name) {
  auto it = domains_.find(name);
  return it == domains_.end() ? nullptr : it->second.get();
}

IommuDomain* IommuDriver::domain_of(const PciDev& dev) {
  auto it = attached_.find(dev.rid.value());
  return it == attached_.end() ? nullptr : it->second;
}

std::uint64_t IommuDriver::context_entry(RoutingId rid) {
  const std::uint64_t re = root_table_ + std::uint64_t{rid.bus()} * io::kRootEntryBytes;
  std::uint64_t e = get64(re);
  if (!(e & 1)) {
    e = new_table() | 1;
    set64(re, e);
  }
  return (e & io::kAddrMask12) + std::uint64_t{rid.devfn()} * io::kContextEntryBytes;
}

void IommuDriver::attach(PciDev& dev, IommuDomain& d) {
  const std::uint64_t ce = context_entry(dev.rid);
  if (IommuDomain* old = domain_of(dev)) {
    if (old == &d) return;
    // Tear the old entry down first (VT-d: clear present, then invalidate
    // the context cache for the device and the IOTLB for the old domain).
    set64(ce, 0);
    flush_context(io::kSelective, old->id, dev.rid);
    flush_iotlb(io::kDomain, old->id);
    old->devices.erase(&dev);
  }
  attached_[dev.rid.value()] = &d;
  d.devices.insert(&dev);
  if (d.type == IommuDomain::kBlocked) {
    set64(ce, 0);  // not present: every request faults
    return;
  }
  const std::uint64_t tt = d.type == IommuDomain::kIdentity ? io::kTtPassThrough : io::kTtTranslate;
  set64(ce + 8, (std::uint64_t{d.id} << io::kCtxDidShift) | (levels() == 3 ? 1u : 2u) |
                    (d.dirty_tracking ? io::kCtxAdEnable : 0));
  set64(ce + 16, 0);
  set64(ce, d.root | (tt << io::kCtxTtShift) | io::kCtxPresent);
  // Not-present entries are not cached (caching mode 0): no flush needed.
}

void IommuDriver::detach(PciDev& dev) {
  IommuDomain* d = domain_of(dev);
  if (!d) return;
  set64(context_entry(dev.rid), 0);
  flush_context(io::kSelective, d->id, dev.rid);
  flush_iotlb(io::kDomain, d->id);
  d->devices.erase(&dev);
  attached_.erase(dev.rid.value());
}

// ------------------------------------------------------------ map / unmap

int IommuDriver::map(IommuDomain& d, std::uint64_t iova, std::uint64_t hpa, std::uint64_t len,
                     bool read, bool write) {
  if (d.type != IommuDomain::kDma) return kEinval;
  if (len == 0 || iova % k4K || hpa % k4K || len % k4K) return kEinval;
  const unsigned width = 12 + 9 * levels();
  if ((iova + len - 1) >> width || iova + len < iova) return kEinval;
  const bool large = spec_.host_large_pages && spec_.params.large_pages;
  // Plan the leaves first, checking that every slot is free.
  struct Leaf {
    std::uint64_t iova, hpa;
    unsigned shift;
  };
  std::vector<Leaf> plan;
  for (std::uint64_t off = 0; off < len;) {
    const std::uint64_t v = iova + off, p = hpa + off, left = len - off;
    unsigned shift = 12;
    if (large && v % k1G == 0 && p % k1G == 0 && left >= k1G)
      shift = 30;
    else if (large && v % k2M == 0 && p % k2M == 0 && left >= k2M)
      shift = 21;
    // A large slot that already holds a table (from earlier small
    // mappings) takes small pages instead.
    while (shift > 12 && !slot_free(d, v, shift))
      shift -= 9;
    if (!slot_free(d, v, shift)) return kEexist;
    plan.push_back({v, p, shift});
    if (plan.size() > kMaxLeavesPerMap) return kEnomem;
    off += std::uint64_t{1} << shift;
  }
  for (const Leaf& l : plan) {
    std::uint64_t table = d.root;
    for (unsigned level = levels(); level >= 1; --level) {
      const unsigned s = 12 + 9 * (level - 1);
      const std::uint64_t at = table + 8 * ((l.iova >> s) & 0x1ff);
      std::uint64_t e = get64(at);
      if (s == l.shift) {
        if (e & (io::kPteRead | io::kPteWrite)) return kEexist;  // a table or page is there
        std::uint64_t leaf = l.hpa;
        if (read) leaf |= io::kPteRead;
        if (write) leaf |= io::kPteWrite;
        if (level > 1) leaf |= io::kPtePs;
        set64(at, leaf);
        (l.shift == 12 ? stats_.pages_4k : l.shift == 21 ? stats_.pages_2m : stats_.pages_1g)++;
        break;
      }
      if (!(e & (io::kPteRead | io::kPteWrite))) {
        e = new_table() | io::kPteRead | io::kPteWrite;
        set64(at, e);
      } else if (e & io::kPtePs) {
        return kEexist;
      }
      table = e & io::kPteAddrMask;
    }
  }
  d.mapped_bytes += len;
  ++stats_.maps;
  return 0;
}

bool IommuDriver::slot_free(const IommuDomain& d, std::uint64_t iova, unsigned shift) const {
  // Free: no leaf above the slot, and the slot holds neither a page nor a
  // table (a table below it could hold mappings).
  std::uint64_t table = d.root;
  for (unsigned level = levels(); level >= 1; --level) {
    const unsigned s = 12 + 9 * (level - 1);
    const std::uint64_t e = get64(table + 8 * ((iova >> s) & 0x1ff));
    const bool present = e & (io::kPteRead | io::kPteWrite);
    if (s == shift) return !present;
    if (!present) return true;
    if (e & io::kPtePs) return false;
    table = e & io::kPteAddrMask;
  }
  return true;
}

bool IommuDriver::lookup(const IommuDomain& d, std::uint64_t iova, std::uint64_t* hpa) const {
  if (d.type != IommuDomain::kDma) return false;
  std::uint64_t table = d.root;
  for (unsigned level = levels(); level >= 1; --level) {
    const unsigned s = 12 + 9 * (level - 1);
    const std::uint64_t e = get64(table + 8 * ((iova >> s) & 0x1ff));
    if (!(e & (io::kPteRead | io::kPteWrite))) return false;
    if (level == 1 || (e & io::kPtePs)) {
      *hpa = (e & io::kPteAddrMask & ~((std::uint64_t{1} << s) - 1)) |
             (iova & ((std::uint64_t{1} << s) - 1));
      return true;
    }
    table = e & io::kPteAddrMask;
  }
  return false;
}

bool IommuDriver::lookup_leaf(const IommuDomain& d, std::uint64_t iova, Leaf* out) const {
  if (d.type != IommuDomain::kDma) return false;
  std::uint64_t table = d.root;
  bool write = true;
  for (unsigned level = levels(); level >= 1; --level) {
    const unsigned s = 12 + 9 * (level - 1);
    const std::uint64_t e = get64(table + 8 * ((iova >> s) & 0x1ff));
    if (!(e & (io::kPteRead | io::kPteWrite))) return false;
    write = write && (e & io::kPteWrite);
    if (level == 1 || (e & io::kPtePs)) {
      out->hpa = (e & io::kPteAddrMask & ~((std::uint64_t{1} << s) - 1)) |
                 (iova & ((std::uint64_t{1} << s) - 1));
      out->shift = s;
      out->write = write;
      return true;
    }
    table = e & io::kPteAddrMask;
  }
  return false;
}

int IommuDriver::set_dirty_tracking(IommuDomain& d, bool enable) {
  if (d.type != IommuDomain::kDma) return kEinval;
  if (!spec_.params.access_dirty) return kEopnotsupp;
  if (d.dirty_tracking == enable) return 0;
  d.dirty_tracking = enable;
  for (PciDev* dev : d.devices) {
    const std::uint64_t ce = context_entry(dev->rid);
    std::uint64_t q1 = get64(ce + 8);
    q1 = enable ? (q1 | io::kCtxAdEnable) : (q1 & ~io::kCtxAdEnable);
    set64(ce + 8, q1);
    flush_context(io::kSelective, d.id, dev->rid);
  }
  // Cached translations were made under the old setting.
  flush_iotlb(io::kDomain, d.id);
  return 0;
}

int IommuDriver::read_dirty(IommuDomain& d, std::uint64_t iova, std::uint64_t length,
                            std::uint64_t page_size, bool no_clear,
                            std::vector<std::uint64_t>* bitmap) {
  if (d.type != IommuDomain::kDma || !d.dirty_tracking) return kEinval;
  if (page_size < k4K || (page_size & (page_size - 1))) return kEinval;
  if (length == 0 || iova % page_size || length % page_size || iova + length < iova) return kEinval;
  const std::uint64_t units = length / page_size;
  if (units > (std::uint64_t{1} << 28)) return kEinval;
  bitmap->assign((units + 63) / 64, 0);
  ++d.dirty_reads;
  std::uint64_t cleared = 0;
  for_each_leaf(d, iova, length,
                [&](std::uint64_t at, std::uint64_t e, std::uint64_t lo, std::uint64_t size) {
                  if (!(e & io::kPteDirty)) return true;
                  const std::uint64_t hi = lo + size;
                  const std::uint64_t from = std::max(lo, iova), to = std::min(hi, iova + length);
                  for (std::uint64_t u = (from - iova) / page_size;
                       u <= (to - 1 - iova) / page_size; ++u)
                    (*bitmap)[u / 64] |= std::uint64_t{1} << (u % 64);
                  // A large page reaching beyond the range keeps its D bit:
                  // clearing it would lose the dirt of the part not reported.
                  if (!no_clear && lo >= iova && hi <= iova + length) {
                    set64(at, e & ~io::kPteDirty);
                    ++cleared;
                  }
                  return true;
                });
  d.dirty_ptes_cleared += cleared;
  // The IOTLB may hold entries whose walk set D: a write through them would
  // not set it again (intel_iommu_read_and_clear_dirty flushes the range).
  if (cleared) flush_iotlb(io::kSelective, d.id, iova, length);
  return 0;
}

bool IommuDriver::for_each_leaf(
    const IommuDomain& d, std::uint64_t iova, std::uint64_t len,
    const std::function<bool(std::uint64_t at, std::uint64_t pte, std::uint64_t base,
                             std::uint64_t size)>& fn) const {
  for (std::uint64_t off = 0; off < len;) {
    const std::uint64_t v = iova + off;
    std::uint64_t table = d.root;
    std::uint64_t step = k4K;
    for (unsigned level = levels(); level >= 1; --level) {
      const unsigned s = 12 + 9 * (level - 1);
      const std::uint64_t span = std::uint64_t{1} << s;
      const std::uint64_t at = table + 8 * ((v >> s) & 0x1ff);
      const std::uint64_t e = get64(at);
      if (!(e & (io::kPteRead | io::kPteWrite))) {
        step = span - (v & (span - 1));  // nothing mapped in this slot
        break;
      }
      if (level == 1 || (e & io::kPtePs)) {
        const std::uint64_t base = v & ~(span - 1);
        if (!fn(at, e, base, span)) return false;
        step = base + span - v;
        break;
      }
      table = e & io::kPteAddrMask;
    }
    off += std::min(step, len - off);
  }
  return true;
}

int IommuDriver::unmap(IommuDomain& d, std::uint64_t iova, std::uint64_t len, bool flush) {
  if (d.type != IommuDomain::kDma) return kEinval;
  if (len == 0 || iova % k4K || len % k4K) return kEinval;
  std::uint64_t cleared = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> leaves;  // (entry address, page size)
  const bool whole = for_each_leaf(
      d, iova, len, [&](std::uint64_t at, std::uint64_t, std::uint64_t base, std::uint64_t size) {
        // Refused: it would split a large page.
        if (base < iova || base + size > iova + len) return false;
        leaves.push_back({at, size});
        return true;
      });
  if (!whole) return kEinval;
  if (leaves.empty()) return kEnoent;
  for (const auto& [at, page] : leaves) {
    set64(at, 0);
    cleared += page;
  }
  d.mapped_bytes -= std::min(d.mapped_bytes, cleared);
  ++stats_.unmaps;
  if (flush) flush_iotlb(io::kSelective, d.id, iova, len);
  return 0;
}

// ------------------------------------------------------------ invalidation

void IommuDriver::flush_iotlb(io::Granularity g, std::uint16_t did, std::uint64_t iova,
                              std::uint64_t len) {
  if (g == io::kSelective) {
    // Page-selective: 2^AM pages aligned on their size, covering the range
    // (intel-iommu falls back to domain-selective beyond its mask limit).
    const std::uint64_t first = iova >> 12,
                        last = (iova + std::max<std::uint64_t>(len, 1) - 1) >> 12;
    unsigned am = 0;
    while ((first >> am) != (last >> am))
      ++am;
    if (am > 18) {
      g = io::kDomain;
    } else {
      write_reg64(io::kIva, ((first >> am) << (12 + am)) | am);
    }
  }
  ++stats_.iotlb_flushes;
  trace_host_instant("host", "iommu", [&] {
    static const char* const kG[] = {"global", "global", "domain", "page"};
    return std::make_pair(std::string("IOTLB invalidate (") + kG[g & 3] + ")",
                          "did=" + std::to_string(did) + ", iova=" + std::to_string(iova) +
                              ", length=" + std::to_string(len));
  });
  write_reg64(io::kIotlb, io::kIotlbIvt | (std::uint64_t{g} << io::kIotlbIirgShift) |
                              (std::uint64_t{did} << io::kIotlbDidShift));
  wait_clear(io::kIotlb, io::kIotlbIvt);
}

void IommuDriver::flush_context(io::Granularity g, std::uint16_t did, RoutingId sid) {
  ++stats_.context_flushes;
  trace_host_instant("host", "iommu", [&] {
    return std::make_pair(std::string("context-cache invalidate"),
                          "did=" + std::to_string(did) + ", sid=" + sid.str());
  });
  write_reg64(io::kCcmd, io::kCcmdIcc | (std::uint64_t{g} << io::kCcmdCirgShift) |
                             (std::uint64_t{sid.value()} << io::kCcmdSidShift) | did);
  wait_clear(io::kCcmd, io::kCcmdIcc);
}

// ------------------------------------------------------------ spaces

DmaSpace::Buffer PhysicalSpace::alloc(std::uint64_t bytes) {
  std::uint64_t a = alloc_.alloc(bytes);
  return {a, a};
}

DmaSpace::Buffer DomainSpace::alloc(std::uint64_t bytes) {
  const std::uint64_t size = (bytes + k4K - 1) & ~(k4K - 1);
  std::uint64_t a = alloc_.alloc(size);
  int r = iommu_.map(domain_, a, a, size, true, true);
  if (r)
    throw ModelError("iommu", "mapping a DMA buffer in domain '" + domain_.name + "' failed (" +
                                  std::to_string(r) + ")");
  return {a, a};
}

std::uint64_t DomainSpace::map_peer(std::uint64_t hpa, std::uint64_t len) {
  const std::uint64_t base = hpa & ~(k4K - 1);
  const std::uint64_t size = ((hpa + len + k4K - 1) & ~(k4K - 1)) - base;
  std::uint64_t existing;
  if (!iommu_.lookup(domain_, base, &existing)) {
    int r = iommu_.map(domain_, base, base, size, true, true);
    if (r)
      throw ModelError("iommu", "mapping a peer BAR in domain '" + domain_.name + "' failed (" +
                                    std::to_string(r) + ")");
  }
  return hpa;
}

Vm::Vm(const VmSpec& spec, std::uint64_t host_base, IommuDriver& iommu, IommuDomain& d)
    : spec_(spec), host_base_(host_base), iommu_(iommu), domain_(d) {
  int r = iommu_.map(domain_, 0, host_base_, spec_.memory, true, true);
  if (r)
    throw ModelError("iommu",
                     "mapping VM " + spec_.name + "'s memory failed (" + std::to_string(r) + ")");
}

DmaSpace::Buffer Vm::alloc(std::uint64_t bytes) {
  const std::uint64_t size = (bytes + k4K - 1) & ~(k4K - 1);
  if (next_ + size > spec_.memory)
    throw UsageError(spec_.name, "out of guest memory for DMA buffers (" + std::to_string(size) +
                                     " more bytes requested)");
  const std::uint64_t gpa = next_;
  next_ += size;
  return {host_base_ + gpa, gpa};
}

std::uint64_t Vm::map_peer(std::uint64_t hpa, std::uint64_t len) {
  if (hpa < spec_.memory)
    throw UsageError(spec_.name, "a peer BAR at a guest RAM address cannot be mapped");
  const std::uint64_t base = hpa & ~(k4K - 1);
  const std::uint64_t size = ((hpa + len + k4K - 1) & ~(k4K - 1)) - base;
  if (peers_.emplace(base, size).second) {
    int r = iommu_.map(domain_, base, base, size, true, true);
    if (r && r != kEexist)
      throw ModelError("iommu", "mapping a peer BAR into VM " + spec_.name + " failed (" +
                                    std::to_string(r) + ")");
  }
  return hpa;
}

void Vm::adopt_layout(const Vm& from,
                      const std::function<std::uint64_t(std::uint64_t gpa)>& peer_hpa) {
  next_ = from.next_;
  for (const auto& [gpa, size] : from.peers_) {
    if (peers_.count(gpa)) continue;
    const std::uint64_t hpa = peer_hpa(gpa);
    int r = iommu_.map(domain_, gpa, hpa, size, true, true);
    if (r && r != kEexist)
      throw ModelError("iommu", "mapping a peer BAR into VM " + spec_.name + " failed (" +
                                    std::to_string(r) + ")");
    peers_.emplace(gpa, size);
  }
}

std::uint64_t Vm::to_host(std::uint64_t gpa, std::uint64_t len) const {
  if (gpa >= spec_.memory || len > spec_.memory - gpa)
    throw UsageError(spec_.name, "guest-physical range is outside the VM's memory");
  return host_base_ + gpa;
}

}  // namespace pciesim::sim

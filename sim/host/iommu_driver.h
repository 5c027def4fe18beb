// The host's IOMMU driver and DMA address spaces, Linux-like: domains
// (translated, identity/pass-through, blocked) with I/O page tables the
// host writes in its memory, attaching a function to a domain (its context
// entry), map/unmap with the page sizes alignment allows, and register-
// based invalidation that the host waits for. A VM is memory plus a domain
// that maps its guest-physical space; assigning a function to it attaches
// the function to that domain.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <systemc>

#include "models/iommu/iommu_regs.h"
#include "sim/config/system_config.h"
#include "sim/host/pci_core.h"

namespace pciesim::sim {

class HostCpu;
class HostAllocator;

struct IommuDomain {
  enum Type { kDma, kIdentity, kBlocked };
  std::string name;
  Type type = kDma;
  std::uint16_t id = 0;
  std::uint64_t root = 0;  // top-level page table (kDma)
  std::set<PciDev*, PciDevLess> devices;
  std::uint64_t mapped_bytes = 0;
  bool dirty_tracking = false;  // set_dirty_tracking
  std::uint64_t dirty_reads = 0, dirty_ptes_cleared = 0;
  static const char* type_name(Type t);
};

struct IommuDriverStats {
  std::uint64_t maps = 0;
  std::uint64_t unmaps = 0;
  std::uint64_t pages_4k = 0, pages_2m = 0, pages_1g = 0;  // leaf entries written
  std::uint64_t table_pages = 0;                           // page-table pages allocated
  std::uint64_t iotlb_flushes = 0;
  std::uint64_t context_flushes = 0;
  fabric::Time flush_wait = 0;  // time spent waiting for invalidations
};

class IommuDriver {
 public:
  IommuDriver(HostCpu& cpu, HostAllocator& alloc, const IommuSpec& spec);

  // Root table, SRTP, translation enable.
  void init();

  IommuDomain& create_domain(const std::string& name, IommuDomain::Type type);
  IommuDomain* domain(const std::string& name);
  IommuDomain* domain_of(const PciDev& dev);
  const std::map<std::string, std::unique_ptr<IommuDomain>>& domains() const { return domains_; }

  // Points the function's context entry at the domain (detaching it from
  // its previous one, with the invalidations that requires).
  void attach(PciDev& dev, IommuDomain& d);
  // The function is going away: clear its context entry (with the
  // invalidations) and forget it.
  void detach(PciDev& dev);
  // Maps [iova, iova + len) to [hpa, hpa + len): 0, or -EINVAL (not 4 KiB
  // aligned, not a translated domain, beyond the address width), -EEXIST
  // (something is already mapped there), -ENOMEM (more than 2^22 pages in
  // one call). Nothing is written on failure.
  int map(IommuDomain& d, std::uint64_t iova, std::uint64_t hpa, std::uint64_t len, bool read,
          bool write);
  // Clears the mappings of [iova, iova + len) and, with flush, invalidates
  // the IOTLB for them and waits: 0, -EINVAL (splits a large page or not a
  // translated domain) or -ENOENT (nothing was mapped there).
  int unmap(IommuDomain& d, std::uint64_t iova, std::uint64_t len, bool flush = true);
  // Register-based invalidations, waited for.
  void flush_iotlb(models::iommu::Granularity g, std::uint16_t did = 0, std::uint64_t iova = 0,
                   std::uint64_t len = 0);
  void flush_context(models::iommu::Granularity g, std::uint16_t did = 0,
                     fabric::RoutingId sid = fabric::RoutingId{});
  // What [iova] maps to in the domain's tables (not the IOTLB), or false.
  bool lookup(const IommuDomain& d, std::uint64_t iova, std::uint64_t* hpa) const;
  // The same with the leaf's permissions and size.
  struct Leaf {
    std::uint64_t hpa = 0;  // of iova
    unsigned shift = 12;
    bool write = false;
  };
  bool lookup_leaf(const IommuDomain& d, std::uint64_t iova, Leaf* out) const;

  // Dirty tracking as iommufd offers it (IOMMU_HWPT_SET_DIRTY_TRACKING,
  // IOMMU_HWPT_GET_DIRTY_BITMAP; intel_iommu_set_dirty_tracking,
  // intel_iommu_read_and_clear_dirty). Enabling sets the A/D enable bit in
  // the context entry of every function attached to the domain (and of
  // those attached later), with the context and IOTLB invalidations:
  // 0, -EOPNOTSUPP (the IOMMU has no A/D support), -EINVAL (not a
  // translated domain).
  int set_dirty_tracking(IommuDomain& d, bool enable);
  // Reads the Dirty bits of the leaves covering [iova, iova + length) into
  // `bitmap` (bit (addr - iova) / page_size of word ... / 64; a dirty large
  // page marks every unit it covers) and, unless no_clear, clears them and
  // invalidates the IOTLB for the range so the next write sets them again
  // (a large page reaching beyond the range stays dirty: over-reporting).
  // 0, or -EINVAL: tracking not enabled, page_size not a power of two >= 4
  // KiB, iova/length not multiples of it, length 0 or more than 2^28 units.
  int read_dirty(IommuDomain& d, std::uint64_t iova, std::uint64_t length, std::uint64_t page_size,
                 bool no_clear, std::vector<std::uint64_t>* bitmap);

  const IommuDriverStats& stats() const { return stats_; }
  const IommuSpec& spec() const { return spec_; }

 private:
  std::uint64_t context_entry(fabric::RoutingId rid);
  bool slot_free(const IommuDomain& d, std::uint64_t iova, unsigned shift) const;
  // Calls fn(entry address, entry, leaf base IOVA, leaf size) for each leaf
  // mapped in [iova, iova + len), in order; false if fn stopped the walk.
  bool for_each_leaf(const IommuDomain& d, std::uint64_t iova, std::uint64_t len,
                     const std::function<bool(std::uint64_t at, std::uint64_t pte,
                                              std::uint64_t base, std::uint64_t size)>& fn) const;
  std::uint64_t new_table();
  std::uint64_t get64(std::uint64_t addr) const;
  void set64(std::uint64_t addr, std::uint64_t v);
  void write_reg64(std::uint32_t reg, std::uint64_t v);
  void wait_clear(std::uint32_t reg, std::uint64_t bit);
  unsigned levels() const { return spec_.params.levels; }

  HostCpu& cpu_;
  HostAllocator& alloc_;
  IommuSpec spec_;
  std::uint64_t base_ = 0;
  std::uint64_t root_table_ = 0;
  std::map<std::string, std::unique_ptr<IommuDomain>> domains_;
  std::map<std::uint16_t, IommuDomain*> attached_;  // routing ID -> domain
  std::uint16_t next_id_ = 1;
  IommuDriverStats stats_;
};

// Where a driver's DMA buffers live and which address the device uses for
// them.
class DmaSpace {
 public:
  struct Buffer {
    std::uint64_t cpu = 0;  // host physical (what the CPU writes)
    std::uint64_t dma = 0;  // what the device is given
  };
  virtual ~DmaSpace() = default;
  virtual Buffer alloc(std::uint64_t bytes) = 0;
  // The address a function in this space uses for a peer's BAR at
  // [hpa, hpa + len) (mapped into the domain if needed).
  virtual std::uint64_t map_peer(std::uint64_t hpa, std::uint64_t len) = 0;
  virtual std::string name() const = 0;
};

// No IOMMU, or an identity / pass-through domain: DMA addresses are physical.
class PhysicalSpace : public DmaSpace {
 public:
  explicit PhysicalSpace(HostAllocator& alloc) : alloc_(alloc) {}
  Buffer alloc(std::uint64_t bytes) override;
  std::uint64_t map_peer(std::uint64_t hpa, std::uint64_t) override { return hpa; }
  std::string name() const override { return "physical"; }

 private:
  HostAllocator& alloc_;
};

// A translated domain owned by the host: buffers are mapped at IOVA = their
// physical address (an identity-style IOVA allocator).
class DomainSpace : public DmaSpace {
 public:
  DomainSpace(HostAllocator& alloc, IommuDriver& iommu, IommuDomain& d)
      : alloc_(alloc), iommu_(iommu), domain_(d) {}
  Buffer alloc(std::uint64_t bytes) override;
  std::uint64_t map_peer(std::uint64_t hpa, std::uint64_t len) override;
  std::string name() const override { return domain_.name; }

 private:
  HostAllocator& alloc_;
  IommuDriver& iommu_;
  IommuDomain& domain_;
};

// A VM: guest RAM at a host physical base, mapped GPA -> HPA in its domain;
// drivers inside it allocate guest-physical buffers.
class Vm : public DmaSpace {
 public:
  Vm(const VmSpec& spec, std::uint64_t host_base, IommuDriver& iommu, IommuDomain& d);
  Buffer alloc(std::uint64_t bytes) override;
  // Peer BARs appear in the guest at their host physical address.
  std::uint64_t map_peer(std::uint64_t hpa, std::uint64_t len) override;
  std::string name() const override { return spec_.name; }
  const VmSpec& spec() const { return spec_; }
  std::uint64_t host_base() const { return host_base_; }
  std::uint64_t to_host(std::uint64_t gpa, std::uint64_t len) const;  // throws outside RAM
  IommuDomain& domain() { return domain_; }
  // The VMM stopped the VM (QEMU vm_stop on a device error): its vCPUs
  // and guest drivers do nothing more.
  void stop(const std::string& reason, fabric::Time at) {
    if (stopped_) return;
    stopped_ = true;
    stop_reason_ = reason;
    stopped_at_ = at;
  }
  bool stopped() const { return stopped_; }
  const std::string& stop_reason() const { return stop_reason_; }
  fabric::Time stopped_at() const { return stopped_at_; }
  // The VMM paused / resumed the vCPUs (a migration's switchover).
  void pause() { paused_ = true; }
  void resume() {
    paused_ = false;
    resumed_.notify(sc_core::SC_ZERO_TIME);
  }
  bool paused() const { return paused_; }
  sc_core::sc_event& resumed_event() { return resumed_; }

  // Live migration (sim/migration/vmm.h). The guest-physical peer BAR
  // windows the guest maps (GPA -> length), and the destination's copy of
  // the guest's layout: its allocation point, and each peer window mapped
  // at the same GPA to the host address `peer_hpa` gives for it.
  const std::map<std::uint64_t, std::uint64_t>& peer_windows() const { return peers_; }
  void adopt_layout(const Vm& from,
                    const std::function<std::uint64_t(std::uint64_t gpa)>& peer_hpa);
  // The guest now runs in `to` (a completed migration): this VM stays
  // paused for good; whoever waits for it to resume wakes and follows.
  void hand_over(Vm& to) {
    moved_to_ = &to;
    resumed_.notify(sc_core::SC_ZERO_TIME);
  }
  Vm* moved_to() const { return moved_to_; }
  // Where the guest that started here runs now.
  Vm& current() {
    Vm* v = this;
    while (v->moved_to_)
      v = v->moved_to_;
    return *v;
  }

 private:
  Vm* moved_to_ = nullptr;
  bool stopped_ = false;
  bool paused_ = false;
  sc_core::sc_event resumed_;
  std::string stop_reason_;
  fabric::Time stopped_at_ = 0;
  VmSpec spec_;
  std::uint64_t host_base_;
  IommuDriver& iommu_;
  IommuDomain& domain_;
  std::uint64_t next_ = 1 << 20;                  // the first MiB is the guest's own
  std::map<std::uint64_t, std::uint64_t> peers_;  // GPA page -> bytes mapped
};

}  // namespace pciesim::sim

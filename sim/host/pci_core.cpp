#include "sim/host/pci_core.h"

#include <linux/pci_regs.h>

#include <algorithm>

#include "fabric/common/error.h"
#include "fabric/config_space/capabilities.h"
#include "sim/builder/system.h"
#include "sim/trace/trace_span.h"

namespace pciesim::sim {

using namespace fabric;

namespace {
constexpr std::uint64_t kWindowGranule = 1 << 20;  // bridge memory windows: 1 MiB
std::uint64_t round_up(std::uint64_t v, std::uint64_t a) {
  return (v + a - 1) / a * a;
}
bool is_downstream_port(const PciDev* d) {
  return d && (d->pcie_type == PCI_EXP_TYPE_ROOT_PORT || d->pcie_type == PCI_EXP_TYPE_DOWNSTREAM);
}
}  // namespace

PciCore::PciCore(HostCpu& cpu, System& system, const HostSpec& host,
                 const models::RootComplexParams& rc)
    : cpu_(cpu), system_(system), host_(host), rc_(rc) {}

std::string PciCore::name_of(RoutingId rid) {
  FunctionRef* f = system_.function_at(rid);
  return f ? f->name() : std::string();
}

std::vector<PciDev*> PciCore::devices() {
  std::vector<PciDev*> out;
  for (auto& d : devs_)
    out.push_back(d.get());
  std::sort(out.begin(), out.end(), [](PciDev* a, PciDev* b) { return a->rid < b->rid; });
  return out;
}

PciDev* PciCore::find(RoutingId rid) {
  for (auto& d : devs_)
    if (d->rid == rid) return d.get();
  return nullptr;
}

PciDev* PciCore::find(const std::string& name) {
  for (auto& d : devs_)
    if (d->name == name) return d.get();
  return nullptr;
}

// ------------------------------------------------------------ scanning

std::uint32_t PciCore::read_vendor_waiting_rrs(RoutingId rid) {
  // pci_bus_read_dev_vendor_id / pci_bus_wait_rrs: a Vendor ID of 0x0001
  // is RRS with Software Visibility; wait 1, 2, 4 ... ms up to 60 s.
  std::uint32_t v = cpu_.config_read(rid, PCI_VENDOR_ID, 4);
  Time delay = 1 * kMs;
  Time waited = 0;
  while ((v & 0xffff) == 0x0001 && waited < 60 * kSec) {
    ++stats_.rrs_waits;
    HostCpu::sleep(delay);
    waited += delay;
    delay *= 2;
    v = cpu_.config_read(rid, PCI_VENDOR_ID, 4);
  }
  return v;
}

PciDev* PciCore::probe(RoutingId rid, PciDev* parent) {
  std::uint32_t id = read_vendor_waiting_rrs(rid);
  std::uint16_t vendor = id & 0xffff;
  if (vendor == 0xffff || vendor == 0x0000 || vendor == 0x0001) return nullptr;
  auto d = std::make_unique<PciDev>();
  d->seq = ++dev_seq_;
  d->rid = rid;
  d->parent = parent;
  d->vendor = vendor;
  d->device = static_cast<std::uint16_t>(id >> 16);
  d->class_code = cpu_.config_read(rid, PCI_CLASS_REVISION, 4) >> 8;
  d->header_type = static_cast<std::uint8_t>(cpu_.config_read(rid, PCI_HEADER_TYPE, 1));
  d->bridge = (d->header_type & 0x7f) == PCI_HEADER_TYPE_BRIDGE;
  d->name = name_of(rid);
  read_capabilities(*d);
  if (!d->bridge) size_bars(*d);
  ++stats_.devices_found;
  devs_.push_back(std::move(d));
  return devs_.back().get();
}

void PciCore::read_capabilities(PciDev& d) {
  if (cpu_.config_read(d.rid, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST) {
    std::uint16_t pos = cpu_.config_read(d.rid, PCI_CAPABILITY_LIST, 1) & 0xfc;
    for (int guard = 0; pos >= 0x40 && guard < 48; ++guard) {
      std::uint16_t hdr = static_cast<std::uint16_t>(cpu_.config_read(d.rid, pos, 2));
      switch (hdr & 0xff) {
        case PCI_CAP_ID_EXP:
          d.exp = pos;
          break;
        case PCI_CAP_ID_PM:
          d.pm = pos;
          break;
        case PCI_CAP_ID_MSIX:
          d.msix = pos;
          break;
      }
      pos = (hdr >> 8) & 0xfc;
    }
  }
  if (d.exp) {
    d.pcie_type = static_cast<std::uint8_t>(
        (cpu_.config_read(d.rid, d.exp + PCI_EXP_FLAGS, 2) & PCI_EXP_FLAGS_TYPE) >> 4);
    std::uint16_t pos = 0x100;
    for (int guard = 0; pos >= 0x100 && guard < 960; ++guard) {
      std::uint32_t hdr = cpu_.config_read(d.rid, pos, 4);
      if (hdr == 0 || hdr == 0xffffffff) break;
      switch (PCI_EXT_CAP_ID(hdr)) {
        case PCI_EXT_CAP_ID_ARI:
          d.ari = pos;
          break;
        case PCI_EXT_CAP_ID_SRIOV:
          d.sriov = pos;
          break;
        case PCI_EXT_CAP_ID_ACS:
          d.acs = pos;
          break;
        case PCI_EXT_CAP_ID_ERR:
          d.aer = pos;
          break;
        case PCI_EXT_CAP_ID_DPC:
          d.dpc = pos;
          break;
      }
      pos = static_cast<std::uint16_t>(PCI_EXT_CAP_NEXT(hdr));
    }
  }
  if (d.msix) {
    unsigned n = (cpu_.config_read(d.rid, d.msix + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1;
    d.msix_entries.assign(n, MsixEntry{});
  }
}

namespace {
// Sizes the BAR array at config offset `base` (header BARs or VF BARs) the
// way __pci_read_base does: write all ones, read back, restore.
void size_bar_array(HostCpu& cpu, RoutingId rid, std::uint16_t base, std::array<PciBar, 6>* bars) {
  for (unsigned i = 0; i < 6; ++i) {
    std::uint16_t reg = static_cast<std::uint16_t>(base + 4 * i);
    std::uint32_t orig = cpu.config_read(rid, reg, 4);
    cpu.config_write(rid, reg, 4, 0xffffffff);
    std::uint32_t lo = cpu.config_read(rid, reg, 4);
    cpu.config_write(rid, reg, 4, orig);
    if (lo == 0 || lo == 0xffffffff) continue;
    if (lo & PCI_BASE_ADDRESS_SPACE_IO) continue;  // no I/O space in this platform
    PciBar& b = (*bars)[i];
    b.is64 = (lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64;
    b.pref = lo & PCI_BASE_ADDRESS_MEM_PREFETCH;
    std::uint64_t mask = lo & PCI_BASE_ADDRESS_MEM_MASK;
    if (b.is64 && i < 5) {
      std::uint16_t hreg = static_cast<std::uint16_t>(reg + 4);
      std::uint32_t horig = cpu.config_read(rid, hreg, 4);
      cpu.config_write(rid, hreg, 4, 0xffffffff);
      std::uint32_t hi = cpu.config_read(rid, hreg, 4);
      cpu.config_write(rid, hreg, 4, horig);
      mask |= static_cast<std::uint64_t>(hi) << 32;
    } else {
      mask |= 0xffffffff00000000ull;
    }
    b.size = ~mask + 1;
    if (b.is64) ++i;
  }
}
}  // namespace

void PciCore::size_bars(PciDev& d) {
  // Decoding is off while sizing (Linux clears MSE around it).
  std::uint16_t cmd = static_cast<std::uint16_t>(cpu_.config_read(d.rid, PCI_COMMAND, 2));
  if (cmd & PCI_COMMAND_MEMORY) cpu_.config_write(d.rid, PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MEMORY);
  size_bar_array(cpu_, d.rid, PCI_BASE_ADDRESS_0, &d.bars);
  if (cmd & PCI_COMMAND_MEMORY) cpu_.config_write(d.rid, PCI_COMMAND, 2, cmd);
}

bool PciCore::ari_forwarding(const PciDev* bridge) const {
  if (!bridge || !bridge->exp) return false;
  return cpu_.config_peek(bridge->rid, bridge->exp + PCI_EXP_DEVCTL2, 2) & PCI_EXP_DEVCTL2_ARI;
}

void PciCore::sriov_init(PciDev& pf) {
  const std::uint16_t c = pf.sriov;
  // ARI Capable Hierarchy follows the port above (sriov_init in iov.c).
  std::uint16_t ctrl = static_cast<std::uint16_t>(cpu_.config_read(pf.rid, c + PCI_SRIOV_CTRL, 2));
  if (ctrl & PCI_SRIOV_CTRL_VFE) {
    cpu_.config_write(pf.rid, c + PCI_SRIOV_CTRL, 2, 0);
    HostCpu::sleep(100 * kMs);
  }
  ctrl = ari_forwarding(pf.parent) ? PCI_SRIOV_CTRL_ARI : 0;
  cpu_.config_write(pf.rid, c + PCI_SRIOV_CTRL, 2, ctrl);
  pf.sriov_ctrl = ctrl;
  pf.total_vfs = cpu_.config_read(pf.rid, c + PCI_SRIOV_TOTAL_VF, 2);
  // System Page Size = the host's 4 KiB page.
  std::uint32_t supported = cpu_.config_read(pf.rid, c + PCI_SRIOV_SUP_PGSIZE, 4);
  if (supported & 1) cpu_.config_write(pf.rid, c + PCI_SRIOV_SYS_PGSIZE, 4, 1);
  pf.sriov_pgsz = cpu_.config_read(pf.rid, c + PCI_SRIOV_SYS_PGSIZE, 4);
  size_bar_array(cpu_, pf.rid, static_cast<std::uint16_t>(c + PCI_SRIOV_BAR), &pf.vf_bars);
  for (PciBar& b : pf.vf_bars)
    if (b.size) b.size = std::max<std::uint64_t>(b.size, 4096);  // page-aligned per VF
  // Offset and stride with NumVFs = TotalVFs give the bus range to reserve.
  cpu_.config_write(pf.rid, c + PCI_SRIOV_NUM_VF, 2, pf.total_vfs);
  pf.vf_offset = static_cast<std::uint16_t>(cpu_.config_read(pf.rid, c + PCI_SRIOV_VF_OFFSET, 2));
  pf.vf_stride = static_cast<std::uint16_t>(cpu_.config_read(pf.rid, c + PCI_SRIOV_VF_STRIDE, 2));
  cpu_.config_write(pf.rid, c + PCI_SRIOV_NUM_VF, 2, 0);
  if (const EndpointSpec* ep = system_.config().endpoint_of(pf.name)) pf.autoprobe = ep->autoprobe;
}

void PciCore::scan_bus(unsigned bus, PciDev* bridge) {
  std::vector<PciDev*> found;
  const bool link_below = is_downstream_port(bridge);
  for (unsigned dev = 0; dev < 32; ++dev) {
    // Only Device 0 exists below a PCIe link (pci_scan_slot / only_one_child).
    if (link_below && dev > 0) break;
    PciDev* f0 = probe(RoutingId(bus, dev, 0), bridge);
    if (!f0) continue;
    found.push_back(f0);
    bool ari = false;
    if (link_below && f0->ari && host_.ari && bridge->exp &&
        (cpu_.config_read(bridge->rid, bridge->exp + PCI_EXP_DEVCAP2, 4) & PCI_EXP_DEVCAP2_ARI)) {
      // pci_configure_ari: enable ARI Forwarding in the port above.
      std::uint16_t ctl2 = static_cast<std::uint16_t>(
          cpu_.config_read(bridge->rid, bridge->exp + PCI_EXP_DEVCTL2, 2));
      cpu_.config_write(bridge->rid, bridge->exp + PCI_EXP_DEVCTL2, 2, ctl2 | PCI_EXP_DEVCTL2_ARI);
      ari = true;
    }
    if (ari) {
      // Follow the ARI Next Function Number chain.
      unsigned next = (cpu_.config_read(f0->rid, f0->ari + PCI_ARI_CAP, 2) >> 8) & 0xff;
      for (int guard = 0; next && guard < 255; ++guard) {
        PciDev* f = probe(RoutingId(static_cast<std::uint16_t>((bus << 8) | next)), bridge);
        if (!f || !f->ari) break;
        found.push_back(f);
        next = (cpu_.config_read(f->rid, f->ari + PCI_ARI_CAP, 2) >> 8) & 0xff;
      }
    } else if (f0->header_type & 0x80) {
      for (unsigned fn = 1; fn < 8; ++fn)
        if (PciDev* f = probe(RoutingId(bus, dev, fn), bridge)) found.push_back(f);
    }
  }
  // SR-IOV: reserve the VF bus numbers before numbering bridges below
  // (pci_iov_bus_range).
  for (PciDev* d : found) {
    if (!d->sriov) continue;
    sriov_init(*d);
    if (d->total_vfs) {
      unsigned last = d->rid.value() + d->vf_offset + (d->total_vfs - 1u) * d->vf_stride;
      last_bus_ = std::max(last_bus_, (last >> 8) & 0xffu);
    }
  }
  last_bus_ = std::max(last_bus_, bus);
  for (PciDev* d : found) {
    if (!d->bridge) continue;
    if (last_bus_ >= 255) break;  // out of bus numbers: leave it unconfigured
    d->secondary = ++last_bus_;
    cpu_.config_write(d->rid, PCI_PRIMARY_BUS, 4,
                      (0xffu << 16) | (d->secondary << 8) | d->rid.bus());
    // The bridge's routing ID must be captured before it forwards.
    scan_bus(d->secondary, d);
    d->subordinate = last_bus_;
    cpu_.config_write(d->rid, PCI_SUBORDINATE_BUS, 1, d->subordinate);
  }
}

// ------------------------------------------------------------ resources

void PciCore::collect_items(PciDev& bridge, bool pref, std::vector<Item>* items) {
  for (auto& up : devs_) {
    PciDev& d = *up;
    if (d.parent != &bridge || d.is_vf) continue;
    if (d.bridge) {
      std::uint64_t nps, npa, ps, pa;
      window_requirements(d, &nps, &npa, &ps, &pa);
      if (!pref && nps) items->push_back({nps, npa, &d, -1, false, &d});
      if (pref && ps) items->push_back({ps, pa, &d, -1, true, &d});
      continue;
    }
    for (unsigned i = 0; i < 6; ++i) {
      const PciBar& b = d.bars[i];
      // Non-prefetchable BARs, even 64-bit ones, live in the 32-bit window.
      if (b.size && (b.pref && b.is64) == pref)
        items->push_back({b.size, b.size, &d, static_cast<int>(i), pref, nullptr});
    }
    for (unsigned i = 0; i < 6 && d.total_vfs; ++i) {
      const PciBar& b = d.vf_bars[i];
      if (b.size && (b.pref && b.is64) == pref)
        items->push_back(
            {b.size * d.total_vfs, b.size, &d, 6 + static_cast<int>(i), pref, nullptr});
    }
  }
  std::stable_sort(items->begin(), items->end(),
                   [](const Item& a, const Item& b) { return a.align > b.align; });
}

void PciCore::window_requirements(PciDev& bridge, std::uint64_t* np_size, std::uint64_t* np_align,
                                  std::uint64_t* p_size, std::uint64_t* p_align) {
  for (bool pref : {false, true}) {
    std::vector<Item> items;
    collect_items(bridge, pref, &items);
    std::uint64_t off = 0, align = kWindowGranule;
    for (const Item& it : items) {
      off = round_up(off, it.align) + it.size;
      align = std::max(align, it.align);
    }
    std::uint64_t size = items.empty() ? 0 : round_up(off, kWindowGranule);
    (pref ? *p_size : *np_size) = size;
    (pref ? *p_align : *np_align) = align;
  }
}

void PciCore::program_bar(PciDev& d, int bar, std::uint64_t addr) {
  if (bar < 6) {
    PciBar& b = d.bars[bar];
    b.addr = addr;
    std::uint16_t reg = static_cast<std::uint16_t>(PCI_BASE_ADDRESS_0 + 4 * bar);
    cpu_.config_write(d.rid, reg, 4, static_cast<std::uint32_t>(addr));
    if (b.is64) cpu_.config_write(d.rid, reg + 4, 4, static_cast<std::uint32_t>(addr >> 32));
  } else {
    PciBar& b = d.vf_bars[bar - 6];
    b.addr = addr;
    std::uint16_t reg = static_cast<std::uint16_t>(d.sriov + PCI_SRIOV_BAR + 4 * (bar - 6));
    cpu_.config_write(d.rid, reg, 4, static_cast<std::uint32_t>(addr));
    if (b.is64) cpu_.config_write(d.rid, reg + 4, 4, static_cast<std::uint32_t>(addr >> 32));
  }
}

void PciCore::program_windows(PciDev& b) {
  const models::MemoryRange& m = b.mem_window;
  if (m.size) {
    cpu_.config_write(b.rid, PCI_MEMORY_BASE, 2, (m.base >> 16) & 0xfff0);
    cpu_.config_write(b.rid, PCI_MEMORY_LIMIT, 2, ((m.base + m.size - 1) >> 16) & 0xfff0);
  } else {
    cpu_.config_write(b.rid, PCI_MEMORY_BASE, 2, 0xfff0);
    cpu_.config_write(b.rid, PCI_MEMORY_LIMIT, 2, 0);
  }
  const models::MemoryRange& p = b.pref_window;
  if (p.size) {
    std::uint64_t limit = p.base + p.size - 1;
    cpu_.config_write(b.rid, PCI_PREF_MEMORY_BASE, 2, (p.base >> 16) & 0xfff0);
    cpu_.config_write(b.rid, PCI_PREF_MEMORY_LIMIT, 2, (limit >> 16) & 0xfff0);
    cpu_.config_write(b.rid, PCI_PREF_BASE_UPPER32, 4, static_cast<std::uint32_t>(p.base >> 32));
    cpu_.config_write(b.rid, PCI_PREF_LIMIT_UPPER32, 4, static_cast<std::uint32_t>(limit >> 32));
  } else {
    cpu_.config_write(b.rid, PCI_PREF_MEMORY_BASE, 2, 0xfff0);
    cpu_.config_write(b.rid, PCI_PREF_MEMORY_LIMIT, 2, 0);
    cpu_.config_write(b.rid, PCI_PREF_BASE_UPPER32, 4, 0);
    cpu_.config_write(b.rid, PCI_PREF_LIMIT_UPPER32, 4, 0);
  }
  // No I/O space on this platform: disable the I/O window.
  cpu_.config_write(b.rid, PCI_IO_BASE, 1, 0xf0);
  cpu_.config_write(b.rid, PCI_IO_LIMIT, 1, 0x00);
}

void PciCore::assign_bridge(PciDev& bridge, std::uint64_t np_base, std::uint64_t np_size,
                            std::uint64_t p_base, std::uint64_t p_size) {
  bridge.mem_window = {np_base, np_size};
  bridge.pref_window = {p_base, p_size};
  program_windows(bridge);
  for (bool pref : {false, true}) {
    std::vector<Item> items;
    collect_items(bridge, pref, &items);
    std::uint64_t cursor = pref ? p_base : np_base;
    for (const Item& it : items) {
      cursor = round_up(cursor, it.align);
      if (it.child_bridge) {
        std::uint64_t nps, npa, ps, pa;
        window_requirements(*it.child_bridge, &nps, &npa, &ps, &pa);
        if (!pref)
          it.child_bridge->mem_window = {cursor, it.size};
        else
          it.child_bridge->pref_window = {cursor, it.size};
      } else {
        program_bar(*it.dev, it.bar, cursor);
      }
      cursor += it.size;
    }
  }
  for (auto& up : devs_)
    if (up->parent == &bridge && up->bridge)
      assign_bridge(*up, up->mem_window.base, up->mem_window.size, up->pref_window.base,
                    up->pref_window.size);
}

// ------------------------------------------------------------ configuration

std::uint32_t PciCore::subtree_mps(PciDev& rp) {
  std::uint32_t mps = 4096;
  auto cap = [&](PciDev& d) {
    if (!d.exp || d.is_vf) return;
    std::uint32_t code =
        cpu_.config_read(d.rid, d.exp + PCI_EXP_DEVCAP, 4) & PCI_EXP_DEVCAP_PAYLOAD;
    mps = std::min(mps, 128u << code);
  };
  cap(rp);
  for (PciDev* d : below(rp))
    cap(*d);
  return mps;
}

void PciCore::configure_device(PciDev& d, std::uint32_t mps) {
  if (!d.exp || d.is_vf) return;
  std::uint32_t devcap = cpu_.config_read(d.rid, d.exp + PCI_EXP_DEVCAP, 4);
  std::uint16_t ctl =
      static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_DEVCTL, 2));
  std::uint32_t supported = 128u << (devcap & PCI_EXP_DEVCAP_PAYLOAD);
  std::uint32_t m = std::min(mps, supported);
  unsigned code = 0;
  while ((128u << code) < m)
    ++code;
  ctl = static_cast<std::uint16_t>((ctl & ~PCI_EXP_DEVCTL_PAYLOAD) | (code << 5));
  if (!d.bridge) {
    unsigned rcode = 0;
    while ((128u << rcode) < host_.mrrs)
      ++rcode;
    ctl = static_cast<std::uint16_t>((ctl & ~PCI_EXP_DEVCTL_READRQ) | (rcode << 12));
  }
  if (host_.extended_tags && (devcap & PCI_EXP_DEVCAP_EXT_TAG)) ctl |= PCI_EXP_DEVCTL_EXT_TAG;
  cpu_.config_write(d.rid, d.exp + PCI_EXP_DEVCTL, 2, ctl);
  if (host_.ten_bit_tags &&
      (cpu_.config_read(d.rid, d.exp + PCI_EXP_DEVCAP2, 4) & kDevCap2TenBitTagRequester)) {
    std::uint16_t c2 =
        static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_DEVCTL2, 2));
    cpu_.config_write(d.rid, d.exp + PCI_EXP_DEVCTL2, 2, c2 | kDevCtl2TenBitTagRequesterEnable);
  }
  if (d.pcie_type == PCI_EXP_TYPE_ROOT_PORT && host_.rrs_sw_visibility &&
      (cpu_.config_read(d.rid, d.exp + PCI_EXP_RTCAP, 2) & PCI_EXP_RTCAP_CRSVIS)) {
    std::uint16_t rt =
        static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_RTCTL, 2));
    cpu_.config_write(d.rid, d.exp + PCI_EXP_RTCTL, 2, rt | PCI_EXP_RTCTL_CRSSVE);
  }
  // Endpoints learn the root port's Read Completion Boundary.
  if (!d.bridge) {
    if (PciDev* rp = root_port_of(d)) {
      bool rcb = cpu_.config_read(rp->rid, rp->exp + PCI_EXP_LNKCTL, 2) & PCI_EXP_LNKCTL_RCB;
      std::uint16_t lc =
          static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_LNKCTL, 2));
      lc = static_cast<std::uint16_t>(rcb ? (lc | PCI_EXP_LNKCTL_RCB) : (lc & ~PCI_EXP_LNKCTL_RCB));
      cpu_.config_write(d.rid, d.exp + PCI_EXP_LNKCTL, 2, lc);
    }
  }
}

PciDev* PciCore::root_port_of(PciDev& dev) {
  PciDev* p = dev.is_vf ? dev.physfn : &dev;
  while (p && p->pcie_type != PCI_EXP_TYPE_ROOT_PORT)
    p = p->parent;
  return p;
}

std::vector<PciDev*> PciCore::below(PciDev& bridge) {
  std::vector<PciDev*> out;
  for (auto& d : devs_) {
    for (PciDev* p = d->is_vf ? d->physfn : d->parent; p; p = p->parent)
      if (p == &bridge) {
        out.push_back(d.get());
        break;
      }
  }
  return out;
}

void PciCore::enumerate() {
  last_bus_ = 0;
  scan_bus(0, nullptr);
  // Root ports take their windows from the root complex's MMIO ranges.
  std::uint64_t np = rc_.mmio32.base, p = rc_.mmio64.base;
  for (PciDev* d : devices()) {
    if (!d->bridge || d->parent) continue;
    std::uint64_t nps, npa, ps, pa;
    window_requirements(*d, &nps, &npa, &ps, &pa);
    np = round_up(np, npa);
    p = round_up(p, pa);
    if (np + nps > rc_.mmio32.base + rc_.mmio32.size || p + ps > rc_.mmio64.base + rc_.mmio64.size)
      throw UsageError("host", "the devices below " + d->name +
                                   " need more MMIO space than the root complex windows provide");
    assign_bridge(*d, np, nps, p, ps);
    np += nps;
    p += ps;
  }
  for (PciDev* d : devices()) {
    if (d->parent || !d->bridge) continue;
    std::uint32_t mps = subtree_mps(*d);
    if (host_.mps) mps = std::min(mps, host_.mps);
    configure_device(*d, mps);
    for (PciDev* c : below(*d))
      configure_device(*c, mps);
  }
  // Bridges forward memory both ways once configured.
  for (PciDev* d : devices())
    if (d->bridge) {
      std::uint16_t cmd = static_cast<std::uint16_t>(cpu_.config_read(d->rid, PCI_COMMAND, 2));
      cpu_.config_write(d->rid, PCI_COMMAND, 2, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    }
}

// ------------------------------------------------------------ BARs, command

std::uint64_t PciCore::bar_address(const PciDev& d, unsigned bar) const {
  if (bar > 5) return 0;
  if (d.is_vf && d.physfn) {
    const PciBar& b = d.physfn->vf_bars[bar];
    return b.size ? b.addr + (d.vf_number - 1u) * b.size : 0;
  }
  return d.bars[bar].addr;
}

std::uint64_t PciCore::mmio_address(const PciDev& d, unsigned bar, std::uint64_t offset,
                                    unsigned size, const std::string& who) const {
  if (bar > 5) throw UsageError(who, "BAR index must be 0..5, got " + std::to_string(bar));
  if (size != 1 && size != 2 && size != 4 && size != 8)
    throw UsageError(who, "MMIO accesses are 1, 2, 4 or 8 bytes, got " + std::to_string(size));
  const std::uint64_t base = bar_address(d, bar), len = bar_size(d, bar);
  if (!base || !len)
    throw UsageError(
        who, d.name + " BAR" + std::to_string(bar) + " is not implemented or has no address");
  if (offset >= len || size > len - offset)
    throw UsageError(who, "offset " + format_hex(offset) + " + " + std::to_string(size) +
                              " bytes is outside BAR" + std::to_string(bar) + " (" +
                              format_hex(len) + " bytes) of " + d.name);
  if (offset % size)
    throw UsageError(who, "MMIO offset " + format_hex(offset) + " is not aligned to the size " +
                              std::to_string(size));
  return base + offset;
}

std::uint64_t PciCore::bar_size(const PciDev& d, unsigned bar) const {
  if (bar > 5) return 0;
  if (d.is_vf && d.physfn) return d.physfn->vf_bars[bar].size;
  return d.bars[bar].size;
}

void PciCore::enable_memory(PciDev& d, bool on) {
  std::uint16_t cmd = static_cast<std::uint16_t>(cpu_.config_read(d.rid, PCI_COMMAND, 2));
  cmd = static_cast<std::uint16_t>(on ? cmd | PCI_COMMAND_MEMORY : cmd & ~PCI_COMMAND_MEMORY);
  cpu_.config_write(d.rid, PCI_COMMAND, 2, cmd);
}

void PciCore::set_master(PciDev& d, bool on) {
  std::uint16_t cmd = static_cast<std::uint16_t>(cpu_.config_read(d.rid, PCI_COMMAND, 2));
  cmd = static_cast<std::uint16_t>(on ? cmd | PCI_COMMAND_MASTER : cmd & ~PCI_COMMAND_MASTER);
  cpu_.config_write(d.rid, PCI_COMMAND, 2, cmd);
}

void PciCore::write_msix_entry(PciDev& d, unsigned vector, const MsixEntry& e) {
  if (!d.msix || vector >= d.msix_entries.size()) return;
  d.msix_entries[vector] = e;
  std::uint32_t table = cpu_.config_read(d.rid, d.msix + PCI_MSIX_TABLE, 4);
  unsigned bir = table & PCI_MSIX_TABLE_BIR;
  std::uint64_t base =
      bar_address(d, bir) + (table & PCI_MSIX_TABLE_OFFSET) + vector * PCI_MSIX_ENTRY_SIZE;
  cpu_.mmio_write(base + PCI_MSIX_ENTRY_LOWER_ADDR, 4, static_cast<std::uint32_t>(e.address));
  cpu_.mmio_write(base + PCI_MSIX_ENTRY_UPPER_ADDR, 4, static_cast<std::uint32_t>(e.address >> 32));
  cpu_.mmio_write(base + PCI_MSIX_ENTRY_DATA, 4, e.data);
  cpu_.mmio_write(base + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, e.masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
}

void PciCore::enable_msix(PciDev& d, bool on) {
  if (!d.msix) return;
  std::uint16_t ctl =
      static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.msix + PCI_MSIX_FLAGS, 2));
  ctl = static_cast<std::uint16_t>(on ? (ctl | PCI_MSIX_FLAGS_ENABLE) & ~PCI_MSIX_FLAGS_MASKALL
                                      : ctl & ~PCI_MSIX_FLAGS_ENABLE);
  cpu_.config_write(d.rid, d.msix + PCI_MSIX_FLAGS, 2, ctl);
  d.msix_enabled = on;
}

// ------------------------------------------------------------ SR-IOV

void PciCore::add_vfs(PciDev& pf, unsigned num) {
  for (unsigned n = 1; n <= num; ++n) {
    RoutingId rid(
        static_cast<std::uint16_t>(pf.rid.value() + pf.vf_offset + (n - 1) * pf.vf_stride));
    auto vf = std::make_unique<PciDev>();
    vf->seq = ++dev_seq_;
    vf->rid = rid;
    vf->is_vf = true;
    vf->physfn = &pf;
    vf->vf_number = n;
    vf->parent = pf.parent;
    // Linux takes a VF's vendor from the PF and its device from VF Device ID.
    vf->vendor = pf.vendor;
    vf->device =
        static_cast<std::uint16_t>(cpu_.config_read(pf.rid, pf.sriov + PCI_SRIOV_VF_DID, 2));
    vf->class_code = cpu_.config_read(rid, PCI_CLASS_REVISION, 4) >> 8;
    vf->header_type = static_cast<std::uint8_t>(cpu_.config_read(rid, PCI_HEADER_TYPE, 1));
    vf->name = name_of(rid);
    read_capabilities(*vf);
    PciDev* raw = vf.get();
    devs_.push_back(std::move(vf));
    pf.vfs.push_back(raw);
    ++stats_.devices_found;
    if (on_added) on_added(*raw);
  }
}

void PciCore::remove_vfs(PciDev& pf) {
  for (PciDev* vf : pf.vfs)
    if (on_removing) on_removing(*vf);
  // Like a pci_dev whose last reference is not yet dropped, a removed VF's
  // record outlives its removal: an operation that was waiting on it (a bus
  // reset saving state, a second host operation started from a callback)
  // still holds a valid object, marked removed, and skips it.
  for (PciDev* vf : pf.vfs) {
    vf->removed = true;
    auto it = std::find_if(devs_.begin(), devs_.end(),
                           [vf](const std::unique_ptr<PciDev>& d) { return d.get() == vf; });
    if (it == devs_.end()) continue;
    removed_.push_back(std::move(*it));
    devs_.erase(it);
  }
  pf.vfs.clear();
}

int PciCore::sriov_numvfs(PciDev& pf, unsigned num) {
  if (!pf.sriov) return kEinval;
  if (num > pf.total_vfs) return kErange;
  if (num == pf.num_vfs) return 0;
  // Linux refuses without a driver bound to the PF (it must implement
  // sriov_configure): "no driver bound to device; cannot configure SR-IOV".
  if (pf.driver.empty()) return kEnoent;
  TraceSpan span("host", "pci", [&] {
    return std::make_pair(num ? "SR-IOV enable " + pf.name : "SR-IOV disable " + pf.name,
                          "num_vfs=" + std::to_string(num));
  });
  const std::uint16_t c = pf.sriov;
  if (num == 0) {
    // sriov_disable: remove the VFs, clear VF Enable and VF MSE, wait 1 s.
    remove_vfs(pf);
    std::uint16_t ctrl =
        static_cast<std::uint16_t>(cpu_.config_read(pf.rid, c + PCI_SRIOV_CTRL, 2));
    cpu_.config_write(pf.rid, c + PCI_SRIOV_CTRL, 2,
                      ctrl & ~(PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE));
    pf.sriov_ctrl &= static_cast<std::uint16_t>(~(PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE));
    HostCpu::sleep(1 * kSec);
    cpu_.config_write(pf.rid, c + PCI_SRIOV_NUM_VF, 2, 0);
    pf.num_vfs = 0;
    ++stats_.sriov_disables;
    return 0;
  }
  if (pf.num_vfs != 0) return kEbusy;  // change needs a disable first
  // sriov_enable: NumVFs, check the bus range, VF Enable + VF MSE, 100 ms.
  cpu_.config_write(pf.rid, c + PCI_SRIOV_NUM_VF, 2, num);
  pf.vf_offset = static_cast<std::uint16_t>(cpu_.config_read(pf.rid, c + PCI_SRIOV_VF_OFFSET, 2));
  pf.vf_stride = static_cast<std::uint16_t>(cpu_.config_read(pf.rid, c + PCI_SRIOV_VF_STRIDE, 2));
  unsigned last = pf.rid.value() + pf.vf_offset + (num - 1u) * pf.vf_stride;
  unsigned limit = pf.parent ? pf.parent->subordinate : 0;
  if (((last >> 8) & 0xff) > limit || last > 0xffff) {
    cpu_.config_write(pf.rid, c + PCI_SRIOV_NUM_VF, 2, 0);
    return kEnomem;
  }
  for (unsigned i = 0; i < 6; ++i)
    if (pf.vf_bars[i].size && !pf.vf_bars[i].addr) return kEnomem;
  std::uint16_t ctrl = static_cast<std::uint16_t>(cpu_.config_read(pf.rid, c + PCI_SRIOV_CTRL, 2));
  cpu_.config_write(pf.rid, c + PCI_SRIOV_CTRL, 2, ctrl | PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE);
  pf.sriov_ctrl |= PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE;
  HostCpu::sleep(100 * kMs);
  // sriov_add_vfs -> pci_setup_device: a VF whose header type reads as
  // invalid (all ones: unreachable, e.g. at device > 0 below a port without
  // ARI Forwarding) fails the enable with -EIO, and sriov_enable undoes it.
  for (unsigned n = 1; n <= num; ++n) {
    RoutingId rid(
        static_cast<std::uint16_t>(pf.rid.value() + pf.vf_offset + (n - 1) * pf.vf_stride));
    if ((cpu_.config_read(rid, PCI_HEADER_TYPE, 1) & 0x7f) != PCI_HEADER_TYPE_NORMAL) {
      cpu_.config_write(pf.rid, c + PCI_SRIOV_CTRL, 2,
                        ctrl & ~(PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE));
      pf.sriov_ctrl &= static_cast<std::uint16_t>(~(PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE));
      HostCpu::sleep(1 * kSec);
      cpu_.config_write(pf.rid, c + PCI_SRIOV_NUM_VF, 2, 0);
      ++stats_.sriov_enable_failures;
      return kEio;
    }
  }
  pf.num_vfs = num;
  ++stats_.sriov_enables;
  add_vfs(pf, num);
  return 0;
}

// ------------------------------------------------------------ save/restore

void PciCore::save_state(PciDev& d) {
  PciDev::Saved& s = d.saved;
  for (unsigned i = 0; i < 16; ++i)
    s.header[i] = cpu_.config_read(d.rid, static_cast<std::uint16_t>(4 * i), 4);
  if (d.exp) {
    s.devctl = static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_DEVCTL, 2));
    s.lnkctl = static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_LNKCTL, 2));
    s.devctl2 = static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_DEVCTL2, 2));
    s.lnkctl2 = static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_LNKCTL2, 2));
    if (d.pcie_type == PCI_EXP_TYPE_ROOT_PORT)
      s.rtctl = static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_RTCTL, 2));
  }
  if (d.acs)
    s.acs_ctrl = static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.acs + PCI_ACS_CTRL, 2));
  if (d.msix)
    s.msix_ctrl = static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.msix + PCI_MSIX_FLAGS, 2));
  if (d.aer) {
    s.aer_uncor_mask = cpu_.config_read(d.rid, d.aer + PCI_ERR_UNCOR_MASK, 4);
    s.aer_uncor_sever = cpu_.config_read(d.rid, d.aer + PCI_ERR_UNCOR_SEVER, 4);
    s.aer_cor_mask = cpu_.config_read(d.rid, d.aer + PCI_ERR_COR_MASK, 4);
    if (d.pcie_type == PCI_EXP_TYPE_ROOT_PORT)
      s.aer_root_cmd = cpu_.config_read(d.rid, d.aer + PCI_ERR_ROOT_COMMAND, 4);
  }
  // SR-IOV state is not saved: Linux restores it from struct pci_sriov.
  s.valid = true;
}

void PciCore::restore_vf_bars(PciDev& pf) {
  // pci_update_resource for the IOV resources: the addresses the PCI core
  // assigned (the type bits are read-only).
  for (unsigned i = 0; i < 6; ++i) {
    const PciBar& b = pf.vf_bars[i];
    if (!b.size) continue;
    const std::uint16_t reg = static_cast<std::uint16_t>(pf.sriov + PCI_SRIOV_BAR + 4 * i);
    cpu_.config_write(pf.rid, reg, 4, static_cast<std::uint32_t>(b.addr));
    if (b.is64) cpu_.config_write(pf.rid, reg + 4, 4, static_cast<std::uint32_t>(b.addr >> 32));
    if (b.is64) ++i;
  }
}

void PciCore::sriov_restore_state(PciDev& pf) {
  // pci_restore_iov_state / sriov_restore_state (iov.c): from the PCI
  // core's copy (iov->ctrl, num_VFs, pgsz, the VF resources), so VFs the
  // core believes in come back even after a bare FLR destroyed them.
  const std::uint16_t c = pf.sriov;
  std::uint16_t ctrl = static_cast<std::uint16_t>(cpu_.config_read(pf.rid, c + PCI_SRIOV_CTRL, 2));
  if (ctrl & PCI_SRIOV_CTRL_VFE) return;
  // ARI first: VF Offset and Stride depend on it.
  ctrl = static_cast<std::uint16_t>((ctrl & ~PCI_SRIOV_CTRL_ARI) |
                                    (pf.sriov_ctrl & PCI_SRIOV_CTRL_ARI));
  cpu_.config_write(pf.rid, c + PCI_SRIOV_CTRL, 2, ctrl);
  restore_vf_bars(pf);
  cpu_.config_write(pf.rid, c + PCI_SRIOV_SYS_PGSIZE, 4, pf.sriov_pgsz);
  cpu_.config_write(pf.rid, c + PCI_SRIOV_NUM_VF, 2, pf.num_vfs);
  cpu_.config_write(pf.rid, c + PCI_SRIOV_CTRL, 2, pf.sriov_ctrl);
  if (pf.sriov_ctrl & PCI_SRIOV_CTRL_VFE) HostCpu::sleep(100 * kMs);
}

void PciCore::restore_state(PciDev& d) {
  const PciDev::Saved& s = d.saved;
  if (!s.valid) return;
  if (d.exp) {
    cpu_.config_write(d.rid, d.exp + PCI_EXP_DEVCTL, 2, s.devctl & ~PCI_EXP_DEVCTL_BCR_FLR);
    cpu_.config_write(d.rid, d.exp + PCI_EXP_LNKCTL, 2, s.lnkctl);
    cpu_.config_write(d.rid, d.exp + PCI_EXP_DEVCTL2, 2, s.devctl2);
    cpu_.config_write(d.rid, d.exp + PCI_EXP_LNKCTL2, 2, s.lnkctl2);
    if (d.pcie_type == PCI_EXP_TYPE_ROOT_PORT)
      cpu_.config_write(d.rid, d.exp + PCI_EXP_RTCTL, 2, s.rtctl);
  }
  // The order of pci_restore_state: PCIe, AER (status cleared, masks and
  // severity restored), the header, MSI/MSI-X, then ACS and SR-IOV.
  if (d.aer) {
    // pci_aer_clear_status: every status bit is RW1C.
    cpu_.config_write(d.rid, d.aer + PCI_ERR_UNCOR_STATUS, 4, 0xffffffff);
    cpu_.config_write(d.rid, d.aer + PCI_ERR_COR_STATUS, 4, 0xffffffff);
    if (d.pcie_type == PCI_EXP_TYPE_ROOT_PORT)
      cpu_.config_write(d.rid, d.aer + PCI_ERR_ROOT_STATUS, 4, 0xffffffff);
    cpu_.config_write(d.rid, d.aer + PCI_ERR_UNCOR_MASK, 4, s.aer_uncor_mask);
    cpu_.config_write(d.rid, d.aer + PCI_ERR_UNCOR_SEVER, 4, s.aer_uncor_sever);
    cpu_.config_write(d.rid, d.aer + PCI_ERR_COR_MASK, 4, s.aer_cor_mask);
    if (d.pcie_type == PCI_EXP_TYPE_ROOT_PORT)
      cpu_.config_write(d.rid, d.aer + PCI_ERR_ROOT_COMMAND, 4, s.aer_root_cmd);
  }
  // pci_restore_config_space: dwords 15..0 where they differ (Command last).
  for (int i = 15; i >= 1; --i) {
    std::uint16_t reg = static_cast<std::uint16_t>(4 * i);
    if (cpu_.config_read(d.rid, reg, 4) != s.header[i])
      cpu_.config_write(d.rid, reg, 4, s.header[i]);
  }
  if (d.msix && (s.msix_ctrl & PCI_MSIX_FLAGS_ENABLE)) {
    // __pci_restore_msix_state: enable masked, rewrite entries, unmask.
    cpu_.config_write(d.rid, d.msix + PCI_MSIX_FLAGS, 2,
                      PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    for (unsigned v = 0; v < d.msix_entries.size(); ++v)
      write_msix_entry(d, v, d.msix_entries[v]);
    cpu_.config_write(d.rid, d.msix + PCI_MSIX_FLAGS, 2, s.msix_ctrl);
  }
  if (d.acs) cpu_.config_write(d.rid, d.acs + PCI_ACS_CTRL, 2, s.acs_ctrl);
  if (d.sriov) sriov_restore_state(d);
}

// ------------------------------------------------------------ resets

bool PciCore::wait_pending_transactions(PciDev& d) {
  // pci_wait_for_pending: Transactions Pending polled at 0, 100, 200, 400 ms.
  for (int i = 0; i < 4; ++i) {
    if (i) HostCpu::sleep((Time{1} << (i - 1)) * 100 * kMs);
    std::uint16_t sta =
        static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_DEVSTA, 2));
    if (!(sta & PCI_EXP_DEVSTA_TRPND)) return true;
  }
  return false;
}

int PciCore::dev_wait(PciDev& d, Time timeout) {
  // pci_dev_wait: read the Command register (not the Vendor ID, so an RRS
  // Software Visibility value never looks like an answer) until it is not
  // all ones; sleep 1, 2, 4 ... ms in between, and give up with -ENOTTY
  // once the next sleep would exceed the timeout (60 s: ~65.5 s of polls).
  Time delay = 1 * kMs;
  for (;;) {
    if (cpu_.config_read(d.rid, PCI_COMMAND, 4) != 0xffffffff) return 0;
    if (delay > timeout) return kEnotty;
    ++stats_.rrs_waits;
    HostCpu::sleep(delay);
    delay *= 2;
  }
}

int PciCore::bare_flr(PciDev& d) {
  if (!d.exp || !(cpu_.config_read(d.rid, d.exp + PCI_EXP_DEVCAP, 4) & PCI_EXP_DEVCAP_FLR))
    return kEnotty;
  ++stats_.resets;
  TraceSpan span("host", "pci", [&] { return std::make_pair("FLR " + d.name, std::string()); });
  const Time t0 = HostCpu::now();
  const bool drained = wait_pending_transactions(d);  // Linux warns and resets anyway
  if (HostCpu::now() > t0 && on_note)
    on_note(d.name + ": FLR waited " + format_time(HostCpu::now() - t0) +
            " for Transactions Pending to clear" +
            (drained ? ""
                     : " and reset anyway (pcie_flr: \"timed out waiting for pending "
                       "transaction; performing function level reset anyway\")"));
  std::uint16_t ctl =
      static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.exp + PCI_EXP_DEVCTL, 2));
  cpu_.config_write(d.rid, d.exp + PCI_EXP_DEVCTL, 2, ctl | PCI_EXP_DEVCTL_BCR_FLR);
  HostCpu::sleep(100 * kMs);
  int r = dev_wait(d, 60 * kSec);
  if (r) ++stats_.reset_failures;
  return r;
}

int PciCore::pm_reset(PciDev& d) {
  // pci_pm_reset: D0 -> D3hot -> D0 resets the function unless it keeps
  // its state (No_Soft_Reset).
  if (!d.pm) return kEnotty;
  std::uint16_t csr = static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.pm + PCI_PM_CTRL, 2));
  if (csr & PCI_PM_CTRL_NO_SOFT_RESET) return kEnotty;
  ++stats_.resets;
  TraceSpan span("host", "pci",
                 [&] { return std::make_pair("PM reset " + d.name, std::string()); });
  cpu_.config_write(d.rid, d.pm + PCI_PM_CTRL, 2, (csr & ~PCI_PM_CTRL_STATE_MASK) | 3);
  HostCpu::sleep(10 * kMs);
  cpu_.config_write(d.rid, d.pm + PCI_PM_CTRL, 2, csr & ~PCI_PM_CTRL_STATE_MASK);
  HostCpu::sleep(10 * kMs);
  return dev_wait(d, 60 * kSec);
}

int PciCore::secondary_bus_reset(PciDev& bridge, bool restore) {
  if (!bridge.bridge) return kEnotty;
  TraceSpan span("host", "pci", [&] {
    return std::make_pair("secondary bus reset " + bridge.name,
                          std::string(restore ? "restore=true" : "restore=false"));
  });
  std::vector<PciDev*> devs = below(bridge);
  if (restore)
    for (PciDev* d : devs) {
      if (d->removed) continue;  // went away while an earlier one was saved
      if (on_reset_prepare) on_reset_prepare(*d);
      save_state(*d);
    }
  ++stats_.resets;
  reset_secondary_bus(bridge);
  int r = wait_for_secondary_bus(bridge);
  if (!restore) {
    if (r) ++stats_.reset_failures;
    return r;
  }
  // pci_bus_restore: parents before children (sorted by bus number).
  std::sort(devs.begin(), devs.end(), [](PciDev* a, PciDev* b) { return a->rid < b->rid; });
  for (PciDev* d : devs) {
    if (d->is_vf || d->removed) continue;
    if (dev_wait(*d, 60 * kSec)) r = kEnotty;
    restore_state(*d);
    if (d->bridge) {
      cpu_.config_write(d->rid, PCI_PRIMARY_BUS, 4,
                        (d->subordinate << 16) | (d->secondary << 8) | d->rid.bus());
      program_windows(*d);
    }
  }
  for (PciDev* d : devs)
    if (on_reset_done && !d->removed) on_reset_done(*d);
  if (r) ++stats_.reset_failures;
  return r;
}

void PciCore::reset_secondary_bus(PciDev& bridge) {
  // pci_reset_secondary_bus: assert for 2 ms (twice the 1 ms Trst of PCI
  // 3.0 7.6.4.2), deassert.
  std::uint16_t ctl =
      static_cast<std::uint16_t>(cpu_.config_read(bridge.rid, PCI_BRIDGE_CONTROL, 2));
  cpu_.config_write(bridge.rid, PCI_BRIDGE_CONTROL, 2, ctl | PCI_BRIDGE_CTL_BUS_RESET);
  HostCpu::sleep(2 * kMs);
  cpu_.config_write(bridge.rid, PCI_BRIDGE_CONTROL, 2, ctl & ~PCI_BRIDGE_CTL_BUS_RESET);
}

int PciCore::wait_for_secondary_bus(PciDev& bridge) {
  // pci_bridge_wait_for_secondary_bus (pci.c), PCIe Base 6.0 6.6.1: 100 ms
  // before the first configuration request. At 5 GT/s or less, wait it,
  // then poll the first device below. Faster ports (which must support Data
  // Link Layer Link Active reporting): 20 ms to reach Detect, wait for Link
  // Active (up to 1 s), then 100 ms; without the reporting, 1 s + 100 ms.
  PciDev* child = nullptr;
  for (auto& o : devs_)
    if (o->parent == &bridge && !o->is_vf && (!child || o->rid < child->rid)) child = o.get();
  if (!child || !bridge.exp) return 0;
  const Time delay = 100 * kMs;
  const std::uint32_t lnkcap = cpu_.config_read(bridge.rid, bridge.exp + PCI_EXP_LNKCAP, 4);
  const bool active_reporting = lnkcap & PCI_EXP_LNKCAP_DLLLARC;
  auto link_active = [&] {
    return cpu_.config_read(bridge.rid, bridge.exp + PCI_EXP_LNKSTA, 2) & PCI_EXP_LNKSTA_DLLLA;
  };
  if ((lnkcap & PCI_EXP_LNKCAP_SLS) <= 2) {  // 2.5 or 5 GT/s
    HostCpu::sleep(delay);
    if (!dev_wait(*child, 1 * kSec - delay)) return 0;  // PCI_RESET_WAIT
    if (!active_reporting || !link_active()) return kEnotty;
    return dev_wait(*child, 60 * kSec - 1 * kSec);
  }
  if (!active_reporting) {
    HostCpu::sleep(1 * kSec + delay);
  } else {
    HostCpu::sleep(20 * kMs);
    Time waited = 0;
    while (!link_active()) {  // pcie_wait_for_link_status: 1 ms polls, 1 s
      if (waited >= 1 * kSec) return kEnotty;
      HostCpu::sleep(1 * kMs);
      waited += 1 * kMs;
    }
    HostCpu::sleep(delay);
  }
  return dev_wait(*child, 60 * kSec - delay);
}

int PciCore::bus_reset_function(PciDev& d) {
  // pci_parent_bus_reset: only a function alone on a bus below a bridge
  // (no other function on it, VFs included), and not a bridge itself.
  if (!d.parent || d.bridge || d.is_vf) return kEnotty;
  for (auto& o : devs_)
    if (o.get() != &d && o->parent == d.parent && o->rid.bus() == d.rid.bus()) return kEnotty;
  ++stats_.resets;
  reset_secondary_bus(*d.parent);
  return wait_for_secondary_bus(*d.parent);
}

int PciCore::reset_function(PciDev& d, const std::string& method) {
  // pci_reset_function: save and disable, reset, restore.
  if (on_reset_prepare) on_reset_prepare(d);
  save_state(d);
  cpu_.config_write(d.rid, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
  int r = kEnotty;
  const std::string m = method.empty() ? "auto" : method;
  if (m == "flr" || m == "auto") r = bare_flr(d);
  if (r == kEnotty && (m == "pm" || m == "auto")) r = pm_reset(d);
  if (r == kEnotty && (m == "bus" || m == "auto")) r = bus_reset_function(d);
  restore_state(d);
  if (on_reset_done) on_reset_done(d);
  if (r) ++stats_.reset_failures;
  return r;
}

void PciCore::set_power_state(PciDev& d, unsigned state) {
  if (!d.pm) return;
  std::uint16_t csr = static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.pm + PCI_PM_CTRL, 2));
  unsigned cur = csr & PCI_PM_CTRL_STATE_MASK;
  if (cur == state) return;
  cpu_.config_write(d.rid, d.pm + PCI_PM_CTRL, 2, (csr & ~PCI_PM_CTRL_STATE_MASK) | state);
  // pci_dev_d3_sleep: d3hot_delay, 10 ms (PCI PM 1.2).
  HostCpu::sleep(10 * kMs);
  if (state == 0 && cur == 3 && !(csr & PCI_PM_CTRL_NO_SOFT_RESET)) {
    // pci_set_full_power_state -> pci_restore_bars: the function was reset;
    // Linux rewrites its BARs, the VF BARs included (pci_update_resource
    // -> pci_iov_update_resource), nothing else.
    for (unsigned i = 0; i < 6; ++i)
      if (d.bars[i].size) program_bar(d, static_cast<int>(i), d.bars[i].addr);
    if (d.sriov) restore_vf_bars(d);
  }
}

}  // namespace pciesim::sim

#include "fabric/config_space/capabilities.h"

#include "fabric/common/sim_time.h"

#include <algorithm>

#include "fabric/common/error.h"

namespace pciesim::fabric {

namespace {

constexpr std::uint16_t kStatusRw1c = PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT |
                                      PCI_STATUS_REC_TARGET_ABORT | PCI_STATUS_REC_MASTER_ABORT |
                                      PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY;

unsigned log2_exact(std::uint64_t v) {
  unsigned n = 0;
  while ((std::uint64_t{1} << n) < v)
    ++n;
  return n;
}

std::uint16_t payload_code(std::uint32_t bytes) {
  return static_cast<std::uint16_t>(log2_exact(std::max<std::uint32_t>(bytes, 128)) - 7);
}

}  // namespace

// ---------------------------------------------------------------- BARs

void define_memory_bar(ConfigSpace& cs, std::uint16_t reg, const BarSpec& bar) {
  if (bar.size == 0) {
    cs.define(reg, 4, 0);
    return;
  }
  if (bar.size < 16 || (bar.size & (bar.size - 1)) != 0)
    throw ModelError("config_space",
                     "BAR size must be a power of two >= 16, got " + std::to_string(bar.size));
  if (!bar.is_64bit && bar.size > (std::uint64_t{1} << 31))
    throw ModelError("config_space", "a 32-bit BAR cannot exceed 2 GiB");
  std::uint32_t flags = (bar.is_64bit ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
                        (bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
  std::uint64_t mask = ~(bar.size - 1);
  cs.define(reg, 4, flags, static_cast<std::uint32_t>(mask) & 0xfffffff0u);
  if (bar.is_64bit) cs.define(reg + 4, 4, 0, static_cast<std::uint32_t>(mask >> 32));
}

bool bar_is_64bit(const ConfigSpace& cs, std::uint16_t reg) {
  return (cs.get32(reg) & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64;
}

std::uint64_t bar_address(const ConfigSpace& cs, std::uint16_t reg) {
  std::uint64_t lo = cs.get32(reg) & PCI_BASE_ADDRESS_MEM_MASK;
  if (!bar_is_64bit(cs, reg)) return lo;
  return lo | (static_cast<std::uint64_t>(cs.get32(reg + 4)) << 32);
}

// ---------------------------------------------------------------- headers

void build_type0_header(ConfigSpace& cs, const Type0Header& h, const BarSpecs& bars) {
  cs.define(PCI_VENDOR_ID, 2, h.vendor_id);
  cs.define(PCI_DEVICE_ID, 2, h.device_id);
  // No I/O BARs: I/O Space Enable is hardwired to 0.
  cs.define(PCI_COMMAND, 2, 0,
            PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
                PCI_COMMAND_INTX_DISABLE);
  cs.define(PCI_STATUS, 2, 0, 0, kStatusRw1c);
  cs.define(PCI_REVISION_ID, 1, h.revision);
  cs.define(PCI_CLASS_PROG, 1, h.class_code & 0xff);
  cs.define(PCI_CLASS_DEVICE, 2, (h.class_code >> 8) & 0xffff);
  cs.define(PCI_CACHE_LINE_SIZE, 1, 0, 0xff);
  cs.define(PCI_HEADER_TYPE, 1, PCI_HEADER_TYPE_NORMAL | (h.multi_function ? 0x80 : 0));
  for (unsigned i = 0; i < 6; ++i) {
    std::uint16_t reg = static_cast<std::uint16_t>(PCI_BASE_ADDRESS_0 + 4 * i);
    if (bars[i].size == 0) continue;
    if (bars[i].is_64bit && i == 5)
      throw ModelError("config_space", "BAR5 cannot be 64-bit (no upper half)");
    define_memory_bar(cs, reg, bars[i]);
    if (bars[i].is_64bit) ++i;
  }
  cs.define(PCI_SUBSYSTEM_VENDOR_ID, 2, h.subsystem_vendor_id);
  cs.define(PCI_SUBSYSTEM_ID, 2, h.subsystem_id);
  cs.define(PCI_INTERRUPT_LINE, 1, 0, 0xff);
  cs.define(PCI_INTERRUPT_PIN, 1, h.interrupt_pin);
  cs.mark_allocated(0, 0x40);
}

void build_type1_header(ConfigSpace& cs, const Type1Header& h) {
  cs.define(PCI_VENDOR_ID, 2, h.vendor_id);
  cs.define(PCI_DEVICE_ID, 2, h.device_id);
  cs.define(PCI_COMMAND, 2, 0,
            PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
                PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
  cs.define(PCI_STATUS, 2, 0, 0, kStatusRw1c);
  cs.define(PCI_REVISION_ID, 1, h.revision);
  cs.define(PCI_CLASS_PROG, 1, h.class_code & 0xff);
  cs.define(PCI_CLASS_DEVICE, 2, (h.class_code >> 8) & 0xffff);
  cs.define(PCI_CACHE_LINE_SIZE, 1, 0, 0xff);
  cs.define(PCI_HEADER_TYPE, 1, PCI_HEADER_TYPE_BRIDGE | (h.multi_function ? 0x80 : 0));
  cs.define(PCI_PRIMARY_BUS, 1, 0, 0xff);
  cs.define(PCI_SECONDARY_BUS, 1, 0, 0xff);
  cs.define(PCI_SUBORDINATE_BUS, 1, 0, 0xff);
  // 16-bit I/O decode; the window exists so software can disable it.
  cs.define(PCI_IO_BASE, 1, 0, 0xf0);
  cs.define(PCI_IO_LIMIT, 1, 0, 0xf0);
  cs.define(PCI_SEC_STATUS, 2, 0, 0, kStatusRw1c);
  cs.define(PCI_MEMORY_BASE, 2, 0, 0xfff0);
  cs.define(PCI_MEMORY_LIMIT, 2, 0, 0xfff0);
  cs.define(PCI_PREF_MEMORY_BASE, 2, PCI_PREF_RANGE_TYPE_64, 0xfff0);
  cs.define(PCI_PREF_MEMORY_LIMIT, 2, PCI_PREF_RANGE_TYPE_64, 0xfff0);
  cs.define(PCI_PREF_BASE_UPPER32, 4, 0, 0xffffffff);
  cs.define(PCI_PREF_LIMIT_UPPER32, 4, 0, 0xffffffff);
  cs.define(PCI_INTERRUPT_LINE, 1, 0, 0xff);
  cs.define(PCI_BRIDGE_CONTROL, 2, 0,
            PCI_BRIDGE_CTL_PARITY | PCI_BRIDGE_CTL_SERR | PCI_BRIDGE_CTL_ISA | PCI_BRIDGE_CTL_VGA |
                PCI_BRIDGE_CTL_MASTER_ABORT | PCI_BRIDGE_CTL_BUS_RESET);
  cs.mark_allocated(0, 0x40);
}

// ---------------------------------------------------------------- lists

CapabilityAllocator::CapabilityAllocator(ConfigSpace& cs) : cs_(cs) {}

std::uint16_t CapabilityAllocator::find_free(std::uint16_t from, std::uint16_t to,
                                             std::uint16_t size) const {
  for (std::uint16_t off = from; off + size <= to; off = static_cast<std::uint16_t>(off + 4))
    if (!cs_.is_allocated(off, size)) return off;
  throw ModelError("config_space",
                   "no room for a capability of " + std::to_string(size) + " bytes");
}

std::uint16_t CapabilityAllocator::add(std::uint8_t id, std::uint16_t size) {
  std::uint16_t off = find_free(0x40, kLegacyConfigSize, size);
  cs_.mark_allocated(off, size);
  cs_.define(off, 1, id);
  cs_.define(off + 1, 1, 0);
  // Append to the end of the chain.
  std::vector<std::uint16_t> chain = cs_.capability_offsets();
  if (chain.empty()) {
    cs_.define(PCI_CAPABILITY_LIST, 1, off);
    cs_.set_bits16(PCI_STATUS, PCI_STATUS_CAP_LIST, true);
    cs_.capture_reset_value(PCI_STATUS, 2);
  } else {
    cs_.define(chain.back() + 1, 1, off);
  }
  return off;
}

std::uint16_t CapabilityAllocator::add_extended(std::uint16_t id, std::uint8_t version,
                                                std::uint16_t size) {
  if (cs_.size() <= kLegacyConfigSize)
    throw ModelError("config_space", "extended capabilities need a 4 KiB config space");
  std::uint16_t off = find_free(kExtendedCapBase, kConfigSpaceSize, size);
  cs_.mark_allocated(off, size);
  std::vector<std::uint16_t> chain = cs_.extended_capability_offsets();
  if (chain.empty() && off != kExtendedCapBase)
    throw ModelError("config_space", "the first extended capability must sit at 0x100");
  cs_.define(off, 4, static_cast<std::uint32_t>(id) | (static_cast<std::uint32_t>(version) << 16));
  if (!chain.empty()) {
    std::uint16_t last = chain.back();
    std::uint32_t header = cs_.get32(last);
    cs_.define(last, 4, (header & 0x000fffffu) | (static_cast<std::uint32_t>(off) << 20));
  }
  return off;
}

// ---------------------------------------------------------------- PCIe

std::uint16_t add_pcie_capability(ConfigSpace& cs, const PcieCapOptions& o) {
  CapabilityAllocator alloc(cs);
  std::uint16_t c = alloc.add(PCI_CAP_ID_EXP, 0x3c);  // through Slot Status 2
  const bool downstream =
      o.port_type == PCI_EXP_TYPE_ROOT_PORT || o.port_type == PCI_EXP_TYPE_DOWNSTREAM;
  const bool root = o.port_type == PCI_EXP_TYPE_ROOT_PORT;
  const bool endpoint = o.port_type == PCI_EXP_TYPE_ENDPOINT || o.port_type == PCI_EXP_TYPE_LEG_END;
  cs.define(c + PCI_EXP_FLAGS, 2,
            2u | (static_cast<std::uint32_t>(o.port_type) << 4) |
                (o.slot_implemented ? PCI_EXP_FLAGS_SLOT : 0));

  std::uint32_t devcap = payload_code(o.max_payload_supported) & PCI_EXP_DEVCAP_PAYLOAD;
  if (o.extended_tag) devcap |= PCI_EXP_DEVCAP_EXT_TAG;
  devcap |= PCI_EXP_DEVCAP_RBER;
  if (o.flr && endpoint) devcap |= PCI_EXP_DEVCAP_FLR;
  cs.define(c + PCI_EXP_DEVCAP, 4, devcap);

  // Device Control reset value: MPS 128, MRRS 512, relaxed ordering and
  // no-snoop enabled (PCIe Base 7.5.3.4 defaults).
  std::uint32_t devctl =
      PCI_EXP_DEVCTL_RELAX_EN | PCI_EXP_DEVCTL_NOSNOOP_EN | PCI_EXP_DEVCTL_READRQ_512B;
  std::uint32_t devctl_mask = PCI_EXP_DEVCTL_CERE | PCI_EXP_DEVCTL_NFERE | PCI_EXP_DEVCTL_FERE |
                              PCI_EXP_DEVCTL_URRE | PCI_EXP_DEVCTL_RELAX_EN |
                              PCI_EXP_DEVCTL_PAYLOAD | PCI_EXP_DEVCTL_AUX_PME |
                              PCI_EXP_DEVCTL_NOSNOOP_EN | PCI_EXP_DEVCTL_READRQ;
  if (o.extended_tag) devctl_mask |= PCI_EXP_DEVCTL_EXT_TAG;
  if (o.vf) {
    // VF Device Control: everything but Initiate FLR is RsvdP (SR-IOV 3.5).
    devctl = 0;
    devctl_mask = 0;
  }
  // Initiate FLR is not in the write mask: it always reads 0 and the owner
  // acts on the written value (SPEC.md D).
  cs.define(c + PCI_EXP_DEVCTL, 2, devctl, devctl_mask);
  cs.define(c + PCI_EXP_DEVSTA, 2, 0, 0,
            PCI_EXP_DEVSTA_CED | PCI_EXP_DEVSTA_NFED | PCI_EXP_DEVSTA_FED | PCI_EXP_DEVSTA_URD);

  std::uint32_t lnkcap = static_cast<std::uint32_t>(o.max_link_speed) |
                         (static_cast<std::uint32_t>(o.max_link_width) << 4) |
                         (static_cast<std::uint32_t>(o.port_number) << 24);
  // Downstream ports report DL_Active and Surprise Down (7.5.3.6).
  if (downstream) lnkcap |= PCI_EXP_LNKCAP_DLLLARC | PCI_EXP_LNKCAP_SDERC;
  cs.define(c + PCI_EXP_LNKCAP, 4, lnkcap);
  std::uint32_t lnkctl_mask = PCI_EXP_LNKCTL_ASPMC | PCI_EXP_LNKCTL_CCC | PCI_EXP_LNKCTL_ES |
                              PCI_EXP_LNKCTL_HAWD | PCI_EXP_LNKCTL_LBMIE | PCI_EXP_LNKCTL_LABIE;
  if (!root) lnkctl_mask |= PCI_EXP_LNKCTL_RCB;  // a root port's RCB is hardwired
  if (downstream) lnkctl_mask |= PCI_EXP_LNKCTL_LD;
  if (o.vf) lnkctl_mask = 0;  // VF Link Control is RsvdP
  cs.define(c + PCI_EXP_LNKCTL, 2, 0, lnkctl_mask);
  cs.define(c + PCI_EXP_LNKSTA, 2, 0);

  if (o.slot_implemented) {
    cs.define(c + PCI_EXP_SLTCAP, 4, static_cast<std::uint32_t>(o.physical_slot) << 19);
    cs.define(c + PCI_EXP_SLTCTL, 2, 0);
    // Presence Detect Changed and DL State Changed are RW1C (7.5.3.11).
    cs.define(c + PCI_EXP_SLTSTA, 2, 0, 0, PCI_EXP_SLTSTA_PDC | PCI_EXP_SLTSTA_DLLSC);
  }
  if (root) {
    cs.define(c + PCI_EXP_RTCAP, 2, o.rrs_sw_visibility ? PCI_EXP_RTCAP_CRSVIS : 0);
    cs.define(c + PCI_EXP_RTCTL, 2, 0,
              PCI_EXP_RTCTL_SECEE | PCI_EXP_RTCTL_SENFEE | PCI_EXP_RTCTL_SEFEE |
                  PCI_EXP_RTCTL_PMEIE | (o.rrs_sw_visibility ? PCI_EXP_RTCTL_CRSSVE : 0));
    cs.define(c + PCI_EXP_RTSTA, 4, 0);
  }

  std::uint32_t devcap2 = kDevCap2CompletionTimeoutRanges | PCI_EXP_DEVCAP2_COMP_TMOUT_DIS;
  std::uint32_t devctl2_mask = PCI_EXP_DEVCTL2_COMP_TIMEOUT | PCI_EXP_DEVCTL2_COMP_TMOUT_DIS |
                               PCI_EXP_DEVCTL2_IDO_REQ_EN | PCI_EXP_DEVCTL2_IDO_CMP_EN;
  if (o.ari_forwarding && downstream) {
    devcap2 |= PCI_EXP_DEVCAP2_ARI;
    devctl2_mask |= PCI_EXP_DEVCTL2_ARI;
  }
  if (o.ten_bit_tag_completer) devcap2 |= kDevCap2TenBitTagCompleter;
  if (o.ten_bit_tag_requester) {
    devcap2 |= kDevCap2TenBitTagRequester;
    devctl2_mask |= kDevCtl2TenBitTagRequesterEnable;
  }
  if (o.vf) devctl2_mask = 0;  // completion timeout controls come from the PF
  cs.define(c + PCI_EXP_DEVCAP2, 4, devcap2);
  cs.define(c + PCI_EXP_DEVCTL2, 2, 0, devctl2_mask);
  std::uint32_t speeds = ((1u << o.max_link_speed) - 1u) << 1;
  cs.define(c + PCI_EXP_LNKCAP2, 4, speeds);
  cs.define(c + PCI_EXP_LNKCTL2, 2, static_cast<std::uint32_t>(o.max_link_speed),
            o.vf ? 0 : PCI_EXP_LNKCTL2_TLS);
  return c;
}

void set_link_status(ConfigSpace& cs, int speed, int width, bool dll_active) {
  std::uint16_t c = cs.find_capability(PCI_CAP_ID_EXP);
  if (!c) return;
  std::uint16_t v =
      static_cast<std::uint16_t>((speed & 0xf) | ((width & 0x3f) << 4) | PCI_EXP_LNKSTA_SLC);
  if (dll_active && (cs.get32(c + PCI_EXP_LNKCAP) & PCI_EXP_LNKCAP_DLLLARC))
    v |= PCI_EXP_LNKSTA_DLLLA;
  cs.set16(c + PCI_EXP_LNKSTA, v);
  cs.capture_reset_value(c + PCI_EXP_LNKSTA, 2);
}

void set_dll_active(ConfigSpace& cs, bool active, bool present) {
  std::uint16_t c = cs.find_capability(PCI_CAP_ID_EXP);
  if (!c) return;
  const bool slot = cs.get16(c + PCI_EXP_FLAGS) & PCI_EXP_FLAGS_SLOT;
  // Data Link Layer Link Active (7.5.3.8): implemented when the port is
  // DL Active Reporting Capable, else hardwired to 0; a change sets Data
  // Link Layer State Changed in a slot's Slot Status (7.5.3.11).
  if (cs.get32(c + PCI_EXP_LNKCAP) & PCI_EXP_LNKCAP_DLLLARC) {
    const bool was = cs.get16(c + PCI_EXP_LNKSTA) & PCI_EXP_LNKSTA_DLLLA;
    cs.set_bits16(c + PCI_EXP_LNKSTA, PCI_EXP_LNKSTA_DLLLA, active);
    if (slot && was != active) cs.set_bits16(c + PCI_EXP_SLTSTA, PCI_EXP_SLTSTA_DLLSC, true);
  }
  // Presence Detect State follows the adapter; a change sets Presence
  // Detect Changed.
  if (slot && static_cast<bool>(cs.get16(c + PCI_EXP_SLTSTA) & PCI_EXP_SLTSTA_PDS) != present) {
    cs.set_bits16(c + PCI_EXP_SLTSTA, PCI_EXP_SLTSTA_PDS, present);
    cs.set_bits16(c + PCI_EXP_SLTSTA, PCI_EXP_SLTSTA_PDC, true);
  }
}

// ---------------------------------------------------------------- PM

std::uint16_t add_pm_capability(ConfigSpace& cs, const PmOptions& o) {
  CapabilityAllocator alloc(cs);
  std::uint16_t c = alloc.add(PCI_CAP_ID_PM, PCI_PM_SIZEOF);
  cs.define(c + PCI_PM_PMC, 2, 3);  // version 3 (PCI PM 1.2), D0 and D3hot only
  cs.define(c + PCI_PM_CTRL, 2, o.no_soft_reset ? PCI_PM_CTRL_NO_SOFT_RESET : 0,
            PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_ENABLE, PCI_PM_CTRL_PME_STATUS);
  cs.define(c + PCI_PM_PPB_EXTENSIONS, 1, 0);
  cs.define(c + PCI_PM_DATA_REGISTER, 1, 0);
  return c;
}

// ---------------------------------------------------------------- MSI-X

std::uint16_t add_msix_capability(ConfigSpace& cs, const MsixOptions& o) {
  if (o.table_size < 1 || o.table_size > 2048)
    throw ModelError("config_space",
                     "MSI-X table size must be 1..2048, got " + std::to_string(o.table_size));
  CapabilityAllocator alloc(cs);
  std::uint16_t c = alloc.add(PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF);
  cs.define(c + PCI_MSIX_FLAGS, 2, static_cast<std::uint32_t>(o.table_size - 1),
            PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE);
  cs.define(c + PCI_MSIX_TABLE, 4, (o.table_offset & PCI_MSIX_TABLE_OFFSET) | o.table_bir);
  cs.define(c + PCI_MSIX_PBA, 4, (o.pba_offset & PCI_MSIX_PBA_OFFSET) | o.pba_bir);
  return c;
}

// ---------------------------------------------------------------- SR-IOV

std::uint16_t add_sriov_capability(ConfigSpace& cs, const SriovOptions& o) {
  CapabilityAllocator alloc(cs);
  std::uint16_t c = alloc.add_extended(PCI_EXT_CAP_ID_SRIOV, 1, PCI_EXT_CAP_SRIOV_SIZEOF);
  cs.define(c + PCI_SRIOV_CAP, 4, o.ari_preserved ? kSriovCapAriPreserved : 0);
  cs.define(c + PCI_SRIOV_CTRL, 2, 0, PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE | PCI_SRIOV_CTRL_ARI);
  // ARI Capable Hierarchy survives FLR, not conventional reset (SPEC.md D).
  cs.set_flr_keep(c + PCI_SRIOV_CTRL, 2, PCI_SRIOV_CTRL_ARI);
  cs.define(c + PCI_SRIOV_STATUS, 2, 0);
  cs.define(c + PCI_SRIOV_INITIAL_VF, 2, o.total_vfs);
  cs.define(c + PCI_SRIOV_TOTAL_VF, 2, o.total_vfs);
  cs.define(c + PCI_SRIOV_NUM_VF, 2, 0, 0xffff);
  cs.define(c + PCI_SRIOV_FUNC_LINK, 2, o.function_dependency_link);
  cs.define(c + PCI_SRIOV_VF_OFFSET, 2, o.first_vf_offset);
  cs.define(c + PCI_SRIOV_VF_STRIDE, 2, o.vf_stride);
  cs.define(c + PCI_SRIOV_VF_DID, 2, o.vf_device_id);
  cs.define(c + PCI_SRIOV_SUP_PGSIZE, 4, o.supported_page_sizes);
  cs.define(c + PCI_SRIOV_SYS_PGSIZE, 4, 1, o.supported_page_sizes);
  for (unsigned i = 0; i < PCI_SRIOV_NUM_BARS; ++i) {
    const BarSpec& b = o.vf_bars[i];
    std::uint16_t reg = static_cast<std::uint16_t>(c + PCI_SRIOV_BAR + 4 * i);
    if (b.size == 0) continue;
    if (b.is_64bit && i == 5) throw ModelError("config_space", "VF BAR5 cannot be 64-bit");
    define_memory_bar(cs, reg, b);
    if (b.is_64bit) ++i;
  }
  cs.define(c + PCI_SRIOV_VFM, 4, 0);
  return c;
}

std::uint16_t add_ari_capability(ConfigSpace& cs, std::uint8_t next_function) {
  CapabilityAllocator alloc(cs);
  std::uint16_t c = alloc.add_extended(PCI_EXT_CAP_ID_ARI, 1, PCI_EXT_CAP_ARI_SIZEOF);
  cs.define(c + PCI_ARI_CAP, 2, static_cast<std::uint32_t>(next_function) << 8);
  cs.define(c + PCI_ARI_CTRL, 2, 0);
  return c;
}

std::uint16_t add_acs_capability(ConfigSpace& cs, std::uint16_t supported,
                                 unsigned egress_vector_bits) {
  CapabilityAllocator alloc(cs);
  std::uint16_t vec_bytes = static_cast<std::uint16_t>(((egress_vector_bits + 31) / 32) * 4);
  std::uint16_t c = alloc.add_extended(PCI_EXT_CAP_ID_ACS, 1, 8 + vec_bytes);
  std::uint32_t cap = supported & 0x7f;
  if (egress_vector_bits) cap |= ((egress_vector_bits == 256 ? 0 : egress_vector_bits) & 0xff) << 8;
  cs.define(c + PCI_ACS_CAP, 2, cap);
  cs.define(c + PCI_ACS_CTRL, 2, 0, supported & 0x7f);
  for (std::uint16_t i = 0; i < vec_bytes; i = static_cast<std::uint16_t>(i + 4))
    cs.define(c + PCI_ACS_EGRESS_CTL_V + i, 4, 0, 0xffffffff);
  return c;
}

// ---------------------------------------------------------------- AER

namespace {
constexpr std::uint32_t kAerUncSupported =
    PCI_ERR_UNC_DLP | PCI_ERR_UNC_SURPDN | PCI_ERR_UNC_POISON_TLP | PCI_ERR_UNC_FCP |
    PCI_ERR_UNC_COMP_TIME | PCI_ERR_UNC_COMP_ABORT | PCI_ERR_UNC_UNX_COMP | PCI_ERR_UNC_RX_OVER |
    PCI_ERR_UNC_MALF_TLP | PCI_ERR_UNC_ECRC | PCI_ERR_UNC_UNSUP | PCI_ERR_UNC_ACSV |
    PCI_ERR_UNC_INTN;
// Default severity (PCIe Base 7.8.4.4): DLP, SURPDN, FCP, RX_OVER, MALF
// and Uncorrectable Internal Error are fatal.
constexpr std::uint32_t kAerUncDefaultSeverity = PCI_ERR_UNC_DLP | PCI_ERR_UNC_SURPDN |
                                                 PCI_ERR_UNC_FCP | PCI_ERR_UNC_RX_OVER |
                                                 PCI_ERR_UNC_MALF_TLP | PCI_ERR_UNC_INTN;
// Uncorrectable Internal Error is masked by default (7.8.4.3).
constexpr std::uint32_t kAerUncDefaultMask = PCI_ERR_UNC_INTN;
constexpr std::uint32_t kAerCorSupported = PCI_ERR_COR_RCVR | PCI_ERR_COR_BAD_TLP |
                                           PCI_ERR_COR_BAD_DLLP | PCI_ERR_COR_REP_ROLL |
                                           PCI_ERR_COR_REP_TIMER | PCI_ERR_COR_ADV_NFAT;
// Completion Timeout Prefix/Header Log Capable (7.8.4.7): a Completion
// Timeout logs the header of the request that timed out.
constexpr std::uint32_t kAerCapCtoHeaderLog = 1u << 12;
constexpr std::uint32_t kEcrcCaps =
    PCI_ERR_CAP_ECRC_GENC | PCI_ERR_CAP_ECRC_CHKC | kAerCapCtoHeaderLog;
}  // namespace

std::uint16_t add_aer_capability(ConfigSpace& cs, bool root_port) {
  CapabilityAllocator alloc(cs);
  std::uint16_t c = alloc.add_extended(PCI_EXT_CAP_ID_ERR, 2, root_port ? 0x48 : 0x38);
  // AER status/mask/severity registers are sticky (RW1CS / RWS).
  cs.define(c + PCI_ERR_UNCOR_STATUS, 4, 0, 0, kAerUncSupported, kAerUncSupported);
  cs.define(c + PCI_ERR_UNCOR_MASK, 4, kAerUncDefaultMask, kAerUncSupported, 0, kAerUncSupported);
  cs.define(c + PCI_ERR_UNCOR_SEVER, 4, kAerUncDefaultSeverity, kAerUncSupported, 0,
            kAerUncSupported);
  cs.define(c + PCI_ERR_COR_STATUS, 4, 0, 0, kAerCorSupported, kAerCorSupported);
  cs.define(c + PCI_ERR_COR_MASK, 4, PCI_ERR_COR_ADV_NFAT, kAerCorSupported, 0, kAerCorSupported);
  // ECRC generation and checking are capable (their enables are RWS), and
  // completion timeouts log their request's header.
  cs.define(c + PCI_ERR_CAP, 4, kEcrcCaps, PCI_ERR_CAP_ECRC_GENE | PCI_ERR_CAP_ECRC_CHKE, 0,
            0x1f | PCI_ERR_CAP_ECRC_GENE | PCI_ERR_CAP_ECRC_CHKE);
  for (unsigned i = 0; i < 4; ++i)
    cs.define(c + PCI_ERR_HEADER_LOG + 4 * i, 4, 0, 0, 0, 0xffffffff);
  if (root_port) {
    cs.define(c + PCI_ERR_ROOT_COMMAND, 4, 0, 0x7);
    cs.define(c + PCI_ERR_ROOT_STATUS, 4, 0, 0, 0x7f, 0x7f);
    cs.define(c + PCI_ERR_ROOT_ERR_SRC, 4, 0, 0, 0, 0xffffffff);
  }
  return c;
}

std::uint16_t add_dpc_capability(ConfigSpace& cs) {
  CapabilityAllocator alloc(cs);
  std::uint16_t c = alloc.add_extended(PCI_EXT_CAP_ID_DPC, 1, 0x0c);
  // Interrupt message number 0, software triggering supported.
  cs.define(c + PCI_EXP_DPC_CAP, 2, PCI_EXP_DPC_CAP_SW_TRIGGER);
  // Trigger Enable (bits 1:0), Completion Control, Interrupt Enable,
  // ERR_COR Enable, Software Trigger (write-only, reads 0).
  cs.define(c + PCI_EXP_DPC_CTL, 2, 0, 0x00ff);
  // Trigger Status and Interrupt Status are RW1C; the reason is RO.
  cs.define(c + PCI_EXP_DPC_STATUS, 2, 0, 0,
            PCI_EXP_DPC_STATUS_TRIGGER | PCI_EXP_DPC_STATUS_INTERRUPT);
  cs.define(c + PCI_EXP_DPC_SOURCE_ID, 2, 0);
  return c;
}

bool ecrc_check_enabled(const ConfigSpace& cs) {
  const std::uint16_t aer = cs.find_extended_capability(PCI_EXT_CAP_ID_ERR);
  return aer && (cs.get32(aer + PCI_ERR_CAP) & PCI_ERR_CAP_ECRC_CHKE);
}

const char* to_string(ErrorKind k) {
  switch (k) {
    case ErrorKind::kUnsupportedRequest:
      return "UnsupReq";
    case ErrorKind::kCompleterAbort:
      return "CmpltAbrt";
    case ErrorKind::kCompletionTimeout:
      return "CmpltTO";
    case ErrorKind::kUnexpectedCompletion:
      return "UnxCmplt";
    case ErrorKind::kAcsViolation:
      return "ACSViol";
    case ErrorKind::kPoisonedTlp:
      return "PoisonTLP";
    case ErrorKind::kMalformedTlp:
      return "MalfTLP";
    case ErrorKind::kEcrc:
      return "ECRC";
    case ErrorKind::kSurpriseDown:
      return "SurpriseDown";
    case ErrorKind::kInternal:
      return "UncorrIntErr";
    case ErrorKind::kDataLinkProtocol:
      return "DLP";
    case ErrorKind::kFlowControlProtocol:
      return "FCP";
    case ErrorKind::kReceiverOverflow:
      return "RxOF";
    case ErrorKind::kReceiverError:
      return "RxErr";
    case ErrorKind::kBadTlp:
      return "BadTLP";
    case ErrorKind::kBadDllp:
      return "BadDLLP";
    case ErrorKind::kReplayRollover:
      return "Rollover";
    case ErrorKind::kReplayTimeout:
      return "Timeout";
    case ErrorKind::kAdvisoryNonFatal:
      return "AdvNonFatalErr";
  }
  return "?";
}

const char* to_string(ErrorSeverity s) {
  switch (s) {
    case ErrorSeverity::kNone:
      return "none";
    case ErrorSeverity::kCorrectable:
      return "correctable";
    case ErrorSeverity::kNonFatal:
      return "non_fatal";
    case ErrorSeverity::kFatal:
      return "fatal";
  }
  return "?";
}

bool is_correctable(ErrorKind k) {
  return k >= ErrorKind::kReceiverError;
}

std::uint32_t aer_bit(ErrorKind k) {
  switch (k) {
    case ErrorKind::kUnsupportedRequest:
      return PCI_ERR_UNC_UNSUP;
    case ErrorKind::kCompleterAbort:
      return PCI_ERR_UNC_COMP_ABORT;
    case ErrorKind::kCompletionTimeout:
      return PCI_ERR_UNC_COMP_TIME;
    case ErrorKind::kUnexpectedCompletion:
      return PCI_ERR_UNC_UNX_COMP;
    case ErrorKind::kAcsViolation:
      return PCI_ERR_UNC_ACSV;
    case ErrorKind::kPoisonedTlp:
      return PCI_ERR_UNC_POISON_TLP;
    case ErrorKind::kMalformedTlp:
      return PCI_ERR_UNC_MALF_TLP;
    case ErrorKind::kEcrc:
      return PCI_ERR_UNC_ECRC;
    case ErrorKind::kSurpriseDown:
      return PCI_ERR_UNC_SURPDN;
    case ErrorKind::kInternal:
      return PCI_ERR_UNC_INTN;
    case ErrorKind::kDataLinkProtocol:
      return PCI_ERR_UNC_DLP;
    case ErrorKind::kFlowControlProtocol:
      return PCI_ERR_UNC_FCP;
    case ErrorKind::kReceiverOverflow:
      return PCI_ERR_UNC_RX_OVER;
    case ErrorKind::kReceiverError:
      return PCI_ERR_COR_RCVR;
    case ErrorKind::kBadTlp:
      return PCI_ERR_COR_BAD_TLP;
    case ErrorKind::kBadDllp:
      return PCI_ERR_COR_BAD_DLLP;
    case ErrorKind::kReplayRollover:
      return PCI_ERR_COR_REP_ROLL;
    case ErrorKind::kReplayTimeout:
      return PCI_ERR_COR_REP_TIMER;
    case ErrorKind::kAdvisoryNonFatal:
      return PCI_ERR_COR_ADV_NFAT;
  }
  return 0;
}

bool error_kind_of_bit(bool correctable, std::uint32_t bit, ErrorKind* out) {
  const std::uint32_t supported = correctable ? kAerCorSupported : kAerUncSupported;
  if (bit == 0 || (bit & (bit - 1)) || !(bit & supported)) return false;
  for (unsigned k = 0; k <= static_cast<unsigned>(ErrorKind::kAdvisoryNonFatal); ++k) {
    const auto kind = static_cast<ErrorKind>(k);
    if (is_correctable(kind) == correctable && aer_bit(kind) == bit) {
      *out = kind;
      return true;
    }
  }
  return false;
}

ErrorReport record_error(ConfigSpace& cs, ErrorKind kind,
                         const std::array<std::uint32_t, 4>& header, bool advisory,
                         const ConfigSpace* controls) {
  ErrorReport r;
  const std::uint32_t bit = aer_bit(kind);
  const std::uint16_t aer = cs.find_extended_capability(PCI_EXT_CAP_ID_ERR);
  const std::uint16_t exp = cs.find_capability(PCI_CAP_ID_EXP);
  // A VF decides on messages with its PF's reporting enables (SERR# Enable,
  // Device Control's Reporting Enables are RsvdP in a VF: SR-IOV 9.4.1).
  const ConfigSpace& ctl = controls ? *controls : cs;
  const std::uint16_t ctl_exp = controls ? ctl.find_capability(PCI_CAP_ID_EXP) : exp;
  const std::uint16_t devctl = ctl_exp ? ctl.get16(ctl_exp + PCI_EXP_DEVCTL) : 0;
  const bool serr = ctl.get16(PCI_COMMAND) & PCI_COMMAND_SERR;
  bool masked = false;
  if (is_correctable(kind)) {
    r.severity = ErrorSeverity::kCorrectable;
    if (aer) {
      cs.set32(aer + PCI_ERR_COR_STATUS, cs.get32(aer + PCI_ERR_COR_STATUS) | bit);
      masked = cs.get32(aer + PCI_ERR_COR_MASK) & bit;
    }
  } else {
    const bool fatal = aer ? (cs.get32(aer + PCI_ERR_UNCOR_SEVER) & bit) != 0
                           : (kAerUncDefaultSeverity & bit) != 0;
    r.severity = fatal ? ErrorSeverity::kFatal : ErrorSeverity::kNonFatal;
    // Advisory Non-Fatal (6.2.3.2.4): a non-fatal error the caller can
    // handle is reported as correctable, if ADV_NFAT is not masked.
    r.advisory = advisory && !fatal && aer;
    if (aer) {
      const std::uint32_t status = cs.get32(aer + PCI_ERR_UNCOR_STATUS);
      const std::uint32_t mask = cs.get32(aer + PCI_ERR_UNCOR_MASK);
      masked = (mask & bit) != 0;
      // The First Error Pointer and Header Log hold the first unmasked
      // error until software clears its status bit (7.8.4.7).
      const bool first = (status & ~mask) == 0;
      cs.set32(aer + PCI_ERR_UNCOR_STATUS, status | bit);
      if (!masked && first) {
        unsigned index = 0;
        while (!((bit >> index) & 1))
          ++index;
        std::uint32_t cap = cs.get32(aer + PCI_ERR_CAP);
        cs.set32(aer + PCI_ERR_CAP, (cap & ~0x1fu) | index);
        for (unsigned i = 0; i < 4; ++i)
          cs.set32(aer + PCI_ERR_HEADER_LOG + 4 * i, header[i]);
      }
      if (r.advisory && !masked) {
        cs.set32(aer + PCI_ERR_COR_STATUS,
                 cs.get32(aer + PCI_ERR_COR_STATUS) | PCI_ERR_COR_ADV_NFAT);
        masked = cs.get32(aer + PCI_ERR_COR_MASK) & PCI_ERR_COR_ADV_NFAT;
      }
    }
  }
  if (exp) {
    std::uint16_t sta = cs.get16(exp + PCI_EXP_DEVSTA);
    // Detected bits are set whatever the masks say (6.2.5); an advisory
    // error counts as correctable.
    if (r.severity == ErrorSeverity::kCorrectable || r.advisory)
      sta |= PCI_EXP_DEVSTA_CED;
    else
      sta |= r.severity == ErrorSeverity::kFatal ? PCI_EXP_DEVSTA_FED : PCI_EXP_DEVSTA_NFED;
    if (kind == ErrorKind::kUnsupportedRequest) sta |= PCI_EXP_DEVSTA_URD;
    cs.set16(exp + PCI_EXP_DEVSTA, sta);
  }
  if (masked) return r;
  // The message (6.2.6): ERR_COR needs Correctable Error Reporting Enable;
  // ERR_NONFATAL / ERR_FATAL need their enable or SERR# Enable; UR needs
  // Unsupported Request Reporting Enable as well.
  if (r.severity == ErrorSeverity::kCorrectable || r.advisory) {
    if (devctl & PCI_EXP_DEVCTL_CERE) r.message = ErrorSeverity::kCorrectable;
  } else {
    const bool ur_ok = kind != ErrorKind::kUnsupportedRequest || (devctl & PCI_EXP_DEVCTL_URRE);
    const std::uint16_t enable =
        r.severity == ErrorSeverity::kFatal ? PCI_EXP_DEVCTL_FERE : PCI_EXP_DEVCTL_NFERE;
    if (ur_ok && ((devctl & enable) || serr)) {
      r.message = r.severity;
      if (serr) cs.set_bits16(PCI_STATUS, PCI_STATUS_SIG_SYSTEM_ERROR, true);
    }
  }
  return r;
}

void note_received_ur(ConfigSpace& cs, bool secondary) {
  cs.set_bits16(secondary ? PCI_SEC_STATUS : PCI_STATUS, PCI_STATUS_REC_MASTER_ABORT, true);
}
void note_received_ca(ConfigSpace& cs, bool secondary) {
  cs.set_bits16(secondary ? PCI_SEC_STATUS : PCI_STATUS, PCI_STATUS_REC_TARGET_ABORT, true);
}
void note_signaled_ca(ConfigSpace& cs) {
  cs.set_bits16(PCI_STATUS, PCI_STATUS_SIG_TARGET_ABORT, true);
}

std::uint32_t max_payload_size(const ConfigSpace& cs, std::uint16_t exp) {
  if (!exp) return 128;
  return 128u << ((cs.get16(exp + PCI_EXP_DEVCTL) & PCI_EXP_DEVCTL_PAYLOAD) >> 5);
}

std::uint32_t max_read_request(const ConfigSpace& cs, std::uint16_t exp) {
  if (!exp) return 512;
  return 128u << ((cs.get16(exp + PCI_EXP_DEVCTL) & PCI_EXP_DEVCTL_READRQ) >> 12);
}

std::uint32_t max_payload_size(const ConfigSpace& cs) {
  return max_payload_size(cs, cs.find_capability(PCI_CAP_ID_EXP));
}

std::uint32_t max_read_request(const ConfigSpace& cs) {
  return max_read_request(cs, cs.find_capability(PCI_CAP_ID_EXP));
}

}  // namespace pciesim::fabric

namespace pciesim::fabric {

std::uint64_t completion_timeout_fs(std::uint16_t ctl2) {
  if (ctl2 & PCI_EXP_DEVCTL2_COMP_TMOUT_DIS) return 0;
  switch (ctl2 & PCI_EXP_DEVCTL2_COMP_TIMEOUT) {
    case 0x1:
      return 100 * kUs;
    case 0x2:
      return 10 * kMs;
    case 0x5:
      return 55 * kMs;
    case 0x6:
      return 210 * kMs;
    case 0x9:
      return 900 * kMs;
    case 0xa:
      return 3500 * kMs;
    case 0xd:
      return 13 * kSec;
    case 0xe:
      return 64 * kSec;
    default:
      return 50 * kMs;  // range code 0: the default range, 50 us - 50 ms
  }
}

}  // namespace pciesim::fabric

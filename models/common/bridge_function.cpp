#include "models/common/bridge_function.h"

#include "fabric/bridge/bridge_decode.h"

namespace pciesim::models {

using namespace fabric;

BridgeFunction::BridgeFunction(std::string name, const BridgeOptions& o)
    : name_(std::move(name)), options_(o) {
  Type1Header h;
  h.vendor_id = o.vendor_id;
  h.device_id = o.device_id;
  h.revision = o.revision;
  build_type1_header(cs_, h);
  add_pm_capability(cs_, {});
  PcieCapOptions pc;
  pc.port_type = o.port_type;
  const bool downstream =
      o.port_type == PCI_EXP_TYPE_ROOT_PORT || o.port_type == PCI_EXP_TYPE_DOWNSTREAM;
  pc.slot_implemented = downstream;
  pc.physical_slot = o.physical_slot;
  pc.ari_forwarding = o.ari_forwarding && downstream;
  pc.rrs_sw_visibility = o.rrs_sw_visibility;
  pc.max_link_speed = o.link_speed;
  pc.max_link_width = o.link_width;
  pc.port_number = o.port_number;
  pc.max_payload_supported = o.max_payload_supported;
  pc.ten_bit_tag_completer = true;
  exp_ = add_pcie_capability(cs_, pc);
  if (o.port_type == PCI_EXP_TYPE_ROOT_PORT && o.root_rcb_128) {
    cs_.set_bits16(exp_ + PCI_EXP_LNKCTL, PCI_EXP_LNKCTL_RCB, true);
    cs_.capture_reset_value(exp_ + PCI_EXP_LNKCTL, 2);
  }
  if (o.aer) add_aer_capability(cs_, o.port_type == PCI_EXP_TYPE_ROOT_PORT);
  if (o.acs_supported && downstream)
    add_acs_capability(cs_, o.acs_supported,
                       (o.acs_supported & PCI_ACS_EC) ? o.egress_vector_bits : 0);
  if (o.dpc && downstream) {
    dpc_ = add_dpc_capability(cs_);
    cs_.watch_writes(dpc_ + PCI_EXP_DPC_STATUS, 2, kDpcStatus);
  }
  cs_.watch_writes(PCI_BRIDGE_CONTROL, 2, kBridgeControl);
  cs_.watch_writes(exp_ + PCI_EXP_DEVCTL, 2, kDevCtl);
  cs_.watch_writes(exp_ + PCI_EXP_LNKCTL, 2, kLnkCtl);
  cs_.set_listener(this);
}

bool BridgeFunction::downstream_port() const {
  return options_.port_type == PCI_EXP_TYPE_ROOT_PORT ||
         options_.port_type == PCI_EXP_TYPE_DOWNSTREAM;
}

std::uint16_t BridgeFunction::acs_control() const {
  return fabric::acs_control(cs_);
}

void BridgeFunction::reset() {
  cs_.reset(ResetKind::kConventional);
}

bool BridgeFunction::dpc_triggered() const {
  return dpc_ && (cs_.get16(dpc_ + PCI_EXP_DPC_STATUS) & PCI_EXP_DPC_STATUS_TRIGGER);
}

bool BridgeFunction::dpc_trigger(unsigned reason, fabric::RoutingId source, bool fatal) {
  if (!dpc_ || dpc_triggered()) return false;
  const std::uint16_t ctl = cs_.get16(dpc_ + PCI_EXP_DPC_CTL);
  // DPC Trigger Enable (7.9.14.3): 01b on ERR_FATAL, 10b on ERR_NONFATAL
  // or ERR_FATAL.
  const unsigned en = ctl & 0x3;
  if (en == 0 || en == 3 || (en == 1 && !fatal)) return false;
  std::uint16_t st = PCI_EXP_DPC_STATUS_TRIGGER | static_cast<std::uint16_t>((reason & 3) << 1);
  const bool irq = ctl & PCI_EXP_DPC_CTL_INT_EN;
  if (irq) st |= PCI_EXP_DPC_STATUS_INTERRUPT;
  cs_.set16(dpc_ + PCI_EXP_DPC_STATUS, st);
  // The source is recorded for the received-message reasons only.
  cs_.set16(dpc_ + PCI_EXP_DPC_SOURCE_ID, reason ? source.value() : 0);
  if (on_dpc) on_dpc(true);
  if (irq && on_dpc_interrupt) on_dpc_interrupt();
  return true;
}

void BridgeFunction::config_written(ConfigSpace& cs, int watch, const ConfigWrite& w) {
  switch (watch) {
    case kDpcStatus: {
      std::uint16_t off = static_cast<std::uint16_t>(dpc_ + PCI_EXP_DPC_STATUS);
      const bool was = w.old_field(off, 2) & PCI_EXP_DPC_STATUS_TRIGGER;
      const bool now = w.new_field(off, 2) & PCI_EXP_DPC_STATUS_TRIGGER;
      // Clearing Trigger Status releases containment: the link retrains.
      if (was && !now) {
        cs_.set16(off, 0);  // the reason is only valid while triggered
        if (on_dpc) on_dpc(false);
      }
      break;
    }
    case kBridgeControl: {
      bool was = w.old_field(PCI_BRIDGE_CONTROL, 2) & PCI_BRIDGE_CTL_BUS_RESET;
      bool now = w.new_field(PCI_BRIDGE_CONTROL, 2) & PCI_BRIDGE_CTL_BUS_RESET;
      if (was != now && on_secondary_bus_reset) on_secondary_bus_reset(now);
      break;
    }
    case kDevCtl: {
      std::uint16_t off = static_cast<std::uint16_t>(exp_ + PCI_EXP_DEVCTL);
      if ((w.old_field(off, 2) ^ w.new_field(off, 2)) & PCI_EXP_DEVCTL_PAYLOAD)
        if (on_mps_change) on_mps_change(max_payload_size(cs));
      break;
    }
    case kLnkCtl: {
      std::uint16_t off = static_cast<std::uint16_t>(exp_ + PCI_EXP_LNKCTL);
      bool was = w.old_field(off, 2) & PCI_EXP_LNKCTL_LD;
      bool now = w.new_field(off, 2) & PCI_EXP_LNKCTL_LD;
      if (was != now && on_link_disable) on_link_disable(now);
      break;
    }
  }
}

}  // namespace pciesim::models

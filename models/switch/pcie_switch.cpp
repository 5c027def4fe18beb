#include "models/switch/pcie_switch.h"

#include "fabric/bridge/bridge_decode.h"
#include "models/common/error_signal.h"

namespace pciesim::models {

using namespace fabric;

namespace {
TlpKind to_type0(TlpKind k) {
  return (k == TlpKind::CfgRd1 || k == TlpKind::CfgRd0) ? TlpKind::CfgRd0 : TlpKind::CfgWr0;
}
}  // namespace

PcieSwitch::PcieSwitch(sc_core::sc_module_name name, const SwitchParams& p)
    : sc_core::sc_module(name), params_(p), dsp_stats_(p.downstream_ports) {
  const std::string base = this->name();
  BridgeOptions uo;
  uo.vendor_id = p.vendor_id;
  uo.device_id = p.usp_device_id;
  uo.port_type = PCI_EXP_TYPE_UPSTREAM;
  uo.link_speed = p.max_link_speed;
  uo.link_width = p.max_link_width;
  uo.max_payload_supported = p.max_payload_supported;
  usp_ = std::make_unique<BridgeFunction>(base + ".usp", uo);
  usp_port_ = std::make_unique<Port>("usp", *this, /*upstream_end=*/false, -1);
  usp_->on_secondary_bus_reset = [this](bool asserted) {
    if (asserted) hot_reset_below();
  };
  usp_->on_mps_change = [this](std::uint32_t mps) {
    if (usp_port_->link()) usp_port_->link()->set_mps(mps);
  };
  for (unsigned i = 0; i < p.downstream_ports; ++i) {
    BridgeOptions o;
    o.vendor_id = p.vendor_id;
    o.device_id = p.dsp_device_id;
    o.port_type = PCI_EXP_TYPE_DOWNSTREAM;
    o.physical_slot = static_cast<std::uint16_t>(i + 1);
    o.ari_forwarding = p.ari_forwarding;
    o.acs_supported = p.acs_supported;
    // Egress Control Vector bit N = the port whose Port Number is N (the
    // upstream port is 0, dsp i is i + 1).
    o.egress_vector_bits = p.downstream_ports + 1;
    o.link_speed = p.max_link_speed;
    o.link_width = p.max_link_width;
    o.port_number = static_cast<std::uint8_t>(i + 1);
    o.max_payload_supported = p.max_payload_supported;
    o.dpc = p.dpc;
    std::string pname = "dsp" + std::to_string(i);
    dsps_.push_back(std::make_unique<BridgeFunction>(base + "." + pname, o));
    dsp_ports_.push_back(
        std::make_unique<Port>(pname.c_str(), *this, /*upstream_end=*/true, static_cast<int>(i)));
    Port* port = dsp_ports_.back().get();
    dsps_.back()->on_secondary_bus_reset = [port](bool asserted) {
      if (asserted) port->signal_hot_reset();
    };
    dsps_.back()->on_link_disable = [port](bool disabled) { port->set_link_up(!disabled); };
    dsps_.back()->on_dpc = [port](bool contained) { port->set_link_up(!contained); };
    BridgeFunction* fn = dsps_.back().get();
    dsps_.back()->on_dpc_interrupt = [this, fn, i] {
      ++dsp_stats_[i].dpc_triggers;
      if (on_dpc_interrupt) on_dpc_interrupt(fn->rid(), now_fs());
    };
    dsps_.back()->on_mps_change = [port](std::uint32_t mps) {
      if (port->link()) port->link()->set_mps(mps);
    };
  }
}

void PcieSwitch::port_link_state(Port& p, bool up) {
  // DL_Down at the upstream port resets the switch (PCIe Base 2.9.1).
  if (&p == usp_port_.get()) {
    if (!up) port_hot_reset(p);
    return;
  }
  set_dll_active(dsps_.at(static_cast<unsigned>(p.index()))->config(), up,
                 !(p.peer() && p.peer()->removed()));
}

void PcieSwitch::port_error(Port& p, ErrorKind kind, const std::array<std::uint32_t, 4>& header,
                            Time t) {
  report_error(&p == usp_port_.get() ? -1 : p.index(), kind, header, t);
}

void PcieSwitch::report_error(int dsp, ErrorKind kind, const std::array<std::uint32_t, 4>& header,
                              Time t, bool advisory) {
  at_time(t, [this, dsp, kind, header, t, advisory] { record(dsp, kind, header, t, advisory); });
}

void PcieSwitch::record(int dsp, ErrorKind kind, const std::array<std::uint32_t, 4>& header, Time t,
                        bool advisory) {
  BridgeFunction& fn = dsp < 0 ? *usp_ : *dsps_.at(static_cast<unsigned>(dsp));
  SwitchPortStats& st = dsp < 0 ? usp_stats_ : dsp_stats_.at(static_cast<unsigned>(dsp));
  const ErrorReport r = record_error(fn.config(), kind, header, advisory);
  if (dsp >= 0 && !r.advisory &&
      (r.severity == ErrorSeverity::kFatal || r.severity == ErrorSeverity::kNonFatal)) {
    // An unmasked uncorrectable error of the DSP itself: DPC reason 00b.
    const std::uint16_t aer = fn.config().find_extended_capability(PCI_EXT_CAP_ID_ERR);
    const bool masked = aer && (fn.config().get32(aer + PCI_ERR_UNCOR_MASK) & aer_bit(kind));
    if (!masked && fn.dpc_trigger(0, fn.rid(), r.severity == ErrorSeverity::kFatal)) return;
  }
  if (r.message == ErrorSeverity::kNone) return;
  ++st.error_messages_sent;
  send_error_message(*usp_port_, fn.rid(), r.message, t);
}

void PcieSwitch::forward_error_message(unsigned from, tlm::tlm_generic_payload& gp,
                                       TlpExtension& ext, Time arrival) {
  BridgeFunction& dsp = *dsps_[from];
  SwitchPortStats& st = dsp_stats_[from];
  const bool uncorrectable = ext.message_code != kMsgErrCor;
  if (uncorrectable) {
    // Received System Error in Secondary Status (7.5.1.3.7).
    dsp.config().set_bits16(PCI_SEC_STATUS, PCI_STATUS_SIG_SYSTEM_ERROR, true);
    if (dsp.dpc_trigger(ext.message_code == kMsgErrFatal ? 2 : 1, ext.requester,
                        ext.message_code == kMsgErrFatal)) {
      ++st.error_messages_blocked;  // contained: the DPC service handles it
      return;
    }
  }
  // A bridge forwards ERR_* from its secondary side only with SERR# Enable
  // set in Bridge Control (7.5.1.3.13; Linux pci_configure_serr sets it),
  // on both virtual bridges it crosses.
  if (!(dsp.config().get16(PCI_BRIDGE_CONTROL) & PCI_BRIDGE_CTL_SERR) ||
      !(usp_->config().get16(PCI_BRIDGE_CONTROL) & PCI_BRIDGE_CTL_SERR)) {
    ++st.error_messages_blocked;
    return;
  }
  ++st.error_messages_forwarded;
  sc_core::sc_time d = to_sc(arrival + params_.traversal_latency - now_fs());
  usp_port_->transmit(gp, d);
}

void PcieSwitch::hot_reset_below() {
  // A hot reset propagates to every downstream port and their links.
  for (unsigned i = 0; i < dsps_.size(); ++i) {
    dsps_[i]->reset();
    dsp_ports_[i]->signal_hot_reset();
  }
}

void PcieSwitch::port_hot_reset(Port&) {
  usp_->reset();
  hot_reset_below();
}

void PcieSwitch::local_config(ConfigSpace& cs, tlm::tlm_generic_payload& gp, TlpExtension& ext) {
  const std::uint16_t reg = config_register(gp.get_address());
  const unsigned size = gp.get_data_length();
  std::uint8_t* data = gp.get_data_ptr();
  if (!ConfigSpace::valid_access(reg, size)) {
    ext.status = CplStatus::kUR;
    return;
  }
  if (gp.is_write()) {
    std::uint32_t v = 0;
    for (unsigned i = 0; i < size; ++i)
      v |= static_cast<std::uint32_t>(data[i]) << (8 * i);
    cs.write(reg, size, v);
  } else {
    std::uint32_t v = cs.read(reg, size);
    for (unsigned i = 0; i < size; ++i)
      data[i] = static_cast<std::uint8_t>(v >> (8 * i));
  }
  ext.status = CplStatus::kSC;
}

PcieSwitch::Route PcieSwitch::route_config_below(RoutingId target, TlpKind kind) {
  const ConfigSpace& ucs = usp_->config();
  if (!bus_behind(ucs, target.bus())) return {Route::kUnsupported};
  if (target.bus() == secondary_bus(ucs)) {
    // The internal bus: DSP i is device i, function 0.
    if (target.function() != 0 || target.device() >= dsps_.size()) return {Route::kUnsupported};
    Route r{Route::kLocalConfig};
    r.local = &dsps_[target.device()]->config();
    r.port = static_cast<int>(target.device());
    return r;
  }
  for (unsigned i = 0; i < dsps_.size(); ++i) {
    ConfigRoute cr = route_config(dsps_[i]->config(), target.bus(), target.device(), true);
    if (cr == ConfigRoute::kNotMine) continue;
    if (cr == ConfigRoute::kBlockedDevice) return {Route::kUnsupported};
    Route r{Route::kDownstream, static_cast<int>(i)};
    r.kind_out = cr == ConfigRoute::kType0Secondary ? to_type0(kind) : kind;
    return r;
  }
  return {Route::kUnsupported};
}

PcieSwitch::Route PcieSwitch::route_from_above(tlm::tlm_generic_payload& gp, TlpExtension& ext) {
  const std::uint64_t addr = gp.get_address();
  if (is_config(ext.kind)) {
    RoutingId target = config_target(addr);
    if (ext.kind == TlpKind::CfgRd0 || ext.kind == TlpKind::CfgWr0) {
      // Type 0 on our link: the USP itself (device 0, function 0 only).
      if (target.device() != 0 || target.function() != 0) return {Route::kUnsupported};
      usp_->capture_rid(target);
      Route r{Route::kLocalConfig};
      r.local = &usp_->config();
      return r;
    }
    return route_config_below(target, ext.kind);
  }
  if (!is_memory(ext.kind)) return {Route::kUnsupported};
  // The USP forwards memory downstream only with Memory Space Enable and
  // inside its windows; then the DSP whose window claims the address.
  const ConfigSpace& ucs = usp_->config();
  const std::uint32_t len = gp.get_data_length();
  if (!memory_space_enabled(ucs) || !windows_contain(ucs, addr, len)) return {Route::kUnsupported};
  for (unsigned i = 0; i < dsps_.size(); ++i) {
    const ConfigSpace& d = dsps_[i]->config();
    if (memory_space_enabled(d) && windows_contain(d, addr, len))
      return {Route::kDownstream, static_cast<int>(i)};
  }
  return {Route::kUnsupported};
}

PcieSwitch::Route PcieSwitch::with_peer_window(Route r, std::uint64_t addr,
                                               std::uint32_t len) const {
  if (r.kind == Route::kUpstream)
    for (const auto& d : dsps_)
      if (windows_contain(d->config(), addr, len)) {
        r.peer_window = true;
        break;
      }
  return r;
}

bool PcieSwitch::memo_current(const RouteMemo& m) const {
  if (m.generations.size() != dsps_.size() + 1) return false;
  if (m.generations[0] != usp_->config().generation()) return false;
  for (std::size_t i = 0; i < dsps_.size(); ++i)
    if (m.generations[i + 1] != dsps_[i]->config().generation()) return false;
  return true;
}

PcieSwitch::Route PcieSwitch::route_from_below(unsigned from, tlm::tlm_generic_payload& gp,
                                               TlpExtension& ext) {
  const std::uint64_t addr = gp.get_address();
  const std::uint32_t len = gp.get_data_length();
  const std::uint64_t granule = std::uint64_t{1} << kWindowShift;
  const bool memoable = is_memory(ext.kind) && len > 0 && (addr & (granule - 1)) + len <= granule &&
                        from < dsps_.size();
  if (!memoable) return with_peer_window(decide_from_below(from, gp, ext), addr, len);
  if (below_memo_.size() != dsps_.size()) below_memo_.resize(dsps_.size());
  RouteMemo& m = below_memo_[from];
  if (m.page == addr >> kWindowShift && m.bus == ext.requester.bus() &&
      m.type == ext.address_type && memo_current(m))
    return m.route;
  const Route r = with_peer_window(decide_from_below(from, gp, ext), addr, len);
  // Only routes without side effects (the refusals count and report).
  if (r.kind == Route::kUpstream || r.kind == Route::kDownstream) {
    m.page = addr >> kWindowShift;
    m.bus = static_cast<std::uint8_t>(ext.requester.bus());
    m.type = ext.address_type;
    m.generations.resize(dsps_.size() + 1);
    m.generations[0] = usp_->config().generation();
    for (std::size_t i = 0; i < dsps_.size(); ++i)
      m.generations[i + 1] = dsps_[i]->config().generation();
    m.route = r;
  }
  return r;
}

PcieSwitch::Route PcieSwitch::decide_from_below(unsigned from, tlm::tlm_generic_payload& gp,
                                                TlpExtension& ext) {
  if (!is_memory(ext.kind) && ext.kind != TlpKind::Msg) return {Route::kUnsupported};
  const ConfigSpace& src = dsps_[from]->config();
  // A downstream port with BME clear turns requests from below into UR.
  if (!bus_master_enabled(src)) {
    ++dsp_stats_[from].bme_blocked;
    return {Route::kUnsupported};
  }
  const std::uint16_t acs = dsps_[from]->acs_control();
  if ((acs & PCI_ACS_SV) && !bus_behind(src, ext.requester.bus())) return {Route::kAcsViolation};
  if ((acs & PCI_ACS_TB) && ext.address_type == AddressType::kTranslated)
    return {Route::kAcsViolation};
  if (ext.kind == TlpKind::Msg) return {Route::kUpstream};

  const std::uint64_t addr = gp.get_address();
  const std::uint32_t len = gp.get_data_length();
  if (windows_contain(src, addr, len)) {
    // A request for a function below the port it came in on (e.g. VF to VF
    // after the device redirected it): with ACS Upstream Forwarding the
    // port sends it up for the root complex to reflect; without, it is
    // never routed back down its ingress port (PCIe Base 6.12.1.1).
    if (acs & PCI_ACS_UF) return {Route::kUpstream};
    return {Route::kUnsupported};
  }
  for (unsigned i = 0; i < dsps_.size(); ++i) {
    if (i == from) continue;
    const ConfigSpace& d = dsps_[i]->config();
    if (!memory_space_enabled(d) || !windows_contain(d, addr, len)) continue;
    // Peer-to-peer inside the switch. ACS (PCIe Base 6.12.1.2): Direct
    // Translated P2P lets translated requests go direct even with redirect;
    // Request Redirect sends the rest up to the root complex; Egress Control
    // blocks what its vector names.
    const bool translated = ext.address_type == AddressType::kTranslated;
    if ((acs & PCI_ACS_DT) && translated) {
      Route r{Route::kDownstream, static_cast<int>(i)};
      r.p2p = P2pPath::kDirect;
      return r;
    }
    if (acs & PCI_ACS_RR) return {Route::kUpstream};
    // Egress Control: dsp i has Port Number i + 1.
    if (acs_egress_blocked(dsps_[from]->config(), i + 1)) return {Route::kAcsViolation};
    Route r{Route::kDownstream, static_cast<int>(i)};
    r.p2p = P2pPath::kDirect;
    return r;
  }
  // Not a peer: upstream, unless the address falls inside the switch's
  // own range without a port claiming it.
  const ConfigSpace& ucs = usp_->config();
  if (windows_contain(ucs, addr, len)) return {Route::kUnsupported};
  if (!bus_master_enabled(ucs)) {
    ++usp_stats_.bme_blocked;
    return {Route::kUnsupported};
  }
  return {Route::kUpstream};
}

void PcieSwitch::port_receive(Port& port, tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  TlpExtension& ext = tlp_of(gp);
  const Time now = now_fs();
  const Time arrival = now + delay.value();
  const bool from_above = &port == usp_port_.get();
  const unsigned from = from_above ? 0 : static_cast<unsigned>(port.index());
  SwitchPortStats& st = from_above ? usp_stats_ : dsp_stats_[from];
  // A posted-write burst (TlpExtension::burst) counts, and is routed, as
  // its TLPs: all of them go the same way (one 4 KiB page).
  if (ext.kind == TlpKind::Msg && !from_above &&
      (ext.message_code == kMsgErrCor || ext.message_code == kMsgErrNonFatal ||
       ext.message_code == kMsgErrFatal)) {
    ext.consumed_at = arrival;
    ext.status = CplStatus::kSC;
    forward_error_message(from, gp, ext, arrival);
    delay = to_sc(arrival - now);
    return;
  }
  // Poisoned or ECRC-damaged TLPs are forwarded: the switch is not their
  // final receiver (2.7.2.2, 2.7.1).
  std::vector<BurstTlp>* burst = ext.burst;
  const unsigned n = burst ? static_cast<unsigned>(burst->size()) : 1u;
  st.requests += n;
  Route r = from_above ? route_from_above(gp, ext) : route_from_below(from, gp, ext);
  const Time lat = params_.traversal_latency;
  BridgeFunction& ingress = from_above ? *usp_ : *dsps_[from];
  if (burst && (r.kind == Route::kDownstream || r.kind == Route::kUpstream))
    for (BurstTlp& t : *burst)
      t.time += lat;  // ready at the egress port

  switch (r.kind) {
    case Route::kLocalConfig:
      local_config(*r.local, gp, ext);
      if (r.port >= 0) dsps_[r.port]->capture_rid(config_target(gp.get_address()));
      ext.consumed_at = arrival;
      set_response_from_status(gp);
      delay = to_sc(arrival + lat - now);
      return;
    case Route::kUnsupported:
    case Route::kAcsViolation: {
      const bool acsv = r.kind == Route::kAcsViolation;
      ext.status = acsv ? CplStatus::kCA : CplStatus::kUR;
      if (acsv) {
        st.acs_violations += n;
        ext.p2p = P2pPath::kBlocked;
        note_signaled_ca(ingress.config());
      } else {
        st.ur += n;
      }
      report_error(from_above ? -1 : static_cast<int>(from),
                   acsv ? ErrorKind::kAcsViolation : ErrorKind::kUnsupportedRequest,
                   header_log(gp, ext), arrival, !acsv && !is_posted(ext.kind));
      ext.consumed_at = arrival;
      set_response_from_status(gp);
      Time done = arrival + lat;
      if (burst)
        for (BurstTlp& t : *burst) {
          t.consumed = t.time;
          t.done = t.time + lat;
          done = std::max(done, t.done);
        }
      delay = to_sc(done - now);
      return;
    }
    case Route::kDownstream: {
      if (r.p2p == P2pPath::kDirect) {
        ext.p2p = P2pPath::kDirect;
        st.p2p_direct += n;
      }
      const TlpKind original = ext.kind;
      ext.kind = is_config(original) ? r.kind_out : original;
      sc_core::sc_time d = to_sc(arrival + lat - now);
      dsp_ports_[r.port]->transmit(gp, d);
      ext.kind = original;
      Time done = now + d.value();
      if (!is_posted(original)) {
        done += lat;
        if (ext.cpl_first) ext.cpl_first += lat;
      }
      delay = to_sc(done - now);
      return;
    }
    case Route::kUpstream: {
      if (!from_above && ext.p2p == P2pPath::kNone) {
        // Redirected peer-to-peer is only known as such if a port's window
        // matched (its own, with Upstream Forwarding); count it.
        if (r.peer_window) st.p2p_redirected += n;
      }
      sc_core::sc_time d = to_sc(arrival + lat - now);
      usp_port_->transmit(gp, d);
      Time done = now + d.value();
      if (!is_posted(ext.kind)) {
        done += lat;
        if (ext.cpl_first) ext.cpl_first += lat;
      }
      delay = to_sc(done - now);
      return;
    }
  }
}

unsigned PcieSwitch::port_receive_dbg(Port& port, tlm::tlm_generic_payload& gp) {
  TlpExtension* ext = gp.get_extension<TlpExtension>();
  if (!ext) return 0;
  const bool from_above = &port == usp_port_.get();
  Route r = from_above ? route_from_above(gp, *ext)
                       : route_from_below(static_cast<unsigned>(port.index()), gp, *ext);
  switch (r.kind) {
    case Route::kLocalConfig:
      local_config(*r.local, gp, *ext);
      return ext->ok() ? gp.get_data_length() : 0;
    case Route::kDownstream: {
      const TlpKind original = ext->kind;
      if (is_config(original)) ext->kind = r.kind_out;
      unsigned n = dsp_ports_[r.port]->transmit_dbg(gp);
      ext->kind = original;
      return n;
    }
    case Route::kUpstream:
      return usp_port_->transmit_dbg(gp);
    default:
      return 0;
  }
}

}  // namespace pciesim::models

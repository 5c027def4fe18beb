#include "models/root_complex/root_complex.h"

#include <algorithm>
#include <cstring>

#include "fabric/bridge/bridge_decode.h"
#include "fabric/common/error.h"
#include "fabric/fault/fault_registry.h"
#include "models/common/error_signal.h"

namespace pciesim::models {

using namespace fabric;

namespace {

void fill_ones(std::uint8_t* data, std::uint32_t len) {
  std::memset(data, 0xff, len);
}

}  // namespace

RootComplex::RootComplex(sc_core::sc_module_name name, const RootComplexParams& params,
                         std::vector<MemoryRange> dram)
    : sc_core::sc_module(name),
      cpu_socket("cpu_socket"),
      mem_socket("mem_socket"),
      params_(params),
      dram_(std::move(dram)) {
  cpu_socket.register_b_transport(this, &RootComplex::cpu_b_transport);
  cpu_socket.register_transport_dbg(this, &RootComplex::cpu_transport_dbg);

  Type0Header hb;
  hb.vendor_id = params.vendor_id;
  hb.device_id = params.host_bridge_device_id;
  hb.revision = 1;
  hb.class_code = 0x060000;  // host bridge
  hb.subsystem_vendor_id = params.vendor_id;
  hb.subsystem_id = params.host_bridge_device_id;
  build_type0_header(host_bridge_, hb, {});

  stats_.ports.resize(params.root_ports);
  path_.resize(2 * params.root_ports);
  for (unsigned i = 0; i < params.root_ports; ++i) {
    std::string pname = "rp" + std::to_string(i);
    BridgeOptions o;
    o.vendor_id = params.vendor_id;
    o.device_id = params.root_port_device_id;
    o.port_type = PCI_EXP_TYPE_ROOT_PORT;
    o.physical_slot = static_cast<std::uint16_t>(i + 1);
    o.ari_forwarding = params.ari_forwarding;
    o.rrs_sw_visibility = params.rrs_sw_visibility;
    o.acs_supported = params.acs_supported;
    o.egress_vector_bits = params.root_ports + 1;  // bit N = root port with Port Number N
    o.link_speed = params.max_link_speed;
    o.link_width = params.max_link_width;
    o.port_number = static_cast<std::uint8_t>(i + 1);
    o.max_payload_supported = params.max_payload_supported;
    o.root_rcb_128 = params.rcb_128;
    o.dpc = params.dpc;
    auto rp = std::make_unique<BridgeFunction>(std::string(this->name()) + "." + pname, o);
    rp->capture_rid(RoutingId(0, i + 1, 0));
    ports_.push_back(
        std::make_unique<Port>(pname.c_str(), *this, /*upstream_end=*/true, static_cast<int>(i)));
    Port* port = ports_.back().get();
    rp->on_secondary_bus_reset = [port](bool asserted) {
      if (asserted) port->signal_hot_reset();
    };
    rp->on_link_disable = [port](bool disabled) { port->set_link_up(!disabled); };
    rp->on_dpc = [port](bool contained) { port->set_link_up(!contained); };
    rp->on_dpc_interrupt = [this, i] {
      ++stats_.ports[i].dpc_triggers;
      if (on_dpc_interrupt) on_dpc_interrupt(i, now_fs());
    };
    rp->on_mps_change = [port](std::uint32_t mps) {
      if (port->link()) port->link()->set_mps(mps);
    };
    root_ports_.push_back(std::move(rp));
  }
}

bool RootComplex::is_dram(std::uint64_t addr, std::uint64_t len) const {
  for (const MemoryRange& r : dram_)
    if (r.contains(addr, len)) return true;
  return false;
}

ConfigSpace* RootComplex::bus0_function(RoutingId rid) {
  if (rid.bus() != 0 || rid.function() != 0) return nullptr;
  if (rid.device() == 0) return &host_bridge_;
  unsigned i = rid.device() - 1;
  if (i < root_ports_.size()) return &root_ports_[i]->config();
  return nullptr;
}

int RootComplex::root_port_for_bus(unsigned bus) const {
  for (std::size_t i = 0; i < root_ports_.size(); ++i)
    if (bus_behind(root_ports_[i]->config(), bus)) return static_cast<int>(i);
  return -1;
}

int RootComplex::root_port_for_address(std::uint64_t addr, std::uint32_t len) const {
  for (std::size_t i = 0; i < root_ports_.size(); ++i) {
    const ConfigSpace& cs = root_ports_[i]->config();
    if (memory_space_enabled(cs) && windows_contain(cs, addr, len)) return static_cast<int>(i);
  }
  return -1;
}

std::uint16_t RootComplex::completion_chunk(unsigned port, std::uint32_t len) const {
  // MPS-sized completions combine a request's cache lines; requests up to
  // completion_combine_above bytes are completed line by line (RCB pieces).
  if (params_.completion_split == CompletionSplit::kMps && len > params_.completion_combine_above)
    return static_cast<std::uint16_t>(max_payload_size(root_ports_[port]->config()));
  return params_.rcb_128 ? 128 : 64;
}

void RootComplex::complete_locally(tlm::tlm_generic_payload& gp, CplStatus s) {
  TlpExtension* ext = gp.get_extension<TlpExtension>();
  if (ext) ext->status = s;
  set_response_from_status(gp);
}

// ------------------------------------------------------------------ CPU

void RootComplex::cpu_b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  TlpExtension* ext = gp.get_extension<TlpExtension>();
  const Time now = now_fs();
  const Time t = now + delay.value() + params_.cpu_latency;
  const std::uint64_t addr = gp.get_address();
  const std::uint32_t len = gp.get_data_length();
  std::uint8_t* data = gp.get_data_ptr();
  const bool write = gp.is_write();
  Outcome out{CplStatus::kUR, t};
  bool rrs_visible = false;

  if (addr >= params_.ecam_base && addr < params_.ecam_base + (std::uint64_t{256} << 20)) {
    std::uint64_t off = addr - params_.ecam_base;
    RoutingId rid = config_target(off);
    std::uint16_t reg = config_register(off);
    if (write)
      ++stats_.config_writes;
    else
      ++stats_.config_reads;
    if (!ConfigSpace::valid_access(reg, len)) {
      out = {CplStatus::kUR, t};
    } else {
      out = cpu_config(rid, reg, len, write, data, t, &rrs_visible);
    }
  } else if (is_dram(addr, len)) {
    sc_core::sc_time d = to_sc(t - now);
    mem_socket->b_transport(gp, d);
    out = {CplStatus::kSC, now + d.value()};
  } else {
    if (write)
      ++stats_.mmio_writes;
    else
      ++stats_.mmio_reads;
    out = cpu_mmio(addr, data, len, write, t);
  }

  if (out.status == CplStatus::kUR) ++stats_.cpu_ur;
  if (out.status == CplStatus::kCA) ++stats_.cpu_ca;
  if (out.status == CplStatus::kTimeout) ++stats_.cpu_timeouts;
  // A failed read returns all ones to the CPU (master abort semantics).
  if (!write && out.status != CplStatus::kSC) fill_ones(data, len);
  if (ext) ext->status = rrs_visible ? CplStatus::kRRS : out.status;
  gp.set_response_status(out.status == CplStatus::kSC || rrs_visible
                             ? tlm::TLM_OK_RESPONSE
                             : tlm::TLM_GENERIC_ERROR_RESPONSE);
  delay = to_sc(out.done + params_.cpu_latency - now);
}

RootComplex::Outcome RootComplex::cpu_config(RoutingId rid, std::uint16_t reg, unsigned size,
                                             bool write, std::uint8_t* data, Time t,
                                             bool* rrs_visible) {
  const Time now = now_fs();
  t += params_.config_latency;
  if (rid.bus() == 0) {
    ConfigSpace* cs = bus0_function(rid);
    if (!cs) return {CplStatus::kUR, t};
    std::uint32_t v = 0;
    if (write) {
      for (unsigned i = 0; i < size; ++i)
        v |= static_cast<std::uint32_t>(data[i]) << (8 * i);
      cs->write(reg, size, v);
    } else {
      v = cs->read(reg, size);
      for (unsigned i = 0; i < size; ++i)
        data[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    return {CplStatus::kSC, t};
  }
  int p = root_port_for_bus(rid.bus());
  if (p < 0) return {CplStatus::kUR, t};
  BridgeFunction& rp = *root_ports_[p];
  ConfigRoute route = route_config(rp.config(), rid.bus(), rid.device(), true);
  if (route == ConfigRoute::kBlockedDevice || route == ConfigRoute::kNotMine)
    return {CplStatus::kUR, t};
  const bool type0 = route == ConfigRoute::kType0Secondary;
  const TlpKind kind = write ? (type0 ? TlpKind::CfgWr0 : TlpKind::CfgWr1)
                             : (type0 ? TlpKind::CfgRd0 : TlpKind::CfgRd1);
  std::uint32_t value = 0;
  for (unsigned i = 0; i < size && write; ++i)
    value |= static_cast<std::uint32_t>(data[i]) << (8 * i);

  const Time first_issue = t + params_.downstream_latency;
  Time issue = first_issue;
  Time backoff = params_.rrs_initial_backoff;
  for (;;) {
    Tlp tlp;
    tlp.config(kind, kHostRequester, rid, reg, size, value);
    sc_core::sc_time d = to_sc(issue - now);
    ports_[p]->transmit(tlp.gp(), d);
    const Time back = now + d.value() + params_.upstream_latency;
    const CplStatus s =
        tlp.ext().fault_marks ? check_cpu_completion(p, tlp, back) : tlp.ext().status;
    if (s == CplStatus::kDiscarded)
      return {CplStatus::kTimeout, issue + params_.completion_timeout};
    if (s == CplStatus::kRRS) {
      // RRS Software Visibility: a Vendor ID read returns 0x0001 (PCIe
      // Base 2.3.2); anything else is retried by the root complex.
      if (!write && reg == PCI_VENDOR_ID && (size == 2 || size == 4) &&
          rrs_software_visibility(rp.config())) {
        std::uint32_t v = size == 2 ? 0x0001u : 0xffff0001u;
        for (unsigned i = 0; i < size; ++i)
          data[i] = static_cast<std::uint8_t>(v >> (8 * i));
        ++stats_.rrs_visible;
        *rrs_visible = true;
        return {CplStatus::kSC, back};
      }
      ++stats_.rrs_retries;
      if (back + backoff - first_issue > params_.rrs_timeout) return {CplStatus::kTimeout, back};
      issue = back + backoff;
      backoff = std::min(backoff * 2, params_.rrs_max_backoff);
      continue;
    }
    if (s == CplStatus::kSC && !write) {
      std::uint32_t v = tlp.config_value();
      for (unsigned i = 0; i < size; ++i)
        data[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    return {s, back};
  }
}

RootComplex::Outcome RootComplex::cpu_mmio(std::uint64_t addr, std::uint8_t* data,
                                           std::uint32_t len, bool write, Time t) {
  const Time now = now_fs();
  if (addr >= params_.msi_base && addr < params_.msi_base + params_.msi_size)
    return {CplStatus::kUR, t};
  if (in_register_block(addr, len)) {
    // Chipset registers (the IOMMU's): reached inside the root complex.
    const Time arrival = t + params_.downstream_latency;
    const CplStatus s = regs_->register_access(addr - regs_base_, data, len, write, arrival);
    if (write) return {s, t};
    return {s, arrival + params_.upstream_latency};
  }
  int p = root_port_for_address(addr, len);
  if (p < 0) return {CplStatus::kUR, t};
  Tlp tlp;
  tlp.memory(write ? TlpKind::MWr : TlpKind::MRd, kHostRequester, addr, data, len);
  const Time issue = t + params_.downstream_latency;
  sc_core::sc_time d = to_sc(issue - now);
  ports_[p]->transmit(tlp.gp(), d);
  const CplStatus s = tlp.ext().fault_marks && !write
                          ? check_cpu_completion(static_cast<unsigned>(p), tlp, now + d.value())
                          : tlp.ext().status;
  if (write) {
    // Posted: the CPU is free once the write left the core.
    return {s == CplStatus::kSC ? CplStatus::kSC : s, t};
  }
  if (s == CplStatus::kDiscarded) return {CplStatus::kTimeout, issue + params_.completion_timeout};
  if (s == CplStatus::kPoisoned) return {s, now + d.value() + params_.upstream_latency};
  // The root port forwarded the CPU's request to its secondary side: the
  // completion status is recorded in Secondary Status (7.5.1.3.7).
  if (s == CplStatus::kUR) note_received_ur(root_ports_[p]->config(), true);
  if (s == CplStatus::kCA) note_received_ca(root_ports_[p]->config(), true);
  return {s, now + d.value() + params_.upstream_latency};
}

unsigned RootComplex::cpu_transport_dbg(tlm::tlm_generic_payload& gp) {
  const std::uint64_t addr = gp.get_address();
  const std::uint32_t len = gp.get_data_length();
  std::uint8_t* data = gp.get_data_ptr();
  if (addr >= params_.ecam_base && addr < params_.ecam_base + (std::uint64_t{256} << 20)) {
    std::uint64_t off = addr - params_.ecam_base;
    std::uint16_t reg = config_register(off);
    if (!ConfigSpace::valid_access(reg, len)) return 0;
    std::uint32_t v = 0;
    for (unsigned i = 0; i < len && gp.is_write(); ++i)
      v |= static_cast<std::uint32_t>(data[i]) << (8 * i);
    bool ok = config_dbg(config_target(off), reg, len, gp.is_write(), &v);
    if (!gp.is_write())
      for (unsigned i = 0; i < len; ++i)
        data[i] = static_cast<std::uint8_t>(v >> (8 * i));
    return ok ? len : 0;
  }
  if (is_dram(addr, len)) return mem_socket->transport_dbg(gp);
  return mmio_dbg(addr, data, len, gp.is_write()) ? len : 0;
}

bool RootComplex::config_dbg(RoutingId rid, std::uint16_t reg, unsigned size, bool write,
                             std::uint32_t* value) {
  if (!ConfigSpace::valid_access(reg, size)) return false;
  if (rid.bus() == 0) {
    ConfigSpace* cs = bus0_function(rid);
    if (!cs) {
      if (!write) *value = 0xffffffffu >> (32 - 8 * size);
      return false;
    }
    if (write)
      cs->write(reg, size, *value);
    else
      *value = cs->read(reg, size);
    return true;
  }
  int p = root_port_for_bus(rid.bus());
  ConfigRoute route = p < 0 ? ConfigRoute::kNotMine
                            : route_config(root_ports_[p]->config(), rid.bus(), rid.device(), true);
  if (route == ConfigRoute::kNotMine || route == ConfigRoute::kBlockedDevice) {
    if (!write) *value = 0xffffffffu >> (32 - 8 * size);
    return false;
  }
  const bool type0 = route == ConfigRoute::kType0Secondary;
  Tlp tlp;
  tlp.config(write ? (type0 ? TlpKind::CfgWr0 : TlpKind::CfgWr1)
                   : (type0 ? TlpKind::CfgRd0 : TlpKind::CfgRd1),
             kHostRequester, rid, reg, size, write ? *value : 0);
  unsigned n = ports_[p]->transmit_dbg(tlp.gp());
  if (!write) *value = n ? tlp.config_value() : (0xffffffffu >> (32 - 8 * size));
  return n != 0;
}

bool RootComplex::mmio_dbg(std::uint64_t addr, std::uint8_t* data, std::uint32_t len, bool write) {
  if (in_register_block(addr, len)) {
    // Reads of IOMMU registers have no side effects; debug writes are not
    // supported (they would).
    if (write) return false;
    return regs_->register_access(addr - regs_base_, data, len, false, now_fs()) == CplStatus::kSC;
  }
  int p = root_port_for_address(addr, len);
  if (p < 0) {
    if (!write) fill_ones(data, len);
    return false;
  }
  Tlp tlp;
  tlp.memory(write ? TlpKind::MWr : TlpKind::MRd, kHostRequester, addr, data, len);
  unsigned n = ports_[p]->transmit_dbg(tlp.gp());
  if (!n && !write) fill_ones(data, len);
  return n != 0;
}

bool RootComplex::memory_access(std::uint64_t addr, std::uint8_t* data, std::uint32_t len,
                                bool write, Time t, bool debug, Time* done) {
  *done = t;
  if (!is_dram(addr, len)) return false;
  tlm::tlm_generic_payload gp;
  gp.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
  gp.set_address(addr);
  gp.set_data_ptr(data);
  gp.set_data_length(len);
  gp.set_streaming_width(len);
  gp.set_byte_enable_ptr(nullptr);
  gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  if (debug) return mem_socket->transport_dbg(gp) == len;
  if (!write && memory_) {
    // Table reads (the IOMMU's walks) are a few bytes: they take the
    // memory's latency (LLC or DRAM) but no share of its bandwidth, so
    // they do not queue behind DMA data that is timestamped later.
    if (mem_socket->transport_dbg(gp) != len) return false;
    *done = t + memory_->small_read_latency(addr, len);
    return true;
  }
  const Time now = now_fs();
  sc_core::sc_time d = to_sc(t > now ? t - now : 0);
  mem_socket->b_transport(gp, d);
  *done = now + d.value();
  return gp.is_response_ok();
}

// ------------------------------------------------------------ from below

RootComplex::HostPath RootComplex::host_path(unsigned port, std::uint64_t addr, std::uint32_t len,
                                             bool write, Time t) {
  const Time per_line = write ? params_.write_line_time : params_.read_line_time;
  if (per_line == 0 || len == 0) return {t, 0, 0};
  // Lines touched; a write counts whole granules (docs/timing.md).
  const std::uint64_t unit = write ? std::max<std::uint32_t>(params_.write_granule, 64) : 64;
  const std::uint64_t first = addr / unit, last = (addr + len - 1) / unit;
  const unsigned lines = static_cast<unsigned>((last - first + 1) * (unit / 64));
  // Booked by time, not call order (fabric/common/interval_book.h).
  const Time start = path_[2 * port + (write ? 1 : 0)].reserve(t, lines * per_line, now_fs());
  return {start, per_line, lines};
}

void RootComplex::receive_burst(Port& port, tlm::tlm_generic_payload& gp, TlpExtension& ext,
                                sc_core::sc_time& delay) {
  // The links before batched the TLPs of a posted-write burst. Straight to
  // DRAM (root port lets it through, no translation): one memory call
  // timing each TLP. Otherwise each goes its own way (checks, translation,
  // DRAM or a peer) as a transaction of its own, at its own arrival time.
  const Time now = now_fs();
  const unsigned pi = static_cast<unsigned>(port.index());
  const ConfigSpace& rpc = root_ports_[pi]->config();
  const std::uint16_t acs = root_ports_[pi]->acs_control();
  const std::uint64_t addr = gp.get_address();
  const std::uint64_t total = ext.burst->back().offset + ext.burst->back().length;
  const bool plain =
      memory_ && bus_master_enabled(rpc) &&
      (!(acs & PCI_ACS_SV) || bus_behind(rpc, ext.requester.bus())) &&
      !((acs & PCI_ACS_TB) && ext.address_type == AddressType::kTranslated) &&
      (!translator_ || !translator_->active() || ext.address_type == AddressType::kTranslated) &&
      !(addr + total > params_.msi_base && addr < params_.msi_base + params_.msi_size) &&
      is_dram(addr, total);
  // The coherent-fabric path takes the TLPs one by one (host_path); the
  // memory then sees each when the path starts moving it.
  Time path_end[kMaxBurstTlps];
  Time arrived[kMaxBurstTlps];
  const bool timed_path = plain && (params_.write_line_time > 0) && is_dram(addr, total);
  if (timed_path) {
    for (std::size_t k = 0; k < ext.burst->size(); ++k) {
      BurstTlp& t = (*ext.burst)[k];
      arrived[k] = t.time;
      const HostPath hp =
          host_path(pi, addr + t.offset, t.length, true, t.time + params_.upstream_latency);
      path_end[k] = hp.start + hp.lines * hp.line_time;
      t.time = hp.start - params_.upstream_latency;
    }
  }
  if (plain && memory_->write_burst(addr, gp.get_data_ptr(), *ext.burst, params_.upstream_latency,
                                    ext.requester)) {
    stats_.ports[pi].upstream_requests += ext.burst->size();
    Time done = now;
    for (std::size_t k = 0; k < ext.burst->size(); ++k) {
      BurstTlp& t = (*ext.burst)[k];
      if (timed_path) {
        t.time = arrived[k];
        t.consumed = std::max(t.consumed, path_end[k]);
        t.done = std::max(t.done, path_end[k]);
      }
      done = std::max(done, t.done);
    }
    delay = to_sc(done - now);
    return;
  }
  Time done = now;
  Tlp piece;
  for (BurstTlp& t : *ext.burst) {
    piece.burst_piece(gp, ext, t);
    TlpExtension& e = piece.ext();
    sc_core::sc_time d = to_sc(std::max(t.time, now) - now);
    port_receive(port, piece.gp(), d);
    t.consumed = e.consumed_at;
    t.done = now + d.value();
    done = std::max(done, t.done);
    if (e.status != CplStatus::kSC) ext.status = e.status;
    if (e.p2p != P2pPath::kNone) ext.p2p = e.p2p;
  }
  delay = to_sc(done - now);
}

void RootComplex::port_receive(Port& port, tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  TlpExtension& ext = tlp_of(gp);
  if (ext.burst) {
    receive_burst(port, gp, ext, delay);
    return;
  }
  const unsigned pi = static_cast<unsigned>(port.index());
  BridgeFunction& rp = *root_ports_[pi];
  RootPortStats& ps = stats_.ports[pi];
  const Time now = now_fs();
  const Time arrival = now + delay.value();
  ++ps.upstream_requests;

  auto reject = [&](CplStatus s, ErrorKind kind) {
    ext.status = s;
    ext.consumed_at = arrival;
    if (s == CplStatus::kUR) ++ps.ur;
    if (s == CplStatus::kCA) ++ps.ca;
    report_error(pi, kind, header_log(gp, ext), arrival, !is_posted(ext.kind));
    if (s == CplStatus::kCA) note_signaled_ca(rp.config());
    set_response_from_status(gp);
    delay = to_sc(arrival + params_.downstream_latency - now);
  };

  if (!is_memory(ext.kind) && ext.kind != TlpKind::Msg) {
    // Configuration requests never travel upstream; completions return
    // through the call stack.
    reject(CplStatus::kUR, ErrorKind::kUnsupportedRequest);
    return;
  }
  if (ext.kind == TlpKind::Msg) {
    ext.status = CplStatus::kSC;
    ext.consumed_at = arrival;
    const std::uint8_t code = ext.message_code;
    if (code == kMsgErrCor || code == kMsgErrNonFatal || code == kMsgErrFatal) {
      const ErrorSeverity sev = code == kMsgErrCor        ? ErrorSeverity::kCorrectable
                                : code == kMsgErrNonFatal ? ErrorSeverity::kNonFatal
                                                          : ErrorSeverity::kFatal;
      // Received System Error in Secondary Status (7.5.1.3.7).
      if (sev != ErrorSeverity::kCorrectable)
        rp.config().set_bits16(PCI_SEC_STATUS, PCI_STATUS_SIG_SYSTEM_ERROR, true);
      root_error_message(pi, sev, ext.requester, arrival);
    }
    return;
  }
  if (ext.fault_marks || ext.poisoned) {
    if (!check_request(rp.config(), gp, ext,
                       [&](ErrorKind k, const std::array<std::uint32_t, 4>& h, bool adv) {
                         report_error(pi, k, h, arrival, adv);
                       })) {
      set_response_from_status(gp);
      delay = to_sc(arrival + params_.downstream_latency - now);
      return;
    }
  }
  // Bus Master Enable of the root port gates requests from below (SPEC B).
  if (!bus_master_enabled(rp.config())) {
    ++ps.bme_blocked;
    reject(CplStatus::kUR, ErrorKind::kUnsupportedRequest);
    return;
  }
  const std::uint16_t acs = rp.acs_control();
  // ACS Source Validation: the requester must sit below this port.
  if ((acs & PCI_ACS_SV) && !bus_behind(rp.config(), ext.requester.bus())) {
    ++ps.acs_violations;
    reject(CplStatus::kCA, ErrorKind::kAcsViolation);
    return;
  }
  // ACS Translation Blocking: translated requests are not accepted.
  if ((acs & PCI_ACS_TB) && ext.address_type == AddressType::kTranslated) {
    ++ps.acs_violations;
    reject(CplStatus::kCA, ErrorKind::kAcsViolation);
    return;
  }

  const std::uint64_t original = gp.get_address();
  const std::uint32_t len = gp.get_data_length();
  Time t = arrival + params_.upstream_latency;
  std::uint64_t addr = original;

  // MSI writes target the interrupt window; they are not translated by
  // the DMA remapping tables (interrupt remapping is separate).
  const bool msi = ext.kind == TlpKind::MWr && addr >= params_.msi_base &&
                   addr + len <= params_.msi_base + params_.msi_size;
  if (msi) {
    std::uint32_t data = 0;
    std::memcpy(&data, gp.get_data_ptr(), std::min<std::uint32_t>(4, len));
    msi_.deliver(t, ext.requester, addr, data);
    ++ps.msi;
    ext.status = CplStatus::kSC;
    ext.consumed_at = t;
    gp.set_response_status(tlm::TLM_OK_RESPONSE);
    delay = to_sc(t - now);
    return;
  }

  if (translator_ && ext.address_type != AddressType::kTranslated) {
    TranslationRequest req;
    req.requester = ext.requester;
    req.has_pasid = ext.has_pasid;
    req.pasid = ext.pasid;
    req.address = addr;
    req.length = len;
    req.write = ext.kind == TlpKind::MWr;
    req.address_type = ext.address_type;
    req.at = t;
    TranslationResult r = translator_->translate(req);
    t = std::max(t, r.done);
    if (!r.ok) {
      ++ps.translation_faults;
      ext.status = r.fault_status;
      ext.consumed_at = t;
      if (r.fault_status == CplStatus::kUR)
        ++ps.ur;
      else
        ++ps.ca;
      set_response_from_status(gp);
      delay = to_sc(t + params_.downstream_latency - now);
      return;
    }
    addr = r.address;
  }

  if (is_dram(addr, len)) {
    if (FaultRegistry* fr = fault_registry(); fr && fr->any(FaultPoint::kCompleter)) {
      static const std::string kWhere = "rc";
      const unsigned id = fr->check(FaultPoint::kCompleter, kWhere, nullptr, gp, ext, t);
      if (id && completer_fault_action(fr->state(id).spec.kind, rp.config(), gp, ext,
                                       [&](ErrorKind k, const std::array<std::uint32_t, 4>& h,
                                           bool adv) { report_error(pi, k, h, t, adv); })) {
        ext.consumed_at = t;
        set_response_from_status(gp);
        delay = to_sc(t + params_.downstream_latency - now);
        return;
      }
    }
    gp.set_address(addr);
    ext.cpl_chunk = completion_chunk(pi, len);
    const bool write = is_posted(ext.kind);
    const HostPath hp = host_path(pi, addr, len, write, t);
    sc_core::sc_time d = to_sc(hp.start - now);
    mem_socket->b_transport(gp, d);
    gp.set_address(original);
    ext.status = gp.is_response_ok() ? CplStatus::kSC : CplStatus::kUR;
    Time done = now + d.value();
    if (hp.lines) {
      const Time end = hp.start + hp.lines * hp.line_time;
      if (write) {
        // The write's buffer is free (its credits return) once the path
        // has moved all its lines.
        ext.consumed_at = std::max(ext.consumed_at, end);
        done = std::max(done, end);
      } else if (memory_) {
        // The lines stream back one per line_time behind the first, each
        // after the memory's latency: the first completion is ready when
        // its lines are, the last with the last line.
        const Time lat = memory_->last_latency();
        done = std::max(done, hp.start + lat + (hp.lines - 1) * hp.line_time);
        const unsigned first_lines = static_cast<unsigned>(
            (std::min<std::uint64_t>(addr + len, (addr / ext.cpl_chunk + 1) * ext.cpl_chunk) - 1) /
                64 -
            addr / 64 + 1);
        if (ext.cpl_first)
          ext.cpl_first = std::min(
              done, std::max(ext.cpl_first, hp.start + lat + (first_lines - 1) * hp.line_time));
      }
    }
    if (!is_posted(ext.kind)) {
      done += params_.downstream_latency;
      if (ext.cpl_first) ext.cpl_first += params_.downstream_latency;
    }
    delay = to_sc(done - now);
    return;
  }

  int target = root_port_for_address(addr, len);
  if (target >= 0) {
    // Peer-to-peer between root ports (or reflected back down the same
    // port after ACS redirect below it).
    if (params_.p2p == P2pPolicy::kBlock) {
      ++ps.p2p_blocked;
      ext.p2p = P2pPath::kBlocked;
      reject(CplStatus::kUR, ErrorKind::kUnsupportedRequest);
      return;
    }
    // ACS Egress Control at the ingress root port (rp i has Port Number i + 1).
    if (acs_egress_blocked(rp.config(), static_cast<unsigned>(target) + 1)) {
      ++ps.acs_violations;
      ext.p2p = P2pPath::kBlocked;
      reject(CplStatus::kCA, ErrorKind::kAcsViolation);
      return;
    }
    ++ps.p2p_reflected;
    ext.p2p = P2pPath::kReflected;
    gp.set_address(addr);
    sc_core::sc_time d = to_sc(t + params_.downstream_latency - now);
    ports_[target]->transmit(gp, d);
    gp.set_address(original);
    Time done = now + d.value();
    if (!is_posted(ext.kind)) {
      done += params_.upstream_latency + params_.downstream_latency;
      if (ext.cpl_first) ext.cpl_first += params_.upstream_latency + params_.downstream_latency;
    }
    ext.consumed_at = std::max(ext.consumed_at, arrival);
    set_response_from_status(gp);
    delay = to_sc(done - now);
    return;
  }
  reject(CplStatus::kUR, ErrorKind::kUnsupportedRequest);
}

void RootComplex::port_error(Port& port, ErrorKind kind, const std::array<std::uint32_t, 4>& header,
                             Time t) {
  report_error(static_cast<unsigned>(port.index()), kind, header, t);
}

void RootComplex::report_error(unsigned port, ErrorKind kind,
                               const std::array<std::uint32_t, 4>& header, Time t, bool advisory) {
  at_time(t, [this, port, kind, header, t, advisory] { record(port, kind, header, t, advisory); });
}

void RootComplex::record(unsigned port, ErrorKind kind, const std::array<std::uint32_t, 4>& header,
                         Time t, bool advisory) {
  BridgeFunction& rp = *root_ports_.at(port);
  const ErrorReport r = record_error(rp.config(), kind, header, advisory);
  // An unmasked uncorrectable error of the port itself may trigger DPC
  // (reason 00b) whatever its reporting enables say.
  if (r.severity == ErrorSeverity::kFatal || r.severity == ErrorSeverity::kNonFatal) {
    const std::uint16_t aer = rp.config().find_extended_capability(PCI_EXT_CAP_ID_ERR);
    const bool masked = aer && (rp.config().get32(aer + PCI_ERR_UNCOR_MASK) & aer_bit(kind));
    if (!masked && !r.advisory && rp.dpc_trigger(0, rp.rid(), r.severity == ErrorSeverity::kFatal))
      return;
  }
  if (r.message != ErrorSeverity::kNone) root_error_message(port, r.message, rp.rid(), t);
}

void RootComplex::port_link_state(Port& p, bool up) {
  set_dll_active(root_ports_.at(static_cast<unsigned>(p.index()))->config(), up,
                 !(p.peer() && p.peer()->removed()));
}

void RootComplex::root_error_message(unsigned port, ErrorSeverity severity, RoutingId source,
                                     Time t) {
  if (t > now_fs()) {
    // The message is logged when it arrives.
    at_time(t,
            [this, port, severity, source, t] { root_error_message(port, severity, source, t); });
    return;
  }
  BridgeFunction& rp = *root_ports_.at(port);
  RootPortStats& ps = stats_.ports.at(port);
  ConfigSpace& cs = rp.config();
  if (severity == ErrorSeverity::kCorrectable)
    ++ps.err_cor_received;
  else if (severity == ErrorSeverity::kNonFatal)
    ++ps.err_nonfatal_received;
  else
    ++ps.err_fatal_received;
  // DPC in a root port contains ERR_NONFATAL / ERR_FATAL from below
  // (6.2.10): the link goes down and the DPC service handles it.
  if (severity != ErrorSeverity::kCorrectable && source != rp.rid() &&
      rp.dpc_trigger(severity == ErrorSeverity::kFatal ? 2 : 1, source,
                     severity == ErrorSeverity::kFatal))
    return;
  const std::uint16_t aer = cs.find_extended_capability(PCI_EXT_CAP_ID_ERR);
  if (!aer) return;
  std::uint32_t st = cs.get32(aer + PCI_ERR_ROOT_STATUS);
  std::uint32_t src = cs.get32(aer + PCI_ERR_ROOT_ERR_SRC);
  const std::uint32_t cmd = cs.get32(aer + PCI_ERR_ROOT_COMMAND);
  bool irq = false;
  if (severity == ErrorSeverity::kCorrectable) {
    if (st & PCI_ERR_ROOT_COR_RCV) {
      st |= PCI_ERR_ROOT_MULTI_COR_RCV;
    } else {
      st |= PCI_ERR_ROOT_COR_RCV;
      src = (src & 0xffff0000u) | source.value();
    }
    irq = cmd & PCI_ERR_ROOT_CMD_COR_EN;
  } else {
    const bool fatal = severity == ErrorSeverity::kFatal;
    if (st & PCI_ERR_ROOT_UNCOR_RCV) {
      st |= PCI_ERR_ROOT_MULTI_UNCOR_RCV;
    } else {
      st |= PCI_ERR_ROOT_UNCOR_RCV;
      src = (src & 0xffffu) | std::uint32_t{source.value()} << 16;
      if (fatal) st |= PCI_ERR_ROOT_FIRST_FATAL;
    }
    st |= fatal ? PCI_ERR_ROOT_FATAL_RCV : PCI_ERR_ROOT_NONFATAL_RCV;
    irq = cmd & (fatal ? PCI_ERR_ROOT_CMD_FATAL_EN : PCI_ERR_ROOT_CMD_NONFATAL_EN);
  }
  cs.set32(aer + PCI_ERR_ROOT_STATUS, st);
  cs.set32(aer + PCI_ERR_ROOT_ERR_SRC, src);
  if (irq) {
    ++ps.error_interrupts;
    if (on_error_interrupt) on_error_interrupt(port, t);
  }
}

CplStatus RootComplex::check_cpu_completion(unsigned port, Tlp& tlp, Time t) {
  return check_completion(root_ports_.at(port)->config(), tlp.gp(), tlp.ext(),
                          [&](ErrorKind k, const std::array<std::uint32_t, 4>& h, bool adv) {
                            report_error(port, k, h, t, adv);
                          });
}

unsigned RootComplex::port_receive_dbg(Port& port, tlm::tlm_generic_payload& gp) {
  TlpExtension* ext = gp.get_extension<TlpExtension>();
  const std::uint64_t original = gp.get_address();
  std::uint64_t addr = original;
  if (translator_ && (!ext || ext->address_type != AddressType::kTranslated)) {
    RoutingId req = ext ? ext->requester : RoutingId();
    if (!translator_->translate_dbg(req, addr, gp.is_write(), &addr)) return 0;
  }
  gp.set_address(addr);
  unsigned n = 0;
  if (is_dram(addr, gp.get_data_length())) {
    n = mem_socket->transport_dbg(gp);
  } else {
    int target = root_port_for_address(addr, gp.get_data_length());
    if (target >= 0) n = ports_[target]->transmit_dbg(gp);
  }
  gp.set_address(original);
  (void)port;
  return n;
}

}  // namespace pciesim::models

// A link-facing port: a TLM socket pair bound to the peer port at the other
// end of a Link, plus the per-hop timing. Requests travel as b_transport
// calls; a non-posted request's completion is the call's return, and the
// port that sent the request accounts the completion TLPs on the reverse
// direction of its link. Completions therefore retrace the request's path,
// which is exact in a PCIe tree (and with ACS P2P Completion Redirect
// whenever Request Redirect is on); see docs/timing.md.
#pragma once

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <cstring>
#include <systemc>
#include <tlm>

#include "fabric/common/sim_time.h"
#include "fabric/config_space/capabilities.h"
#include "fabric/fault/fault_registry.h"
#include "fabric/kernel/trace.h"
#include "fabric/link/link.h"
#include "fabric/tlp/tlp.h"

namespace pciesim::fabric {

class Port;

// What a device implements to receive TLPs from its ports.
class PortOwner {
 public:
  virtual ~PortOwner() = default;
  virtual void port_receive(Port& port, tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) = 0;
  virtual unsigned port_receive_dbg(Port& port, tlm::tlm_generic_payload& gp) = 0;
  // Sideband: the port above asserted hot reset (Secondary Bus Reset) on
  // the link, or the link went down/up. Only upstream-facing ports get these.
  virtual void port_hot_reset(Port& port) {}
  virtual void port_link_state(Port& port, bool up) {}
  // A link-level error detected at `port` (its end of the link) at time
  // `t`: the owner logs it in the function reporting for the port and
  // sends the error message (FAULTS.md 2). `header`: the TLP's, or zeros
  // for errors not tied to a TLP (DLLP errors, surprise down).
  virtual void port_error(Port& port, ErrorKind kind, const std::array<std::uint32_t, 4>& header,
                          Time t) {}
  // Whether port_receive handles posted-write bursts (TlpExtension::burst);
  // others receive the TLPs of a burst one by one.
  virtual bool accepts_bursts() const { return false; }
};

// Current simulated time in femtoseconds (the kernel runs at 1 fs).
inline Time now_fs() {
  return sc_core::sc_get_curr_simcontext()->time_stamp().value();
}
// sc_time is one integer in units of the kernel's resolution (1 fs here).
// sc_time::from_value() is an out-of-line library call that also marks the
// resolution as fixed -- which KernelContext did before elaboration -- and
// this conversion runs several times per TLP and hop, so it sets the value
// directly.
inline sc_core::sc_time to_sc(Time t) {
  static_assert(sizeof(sc_core::sc_time) == sizeof(Time), "sc_time is a single 64-bit value");
  sc_core::sc_time s;
  std::memcpy(static_cast<void*>(&s), &t, sizeof t);
  return s;
}

class Port : public sc_core::sc_module {
 public:
  tlm_utils::simple_target_socket_optional<Port> rx;
  tlm_utils::simple_initiator_socket_optional<Port> tx;

  // `upstream_end`: this port sits at the upstream end of its link (a root
  // port or switch downstream port), so it transmits in the kDown direction.
  Port(sc_core::sc_module_name name, PortOwner& owner, bool upstream_end, int index = 0);

  // Binds this port and `peer` across `link` (elaboration time only).
  static void connect(Port& upper, Port& lower, Link& link);

  bool connected() const { return link_ != nullptr; }
  bool link_up() const { return link_ && link_->is_up(); }
  Link* link() { return link_; }
  const Link* link() const { return link_; }
  Port* peer() { return peer_; }
  int index() const { return index_; }
  bool upstream_end() const { return upstream_end_; }
  LinkDir egress() const { return upstream_end_ ? LinkDir::kDown : LinkDir::kUp; }

  // Sends a TLP to the peer. On entry `delay` is when it is ready to leave
  // (relative to now); on return it is when the request completed from this
  // port's point of view: for a non-posted request, when the last
  // completion TLP arrived back here; for a posted one, when the final
  // target consumed it. A port without a link up completes with UR.
  // For a posted-write burst (TlpExtension::burst) the per-TLP times are in
  // the burst entries and `delay` returns when the last one was done.
  void transmit(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  unsigned transmit_dbg(tlm::tlm_generic_payload& gp);

  // Sideband signals towards the device below (this port must be the
  // upstream end of its link).
  void signal_hot_reset();
  void set_link_up(bool up);
  // Surprise link down (a fault): the link goes down without a Link
  // Disable; the port above logs Surprise Down. `permanent`: the device
  // below is gone, nothing brings the link back.
  void surprise_down(Time t, bool permanent);
  bool removed() const { return removed_; }

  // Fault-injection names of this port's link directions ("link:down").
  const std::string& fault_where(LinkDir d);

  // Time a link retrain through Recovery takes when it succeeds at once:
  // the TS1/TS2 ordered-set exchange of Recovery.RcvrLock/RcvrCfg (about
  // 32 ordered sets of 16 symbols, ~0.5 us at 8 GT/s) plus electrical idle
  // exit; PCIe Base 4.2.6.4 gives only upper bounds (24 ms), so 1 us.
  static constexpr Time kRetrainTime = 1 * kUs;

 private:
  bool burst_fits(const std::vector<BurstTlp>& b) const;
  void transmit_burst(tlm::tlm_generic_payload& gp, TlpExtension& ext, sc_core::sc_time& delay);
  void transmit_split(tlm::tlm_generic_payload& gp, TlpExtension& ext, sc_core::sc_time& delay);
  void b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  unsigned transport_dbg(tlm::tlm_generic_payload& gp);

  // Link faults (FAULTS.md; fabric/fault): what an armed fault does to a
  // request about to leave (false: the TLP is not delivered) and to its
  // completion coming back.
  bool request_fault(FaultRegistry& fr, tlm::tlm_generic_payload& gp, TlpExtension& ext,
                     Time* ready, Time now, bool* posted_done, Time* fault_done);
  void completion_fault(FaultRegistry& fr, tlm::tlm_generic_payload& gp, TlpExtension& ext,
                        Time* done, Time now);
  Time replay_timer() const;
  void trace_completions(TraceSink& sink, const tlm::tlm_generic_payload& gp, TlpExtension& ext,
                         Time cstart, Time cend, unsigned n, std::uint32_t chunk,
                         std::uint32_t first_len, std::uint32_t last_len, std::uint32_t per_tlp);

  PortOwner& owner_;
  bool removed_ = false;
  bool surprise_ = false;  // the link is down by a surprise, not disabled
  std::string where_[2];
  bool upstream_end_;
  int index_;
  Link* link_ = nullptr;
  Port* peer_ = nullptr;
};

}  // namespace pciesim::fabric

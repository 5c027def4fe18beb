// A PCIe switch: one upstream port (USP) and N downstream ports (DSPs), each
// a type-1 bridge function with its own config space. The USP sits on the
// bus below its link; the DSPs are devices 0..N-1 on the USP's secondary
// (internal) bus. Routing comes from the bridge registers: configuration
// requests by bus number, memory requests by the memory windows, and ACS on
// the downstream ports decides whether peer-to-peer requests turn around
// inside the switch or go up to the root complex.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <systemc>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/port/port.h"
#include "models/common/bridge_function.h"

namespace pciesim::models {

struct SwitchParams {
  unsigned downstream_ports = 4;
  std::uint16_t vendor_id = 0x5ec0;
  std::uint16_t usp_device_id = 0x0200;
  std::uint16_t dsp_device_id = 0x0201;
  // Ingress-to-egress latency of one traversal. Broadcom PEX 88000 and
  // Microchip Switchtec PFX datasheets quote 105-115 ns cut-through.
  fabric::Time traversal_latency = 110 * fabric::kNs;
  std::uint16_t acs_supported =
      PCI_ACS_SV | PCI_ACS_TB | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF | PCI_ACS_EC | PCI_ACS_DT;
  bool ari_forwarding = true;
  int max_link_speed = 5;
  int max_link_width = 16;
  std::uint32_t max_payload_supported = 512;
  // Downstream Port Containment on the downstream ports (PCIe Base 6.2.10).
  bool dpc = false;
};

struct SwitchPortStats {
  std::uint64_t requests = 0;
  std::uint64_t ur = 0;
  std::uint64_t bme_blocked = 0;
  std::uint64_t acs_violations = 0;
  std::uint64_t p2p_direct = 0;
  std::uint64_t p2p_redirected = 0;
  std::uint64_t error_messages_forwarded = 0;  // ERR_* from below sent on upstream
  std::uint64_t error_messages_blocked = 0;    // ... not: SERR# Enable clear, or DPC
  std::uint64_t error_messages_sent = 0;       // the port's own errors
  std::uint64_t dpc_triggers = 0;
};

class PcieSwitch : public sc_core::sc_module, public fabric::PortOwner {
 public:
  PcieSwitch(sc_core::sc_module_name name, const SwitchParams& params);

  const SwitchParams& params() const { return params_; }
  fabric::Port& upstream_port() { return *usp_port_; }
  fabric::Port& downstream_port(unsigned i) { return *dsp_ports_.at(i); }
  unsigned downstream_count() const { return static_cast<unsigned>(dsp_ports_.size()); }
  BridgeFunction& usp() { return *usp_; }
  BridgeFunction& dsp(unsigned i) { return *dsps_.at(i); }
  const SwitchPortStats& usp_stats() const { return usp_stats_; }
  const SwitchPortStats& dsp_stats(unsigned i) const { return dsp_stats_.at(i); }

  void port_receive(fabric::Port& port, tlm::tlm_generic_payload& gp,
                    sc_core::sc_time& delay) override;
  unsigned port_receive_dbg(fabric::Port& port, tlm::tlm_generic_payload& gp) override;
  bool accepts_bursts() const override { return true; }
  void port_hot_reset(fabric::Port& port) override;
  void port_link_state(fabric::Port& port, bool up) override;
  void port_error(fabric::Port& port, fabric::ErrorKind kind,
                  const std::array<std::uint32_t, 4>& header, fabric::Time t) override;
  // Logs an error the port function `fn` (the USP, or DSP `dsp` >= 0)
  // detected and sends its message upstream (FAULTS.md 2).
  void report_error(int dsp, fabric::ErrorKind kind, const std::array<std::uint32_t, 4>& header,
                    fabric::Time t, bool advisory = false);
  // A DPC interrupt of DSP `dsp` (its routing ID) at time t.
  std::function<void(fabric::RoutingId port, fabric::Time t)> on_dpc_interrupt;

 private:
  void record(int dsp, fabric::ErrorKind kind, const std::array<std::uint32_t, 4>& header,
              fabric::Time t, bool advisory);  // report_error at its time
  // Where a request goes next.
  struct Route {
    enum Kind { kLocalConfig, kDownstream, kUpstream, kUnsupported, kAcsViolation } kind;
    int port = -1;  // DSP index for kDownstream
    fabric::ConfigSpace* local = nullptr;
    fabric::TlpKind kind_out = fabric::TlpKind::MRd;  // for config conversion
    fabric::P2pPath p2p = fabric::P2pPath::kNone;
    // Upstream from below although a downstream port's window holds the
    // address (redirected peer-to-peer, counted as such).
    bool peer_window = false;
  };
  Route with_peer_window(Route r, std::uint64_t addr, std::uint32_t len) const;
  Route route_from_above(tlm::tlm_generic_payload& gp, fabric::TlpExtension& ext);
  Route route_from_below(unsigned dsp, tlm::tlm_generic_payload& gp, fabric::TlpExtension& ext);
  Route decide_from_below(unsigned dsp, tlm::tlm_generic_payload& gp, fabric::TlpExtension& ext);
  // Bridge memory windows (base/limit registers, prefetchable or not) have
  // 1 MiB granularity (PCI-to-PCI Bridge Architecture 1.2, 3.2.5.8-9): a
  // range inside one 1 MiB granule is inside or outside every window whole.
  static constexpr unsigned kWindowShift = 20;
  // The last memory request's route per downstream port. A route depends on
  // the 1 MiB granule, the requester's bus, the address type and the ports'
  // registers: it is reused while all of those are the same (config
  // generations of every port compared).
  struct RouteMemo {
    std::uint64_t page = ~std::uint64_t{0};  // addr >> kWindowShift
    std::uint8_t bus = 0;
    fabric::AddressType type = fabric::AddressType::kUntranslated;
    std::vector<std::uint64_t> generations;  // usp, then every dsp
    Route route{Route::kUnsupported};
  };
  bool memo_current(const RouteMemo& m) const;
  std::vector<RouteMemo> below_memo_;
  Route route_config_below(fabric::RoutingId target, fabric::TlpKind kind);
  void local_config(fabric::ConfigSpace& cs, tlm::tlm_generic_payload& gp,
                    fabric::TlpExtension& ext);
  void hot_reset_below();
  // An ERR_* message from below at DSP `from`.
  void forward_error_message(unsigned from, tlm::tlm_generic_payload& gp, fabric::TlpExtension& ext,
                             fabric::Time arrival);

  SwitchParams params_;
  std::unique_ptr<BridgeFunction> usp_;
  std::vector<std::unique_ptr<BridgeFunction>> dsps_;
  std::unique_ptr<fabric::Port> usp_port_;
  std::vector<std::unique_ptr<fabric::Port>> dsp_ports_;
  SwitchPortStats usp_stats_;
  std::vector<SwitchPortStats> dsp_stats_;
};

}  // namespace pciesim::models

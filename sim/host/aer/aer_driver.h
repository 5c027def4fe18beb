// The host's PCIe error handling, as Linux does it (FAULTS.md 4;
// drivers/pci/pcie/aer.c, err.c, dpc.c): AER and DPC set up at boot, the
// root ports' error interrupts and the DPC interrupts serviced by a host
// thread that finds the error source, logs what it read, and runs the
// recovery walk (pcie_do_recovery) over the hierarchy below the reporting
// port with the drivers' callbacks and the vote merging.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <systemc>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/routing_id.h"

namespace pciesim::sim {

class Host;
struct PciDev;

// pci_ers_result_t.
enum class ErsResult { kNone, kCanRecover, kNeedReset, kDisconnect, kRecovered, kNoAerDriver };
const char* to_string(ErsResult r);

struct RecoveryRecord {
  fabric::Time start = 0, end = 0;
  std::string source;    // the function that reported (or the DPC port)
  std::string bridge;    // the port whose hierarchy was walked
  std::string severity;  // non_fatal, fatal
  std::string trigger;   // aer or dpc
  std::string errors;    // decoded status bits of the source
  std::string result;    // recovered or failed
  std::string reason;    // why it failed
  // Per function of the walk: recovered, disconnected or no_handler.
  std::vector<std::pair<std::string, std::string>> outcomes;
};

struct AerStats {
  std::uint64_t interrupts = 0;
  std::uint64_t dpc_interrupts = 0;
  std::uint64_t correctable = 0;
  std::uint64_t non_fatal = 0;
  std::uint64_t fatal = 0;
  std::uint64_t recoveries = 0;
  std::uint64_t recovered = 0;
  std::uint64_t failed = 0;
  std::vector<RecoveryRecord> log;
  std::vector<std::string> messages;  // what Linux would print (first 1000)
};

class AerDriver : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(AerDriver);
  AerDriver(sc_core::sc_module_name name, Host& host);

  // pci_aer_init for every function (Device Control error reporting),
  // pci_configure_serr for bridges, aer_enable_rootport, dpc_probe.
  void init();
  // The interrupts (from the models' callbacks): serviced in order.
  void root_port_interrupt(unsigned port, fabric::Time t);
  void dpc_interrupt(fabric::RoutingId port, fabric::Time t);

  const AerStats& stats() const { return stats_; }
  // An error interrupt is queued or being handled (a run is not over
  // before its recovery is); idle_event() fires when that ends.
  bool busy() const { return handling_ || !queue_.empty(); }
  sc_core::sc_event& idle_event() { return idle_; }
  // The recovery state of a function: "" (never involved), or the
  // outcome of the last recovery that walked it.
  std::string outcome(const std::string& function) const;

 private:
  struct Event {
    bool dpc;
    unsigned port;
    fabric::RoutingId rid;
    fabric::Time at;
  };
  void service();
  void handle_root_port(unsigned port);
  void handle_dpc(fabric::RoutingId port);
  void handle_source(PciDev& dev, bool correctable, bool fatal);
  bool is_source(PciDev& dev, bool correctable) const;
  // pcie_do_recovery: `dev` reported; returns whether it recovered.
  void do_recovery(PciDev& dev, bool frozen, bool dpc, const std::string& errors);
  ErsResult error_detected(PciDev& d, bool frozen);
  ErsResult mmio_enabled(PciDev& d);
  ErsResult slot_reset(PciDev& d);
  void resume(PciDev& d);
  std::string decode(PciDev& dev, bool correctable);
  void log(const std::string& m);

  Host& host_;
  std::deque<Event> queue_;
  sc_core::sc_event wake_;
  sc_core::sc_event idle_;
  bool handling_ = false;
  AerStats stats_;
  std::vector<std::pair<std::string, std::string>> outcomes_;
};

}  // namespace pciesim::sim

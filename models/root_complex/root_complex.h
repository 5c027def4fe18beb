// The root complex: host bridge (00:00.0), root ports (00:01.0, 00:02.0, ...)
// as type-1 bridge functions with a link each, the CPU's config (ECAM) and
// MMIO path, the host-memory path for DMA, the MSI sink and peer-to-peer
// reflection between root ports. What a CPU read sees for a failed request
// is decided here and only here (DESIGN.md section 3).
#pragma once

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "fabric/common/interval_book.h"
#include "fabric/common/sim_time.h"
#include "fabric/port/port.h"
#include "models/common/bridge_function.h"
#include "models/host_memory/host_memory.h"
#include "models/root_complex/msi_sink.h"
#include "models/root_complex/translator.h"

namespace pciesim::models {

enum class CompletionSplit { kRcb, kMps };
enum class P2pPolicy { kForward, kBlock };

struct RootComplexParams {
  unsigned root_ports = 1;
  std::uint16_t vendor_id = 0x5ec0;
  std::uint16_t host_bridge_device_id = 0x0100;
  std::uint16_t root_port_device_id = 0x0101;
  // ACS on root ports: SV, TB, RR, CR, UF, EC (egress vector by root port
  // Port Number), DT.
  std::uint16_t acs_supported =
      PCI_ACS_SV | PCI_ACS_TB | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF | PCI_ACS_EC | PCI_ACS_DT;
  bool ari_forwarding = true;
  bool rrs_sw_visibility = true;
  int max_link_speed = 5;
  int max_link_width = 16;
  // Intel Xeon root ports advertise 256 bytes.
  std::uint32_t max_payload_supported = 256;

  // --- latencies (calibration targets in docs/timing.md) ---
  // CPU core to root complex for an uncached access, each way.
  fabric::Time cpu_latency = 60 * fabric::kNs;
  // Extra ECAM (configuration) handling in the root complex.
  fabric::Time config_latency = 200 * fabric::kNs;
  // Root port ingress to the coherent fabric / memory controller, and
  // fabric to root port egress; with DRAM latency these give the ~500 ns
  // 64 B DMA read round trip pcie-bench measured on Xeon E5 (SIGCOMM'18).
  fabric::Time upstream_latency = 150 * fabric::kNs;
  fabric::Time downstream_latency = 100 * fabric::kNs;

  // --- the root port's path into the coherent fabric (docs/timing.md,
  // "Host data path"); 0 = unlimited. Each root port moves DMA data to and
  // from the caches one 64-byte line at a time: a DMA read occupies it
  // read_line_time per line it touches (its lines stream back at that
  // interval, so a read's latency grows with its size and reads saturate at
  // 64 B / read_line_time), a write write_line_time per line, counted in
  // write_granule-byte units (a write covering part of a granule costs the
  // whole granule: the merge of a partial unit). Reads and writes have a
  // path each (pcie-bench: reads and writes at once reach 52 Gb/s each).
  fabric::Time read_line_time = 0;
  fabric::Time write_line_time = 0;
  std::uint32_t write_granule = 64;

  // --- address map ---
  std::uint64_t ecam_base = 0xe0000000;  // 256 MiB: buses 0-255
  std::uint64_t msi_base = 0xfee00000;
  std::uint64_t msi_size = 0x100000;
  MemoryRange mmio32{0x80000000, 0x60000000};
  MemoryRange mmio64{0x4000000000ull, 0x4000000000ull};

  // --- completions ---
  CompletionSplit completion_split = CompletionSplit::kRcb;
  bool rcb_128 = false;  // Read Completion Boundary 64 (false) or 128 bytes
  // With completion_split kMps: requests of at most this many bytes are
  // still completed in RCB pieces (the root complex combines the lines of
  // larger requests only); 0 = combine every request.
  std::uint32_t completion_combine_above = 0;
  // CPU requests: completion timeout (PCIe default range 50 us - 50 ms).
  fabric::Time completion_timeout = 50 * fabric::kMs;
  // Config requests completed with RRS and no SW visibility are re-issued
  // by the root complex with exponential backoff, until rrs_timeout.
  fabric::Time rrs_initial_backoff = 1 * fabric::kUs;
  fabric::Time rrs_max_backoff = 1 * fabric::kMs;
  fabric::Time rrs_timeout = 1 * fabric::kSec;
  // Downstream Port Containment on the root ports (off: Linux only uses
  // DPC where the platform grants it).
  bool dpc = false;

  P2pPolicy p2p = P2pPolicy::kForward;
};

struct RootPortStats {
  std::uint64_t upstream_requests = 0;
  std::uint64_t ur = 0;
  std::uint64_t ca = 0;
  std::uint64_t bme_blocked = 0;
  std::uint64_t acs_violations = 0;
  std::uint64_t p2p_reflected = 0;
  std::uint64_t p2p_blocked = 0;
  std::uint64_t translation_faults = 0;
  std::uint64_t msi = 0;
  std::uint64_t err_cor_received = 0;  // error messages from below (and its own)
  std::uint64_t err_nonfatal_received = 0;
  std::uint64_t err_fatal_received = 0;
  std::uint64_t error_interrupts = 0;
  std::uint64_t dpc_triggers = 0;
};

struct RootComplexStats {
  std::uint64_t config_reads = 0;
  std::uint64_t config_writes = 0;
  std::uint64_t mmio_reads = 0;
  std::uint64_t mmio_writes = 0;
  std::uint64_t cpu_ur = 0;
  std::uint64_t cpu_ca = 0;
  std::uint64_t cpu_timeouts = 0;
  std::uint64_t rrs_retries = 0;
  std::uint64_t rrs_visible = 0;
  std::vector<RootPortStats> ports;
};

class RootComplex : public sc_core::sc_module, public fabric::PortOwner {
 public:
  tlm_utils::simple_target_socket<RootComplex> cpu_socket;
  tlm_utils::simple_initiator_socket<RootComplex> mem_socket;

  RootComplex(sc_core::sc_module_name name, const RootComplexParams& params,
              std::vector<MemoryRange> dram);

  const RootComplexParams& params() const { return params_; }
  unsigned root_port_count() const { return static_cast<unsigned>(root_ports_.size()); }
  fabric::Port& port(unsigned i) { return *ports_.at(i); }
  BridgeFunction& root_port(unsigned i) { return *root_ports_.at(i); }
  fabric::ConfigSpace& host_bridge_config() { return host_bridge_; }
  MsiSink& msi() { return msi_; }
  const RootComplexStats& stats() const { return stats_; }
  void set_translator(UpstreamTranslator* t) { translator_ = t; }
  // The DRAM behind mem_socket, for posted-write bursts (one call each).
  void set_memory(HostMemory* m) { memory_ = m; }
  // A register block the CPU reaches by MMIO at [base, base + size) (the
  // IOMMU's).
  void set_register_block(RegisterBlock* regs, std::uint64_t base) {
    regs_ = regs;
    regs_base_ = base;
  }
  // Host memory for agents inside the root complex (the IOMMU's table
  // walks): timed from t, or zero-time with debug. False outside DRAM.
  bool memory_access(std::uint64_t addr, std::uint8_t* data, std::uint32_t len, bool write,
                     fabric::Time t, bool debug, fabric::Time* done);
  bool is_dram(std::uint64_t addr, std::uint64_t len) const;

  // Zero-time accesses (debug reads, lspci). Return false when nothing
  // answered (UR): reads then hold all ones.
  bool config_dbg(fabric::RoutingId rid, std::uint16_t reg, unsigned size, bool write,
                  std::uint32_t* value);
  bool mmio_dbg(std::uint64_t addr, std::uint8_t* data, std::uint32_t len, bool write);

  void port_receive(fabric::Port& port, tlm::tlm_generic_payload& gp,
                    sc_core::sc_time& delay) override;
  void port_error(fabric::Port& port, fabric::ErrorKind kind,
                  const std::array<std::uint32_t, 4>& header, fabric::Time t) override;

  // Error reporting (FAULTS.md 2): root port `port` logs an error it
  // detected itself; an error it detects counts as an error message it
  // received from itself (PCIe Base 6.2.4.1).
  void report_error(unsigned port, fabric::ErrorKind kind,
                    const std::array<std::uint32_t, 4>& header, fabric::Time t,
                    bool advisory = false);
  // The root port's interrupt (Root Error Command enabled for what it
  // recorded) at time t: the host's AER service.
  std::function<void(unsigned port, fabric::Time t)> on_error_interrupt;
  // A DPC interrupt of root port `port` at time t.
  std::function<void(unsigned port, fabric::Time t)> on_dpc_interrupt;
  unsigned port_receive_dbg(fabric::Port& port, tlm::tlm_generic_payload& gp) override;
  bool accepts_bursts() const override { return true; }
  void port_link_state(fabric::Port& port, bool up) override;

 private:
  void record(unsigned port, fabric::ErrorKind kind, const std::array<std::uint32_t, 4>& header,
              fabric::Time t, bool advisory);  // report_error at its time
  struct Outcome {
    fabric::CplStatus status;
    fabric::Time done;
  };
  void cpu_b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  unsigned cpu_transport_dbg(tlm::tlm_generic_payload& gp);
  Outcome cpu_config(fabric::RoutingId rid, std::uint16_t reg, unsigned size, bool write,
                     std::uint8_t* data, fabric::Time t, bool* rrs_visible);
  Outcome cpu_mmio(std::uint64_t addr, std::uint8_t* data, std::uint32_t len, bool write,
                   fabric::Time t);
  fabric::ConfigSpace* bus0_function(fabric::RoutingId rid);
  int root_port_for_bus(unsigned bus) const;
  int root_port_for_address(std::uint64_t addr, std::uint32_t len) const;
  std::uint16_t completion_chunk(unsigned port, std::uint32_t len) const;
  void complete_locally(tlm::tlm_generic_payload& gp, fabric::CplStatus s);
  // An ERR_* message from `source` reaching root port `port` (6.2.6, figure
  // 6-3): Root Error Status, Error Source Identification, the interrupt;
  // or DPC containment when the port has it enabled.
  void root_error_message(unsigned port, fabric::ErrorSeverity severity, fabric::RoutingId source,
                          fabric::Time t);
  // The requester-side checks of a CPU request's completion (fault marks).
  fabric::CplStatus check_cpu_completion(unsigned port, fabric::Tlp& tlp, fabric::Time t);
  void receive_burst(fabric::Port& port, tlm::tlm_generic_payload& gp, fabric::TlpExtension& ext,
                     sc_core::sc_time& delay);
  // The root port's coherent-fabric path for a DMA access to DRAM arriving
  // at t: when it starts there and how many line slots it holds.
  struct HostPath {
    fabric::Time start;
    fabric::Time line_time;
    unsigned lines;
  };
  HostPath host_path(unsigned port, std::uint64_t addr, std::uint32_t len, bool write,
                     fabric::Time t);

  RootComplexParams params_;
  std::vector<MemoryRange> dram_;
  fabric::ConfigSpace host_bridge_;
  std::vector<std::unique_ptr<BridgeFunction>> root_ports_;
  std::vector<std::unique_ptr<fabric::Port>> ports_;
  MsiSink msi_;
  UpstreamTranslator* translator_ = nullptr;
  HostMemory* memory_ = nullptr;
  RegisterBlock* regs_ = nullptr;
  std::uint64_t regs_base_ = 0;
  RootComplexStats stats_;
  std::vector<fabric::IntervalBook> path_;  // per root port: reads, writes
  bool in_register_block(std::uint64_t addr, std::uint32_t len) const {
    return regs_ && addr >= regs_base_ && addr - regs_base_ < regs_->register_block_size() &&
           len <= regs_->register_block_size() - (addr - regs_base_);
  }
};

// The routing ID the root complex uses for CPU-originated requests.
constexpr fabric::RoutingId kHostRequester{0, 0, 0};

}  // namespace pciesim::models

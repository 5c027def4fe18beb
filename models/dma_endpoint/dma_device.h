// A PCIe endpoint device with one physical function running the DMA copy
// engine and, optionally, SR-IOV virtual functions (DESIGN.md section 6).
// All functions share the device's upstream port and one SystemC thread
// that runs their engines in time order: an idle VF costs no simulation time.
// VFs are allocated up front (TotalVFs of them); VF Enable and NumVFs switch
// them into and out of existence.
#pragma once

#include <cstdint>
#include <memory>
#include <queue>
#include <string>
#include <systemc>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/port/port.h"
#include "models/dma_endpoint/dma_function.h"

namespace pciesim::models {

// Migration support in the PF's firmware (docs/migration.md).
struct MigrationDeviceParams {
  bool enabled = false;
  // Firmware time to handle one mailbox command, before any DMA or drain.
  // hisi_acc polls a command's status every 100 us and expects it done
  // within its first polls (drivers/vfio/pci/hisilicon, qm_wait_dev_not_ready):
  // commands complete on the order of 100 us.
  fabric::Time command_latency = 100 * fabric::kUs;
  // Outstanding image reads the firmware keeps in flight (its own tags).
  unsigned dma_tags = 32;
  // Injected failure (the fault-injection layer will drive these): the
  // `fail_after`-th command with opcode `fail_op` (0 = none) and the
  // `fail_count` - 1 following ones fail with kMigErrInternal, or
  // (fail_timeout) never complete until the function or PF is reset.
  std::uint32_t fail_op = 0;
  bool fail_timeout = false;
  unsigned fail_after = 1;
  unsigned fail_count = 1;
  // DMA logging (the firmware's dirty-page tracker for a VF's writes):
  // whether it is offered, how many IOVA ranges one session can track (the
  // host driver merges more; mlx5 devices report a small maximum), the page
  // sizes it can log at (a request outside is adjusted and reported), and
  // the pages one session may track at most (its log memory).
  bool dma_logging = true;
  unsigned log_max_ranges = 4;
  std::uint64_t log_min_page = 4096;
  std::uint64_t log_max_page = 2ull << 20;
  std::uint64_t log_max_pages = 1ull << 24;
  // What a frozen VF (STOP, STOP_COPY: responder suspended) does with an
  // inbound write into its BAR2 device memory. false: discarded and counted
  // (mlx5's "suspend responder"). true: it lands, because the device has no
  // way to stop incoming requests (ice: RUNNING_P2P -> STOP is a no-op that
  // relies on every peer being quiesced first), so a peer still running
  // changes the state after it was saved: the race of MIGRATION.md 5.
  bool frozen_devmem_accepts = false;
};

struct DmaDeviceParams {
  std::uint16_t vendor_id = 0x5ec0;
  std::uint16_t device_id = 0x0001;
  std::uint16_t vf_device_id = 0x0002;
  std::uint16_t subsystem_vendor_id = 0x5ec0;
  std::uint16_t subsystem_id = 0x0001;
  std::uint8_t revision = 1;
  std::uint32_t class_code = 0x088000;  // generic system peripheral

  std::uint64_t device_memory = 1 << 20;      // PF BAR2 bytes
  std::uint64_t vf_device_memory = 64 << 10;  // per-VF BAR2 bytes
  std::uint16_t msix_vectors = 4;
  std::uint16_t vf_msix_vectors = 2;

  int max_link_speed = 3;
  int max_link_width = 8;
  std::uint32_t max_payload_supported = 512;

  // SR-IOV (0 VFs = no SR-IOV capability).
  std::uint16_t total_vfs = 0;
  std::uint16_t first_vf_offset = 1;
  std::uint16_t vf_stride = 1;
  // Offset/stride while ARI Capable Hierarchy is clear (SPEC.md C: they may
  // depend on it); by default the same.
  std::uint16_t first_vf_offset_no_ari = 1;
  std::uint16_t vf_stride_no_ari = 1;
  bool ari = true;
  // Device option (SPEC.md B): does the PF's BME also gate its VFs' DMA?
  bool pf_bme_gates_vfs = false;
  // ACS capability on the PF and VFs (PCI_ACS_* bits; 0 = none).
  std::uint16_t acs_supported = 0;
  bool no_soft_reset = false;  // PMCSR No_Soft_Reset

  // --- engine ---
  unsigned tags = 256;  // 8-bit tags; 768 with ten_bit_tags
  bool ten_bit_tags = false;
  std::uint32_t staging_bytes = 64 * 1024;
  // On-device memory bandwidth for local (BAR2) reads/writes: 1024 Gb/s =
  // 128 GB/s, e.g. four DDR5-4800 channels, above a Gen5 x16 link (~63 GB/s)
  // so that the link, not the device memory, limits DMA by default.
  double local_memory_gbps = 1024.0;
  // The engine's own accesses to device memory (storing what a DMA read
  // brought, loading what a write sends) complete this long after their
  // bandwidth slot; 0 by default (docs/dma-engine.md).
  fabric::Time local_memory_latency = 0;
  // Split DMA writes at MPS-aligned and reads at MRRS-aligned addresses
  // (as many DMA engines do) instead of every MPS / MRRS bytes from the
  // start of the transfer.
  bool aligned_requests = false;
  // The memory writes that are ready together -- a chunk's, and those of
  // the following chunks of the same descriptor that continue the same
  // 4 KiB page -- go to the transmit queue together and travel as one burst
  // transaction (up to 64 TLPs), each TLP still timed and credited on every
  // hop (fabric::BurstTlp). Off: one write per link slot, so other traffic
  // of the device interleaves TLP by TLP. Results differ only in that
  // interleaving; bursts are several times faster to simulate.
  bool write_bursts = true;

  MigrationDeviceParams migration;

  // --- timing (docs/timing.md) ---
  fabric::Time config_latency = 100 * fabric::kNs;
  fabric::Time mmio_latency = 50 * fabric::kNs;
  fabric::Time devmem_latency = 100 * fabric::kNs;
  // FLR must complete within 100 ms (PCIe Base 6.6.2); requests are
  // discarded meanwhile, then RRS for flr_ready_delay.
  fabric::Time flr_time = 10 * fabric::kMs;
  fabric::Time flr_ready_delay = 0;
  // After a conventional reset the device answers RRS this long (< 1 s).
  fabric::Time reset_ready_time = 20 * fabric::kMs;
  // After VF Enable, VFs answer RRS this long (software waits 100 ms).
  fabric::Time vf_ready_time = 5 * fabric::kMs;
  // D0 <-> D3hot transition time (PCI PM 1.2: 10 ms).
  fabric::Time pm_transition_time = 10 * fabric::kMs;
};

struct IssueResult {
  fabric::CplStatus status;
  fabric::Time done;             // completion arrival (reads) / consumption (writes)
  fabric::Time wire_free;        // when the device's link can take the next TLP
  fabric::Time first_start = 0;  // when the (first) TLP started on the device's link
};

class MigrationFirmware;

class DmaDevice : public sc_core::sc_module, public fabric::PortOwner {
 public:
  SC_HAS_PROCESS(DmaDevice);
  DmaDevice(sc_core::sc_module_name name, const DmaDeviceParams& params);
  ~DmaDevice() override;

  const DmaDeviceParams& params() const { return params_; }
  fabric::Port& port() { return port_; }
  DmaFunction& pf() { return *functions_[0]; }
  DmaFunction& vf(unsigned n) { return *functions_.at(n); }  // 1-based
  unsigned total_vfs() const { return params_.total_vfs; }
  unsigned enabled_vfs() const { return enabled_vfs_; }
  std::vector<DmaFunction*> existing_functions();
  DmaFunction* function_by_name(const std::string& name);
  DmaFunction* function_by_rid(fabric::RoutingId rid);
  std::uint16_t sriov_cap() const { return sriov_; }
  // The PF firmware's migration unit (nullptr without migration support).
  MigrationFirmware* firmware() { return firmware_.get(); }

  // --- services for functions ---
  // All of `pieces` (consecutive writes from `addr`, each ready at t) as
  // one burst; falls back to one issue() each where a burst cannot go.
  // `timing` (if given) receives each piece's start and done times.
  IssueResult issue_writes(DmaFunction& f, std::uint64_t addr, std::uint8_t* data,
                           const std::vector<std::uint32_t>& pieces, fabric::Time t,
                           std::vector<PieceTiming>* timing = nullptr);
  IssueResult issue(DmaFunction& f, fabric::TlpKind kind, std::uint64_t addr, std::uint8_t* data,
                    std::uint32_t len, std::uint16_t tag, fabric::Time t);
  // Queues a step of `f` at t and wakes the engine thread.
  void schedule(DmaFunction& f, fabric::Time t);
  std::uint32_t mps() const;
  std::uint32_t mrrs() const;
  fabric::Time completion_timeout() const;
  bool pf_bus_master() const;
  fabric::Time local_copy_time(std::uint32_t bytes) const;
  // The PF's SR-IOV register side effects.
  void sriov_control_written(std::uint16_t old_ctrl, std::uint16_t new_ctrl, fabric::Time t);
  void sriov_page_size_written();
  void pf_flr(fabric::Time t);
  void pf_power_reset(fabric::Time t);
  // VF n's routing ID (SPEC.md C) for the current offset/stride.
  fabric::RoutingId vf_rid(unsigned n) const;

  void port_receive(fabric::Port& port, tlm::tlm_generic_payload& gp,
                    sc_core::sc_time& delay) override;
  unsigned port_receive_dbg(fabric::Port& port, tlm::tlm_generic_payload& gp) override;
  void port_hot_reset(fabric::Port& port) override;
  void port_link_state(fabric::Port& port, bool up) override;
  void port_error(fabric::Port& port, fabric::ErrorKind kind,
                  const std::array<std::uint32_t, 4>& header, fabric::Time t) override;

  // Logs an error `f` detected and sends the message it calls for
  // (FAULTS.md 2). Link-level errors are logged by the PF (SR-IOV 1.1,
  // 2.5: VFs do not log errors that are not function-specific).
  void report_error(DmaFunction& f, fabric::ErrorKind kind,
                    const std::array<std::uint32_t, 4>& header, fabric::Time t,
                    bool advisory = false);
  // Device faults (fabric/fault): an uncorrectable internal error in `f`,
  // and an FLR of `f` nobody asked for.
  void internal_error(DmaFunction& f, fabric::Time t);
  void surprise_flr(DmaFunction& f, fabric::Time t);

 private:
  struct Decoded {
    DmaFunction* f = nullptr;
    int bar = -1;
    std::uint64_t offset = 0;
  };
  Decoded decode_memory(std::uint64_t addr, std::uint32_t len);
  // What decode_memory needs from the PF's registers, recomputed when the
  // PF's config space generation or the number of enabled VFs changes
  // (instead of walking BARs and SR-IOV registers for every TLP).
  struct DecodeState {
    std::uint64_t generation = 0;  // 0: never computed
    std::uint16_t vfs = 0;
    bool mse = false;               // PF Memory Space Enable
    bool vf_mse = false;            // VF Enable and VF MSE, with VFs enabled
    std::uint64_t base[3] = {};     // PF BAR0 / BAR2 addresses
    std::uint64_t vf_base[3] = {};  // VF BAR0 / BAR2 of VF 0
    std::uint64_t vf_stride[3] = {};
  };
  const DecodeState& decode_state();
  DecodeState decode_;
  // A completer fault armed on `f` for this request (fabric/fault): true
  // when the request was answered by the fault.
  bool completer_fault(DmaFunction& f, tlm::tlm_generic_payload& gp, fabric::TlpExtension& ext,
                       fabric::Time t);
  void serve(tlm::tlm_generic_payload& gp, fabric::TlpExtension& ext, fabric::Time t,
             fabric::Time* done);
  void engine_thread();
  void enable_vfs(fabric::Time t);
  void disable_vfs(fabric::Time t);
  void update_vf_layout();
  std::uint64_t vf_bar_stride(unsigned bar) const;
  fabric::ConfigSpace build_pf_config();
  fabric::ConfigSpace build_vf_template();

  DmaDeviceParams params_;
  fabric::Port port_;
  std::unique_ptr<MigrationFirmware> firmware_;
  std::vector<std::unique_ptr<DmaFunction>> functions_;  // [0] PF, [n] VF n
  std::uint16_t sriov_ = 0;
  unsigned enabled_vfs_ = 0;
  fabric::Tlp tlp_;
  fabric::Tlp burst_tlp_;
  std::vector<fabric::BurstTlp> burst_;

  struct Slot {
    fabric::Time t;
    std::uint64_t seq;
    unsigned fn;
    bool operator>(const Slot& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> queue_;
  // Queues without waking (the engine thread itself); false if f was
  // already queued at or before t.
  bool enqueue(DmaFunction& f, fabric::Time t);
  std::vector<fabric::Time> queued_at_;  // per function; kTimeMax = not queued
  std::uint64_t seq_ = 0;
  sc_core::sc_event work_;
};

}  // namespace pciesim::models

// One function of a DMA device: the PF or a VF. Plain C++ (a VF must stay
// cheap: config bytes, registers and engine state, no SystemC process); the
// owning DmaDevice serves its requests and runs its engine.
//
// The engine processes descriptors as a stream of chunks (at most 4 KiB,
// never crossing a 4 KiB boundary of a remote address): remote data is read
// with MRd requests of at most MRRS bytes (each holding a tag until its
// completion arrives), written with MWr of at most MPS bytes in order, and
// a descriptor's completion record and interrupt follow its last write.
// Reads run ahead of writes up to the staging buffer size and the tag or
// max-reads limit. Each step issues at most one TLP.
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fabric/common/histogram.h"
#include "fabric/common/sim_time.h"
#include "fabric/common/time_bins.h"
#include "fabric/config_space/config_space.h"
#include "fabric/link/flow_control.h"
#include "fabric/tlp/routing_id.h"
#include "fabric/tlp/tlp.h"
#include "models/dma_endpoint/dma_regs.h"
#include "models/dma_endpoint/migration_image.h"

namespace pciesim::models {

class DmaDevice;

// When one write of a group started on the device's link and when it was
// done (consumed by its final target).
struct PieceTiming {
  fabric::Time start;
  fabric::Time done;
};

struct DmaFunctionStats {
  std::uint64_t engine_steps = 0;  // times the device's scheduler ran this engine
  std::uint64_t read_requests = 0;
  std::uint64_t read_bytes = 0;
  std::uint64_t write_requests = 0;
  std::uint64_t write_bytes = 0;
  std::uint64_t local_bytes = 0;
  std::uint64_t descriptor_fetches = 0;
  std::uint64_t descriptors_completed = 0;
  std::uint64_t ops_completed = 0;
  std::uint64_t errors = 0;
  std::uint64_t bme_aborts = 0;
  std::uint64_t unexpected_completions = 0;
  std::uint64_t msix_sent = 0;
  std::uint64_t msix_masked = 0;   // raised while masked: PBA bit set
  std::uint64_t msix_dropped = 0;  // raised with MSI-X disabled or BME clear
  std::uint64_t mmio_reads = 0;
  std::uint64_t mmio_writes = 0;
  std::uint64_t config_reads = 0;
  std::uint64_t config_writes = 0;
  std::uint64_t rrs_returned = 0;
  std::uint64_t discarded = 0;
  std::uint64_t ur_returned = 0;
  std::uint64_t flrs = 0;
  std::uint64_t ignored_writes = 0;  // config writes of invalid values, left unapplied
  std::uint64_t tag_stalls = 0;
  fabric::Time tag_stall_time = 0;
  std::uint64_t p2p_internal = 0;
  std::uint64_t op_bytes = 0;  // bytes of completed operations
  std::uint64_t first_op_bytes = 0;
  fabric::Time first_op_end = 0;  // completion of the first / last operation:
  fabric::Time last_op_end = 0;   // steady-state throughput excludes pipeline fill
  // Migration (docs/migration.md): inbound writes discarded while frozen,
  // and how often the firmware suspended / saved / loaded this function.
  std::uint64_t frozen_drops = 0;
  std::uint64_t error_messages = 0;  // ERR_COR / NONFATAL / FATAL sent for this function
  std::uint64_t quiesces = 0;
  std::uint64_t freezes = 0;
  std::uint64_t images_saved = 0;
  std::uint64_t images_loaded = 0;
  fabric::Histogram op_latency;    // one DMA operation (xfer_size bytes), ns
  fabric::Histogram read_latency;  // one MRd round trip, ns
  // The traffic generator (dma_regs.h GenReg): transfers completed, and
  // for its last run each transfer's latency, from its start to its data in
  // place (a write-read pair: from the write's start to the read's data).
  std::uint64_t gen_transfers = 0;
  fabric::Histogram gen_latency;
  // The last generator run's steady state: bytes of the transfers after its
  // first, over the time from the first's completion to the last's.
  std::uint64_t gen_run_bytes = 0;
  std::uint64_t gen_run_first_bytes = 0;
  fabric::Time gen_run_first_end = 0;
  fabric::Time gen_run_last_end = 0;
};

enum class PowerState : std::uint8_t { kD0 = 0, kD3hot = 3 };

class DmaFunction : public fabric::ConfigListener {
 public:
  DmaFunction(DmaDevice& device, std::string name, unsigned vf_number, fabric::ConfigSpace cs);
  DmaFunction(const DmaFunction&) = delete;
  DmaFunction& operator=(const DmaFunction&) = delete;

  // --- identity ---
  const std::string& name() const { return name_; }
  bool is_vf() const { return vf_number_ != 0; }
  unsigned vf_number() const { return vf_number_; }  // 1-based; 0 = PF
  fabric::RoutingId rid() const { return rid_; }
  void set_rid(fabric::RoutingId r) { rid_ = r; }
  fabric::ConfigSpace& config() { return cs_; }
  const fabric::ConfigSpace& config() const { return cs_; }
  const DmaFunctionStats& stats() const { return stats_; }
  DmaFunctionStats& stats() { return stats_; }

  // --- life cycle (SPEC.md C, D) ---
  bool exists() const { return exists_; }
  // VF Enable made it exist at `t`; it answers config with RRS until ready.
  void create(fabric::Time t, fabric::Time ready_at);
  // VF Enable cleared / PF reset: gone, in-flight DMA lost.
  void destroy(fabric::Time t);
  // FLR: non-sticky state reset; requests discarded until `flr_end`, RRS
  // until `ready_at`.
  void flr(fabric::Time t, fabric::Time flr_end, fabric::Time ready_at);
  // Conventional reset of this function.
  void conventional_reset(fabric::Time t, fabric::Time ready_at);
  bool in_reset(fabric::Time t) const { return t < reset_end_; }
  bool ready(fabric::Time t) const { return t >= ready_at_; }
  fabric::Time ready_at() const { return ready_at_; }
  PowerState power_state() const { return power_; }
  bool transitioning(fabric::Time t) const { return t < pm_busy_until_; }

  // --- target side ---
  // Config request; returns the completion status (SC, RRS, discarded).
  fabric::CplStatus config_access(std::uint16_t reg, unsigned size, bool write, std::uint8_t* data,
                                  fabric::Time t);
  // BAR0 registers and MSI-X structures.
  fabric::CplStatus bar0_access(std::uint32_t offset, std::uint8_t* data, std::uint32_t len,
                                bool write, fabric::Time t, bool debug = false);
  // BAR2 device memory; `requester` is who sent the request.
  fabric::CplStatus devmem_access(std::uint64_t offset, std::uint8_t* data, std::uint32_t len,
                                  bool write, std::uint16_t requester);
  // An observer of inbound writes into BAR2 (the VMM's check that nothing
  // changes a device after its image was taken): requester, offset, bytes,
  // and whether the write changed the memory (false: a frozen function
  // discarded it). Empty: none.
  using InboundWriteHook = std::function<void(std::uint16_t requester, std::uint64_t offset,
                                              std::uint32_t len, bool applied)>;
  void set_inbound_write_hook(InboundWriteHook h) { inbound_hook_ = std::move(h); }
  std::uint64_t devmem_size() const { return devmem_size_; }
  // Offset of the PCI Express capability in config space.
  std::uint16_t pcie_cap() const { return exp_; }
  void devmem_debug(std::uint64_t offset, std::uint8_t* data, std::uint32_t len, bool write);

  // --- engine (called by the device scheduler) ---
  // Performs at most one action at time t; returns when to run again
  // (kTimeMax = nothing to do until a register write wakes it).
  fabric::Time step(fabric::Time t);
  bool idle() const;
  bool bus_master_enabled() const;
  bool memory_decode_enabled() const;  // MSE (PF) / VF MSE (VF)
  bool msix_enabled() const;
  std::uint32_t engine_status() const;
  std::uint32_t head() const { return regs_.head; }
  std::uint32_t error_code() const { return regs_.error; }
  // Tags this function holds at time t (Transactions Pending).
  unsigned outstanding(fabric::Time t) const { return tags_ ? tags_->outstanding(t) : 0; }

  // --- migration (executed by the PF's firmware, docs/migration.md) ---
  // Suspend initiator: no new request from now on (DMA, completion
  // records, MSI-X); the descriptor in progress keeps its progress and the
  // function still serves requests as a target.
  void quiesce(fabric::Time t);
  // When every non-posted request issued so far has completed.
  fabric::Time drain_time(fabric::Time t) const;
  void unquiesce(fabric::Time t);
  // Fault quiesce_stuck: outstanding reads never drain from now on.
  void set_drain_stuck(bool stuck) { drain_stuck_ = stuck; }
  // An uncorrectable internal error: the engine stops (error kErrInternal)
  // until a reset of the function.
  void halt_internal_error(fabric::Time t);
  // Suspend responder: inbound requests no longer change the function
  // (writes are discarded and counted, reads answered); config space
  // still works.
  void freeze() {
    frozen_ = true;
    ++stats_.freezes;
  }
  void unfreeze() { frozen_ = false; }
  bool quiesced() const { return quiesced_; }
  // Bytes this function read and wrote by completion time, per time bin
  // (sampling; DmaDevice books them); null = off.
  void set_byte_bins(fabric::TimeBins* reads, fabric::TimeBins* writes) {
    read_bins_ = reads;
    write_bins_ = writes;
  }
  fabric::TimeBins* read_bins() const { return read_bins_; }
  fabric::TimeBins* write_bins() const { return write_bins_; }
  bool frozen() const { return frozen_; }
  // Dirty tracking of device memory (kPageBytes pages) and engine state.
  void start_tracking();
  void stop_tracking() { tracking_ = false; }
  bool tracking() const { return tracking_; }
  std::uint64_t dirty_bytes() const;
  // The state as an image: full (every non-zero page) or incremental (the
  // pages written since tracking started or the last capture). Tracking
  // restarts from this point when it is on (unless !consume: a size query).
  mig::FunctionState capture(bool full, bool consume = true);
  // Replaces the whole state with `s` (a frozen, quiesced function).
  void install(const mig::FunctionState& s, fabric::Time t);
  // The function's tags: the PF firmware's image reads use the PF's, so
  // they never collide with the PF engine's own requests.
  fabric::TagPool& tags();
  // Sends MSI-X `vector` now (the firmware's command completions).
  bool send_msix(std::uint32_t vector, fabric::Time t);

  void config_written(fabric::ConfigSpace& cs, int watch, const fabric::ConfigWrite& w) override;
  void config_before_read(fabric::ConfigSpace& cs, int watch) override;

  enum Watch {
    kWatchCommand = 1,
    kWatchDevCtl,
    kWatchDevSta,
    kWatchMsixCtl,
    kWatchPmcsr,
    kWatchSriovCtl,
    kWatchSriovNumVfs,
    kWatchSriovPageSize,
  };

 private:
  // The register file is exactly what a migration image carries.
  using Regs = mig::EngineRegsState;
  struct FetchedDesc {
    dma::Descriptor d;
    std::uint32_t index;
    fabric::Time ready;
  };
  struct Chunk {
    std::uint32_t desc_index;
    std::uint32_t cookie;
    std::uint32_t flags;
    std::uint64_t src;
    std::uint64_t dst;
    std::uint32_t len;
    std::uint32_t buf_off;
    std::uint32_t buf_span;  // bytes of staging held, wrap padding included
    std::uint32_t read_issued;
    std::uint32_t write_issued;
    fabric::Time data_ready;
    fabric::Time last_write_done;
    fabric::Time op_start;
    bool started_op;
    bool last_in_op;
    bool last_in_desc;
    std::uint32_t desc_bytes;  // descriptor length, for the record
    std::uint32_t desc_off;    // offset of this chunk in its descriptor
    std::uint32_t error;
    std::uint64_t error_addr;
    fabric::Time error_at;
  };
  struct Finish {
    std::uint32_t index;
    std::uint32_t cookie;
    std::uint32_t flags;
    std::uint32_t status;
    std::uint32_t bytes;
    bool record_done;
    fabric::Time done = 0;  // the descriptor's last write done (its data in place)
  };

  // One engine sub-step: either it acted (then run again at `next`) or it
  // waits and `next` is when it could act (kTimeMax: on a register write).
  struct Action {
    bool acted;
    fabric::Time next;
  };
  enum class EngineReset { kSoft, kFlr, kDestroy };
  Action do_msix_resend(fabric::Time t);
  Action do_finish(fabric::Time t);
  Action do_write(fabric::Time t);
  // Fills the read-ahead buffer from device memory (no TLP involved).
  void prefetch_local(fabric::Time t);
  fabric::Time local_access(fabric::Time t, std::uint32_t bytes);
  Action do_read(fabric::Time t);
  Action do_fetch(fabric::Time t);
  // The traffic generator's next transfer as a descriptor (no fetch); false
  // when none is due now.
  bool gen_next(fabric::Time t);
  void gen_start(fabric::Time t);
  void gen_finished(fabric::Time done, bool read_half);
  // Creates the next chunk; false when it cannot now (*wait says until when).
  bool make_chunk(fabric::Time t, fabric::Time* wait);
  void retire_front(fabric::Time t);
  bool can_issue();
  void abort_descriptor(std::uint32_t code, std::uint64_t addr, fabric::Time t);
  void halt_on_bme();
  // Stops the engine with `code`, abandoning the oldest unfinished
  // descriptor (HEAD stays on it).
  void halt_abandoning(std::uint32_t code);
  void clear_pipeline();
  void reset_engine(fabric::Time t, EngineReset how);
  void reset_msix();
  bool raise_msix(std::uint32_t vector, fabric::Time t, fabric::Time* next);
  void note_completion_error(fabric::CplStatus s, std::uint64_t addr, std::uint32_t len,
                             std::uint16_t tag, fabric::Time t);
  bool staging_alloc(std::uint32_t len, std::uint32_t* off, std::uint32_t* span);
  std::uint32_t vectors() const;
  std::uint32_t reg_read(std::uint32_t off) const;
  void reg_write(std::uint32_t off, std::uint32_t value, fabric::Time t);
  std::uint8_t* devmem(std::uint64_t offset, std::uint32_t len);
  void wake(fabric::Time t);
  void mark_dirty(std::uint64_t offset, std::uint64_t len);
  void reset_migration();

  DmaDevice& dev_;
  std::string name_;
  unsigned vf_number_;
  std::vector<std::uint32_t> pieces_;      // the writes do_write issues together
  std::vector<PieceTiming> piece_timing_;  // and when each started and was done
  fabric::RoutingId rid_;
  fabric::ConfigSpace cs_;
  std::uint16_t exp_ = 0;
  std::uint16_t msix_ = 0;
  std::uint16_t pm_ = 0;
  bool exists_;
  fabric::Time reset_end_ = 0;
  fabric::Time ready_at_ = 0;
  fabric::Time pm_busy_until_ = 0;
  PowerState power_ = PowerState::kD0;
  DmaFunctionStats stats_;

  Regs regs_;
  std::vector<std::uint8_t> msix_table_;
  std::vector<std::uint64_t> msix_pba_;
  bool msix_resend_ = false;  // unmasked with pending bits: send them

  std::uint64_t devmem_size_;
  // Allocated zeroed on first use; calloc leaves untouched pages unmapped,
  // so a large device memory costs only what the workload touches.
  struct FreeDeleter {
    void operator()(std::uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<std::uint8_t[], FreeDeleter> devmem_;

  std::unique_ptr<fabric::TagPool> tags_;
  std::deque<FetchedDesc> descs_;
  std::uint32_t fetch_index_ = 0;
  fabric::Time fetch_ready_ = 0;  // completion of the last descriptor fetch
  // A descriptor fetch that failed while earlier descriptors were still on
  // hand: no more fetching; the engine halts with its error record once
  // those have finished, so completion records stay in ring order.
  struct FetchError {
    bool pending = false;
    std::uint32_t index = 0, code = 0;
    std::uint64_t addr = 0;
  } fetch_error_;
  fabric::TimeBins* read_bins_ = nullptr;
  fabric::TimeBins* write_bins_ = nullptr;

  std::uint32_t desc_offset_ = 0;  // bytes of descs_.front() already chunked
  std::uint32_t op_offset_ = 0;    // bytes into the current operation
  std::deque<Chunk> chunks_;
  std::deque<Finish> finish_;
  // Traffic generator state (not part of a migration image: a function
  // running it is a benchmark, not a guest's device).
  static constexpr std::uint32_t kGenIndex = 0xffffffffu;  // descriptor index of its transfers
  struct Generator {
    std::uint64_t base = 0, count = 0, issued = 0, done = 0;
    std::uint32_t window = 0, size = 0, seed = 0, host_offset = 0, dev_offset = 0;
    std::uint32_t outstanding = 0, ctrl = 0, status = 0;
    bool running = false;
    std::uint64_t rng = 0;
    std::uint64_t pair_addr = 0;      // write-read: the write half's address
    bool read_due = false;            // write-read: the read half comes next
    std::deque<fabric::Time> starts;  // per transfer in flight
  } gen_;
  std::vector<std::uint8_t> staging_;
  std::uint32_t staging_head_ = 0;  // next allocation
  std::uint32_t staging_used_ = 0;
  std::deque<fabric::Time> op_starts_;
  void op_began(fabric::Time t);
  std::deque<std::uint64_t> op_ids_;  // with op_starts_: each operation's number
  std::uint64_t op_seq_ = 0;
  // Tracing only: the descriptors with an open trace slice.
  std::vector<std::uint32_t> open_descs_;
  unsigned local_dst_chunks_ = 0;   // chunks in flight that write device memory
  fabric::Time local_busy_ = 0;     // device memory port: busy until
  unsigned pending_tag_limit_ = 0;  // max-reads change waiting for idle tags
  std::uint64_t epoch_ = 0;         // bumped whenever the pipeline is dropped
  fabric::Time access_time_ = 0;    // arrival time of the request being served

  // Migration state.
  bool quiesced_ = false;
  bool drain_stuck_ = false;
  bool frozen_ = false;
  InboundWriteHook inbound_hook_;
  bool tracking_ = false;
  bool regs_dirty_ = false;
  std::vector<std::uint64_t> dirty_;  // one bit per device-memory page
  // After install(): the first descriptor fetched again resumes at this
  // byte offset (its earlier bytes were written before the save).
  bool resume_skip_ = false;
  std::uint32_t resume_index_ = 0;
  std::uint32_t resume_done_ = 0;
};

}  // namespace pciesim::models

// A function assigned to a VM, opened through VFIO: the migration uAPI v2
// (SPEC.md F; Linux include/uapi/linux/vfio.h) with the device's variant
// driver behind it (docs/migration.md). The VFIO layer runs the
// vfio_mig_get_next_state loop one arc at a time, owns the data stream
// (reads in PRE_COPY*/STOP_COPY, writes in RESUMING), the pre-copy and
// data-size queries, device reset, and revokes the user's MMIO while the
// device must not be touched. The variant driver implements each arc with
// firmware commands it relays through the PF driver's mailbox.
//
// Errors are MigrationError (negative errno, the state left behind).
// A failed arc leaves the device in the last good state when the device
// refused the command cleanly (an image that does not load, an undefined
// request); when the firmware failed, timed out, or the function or its PF
// went away, the driver cannot know the device's state and enters ERROR,
// which only reset() leaves.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <systemc>

#include "fabric/common/histogram.h"
#include "fabric/common/sim_time.h"
#include "sim/config/system_config.h"
#include "sim/host/iommu_driver.h"
#include "sim/host/vfio/migration_fsm.h"
#include "sim/migration/dirty_tracking.h"

namespace pciesim::sim {

class Host;
class PfMailbox;
struct PciDev;
struct MailboxReply;

struct ArcRecord {
  vfio::MigState from;
  vfio::MigState to;
  fabric::Time start = 0;
  fabric::Time end = 0;
  int status = 0;  // 0 or -errno
};

struct CommandStats {
  std::uint64_t count = 0;
  std::uint64_t failures = 0;
  fabric::Histogram latency;  // ns, as the variant driver waited
};

struct VfioStats {
  std::uint64_t transitions = 0;         // set_state calls that reached their target
  std::uint64_t failed_transitions = 0;  // ... that did not
  std::vector<ArcRecord> arcs;           // every arc executed, in order
  std::uint64_t image_bytes_saved = 0;   // written by the firmware into the save buffer
  std::uint64_t images_saved = 0;
  std::uint64_t image_bytes_loaded = 0;
  std::uint64_t loads_refused = 0;
  std::uint64_t stream_bytes_read = 0;  // handed to the user
  std::uint64_t stream_bytes_written = 0;
  std::uint64_t initial_bytes = 0;  // the last pre-copy query
  std::uint64_t dirty_bytes = 0;
  std::uint64_t refused_mmio = 0;  // user MMIO refused while not allowed
  std::uint64_t mmio = 0;          // user MMIO passed to the device
  std::uint64_t resets = 0;
  std::map<std::string, CommandStats> commands;  // by firmware opcode name
};

class VfioDevice {
 public:
  VfioDevice(Host& host, PciDev& dev, const EndpointSpec& ep);

  PciDev& dev() { return dev_; }
  const std::string& name() const;
  // VFIO_DEVICE_FEATURE_MIGRATION: the flags, 0 when migration is not
  // offered (then unavailable() says why).
  std::uint32_t migration_flags() const { return flags_; }
  const std::string& unavailable() const { return unavailable_; }
  vfio::MigState state() const { return state_; }
  const char* style_name() const;

  // VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE (SET): every state passed
  // through, the current one first.
  std::vector<vfio::MigState> set_state(vfio::MigState target);
  // read() on the data stream: up to max_bytes; empty at the end of
  // STOP_COPY's stream.
  std::vector<std::uint8_t> read(std::uint64_t max_bytes);
  // write() on the resume stream: all of `data` or nothing.
  std::uint64_t write(const std::vector<std::uint8_t>& data);
  // VFIO_MIG_GET_PRECOPY_INFO: (initial_bytes, dirty_bytes).
  std::pair<std::uint64_t, std::uint64_t> precopy_info();
  // VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: estimated STOP_COPY bytes.
  std::uint64_t data_size();
  // VFIO_DEVICE_RESET: FLR with save/restore; RUNNING, streams closed.
  void reset();
  // The PCI core reset the function (pci_reset_function, an error
  // recovery): the variant driver's reset_done -- RUNNING, streams closed.
  // A bare FLR the core does not report leaves the state stale; the next
  // transition finds out.
  void reset_done();
  // The user's access to a BAR (the VM's mapping). Refused before any TLP
  // while the device is STOP, STOP_COPY, RESUMING or ERROR.
  std::uint64_t mmio_read(unsigned bar, std::uint64_t offset, unsigned size);
  void mmio_write(unsigned bar, std::uint64_t offset, unsigned size, std::uint64_t value);
  bool mmio_allowed() const;

  const VfioStats& stats() const { return stats_; }

  // DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_START / STOP / REPORT;
  // vfio_ioctl_device_feature_logging_*, mlx5vf_start_page_tracker),
  // relayed to the PF firmware's log (docs/migration.md). 0 or a negative
  // errno: ENOTTY (not offered), EINVAL (no range, unaligned, overlapping
  // or empty ranges, bad page size, a session already running), E2BIG
  // (more than 256 ranges), EOVERFLOW, ENOSPC (the device's log memory),
  // EIO / ETIMEDOUT (the firmware). More ranges than the device tracks are
  // merged first, smallest gap first (vfio_combine_iova_ranges). *page_size
  // is in/out: the device may log at another size and says so.
  int dma_logging_start(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges,
                        std::uint64_t* page_size);
  int dma_logging_stop();
  // A report reads and clears the device's log for the range into a bitmap
  // at `page_size`, checked against the simulator's record of this
  // function's DMA writes (DirtyWindow).
  DirtyReport dma_logging_report(std::uint64_t iova, std::uint64_t length, std::uint64_t page_size);
  bool dma_logging() const { return logging_; }
  // Whether the device offers DMA logging at all (the feature probe).
  bool dma_logging_offered() const { return flags_ && log_params_.dma_logging; }
  std::uint64_t dma_log_page_size() const { return log_page_; }
  const std::vector<std::pair<std::uint64_t, std::uint64_t>>& dma_log_ranges() const {
    return log_ranges_;
  }
  const DirtyWindow& dma_log_window() const { return log_window_; }

 private:
  [[noreturn]] void fail(int code, const std::string& message, const std::string& reason = "");
  // One arc; on failure sets state_ (kept, or ERROR) and returns -errno
  // with *message saying why.
  int step(vfio::MigState from, vfio::MigState to, std::string* message, std::string* reason);
  // One firmware command; a failure other than `soft` codes puts the
  // device in ERROR.
  int command(std::uint32_t op, std::uint32_t flags, std::uint64_t addr, std::uint32_t length,
              MailboxReply* reply, std::string* message);
  int check_suspended(std::string* message);
  int save(std::uint32_t flags, std::string* message);
  int load(std::string* message, std::string* reason);
  void close_streams();
  std::shared_ptr<PfMailbox> mailbox(std::string* message);
  void check_open();
  // Linux's migration state mutex: one operation on the device at a time;
  // a second caller (another host thread) waits for the first.
  class Lock {
   public:
    explicit Lock(VfioDevice& d);
    ~Lock();

   private:
    VfioDevice& d_;
  };
  bool busy_ = false;
  sc_core::sc_event idle_;

  Host& host_;
  PciDev& dev_;
  std::uint32_t flags_ = 0;
  std::string unavailable_;
  EndpointMigrationSpec spec_;
  std::uint64_t max_image_ = 0;
  vfio::MigState state_ = vfio::MigState::kRunning;  // a device opened for use runs
  // The saving stream: bytes saved and not yet read.
  std::vector<std::uint8_t> out_;
  std::uint64_t out_pos_ = 0;
  std::uint64_t initial_left_ = 0;
  bool stream_failed_ = false;
  // The resume stream.
  std::vector<std::uint8_t> in_;
  DmaSpace::Buffer save_buf_{};
  DmaSpace::Buffer load_buf_{};
  std::uint64_t save_cap_ = 0;
  std::uint64_t load_cap_ = 0;
  VfioStats stats_;
  // DMA logging.
  models::MigrationDeviceParams log_params_;
  bool logging_ = false;
  std::uint64_t log_page_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> log_ranges_;  // as the device tracks them
  DirtyWindow log_window_;
  DmaSpace::Buffer log_buf_{};
  std::uint64_t log_cap_ = 0;
  int log_command(std::uint32_t op, std::uint32_t length, MailboxReply* reply);
};

}  // namespace pciesim::sim

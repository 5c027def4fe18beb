// The PF firmware's migration unit: executes migration commands on behalf
// of a VF, the way mlx5's firmware runs SUSPEND_VHCA / SAVE_VHCA_STATE /
// LOAD_VHCA_STATE for the VF its PF driver names (docs/migration.md). The
// host reaches it through the mailbox in PF BAR0 (dma_regs.h, MigReg); each
// command takes `command_latency` of firmware time, suspend-initiator waits
// for the VF's outstanding requests, and save/load move the image by real
// DMA of the PF through the fabric. One command runs at a time.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <systemc>
#include <vector>

#include "fabric/common/histogram.h"
#include "fabric/common/sim_time.h"
#include "fabric/tlp/tlp.h"
#include "models/dma_endpoint/dma_regs.h"

namespace pciesim::models {

class DmaDevice;
struct MigrationDeviceParams;

struct MigrationFirmwareStats {
  std::array<std::uint64_t, dma::kMigOpLast + 1> commands{};  // by opcode
  std::array<std::uint64_t, dma::kMigOpLast + 1> errors{};
  std::uint64_t busy_doorbells = 0;  // doorbells while a command ran (ignored)
  std::uint64_t aborted = 0;         // commands cut short by a reset
  std::uint64_t injected = 0;        // injected failures / hangs
  std::uint64_t image_bytes_written = 0;
  std::uint64_t image_bytes_read = 0;
  fabric::Histogram latency;  // doorbell to completion, ns
};

class MigrationFirmware : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(MigrationFirmware);
  MigrationFirmware(sc_core::sc_module_name name, DmaDevice& dev,
                    const MigrationDeviceParams& params);

  // PF BAR0 accesses at kMigBase + offset.
  fabric::CplStatus register_access(std::uint32_t offset, std::uint8_t* data, std::uint32_t len,
                                    bool write, fabric::Time t);
  // A VF was reset or destroyed: a command running for it ends (aborted).
  void function_reset(unsigned vf);
  // The PF was reset: the mailbox returns to idle, a running command ends.
  void reset();
  // Fault injection: see MigrationDeviceParams::fail_op.
  void set_failure(std::uint32_t op, bool timeout, unsigned after, unsigned count);
  const MigrationFirmwareStats& stats() const { return stats_; }
  static const char* op_name(std::uint32_t op);
  // DMA logging: a write of VF `vf` to [addr, addr + len) as it leaves the
  // device (one load when no session runs).
  bool logging() const { return active_logs_ != 0; }
  void log_write(unsigned vf, std::uint64_t addr, std::uint64_t len);

 private:
  struct Command {
    std::uint32_t op = 0;
    std::uint32_t function = 0;
    std::uint32_t flags = 0;
    std::uint64_t addr = 0;
    std::uint32_t length = 0;
  };
  void thread();
  // Runs `cmd`; returns the error code, fills the results.
  std::uint32_t execute(const Command& cmd);
  bool wait_until(fabric::Time t);  // false: aborted meanwhile
  bool dma_write(std::uint64_t addr, std::vector<std::uint8_t>& data);
  bool dma_read(std::uint64_t addr, std::vector<std::uint8_t>& data);
  void finish(std::uint32_t error);
  bool injected(std::uint32_t op, bool* hang);

  DmaDevice& dev_;
  const MigrationDeviceParams& params_;
  Command regs_;     // the argument registers
  Command running_;  // the command being executed
  std::uint32_t status_ = 0;
  std::uint64_t result_ = 0;
  std::uint32_t result2_ = 0;
  std::uint32_t irq_ = 0;
  std::uint32_t completed_ = 0;
  fabric::Time started_ = 0;
  std::uint64_t epoch_ = 0;  // bumped by resets: a running command sees it and ends
  std::uint32_t fail_op_ = 0;
  bool fail_timeout_ = false;
  unsigned fail_after_ = 1;
  unsigned fail_count_ = 1;
  unsigned fail_seen_ = 0;
  struct LogRange {
    std::uint64_t iova, length;
    std::vector<std::uint64_t> bits;  // one per page of the session
  };
  struct DmaLog {
    std::uint64_t page_size = 4096;
    std::vector<LogRange> ranges;
  };
  std::uint32_t log_start(unsigned vf, std::uint64_t addr, std::uint32_t length);
  std::uint32_t log_report(unsigned vf, std::uint64_t addr, std::uint32_t length);
  void log_stop(unsigned vf);
  std::map<unsigned, DmaLog> logs_;  // by VF number
  unsigned active_logs_ = 0;
  sc_core::sc_event start_;
  sc_core::sc_event abort_;
  MigrationFirmwareStats stats_;
};

}  // namespace pciesim::models

// A VM's own CPU activity (docs/migration.md "Guest activity"): its vCPUs
// store into a region of guest RAM at a steady rate, one burst of `chunk`
// bytes at a time, sequentially or at random chunk-aligned offsets (drawn
// from the run's seed), so that guest memory dirties at a known rate while
// the VM's devices DMA. The stores are the CPU's (host DRAM writes of host
// software, seen by the dirty ledger as CPU writes, never by the IOMMU).
// They stop for good when the VM is stopped and wait while it is paused;
// after a migration they go on in the destination VM's memory.
#pragma once

#include <cstdint>
#include <systemc>

#include "fabric/common/sim_time.h"
#include "sim/config/system_config.h"

namespace pciesim::models {
class HostMemory;
}

namespace pciesim::sim {

class Vm;

struct GuestCpuStats {
  std::uint64_t bursts = 0;
  std::uint64_t bytes = 0;
  fabric::Time started = 0, last = 0;
};

class GuestCpu {
 public:
  GuestCpu(Vm& vm, models::HostMemory& memory, std::uint64_t seed);
  // Spawns the vCPU thread; it begins at absolute time `at`.
  void start(fabric::Time at);
  const GuestCpuStats& stats() const { return stats_; }
  // The time one burst takes at the configured rate.
  fabric::Time burst_time() const;

 private:
  void run(fabric::Time at);
  Vm* vm_;  // where the guest runs (it follows a migration)
  models::HostMemory& memory_;
  const GuestCpuSpec& spec_;
  std::uint64_t rng_;
  std::uint64_t next_ = 0;  // sequential offset in the region
  GuestCpuStats stats_;
};

}  // namespace pciesim::sim

// The CPU as host software sees it: blocking configuration (ECAM) and MMIO
// accesses through the root complex, with their timing, callable from any
// SystemC thread of the host model. Host memory is accessed directly (CPU
// stores to DRAM take no simulated time at this level of detail).
#pragma once

#include <tlm_utils/simple_initiator_socket.h>
#include <cstdint>
#include <systemc>
#include <tlm>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/routing_id.h"
#include "fabric/tlp/tlp.h"
#include "models/host_memory/host_memory.h"

namespace pciesim::sim {

struct HostCpuStats {
  std::uint64_t config_reads = 0;
  std::uint64_t config_writes = 0;
  std::uint64_t mmio_reads = 0;
  std::uint64_t mmio_writes = 0;
  std::uint64_t all_ones_reads = 0;  // reads that came back as failures
  std::uint64_t rrs_visible = 0;
};

class HostCpu : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<HostCpu> socket;

  HostCpu(sc_core::sc_module_name name, std::uint64_t ecam_base, models::HostMemory& memory);

  // Each call blocks the calling thread for the access's duration.
  std::uint32_t config_read(fabric::RoutingId rid, std::uint16_t reg, unsigned size,
                            fabric::CplStatus* status = nullptr);
  void config_write(fabric::RoutingId rid, std::uint16_t reg, unsigned size, std::uint32_t value,
                    fabric::CplStatus* status = nullptr);
  std::uint64_t mmio_read(std::uint64_t addr, unsigned size, fabric::CplStatus* status = nullptr);
  void mmio_write(std::uint64_t addr, unsigned size, std::uint64_t value);

  // Zero-time debug config read through the fabric (no side effects beyond
  // the registers' own read hooks).
  std::uint32_t config_peek(fabric::RoutingId rid, std::uint16_t reg, unsigned size);

  models::HostMemory& memory() { return memory_; }
  const HostCpuStats& stats() const { return stats_; }
  static fabric::Time now() { return sc_core::sc_time_stamp().value(); }
  static void sleep(fabric::Time t);

 private:
  fabric::CplStatus access(std::uint64_t addr, std::uint8_t* data, unsigned size, bool write);
  std::uint64_t ecam_base_;
  models::HostMemory& memory_;
  HostCpuStats stats_;
};

}  // namespace pciesim::sim

// The host's native driver for the DMA engine (PF or VF): probe enables
// the function, sets up the descriptor and completion rings in host memory
// and one MSI-X vector; workloads post descriptors and reap completions.
#pragma once

#include <cstdint>
#include <string>
#include <systemc>
#include <vector>

#include "fabric/common/sim_time.h"
#include "models/dma_endpoint/dma_regs.h"
#include "sim/host/iommu_driver.h"
#include "sim/host/pci_core.h"

namespace pciesim::sim {

class Host;

// DMA-able host memory handed out page by page, deterministically.
class HostAllocator {
 public:
  explicit HostAllocator(const std::vector<models::MemoryRange>& ranges);
  std::uint64_t alloc(std::uint64_t bytes, std::uint64_t align = 4096);
  // Keeps [base, base + size) out of later allocations (memory given to a
  // VM at a fixed address).
  void reserve(std::uint64_t base, std::uint64_t size);
  // Whether any byte of [base, base + size) was handed out already.
  bool allocated(std::uint64_t base, std::uint64_t size) const;

 private:
  std::vector<models::MemoryRange> handed_;  // merged extents handed out
  std::vector<models::MemoryRange> ranges_;
  std::vector<models::MemoryRange> reserved_;
  std::size_t range_ = 0;
  std::uint64_t next_ = 0;
};

class DmaDriver {
 public:
  static constexpr const char* kName = "pciesim_dma";
  static constexpr std::uint32_t kRingSize = 256;

  // DMA buffers come from `space` (physical memory, an IOMMU domain, or a
  // VM's memory when the function is assigned to one).
  DmaDriver(Host& host, PciDev& dev, DmaSpace& space);

  // pci_enable_device, pci_set_master, rings, MSI-X; false if it cannot
  // (e.g. no BAR assigned). `error()` says why.
  bool probe();
  // Unbind: the engine is stopped; the driver object may outlive the
  // function (a workload still holding it sees removed()).
  void remove();
  bool removed() const { return removed_; }
  // After a reset of the function: program the device again. Descriptors
  // posted and not completed are lost with the reset: reap() returns them
  // as completions with status kAbortedByReset.
  bool reinit();

  // PCIe error recovery (the AER driver calls these as pcie_do_recovery
  // calls a driver's pci_error_handlers): while recovering() the driver's
  // users wait for resume() instead of giving up on a halted engine;
  // resume() restarts an engine an error halted (clears ERROR: the rest of
  // the ring runs); fail() ends the recovery without one (disconnected).
  static constexpr std::uint32_t kAbortedByReset = 0x100;  // host-side status, not the engine's
  void begin_recovery() { recovering_ = true; }
  void resume();
  void fail(const std::string& why);
  bool recovering() const { return recovering_; }
  void wait_recovery();  // until resume() or fail()
  // Whether an error the host will handle is pending: recovery running, or
  // an uncorrectable error logged in Device Status with AER enabled.
  bool recovery_expected();
  const std::string& failed() const { return failed_; }

  PciDev& dev() { return *dev_; }
  DmaSpace& dma_space() { return *space_; }
  // Live migration: the guest (and this driver, which lives in its memory)
  // now runs in `vm` with `dev` in place of the function it drove. Its
  // rings are at the same guest-physical addresses, so only the host's view
  // of them moves; the device was loaded with the state the old one had.
  void move_to(PciDev& dev, Vm& vm, std::uint64_t ring_host_shift);
  const std::string& error() const { return error_; }
  bool busy() const { return busy_; }
  void set_busy(bool b) { busy_ = b; }

  std::uint32_t space() const;  // free descriptor slots
  std::uint32_t post(const models::dma::Descriptor& d);
  void kick();  // doorbell: MMIO write of the tail
  bool reap(models::dma::Completion* out);
  // Blocks until an interrupt arrives (then the handler latency) or, when
  // polling or after `timeout`, returns.
  void wait(bool interrupts, fabric::Time timeout);
  std::uint32_t read_reg(std::uint32_t off);
  void write_reg(std::uint32_t off, std::uint32_t value);
  std::uint32_t msi_data() const { return msi_data_; }
  std::uint64_t bar0() const { return bar0_; }

 private:
  bool program();
  Host& host_;
  PciDev* dev_;
  DmaSpace* space_;
  std::string error_;
  bool busy_ = false;
  bool removed_ = false;
  std::uint64_t bar0_ = 0;
  DmaSpace::Buffer ring_;
  DmaSpace::Buffer cq_;
  std::uint32_t tail_ = 0;
  std::uint32_t cq_head_ = 0;
  std::uint32_t inflight_ = 0;
  std::uint32_t msi_data_ = 0;
  std::vector<std::uint32_t> cookies_ = std::vector<std::uint32_t>(kRingSize, 0);  // by ring slot
  std::vector<std::uint32_t> aborted_;  // cookies lost with a reset, not yet reaped
  bool recovering_ = false;
  sc_core::sc_event recovered_;
  std::string failed_;
};

}  // namespace pciesim::sim

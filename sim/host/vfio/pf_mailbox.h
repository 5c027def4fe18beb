// The PF driver's side of the firmware migration mailbox (dma_regs.h,
// MigReg): the native PF driver relays a VF's migration commands to its
// firmware, one at a time, as mlx5_core does for mlx5_vfio_pci. Each
// command programs the argument registers and the doorbell through the
// host CPU's MMIO path, then waits for the completion interrupt (PF MSI-X
// vector 1) or the timeout.
#pragma once

#include <array>
#include <cstdint>
#include <systemc>

#include "fabric/common/histogram.h"
#include "fabric/common/sim_time.h"
#include "models/dma_endpoint/dma_regs.h"
#include "sim/host/iommu_driver.h"

namespace pciesim::sim {

class Host;
class DmaDriver;
struct PciDev;

struct MailboxReply {
  int err = 0;             // 0: the firmware answered; -110: timed out; -19: PF driver gone
  std::uint32_t code = 0;  // the firmware's error code (dma::MigError)
  std::uint64_t result = 0;
  std::uint32_t result2 = 0;
  fabric::Time latency = 0;  // doorbell to reply, as the host saw it
};

struct MailboxStats {
  std::array<std::uint64_t, models::dma::kMigOpLast + 1> commands{};
  std::array<std::uint64_t, models::dma::kMigOpLast + 1> failures{};   // non-zero code or err
  std::array<fabric::Histogram, models::dma::kMigOpLast + 1> latency;  // ns
  std::uint64_t timeouts = 0;
};

class PfMailbox {
 public:
  // Polling interval without a spare MSI-X vector: pds polls every 1 ms;
  // this model polls finer so that commands end close to their completion.
  static constexpr fabric::Time kPollInterval = 10 * fabric::kUs;
  static constexpr unsigned kVector = 1;

  PfMailbox(Host& host, PciDev& pf);
  PciDev& pf() { return pf_; }
  // Runs one command (waiting for an earlier one of another VF first).
  MailboxReply exec(std::uint32_t op, unsigned vf, std::uint32_t flags, std::uint64_t addr,
                    std::uint32_t length, fabric::Time timeout);
  // A buffer the firmware can reach by DMA (the PF driver's DMA space).
  DmaSpace::Buffer alloc(std::uint64_t bytes);
  const MailboxStats& stats() const { return stats_; }

 private:
  void arm_interrupt(DmaDriver& drv);
  std::uint32_t read(DmaDriver& drv, std::uint32_t reg);
  void write(DmaDriver& drv, std::uint32_t reg, std::uint32_t v);

  Host& host_;
  PciDev& pf_;
  std::uint32_t msi_data_ = 0;
  bool use_irq_ = false;
  bool busy_ = false;
  sc_core::sc_event idle_;
  MailboxStats stats_;
};

}  // namespace pciesim::sim

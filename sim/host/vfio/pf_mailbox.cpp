#include "sim/host/vfio/pf_mailbox.h"

#include "fabric/common/error.h"
#include "sim/host/host.h"

namespace pciesim::sim {

using namespace fabric;
namespace dma = models::dma;

PfMailbox::PfMailbox(Host& host, PciDev& pf) : host_(host), pf_(pf) {
  use_irq_ = pf.msix_entries.size() > kVector;
  if (use_irq_) msi_data_ = host.allocate_msi();
}

DmaSpace::Buffer PfMailbox::alloc(std::uint64_t bytes) {
  DmaDriver* drv = host_.driver(pf_);
  if (!drv) throw UsageError(pf_.name, pf_.name + " has no native driver");
  return drv->dma_space().alloc(bytes);
}

std::uint32_t PfMailbox::read(DmaDriver& drv, std::uint32_t reg) {
  return drv.read_reg(dma::kMigBase + reg);
}

void PfMailbox::write(DmaDriver& drv, std::uint32_t reg, std::uint32_t v) {
  drv.write_reg(dma::kMigBase + reg, v);
}

void PfMailbox::arm_interrupt(DmaDriver& drv) {
  // A PF reset clears the mailbox's interrupt register and the MSI-X
  // table: arm both again when the register reads back otherwise.
  const std::uint32_t want = 0x80000000u | kVector;
  if (read(drv, dma::kMigIrq) == want) return;
  MsixEntry e;
  e.address = host_.msi_address();
  e.data = msi_data_;
  e.masked = false;
  host_.pci().write_msix_entry(pf_, kVector, e);
  write(drv, dma::kMigIrq, want);
}

MailboxReply PfMailbox::exec(std::uint32_t op, unsigned vf, std::uint32_t flags, std::uint64_t addr,
                             std::uint32_t length, Time timeout) {
  MailboxReply rep;
  const Time deadline = HostCpu::now() + timeout;
  while (busy_) {
    const Time now = HostCpu::now();
    if (now >= deadline) {
      rep.err = -110;
      ++stats_.timeouts;
      return rep;
    }
    sc_core::wait(to_sc(deadline - now), idle_);
  }
  busy_ = true;
  struct Release {
    PfMailbox* m;
    ~Release() {
      m->busy_ = false;
      m->idle_.notify(sc_core::SC_ZERO_TIME);
    }
  } release{this};
  const std::uint32_t o = op <= dma::kMigOpLast ? op : 0;
  ++stats_.commands[o];
  auto fail = [&](int err) {
    rep.err = err;
    ++stats_.failures[o];
    if (err == -110) ++stats_.timeouts;
    return rep;
  };
  auto driver = [&]() -> DmaDriver* { return pf_.removed ? nullptr : host_.driver(pf_); };
  DmaDriver* drv = driver();
  if (!drv) return fail(-19);
  // An earlier command that timed out may still be running: wait for the
  // firmware to go idle (mlx5 keeps such a slot busy until it answers).
  while (read(*drv, dma::kMigStatus) & dma::kMigStatusBusy) {
    if (HostCpu::now() >= deadline) return fail(-110);
    HostCpu::sleep(std::min(kPollInterval, deadline - HostCpu::now()));
    if (!(drv = driver())) return fail(-19);
  }
  if (use_irq_) arm_interrupt(*drv);
  write(*drv, dma::kMigOpcode, op);
  write(*drv, dma::kMigFunction, vf);
  write(*drv, dma::kMigFlags, flags);
  write(*drv, dma::kMigAddrLo, static_cast<std::uint32_t>(addr));
  write(*drv, dma::kMigAddrHi, static_cast<std::uint32_t>(addr >> 32));
  write(*drv, dma::kMigLength, length);
  const std::uint32_t before = read(*drv, dma::kMigCommands);
  const Time start = HostCpu::now();
  write(*drv, dma::kMigDoorbell, 1);
  for (;;) {
    const Time now = HostCpu::now();
    // A timed-out command keeps the firmware busy: the next command
    // waits for STATUS to go idle (above).
    if (now >= deadline) return fail(-110);
    if (use_irq_) {
      sc_core::wait(to_sc(deadline - now), host_.msi_event(msi_data_));
      if (HostCpu::now() < deadline) HostCpu::sleep(host_.spec().interrupt_latency);
    } else {
      HostCpu::sleep(std::min(kPollInterval, deadline - now));
    }
    if (!(drv = driver())) return fail(-19);
    const std::uint32_t st = read(*drv, dma::kMigStatus);
    if ((st & dma::kMigStatusDone) && !(st & dma::kMigStatusBusy) &&
        read(*drv, dma::kMigCommands) != before) {
      rep.code = (st >> 8) & 0xff;
      break;
    }
    if (!(st & (dma::kMigStatusBusy | dma::kMigStatusDone))) {
      rep.code = dma::kMigErrAborted;  // the PF was reset under the command
      break;
    }
  }
  rep.result = read(*drv, dma::kMigResultLo) | (std::uint64_t{read(*drv, dma::kMigResultHi)} << 32);
  rep.result2 = read(*drv, dma::kMigResult2);
  rep.latency = HostCpu::now() - start;
  stats_.latency[o].add(to_ns(rep.latency));
  if (rep.code) ++stats_.failures[o];
  return rep;
}

}  // namespace pciesim::sim

#include "sim/host/workload.h"

#include <array>

#include <algorithm>
#include <cstring>

#include <linux/pci_regs.h>

#include "fabric/common/error.h"
#include "fabric/config_space/capabilities.h"
#include "fabric/kernel/kernel_context.h"
#include "models/dma_endpoint/dma_regs.h"
#include "sim/builder/system.h"
#include "sim/host/host.h"

namespace pciesim::sim {

using namespace fabric;
namespace dma = models::dma;

Workload::Workload(Host& host, const WorkloadSpec& spec) : host_(host), spec_(spec) {}

void Workload::start(Time delay) {
  if (spawned_) return;
  spawned_ = true;
  sc_core::sc_spawn(
      [this, delay] {
        KernelContext::guard([&] {
          HostCpu::sleep(delay);
          run();
        });
      },
      process_name("workload_" + spec_.name).c_str());
}

std::vector<std::uint8_t> Workload::pattern(const std::string& function, std::uint64_t job) const {
  // xorshift64* seeded by (seed, workload, function, job): deterministic
  // and different for every job everywhere.
  std::uint64_t x = host_.system().config().simulation.seed * 0x9e3779b97f4a7c15ull + job + 1;
  for (char c : spec_.name + "/" + function)
    x = (x ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  if (x == 0) x = 1;
  std::vector<std::uint8_t> out(spec_.size);
  for (std::size_t i = 0; i < out.size(); i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    std::uint64_t v = x * 0x2545f4914f6cdd1dull;
    std::memcpy(out.data() + i, &v, std::min<std::size_t>(8, out.size() - i));
  }
  return out;
}

void Workload::write_placement(const std::string& function, const Placement& p, std::uint64_t addr,
                               const std::vector<std::uint8_t>& b) {
  if (p.kind == Placement::kHost) {
    host_.cpu().memory().write(addr, b.data(), b.size());
    return;
  }
  // A migrated guest's devices are the destination's functions now.
  const std::string fn = p.kind == Placement::kDevice ? function : host_.current_function(p.peer);
  std::vector<std::uint8_t> copy = b;
  host_.system().function(fn)->dma()->devmem_debug(addr, copy.data(),
                                                   static_cast<std::uint32_t>(copy.size()), true);
}

std::vector<std::uint8_t> Workload::read_placement(const std::string& function, const Placement& p,
                                                   std::uint64_t addr, std::size_t len) {
  std::vector<std::uint8_t> out(len);
  if (p.kind == Placement::kHost) {
    host_.cpu().memory().read(addr, out.data(), len);
    return out;
  }
  const std::string fn = p.kind == Placement::kDevice ? function : host_.current_function(p.peer);
  host_.system().function(fn)->dma()->devmem_debug(addr, out.data(),
                                                   static_cast<std::uint32_t>(len), false);
  return out;
}

void Workload::run() {
  stats_.started = true;
  stats_.start = HostCpu::now();
  host_.system().note_workload_start();
  parts_running_ = static_cast<unsigned>(spec_.functions.size());
  for (const std::string& fn : spec_.functions)
    stats_.per_function[fn];
  for (const std::string& fn : spec_.functions) {
    WorkloadCounters* c = &stats_.per_function[fn];
    sc_core::sc_spawn(
        [this, fn, c] {
          KernelContext::guard([&] {
            run_one(fn, *c);
            --parts_running_;
            part_done_.notify(sc_core::SC_ZERO_TIME);
          });
        },
        process_name("workload_" + spec_.name + "_" + fn).c_str());
  }
  while (parts_running_)
    sc_core::wait(part_done_);
  stats_.finished = true;
  stats_.end = HostCpu::now();
  host_.system().note_workload_end();
  done_.notify(sc_core::SC_ZERO_TIME);
}

WorkloadStats Workload::stats() const {
  // Totals are summed on demand so they are live while the parts run.
  WorkloadStats s = stats_;
  for (const auto& [fn, c] : stats_.per_function) {
    s.jobs_submitted += c.jobs_submitted;
    s.jobs_completed += c.jobs_completed;
    s.bytes += c.bytes;
    s.verified_bytes += c.verified_bytes;
    s.mismatches += c.mismatches;
    s.errors += c.errors;
    s.interrupts += c.interrupts;
    s.stalled = s.stalled || c.stalled;
    if (s.failure.empty() && !c.failure.empty()) s.failure = fn + ": " + c.failure;
  }
  return s;
}

void Workload::run_bench(DmaDriver& drv, WorkloadCounters& c) {
  // One host buffer holds the window; the device's generator does the rest
  // (dma_regs.h GenReg). The host only sets the cache state, starts it and
  // polls its counter.
  const DmaSpace::Buffer b = drv.dma_space().alloc(spec_.window);
  models::HostMemory& mem = host_.system().memory();
  if (spec_.cache == WorkloadSpec::kWarm) {
    // The CPU writes the window (it is in the LLC afterwards, as far as it fits).
    mem.write(b.cpu, std::vector<std::uint8_t>(spec_.window, 0x5a).data(), spec_.window);
  } else if (spec_.cache == WorkloadSpec::kCold) {
    // clflush of the window, as pcie-bench does (page tables stay cached).
    mem.flush_cache(b.cpu, spec_.window);
  }
  const std::uint32_t mode = spec_.direction == WorkloadSpec::kRead        ? 0u
                             : spec_.direction == WorkloadSpec::kWrite     ? 1u
                             : spec_.direction == WorkloadSpec::kWriteRead ? 2u
                                                                           : 3u;
  drv.write_reg(dma::kGenBaseLo, static_cast<std::uint32_t>(b.dma));
  drv.write_reg(dma::kGenBaseHi, static_cast<std::uint32_t>(b.dma >> 32));
  drv.write_reg(dma::kGenWindow, static_cast<std::uint32_t>(spec_.window));
  drv.write_reg(dma::kGenSize, static_cast<std::uint32_t>(spec_.size));
  drv.write_reg(dma::kGenCountLo, static_cast<std::uint32_t>(spec_.count));
  drv.write_reg(dma::kGenCountHi, static_cast<std::uint32_t>(spec_.count >> 32));
  drv.write_reg(dma::kGenSeed, static_cast<std::uint32_t>(host_.system().config().simulation.seed));
  drv.write_reg(dma::kGenHostOffset, spec_.host_offset);
  drv.write_reg(dma::kGenDevOffset, spec_.device_offset);
  drv.write_reg(dma::kGenOutstanding, spec_.queue_depth);
  drv.write_reg(dma::kGenCtrl, dma::kGenStart | (spec_.random ? dma::kGenRandom : 0u) |
                                   (mode << dma::kGenModeShift));
  c.jobs_submitted = spec_.count;
  if (drv.read_reg(dma::kGenStatus) & dma::kGenBadArgs) {
    c.failure = "the device refused the generator's arguments";
    return;
  }
  // Poll the counter, rarely (each poll is an MMIO read on the link).
  Time last_progress = HostCpu::now();
  std::uint64_t done = 0;
  for (;;) {
    HostCpu::sleep(20 * kUs);
    const std::uint64_t lo = drv.read_reg(dma::kGenDoneLo);
    const std::uint64_t n = lo | (std::uint64_t{drv.read_reg(dma::kGenDoneHi)} << 32);
    if (n != done) {
      done = n;
      last_progress = HostCpu::now();
    }
    c.jobs_completed = done;
    c.bytes = done * spec_.size;
    if (!(drv.read_reg(dma::kGenStatus) & dma::kGenRunning)) {
      // It may have finished after the counter was read.
      done = drv.read_reg(dma::kGenDoneLo) | (std::uint64_t{drv.read_reg(dma::kGenDoneHi)} << 32);
      c.jobs_completed = done;
      c.bytes = done * spec_.size;
      break;
    }
    if (drv.removed() || HostCpu::now() - last_progress >= kStallTimeout) {
      c.stalled = true;
      c.failure = "the generator made no progress for " + format_time(kStallTimeout);
      drv.write_reg(dma::kGenCtrl, dma::kGenStop);
      break;
    }
  }
  if (done < spec_.count && c.failure.empty()) {
    c.errors = spec_.count - done;
    c.failure = "the generator stopped after " + std::to_string(done) + " of " +
                std::to_string(spec_.count) + " transfers";
  }
}

void Workload::run_one(const std::string& function, WorkloadCounters& c) {
  // Keep the driver alive even if the function disappears under us.
  std::shared_ptr<DmaDriver> drv = host_.driver_ref(function);
  if (!drv) {
    c.failure = function + " is not bound to the " + DmaDriver::kName + " driver";
    return;
  }
  while (drv->busy())
    HostCpu::sleep(1 * kUs);  // another workload owns the engine
  drv->set_busy(true);
  if (spec_.type == WorkloadSpec::kBench) {
    run_bench(*drv, c);
    drv->set_busy(false);
    return;
  }
  // Buffers: host memory per slot (from the driver's DMA space: physical,
  // an IOMMU domain, or a VM's memory), or offsets into device memory.
  // `cpu` is what the host reads and writes, `dma` what the descriptor says.
  struct Side {
    std::uint64_t cpu = 0, dma = 0;
  };
  std::vector<std::array<Side, 2>> slots(spec_.queue_depth);
  // Peer placements address the peer's BAR2 as the host assigned it, in
  // the function's DMA address space.
  std::uint64_t peer_base[2] = {0, 0};
  for (int which = 0; which < 2; ++which) {
    const Placement& p = which == 0 ? spec_.src : spec_.dst;
    if (p.kind != Placement::kPeer) continue;
    PciDev* pd = host_.pci().find(p.peer);
    const std::uint64_t bar = pd ? host_.pci().bar_address(*pd, 2) : 0;
    if (!bar) {
      drv->set_busy(false);
      c.failure = "peer " + p.peer + " has no BAR2 address in the host's view";
      return;
    }
    peer_base[which] = drv->dma_space().map_peer(bar, host_.pci().bar_size(*pd, 2));
  }
  for (unsigned s = 0; s < spec_.queue_depth; ++s)
    for (int which = 0; which < 2; ++which) {
      const Placement& p = which == 0 ? spec_.src : spec_.dst;
      Side& side = slots[s][which];
      if (p.kind == Placement::kHost) {
        DmaSpace::Buffer b = drv->dma_space().alloc(spec_.size);
        side = {b.cpu, b.dma};
      } else {
        side.cpu = std::uint64_t{s} * spec_.size;
        side.dma = side.cpu + peer_base[which];
      }
    }
  // At most queue_depth jobs are outstanding and the engine completes them
  // in order, so a job's submit time lives in its slot.
  std::vector<Time> submitted_at(spec_.queue_depth, 0);
  std::uint64_t next = 0;
  Time last_progress = HostCpu::now();
  const std::uint64_t irq_before = host_.msi_count(drv->msi_data());
  Vm* vm = host_.vm_of(drv->dev());
  Time stall_after = kStallTimeout;
  {
    PciDev& pf = drv->dev().is_vf && drv->dev().physfn ? *drv->dev().physfn : drv->dev();
    if (pf.exp) {
      const std::uint32_t ctl2 = host_.cpu().config_read(pf.rid, pf.exp + PCI_EXP_DEVCTL2, 2);
      if (ctl2 != 0xffff) {
        const Time cto = completion_timeout_fs(static_cast<std::uint16_t>(ctl2));
        if (cto && cto < kSec) stall_after += cto;
      }
    }
  }
  while (c.jobs_completed + c.errors < spec_.count) {
    if (drv->removed()) {
      c.failure = "the function went away (driver unbound) with jobs outstanding";
      c.stalled = true;
      break;
    }
    if (vm && vm->stopped()) {
      // The VMM paused the vCPUs: the guest's driver does nothing more.
      c.failure = "its VM was stopped: " + vm->stop_reason();
      break;
    }
    if (vm && (vm->paused() || vm->moved_to())) {
      // A migration's switchover: the vCPUs wait, and the driver's time
      // does not run meanwhile. When the guest comes back in another VM
      // (the same guest-physical layout), its buffers are there.
      if (!vm->moved_to()) {
        sc_core::wait(vm->resumed_event());
      } else {
        Vm& now_vm = vm->current();
        const std::uint64_t shift = now_vm.host_base() - vm->host_base();
        for (auto& slot : slots)
          for (int which = 0; which < 2; ++which)
            if ((which == 0 ? spec_.src : spec_.dst).kind == Placement::kHost)
              slot[which].cpu += shift;
        vm = &now_vm;
      }
      last_progress = HostCpu::now();
      continue;
    }
    if (!drv->failed().empty()) {
      c.failure = "error recovery failed: " + drv->failed();
      break;
    }
    bool posted = false;
    while (next < spec_.count && next - c.jobs_completed - c.errors < spec_.queue_depth &&
           drv->space() > 0 && !drv->recovering()) {
      const unsigned slot = static_cast<unsigned>(next % spec_.queue_depth);
      if (spec_.verify) {
        write_placement(drv->dev().name, spec_.src, slots[slot][0].cpu, pattern(function, next));
        // Clear the destination so a copy that never happened cannot verify.
        write_placement(drv->dev().name, spec_.dst, slots[slot][1].cpu,
                        std::vector<std::uint8_t>(spec_.size, 0));
      }
      dma::Descriptor d{};
      d.src = slots[slot][0].dma;
      d.dst = slots[slot][1].dma;
      d.length = static_cast<std::uint32_t>(spec_.size);
      d.flags = dma::kDescReport | (spec_.interrupts ? dma::kDescIrq : 0u) |
                (spec_.src.kind == Placement::kDevice ? dma::kDescSrcLocal : 0u) |
                (spec_.dst.kind == Placement::kDevice ? dma::kDescDstLocal : 0u);
      d.xfer_size = spec_.xfer_size;
      d.cookie = static_cast<std::uint32_t>(next + 1);
      drv->post(d);
      submitted_at[slot] = HostCpu::now();
      ++next;
      ++c.jobs_submitted;
      posted = true;
    }
    if (posted) drv->kick();
    dma::Completion rec;
    bool progress = false;
    while (drv->reap(&rec)) {
      progress = true;
      const std::uint64_t job = rec.cookie - 1u;
      if (job >= spec_.count) continue;
      if (rec.status != dma::kErrNone) {
        ++c.errors;
        if (c.failure.empty())
          c.failure =
              rec.status == DmaDriver::kAbortedByReset
                  ? "job " + std::to_string(job) + " was lost with the reset of error recovery"
                  : "engine reported error " + std::to_string(rec.status) + " on job " +
                        std::to_string(job);
        continue;
      }
      ++c.jobs_completed;
      c.bytes += spec_.size;
      stats_.latency.add(to_ns(HostCpu::now() - submitted_at[job % spec_.queue_depth]));
      if (spec_.verify) {
        const unsigned slot = static_cast<unsigned>(job % spec_.queue_depth);
        if (read_placement(drv->dev().name, spec_.dst, slots[slot][1].cpu, spec_.size) ==
            pattern(function, job))
          c.verified_bytes += spec_.size;
        else
          ++c.mismatches;
      }
    }
    c.interrupts = host_.msi_count(drv->msi_data()) - irq_before;  // live, for stats mid-run
    if (progress) {
      last_progress = HostCpu::now();
      continue;
    }
    // The engine stopped on an error: remaining jobs will not complete,
    // unless the host's error recovery is about to restart it.
    if (c.errors && (drv->read_reg(dma::kStatus) & dma::kStatusHalted) && !drv->recovery_expected())
      break;
    const Time now = HostCpu::now();
    if (drv->recovering()) {
      // The host's error recovery owns the function (a link reset takes
      // 100 ms and more): nothing is posted, the watchdog starts again
      // after resume.
      drv->wait_recovery();
      last_progress = HostCpu::now();
      continue;
    }
    if (now - last_progress >= stall_after) {
      c.stalled = true;
      if (c.failure.empty()) c.failure = "no completion for " + format_time(stall_after);
      break;
    }
    drv->wait(spec_.interrupts, stall_after - (now - last_progress));
  }
  c.interrupts = host_.msi_count(drv->msi_data()) - irq_before;
  drv->set_busy(false);
}

}  // namespace pciesim::sim

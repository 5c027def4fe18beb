#include "sim/host/workload.h"

#include <algorithm>
#include <cstring>

#include "fabric/common/error.h"
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
  sc_core::sc_spawn_options opts;
  sc_core::sc_spawn(
      [this, delay] {
        KernelContext::guard([&] {
          HostCpu::sleep(delay);
          run();
        });
      },
      ("workload_" + spec_.name).c_str(), &opts);
}

std::vector<std::uint8_t> Workload::pattern(std::uint64_t job) const {
  // xorshift64* seeded by (seed, workload, job): deterministic, distinct.
  std::uint64_t x = host_.system().config().simulation.seed * 0x9e3779b97f4a7c15ull + job + 1;
  for (char c : spec_.name) x = (x ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
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

void Workload::write_placement(const Placement& p, std::uint64_t addr,
                               const std::vector<std::uint8_t>& b) {
  if (p.kind == Placement::kHost) {
    host_.cpu().memory().write(addr, b.data(), b.size());
    return;
  }
  const std::string& fn = p.kind == Placement::kDevice ? spec_.function : p.peer;
  models::DmaFunction* f = host_.system().function(fn)->dma();
  std::vector<std::uint8_t> copy = b;
  f->devmem_debug(addr, copy.data(), static_cast<std::uint32_t>(copy.size()), true);
}

std::vector<std::uint8_t> Workload::read_placement(const Placement& p, std::uint64_t addr,
                                                   std::size_t len) {
  std::vector<std::uint8_t> out(len);
  if (p.kind == Placement::kHost) {
    host_.cpu().memory().read(addr, out.data(), len);
    return out;
  }
  const std::string& fn = p.kind == Placement::kDevice ? spec_.function : p.peer;
  host_.system().function(fn)->dma()->devmem_debug(addr, out.data(), static_cast<std::uint32_t>(len), false);
  return out;
}

bool Workload::prepare(DmaDriver& drv) {
  (void)drv;
  slots_.resize(spec_.queue_depth);
  for (unsigned s = 0; s < spec_.queue_depth; ++s) {
    for (int which = 0; which < 2; ++which) {
      const Placement& p = which == 0 ? spec_.src : spec_.dst;
      std::uint64_t& a = which == 0 ? slots_[s].src : slots_[s].dst;
      switch (p.kind) {
        case Placement::kHost: a = host_.allocator().alloc(spec_.size); break;
        case Placement::kDevice: a = std::uint64_t{s} * spec_.size; break;
        case Placement::kPeer: a = std::uint64_t{s} * spec_.size; break;
      }
    }
  }
  return true;
}

void Workload::fill_source(std::uint64_t job, unsigned slot) {
  if (!spec_.verify) return;  // nobody looks at the data: skip generating it
  write_placement(spec_.src, slots_[slot].src, pattern(job));
  // Clear the destination so a copy that never happened cannot verify.
  write_placement(spec_.dst, slots_[slot].dst, std::vector<std::uint8_t>(spec_.size, 0));
}

bool Workload::verify(std::uint64_t job, unsigned slot) {
  return read_placement(spec_.dst, slots_[slot].dst, spec_.size) == pattern(job);
}

void Workload::run() {
  stats_.started = true;
  stats_.start = HostCpu::now();
  auto fail = [&](const std::string& why) {
    stats_.failure = why;
    stats_.finished = true;
    stats_.end = HostCpu::now();
    done_.notify(sc_core::SC_ZERO_TIME);
  };
  DmaDriver* drv = host_.driver(spec_.function);
  if (!drv) return fail(spec_.function + " is not bound to the " + DmaDriver::kName + " driver");
  while (drv->busy()) HostCpu::sleep(1 * kUs);  // another workload owns the engine
  drv->set_busy(true);
  prepare(*drv);
  // Peer placements address the peer's BAR2 as the host assigned it.
  std::uint64_t peer_src = 0, peer_dst = 0;
  for (int which = 0; which < 2; ++which) {
    const Placement& p = which == 0 ? spec_.src : spec_.dst;
    if (p.kind != Placement::kPeer) continue;
    PciDev* pd = host_.pci().find(p.peer);
    std::uint64_t bar = pd ? host_.pci().bar_address(*pd, 2) : 0;
    if (!bar) {
      drv->set_busy(false);
      return fail("peer " + p.peer + " has no BAR2 address in the host's view");
    }
    (which == 0 ? peer_src : peer_dst) = bar;
  }
  submitted_at_.assign(spec_.count, 0);
  std::uint64_t next = 0;
  Time last_progress = HostCpu::now();
  const std::uint64_t irq_before = host_.msi_count(drv->msi_data());
  while (stats_.jobs_completed + stats_.errors < spec_.count) {
    bool posted = false;
    while (next < spec_.count && next - stats_.jobs_completed - stats_.errors < spec_.queue_depth &&
           drv->space() > 0) {
      unsigned slot = static_cast<unsigned>(next % spec_.queue_depth);
      fill_source(next, slot);
      dma::Descriptor d{};
      d.src = slots_[slot].src + peer_src;
      d.dst = slots_[slot].dst + peer_dst;
      d.length = static_cast<std::uint32_t>(spec_.size);
      d.flags = dma::kDescReport | (spec_.interrupts ? dma::kDescIrq : 0u) |
                (spec_.src.kind == Placement::kDevice ? dma::kDescSrcLocal : 0u) |
                (spec_.dst.kind == Placement::kDevice ? dma::kDescDstLocal : 0u);
      d.xfer_size = spec_.xfer_size;
      d.cookie = static_cast<std::uint32_t>(next + 1);
      drv->post(d);
      submitted_at_[next] = HostCpu::now();
      ++next;
      ++stats_.jobs_submitted;
      posted = true;
    }
    if (posted) drv->kick();
    dma::Completion c;
    bool progress = false;
    while (drv->reap(&c)) {
      progress = true;
      std::uint64_t job = c.cookie - 1u;
      if (job >= spec_.count) continue;
      if (c.status != dma::kErrNone) {
        ++stats_.errors;
        if (stats_.failure.empty())
          stats_.failure = "engine reported error " + std::to_string(c.status) + " on job " +
                           std::to_string(job);
        continue;
      }
      ++stats_.jobs_completed;
      stats_.bytes += spec_.size;
      stats_.latency.add(to_ns(HostCpu::now() - submitted_at_[job]));
      if (spec_.verify) {
        if (verify(job, static_cast<unsigned>(job % spec_.queue_depth))) stats_.verified_bytes += spec_.size;
        else ++stats_.mismatches;
      }
    }
    if (progress) {
      last_progress = HostCpu::now();
      continue;
    }
    if (stats_.errors && drv->read_reg(dma::kStatus) & dma::kStatusHalted) {
      // The engine stopped on an error: remaining jobs will not complete.
      break;
    }
    Time now = HostCpu::now();
    if (now - last_progress >= kStallTimeout) {
      stats_.stalled = true;
      if (stats_.failure.empty())
        stats_.failure = "no completion for " + format_time(kStallTimeout);
      break;
    }
    drv->wait(spec_.interrupts, kStallTimeout - (now - last_progress));
  }
  stats_.interrupts = host_.msi_count(drv->msi_data()) - irq_before;
  drv->set_busy(false);
  stats_.finished = true;
  stats_.end = HostCpu::now();
  done_.notify(sc_core::SC_ZERO_TIME);
}

}  // namespace pciesim::sim

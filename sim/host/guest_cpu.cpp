#include "sim/host/guest_cpu.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "fabric/kernel/kernel_context.h"
#include "models/host_memory/host_memory.h"
#include "sim/host/iommu_driver.h"

namespace pciesim::sim {

using namespace fabric;

GuestCpu::GuestCpu(Vm& vm, models::HostMemory& memory, std::uint64_t seed)
    : vm_(&vm), memory_(memory), spec_(vm.spec().cpu), rng_(seed * 0x9e3779b97f4a7c15ull + 1) {}

Time GuestCpu::burst_time() const {
  if (spec_.write_gbps <= 0) return kTimeMax;
  const double fs = spec_.chunk * 8.0 * 1e15 / (spec_.write_gbps * 1e9);
  return std::max<Time>(1, static_cast<Time>(std::llround(fs)));
}

void GuestCpu::start(Time at) {
  if (spec_.write_gbps <= 0) return;
  sc_core::sc_spawn_options o;
  sc_core::sc_spawn([this, at] { KernelContext::guard([&] { run(at); }); }, nullptr, &o);
}

void GuestCpu::run(Time at) {
  if (at > now_fs()) sc_core::wait(to_sc(at - now_fs()));
  stats_.started = now_fs();
  const Time step = burst_time();
  const std::uint64_t slots = spec_.region_size / spec_.chunk;
  std::vector<std::uint8_t> data(spec_.chunk);
  for (;;) {
    vm_ = &vm_->current();
    if (vm_->stopped()) return;
    while (vm_->paused()) {
      sc_core::wait(vm_->resumed_event());
      vm_ = &vm_->current();
      if (vm_->stopped()) return;
    }
    std::uint64_t slot;
    if (spec_.pattern == GuestCpuSpec::kSequential) {
      slot = next_;
      next_ = (next_ + 1) % slots;
    } else {
      // xorshift64*: deterministic for the run's seed.
      rng_ ^= rng_ >> 12;
      rng_ ^= rng_ << 25;
      rng_ ^= rng_ >> 27;
      slot = (rng_ * 0x2545f4914f6cdd1dull) % slots;
    }
    // Each burst stores its sequence number, so every store changes memory.
    const std::uint64_t tagv = stats_.bursts + 1;
    for (std::size_t i = 0; i + 8 <= data.size(); i += 8)
      std::memcpy(data.data() + i, &tagv, 8);
    const std::uint64_t gpa = spec_.region_base + slot * spec_.chunk;
    memory_.write(vm_->host_base() + gpa, data.data(), data.size());
    ++stats_.bursts;
    stats_.bytes += data.size();
    stats_.last = now_fs();
    sc_core::wait(to_sc(step));
  }
}

}  // namespace pciesim::sim

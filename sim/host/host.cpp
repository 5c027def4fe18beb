#include "sim/host/host.h"

#include "fabric/common/error.h"
#include "fabric/kernel/kernel_context.h"

namespace pciesim::sim {

using namespace fabric;

Host::Host(sc_core::sc_module_name name, System& system)
    : sc_core::sc_module(name),
      system_(system),
      cpu_("cpu", system.config().root_complex.params.ecam_base, system.memory()) {
  cpu_.socket.bind(system.rc().cpu_socket);
  pci_ = std::make_unique<PciCore>(cpu_, system, system.config().host,
                                   system.config().root_complex.params);
  alloc_ = std::make_unique<HostAllocator>(system.memory().params().ranges);
  pci_->on_added = [this](PciDev& vf) {
    if (vf.physfn && vf.physfn->autoprobe) bind(vf);
  };
  pci_->on_removing = [this](PciDev& vf) { unbind(vf); };
  pci_->on_reset_done = [this](PciDev& d) {
    // The native driver's reset_done: program the engine again.
    if (DmaDriver* drv = driver(d)) drv->reinit();
  };
  for (const WorkloadSpec& w : system.config().workloads)
    workloads_.push_back(std::make_unique<Workload>(*this, w));
  SC_THREAD(main_thread);
}

Host::~Host() = default;

std::uint64_t Host::msi_address() const { return system_.config().root_complex.params.msi_base; }

sc_core::sc_event& Host::msi_event(std::uint32_t data) { return system_.rc().msi().event_for(data); }

std::uint64_t Host::msi_count(std::uint32_t data) const {
  return system_.rc().msi().count_for(data);
}

DmaDriver* Host::driver(PciDev& dev) {
  auto it = drivers_.find(&dev);
  return it == drivers_.end() ? nullptr : it->second.get();
}

DmaDriver* Host::driver(const std::string& function) {
  PciDev* d = pci_->find(function);
  return d ? driver(*d) : nullptr;
}

bool Host::bind(PciDev& dev) {
  if (driver(dev)) return true;
  FunctionRef* f = system_.function(dev.name);
  if (!f || f->kind() != FunctionRef::kDma) return false;
  auto drv = std::make_unique<DmaDriver>(*this, dev);
  if (!drv->probe()) {
    note(dev.name + ": " + DmaDriver::kName + " probe failed: " + drv->error());
    return false;
  }
  drivers_[&dev] = std::move(drv);
  return true;
}

void Host::unbind(PciDev& dev) {
  auto it = drivers_.find(&dev);
  if (it == drivers_.end()) return;
  it->second->remove();
  drivers_.erase(it);
}

Workload* Host::workload(const std::string& name) {
  for (auto& w : workloads_)
    if (w->spec().name == name) return w.get();
  return nullptr;
}

void Host::boot() {
  pci_->enumerate();
  const SystemConfig& cfg = system_.config();
  for (const EndpointSpec& ep : cfg.endpoints) {
    PciDev* pf = pci_->find(ep.name + ".pf");
    if (!pf) {
      note(ep.name + ".pf was not found by enumeration");
      continue;
    }
    if (ep.driver == "dma") bind(*pf);
    if (ep.driver == "pf-stub") pf->driver = "pci-pf-stub";
    if (ep.num_vfs) {
      int r = pci_->sriov_numvfs(*pf, ep.num_vfs);
      if (r) note(ep.name + ".pf: enabling " + std::to_string(ep.num_vfs) + " VFs failed (" + std::to_string(r) + ")");
    }
  }
  booted_ = true;
  boot_end_ = HostCpu::now();
  booted_event_.notify(sc_core::SC_ZERO_TIME);
  for (auto& w : workloads_)
    if (!w->spec().manual) w->start(w->spec().start);
}

void Host::main_thread() {
  KernelContext::guard([this] {
    boot();
    if (after_boot) after_boot();
  });
}

}  // namespace pciesim::sim

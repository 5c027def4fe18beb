#include "sim/host/host.h"

#include <linux/pci_regs.h>

#include <algorithm>

#include "fabric/common/error.h"
#include "fabric/kernel/kernel_context.h"
#include "models/dma_endpoint/dma_regs.h"
#include "sim/migration/vmm.h"

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
  physical_ = std::make_unique<PhysicalSpace>(*alloc_);
  dirty_ledger_ = std::make_unique<DirtyLedger>(system.memory());
  vmm_ = std::make_unique<Vmm>(*this);
  pci_->on_added = [this](PciDev& vf) {
    enable_acs(vf);  // Linux: pci_device_add -> pci_acs_init, VFs included
    if (vf.physfn && vf.physfn->autoprobe) bind(vf);
  };
  pci_->on_removing = [this](PciDev& vf) {
    unbind(vf);
    assigned_.erase(&vf);
    if (iommu_) iommu_->detach(vf);  // the function is gone: no context entry
  };
  pci_->on_note = [this](const std::string& m) { note(m); };
  pci_->on_reset_done = [this](PciDev& d) {
    // The native driver's reset_done: program the engine again.
    if (DmaDriver* drv = driver(d)) drv->reinit();
    // The VFIO variant driver's reset_done (mlx5vf_pci_aer_reset_done):
    // the device is RUNNING again, its streams closed.
    if (VfioDevice* v = vfio_if_open(d)) v->reset_done();
  };
  if (system.config().host.aer) {
    aer_ = std::make_unique<AerDriver>("aer", *this);
    system.rc().on_error_interrupt = [this](unsigned port, Time t) {
      aer_->root_port_interrupt(port, t);
    };
    system.rc().on_dpc_interrupt = [this](unsigned port, Time t) {
      aer_->dpc_interrupt(RoutingId(0, port + 1, 0), t);
    };
    for (const SwitchSpec& sw : system.config().switches)
      if (models::PcieSwitch* m = system.switch_device(sw.name))
        m->on_dpc_interrupt = [this](RoutingId port, Time t) { aer_->dpc_interrupt(port, t); };
  }
  faults_ =
      std::make_unique<FaultInjector>("faults", system, *this, system.config().simulation.seed);
  for (const WorkloadSpec& w : system.config().workloads)
    workloads_.push_back(std::make_unique<Workload>(*this, w));
  SC_THREAD(main_thread);
}

Host::~Host() = default;

std::uint64_t Host::msi_address() const {
  return system_.config().root_complex.params.msi_base;
}

sc_core::sc_event& Host::msi_event(std::uint32_t data) {
  return system_.rc().msi().event_for(data);
}

std::uint64_t Host::msi_count(std::uint32_t data) const {
  return system_.rc().msi().count_for(data);
}

DmaDriver* Host::driver(PciDev& dev) {
  auto it = drivers_.find(&dev);
  return it == drivers_.end() ? nullptr : it->second.get();
}

std::shared_ptr<DmaDriver> Host::driver_ref(const std::string& function) {
  PciDev* d = pci_->find(function);
  if (!d) return nullptr;
  auto it = drivers_.find(d);
  return it == drivers_.end() ? nullptr : it->second;
}

DmaDriver* Host::driver(const std::string& function) {
  PciDev* d = pci_->find(function);
  return d ? driver(*d) : nullptr;
}

bool Host::bind(PciDev& dev) {
  return bind_with(dev, space_of(dev), DmaDriver::kName);
}

bool Host::bind_with(PciDev& dev, DmaSpace& space, const std::string& shown_driver) {
  if (driver(dev)) return true;
  FunctionRef* f = system_.function(dev.name);
  if (!f || f->kind() != FunctionRef::kDma) return false;
  auto drv = std::make_shared<DmaDriver>(*this, dev, space);
  if (!drv->probe()) {
    note(dev.name + ": " + DmaDriver::kName + " probe failed: " + drv->error());
    return false;
  }
  dev.driver = shown_driver;
  drivers_[&dev] = std::move(drv);
  // Drivers save the probed config (pci_save_state) for their error
  // recovery's slot_reset to restore.
  if (aer_) pci_->save_state(dev);
  return true;
}

DmaSpace& Host::space_of(PciDev& dev) {
  if (auto it = assigned_.find(&dev); it != assigned_.end()) return *it->second;
  if (!iommu_) return *physical_;
  // The default domain (Linux: per IOMMU group; here per function).
  if (system_.config().iommu.default_domain == IommuSpec::kPassThrough) {
    IommuDomain* id = iommu_->domain("identity");
    if (!id) id = &iommu_->create_domain("identity", IommuDomain::kIdentity);
    iommu_->attach(dev, *id);
    return *physical_;
  }
  IommuDomain* d = iommu_->domain(dev.name);
  if (!d) d = &iommu_->create_domain(dev.name, IommuDomain::kDma);
  iommu_->attach(dev, *d);
  auto& space = domain_spaces_[dev.name];
  if (!space) space = std::make_unique<DomainSpace>(*alloc_, *iommu_, *d);
  return *space;
}

Vm* Host::vm_of(PciDev& dev) {
  auto it = assigned_.find(&dev);
  return it == assigned_.end() ? nullptr : it->second;
}

std::shared_ptr<PfMailbox> Host::mailbox(PciDev& pf) {
  if (pf.removed || !driver(pf)) {
    mailboxes_.erase(&pf);
    return nullptr;
  }
  auto& m = mailboxes_[&pf];
  if (!m) m = std::make_shared<PfMailbox>(*this, pf);
  return m;
}

VfioDevice* Host::vfio_if_open(PciDev& dev) {
  auto it = vfio_.find(&dev);
  return it == vfio_.end() ? nullptr : it->second.get();
}

VfioDevice& Host::vfio(PciDev& dev) {
  if (VfioDevice* v = vfio_if_open(dev)) return *v;
  if (!vm_of(dev))
    throw UsageError(dev.name, dev.name +
                                   " is not assigned to a VM: only an assigned function is opened "
                                   "through VFIO (vms[].functions or an assign step)");
  const EndpointSpec* ep = system_.config().endpoint_of(dev.name);
  if (!ep) throw UsageError(dev.name, dev.name + " is not a function of an endpoint");
  auto& v = vfio_[&dev];
  v = std::make_unique<VfioDevice>(*this, dev, *ep);
  return *v;
}

Vm* Host::vm(const std::string& name) {
  auto it = vms_.find(name);
  return it == vms_.end() ? nullptr : it->second.get();
}

std::string Host::assign(PciDev& dev, Vm& vm) {
  if (!iommu_) return "assigning a function to a VM needs the IOMMU";
  if (dev.bridge) return dev.name + " is a bridge";
  unbind(dev);
  assigned_[&dev] = &vm;
  iommu_->attach(dev, vm.domain());
  if (vm.spec().incoming) {
    // No guest runs there yet: vfio-pci holds the function for the VMM.
    dev.driver = "vfio-pci";
    return "";
  }
  if (!bind_with(dev, vm, "vfio-pci")) return dev.name + ": the guest driver's probe failed";
  return "";
}

void Host::hand_over(Vm& from, Vm& to, const std::vector<std::pair<PciDev*, PciDev*>>& pairs) {
  const std::uint64_t shift = to.host_base() - from.host_base();
  for (auto [src, dst] : pairs) {
    if (auto it = drivers_.find(src); it != drivers_.end()) {
      std::shared_ptr<DmaDriver> drv = std::move(it->second);
      drivers_.erase(it);
      drv->move_to(*dst, to, shift);
      drivers_[dst] = std::move(drv);
    }
    aliases_[src->name] = dst->name;
  }
  from.hand_over(to);
  to.resume();
}

std::vector<PciDev*> Host::functions_of(const Vm& vm) const {
  std::vector<PciDev*> out;
  for (const std::string& fn : vm.spec().functions)
    if (PciDev* d = pci_->find(fn); d && vm_of_const(*d) == &vm) out.push_back(d);
  std::vector<PciDev*> later;
  for (const auto& [d, v] : assigned_)
    if (v == &vm && std::find(out.begin(), out.end(), d) == out.end()) later.push_back(d);
  std::sort(later.begin(), later.end(),
            [](const PciDev* a, const PciDev* b) { return a->name < b->name; });
  out.insert(out.end(), later.begin(), later.end());
  return out;
}

bool Host::vm_has_guest(const Vm& vm) const {
  for (const auto& [d, drv] : drivers_)
    if (vm_of_const(*d) == &vm) return true;
  return false;
}

const Vm* Host::vm_of_const(const PciDev& dev) const {
  auto it = assigned_.find(const_cast<PciDev*>(&dev));
  return it == assigned_.end() ? nullptr : it->second;
}

std::string Host::current_function(const std::string& name) const {
  std::string n = name;
  for (auto it = aliases_.find(n); it != aliases_.end(); it = aliases_.find(n))
    n = it->second;
  return n;
}

int Host::dma_once(PciDev& dev, std::uint64_t src, std::uint64_t dst, std::uint32_t length,
                   bool src_local, bool dst_local, Time timeout, std::uint32_t* bytes) {
  namespace dma = models::dma;
  // Keep the driver alive (and see it marked removed) if the function goes
  // away while this waits, as workloads do.
  auto it = drivers_.find(&dev);
  std::shared_ptr<DmaDriver> drv = it == drivers_.end() ? nullptr : it->second;
  if (!drv) throw UsageError(dev.name, dev.name + " is not bound to a DMA driver");
  while (drv->busy() && !drv->removed())
    HostCpu::sleep(1 * kUs);       // a workload owns the engine
  if (drv->removed()) return -19;  // -ENODEV: the function went away
  drv->set_busy(true);
  dma::Descriptor d{};
  d.src = src;
  d.dst = dst;
  d.length = length;
  d.flags = dma::kDescReport | dma::kDescIrq | (src_local ? dma::kDescSrcLocal : 0u) |
            (dst_local ? dma::kDescDstLocal : 0u);
  d.cookie = 0x7fffffffu;  // distinct from workload cookies (job + 1)
  drv->post(d);
  drv->kick();
  const Time deadline = HostCpu::now() + timeout;
  int status = -110;
  *bytes = 0;
  for (;;) {
    dma::Completion c;
    if (drv->reap(&c)) {
      if (c.cookie != d.cookie) continue;
      status = static_cast<int>(c.status);
      *bytes = c.bytes;
      break;
    }
    const Time now = HostCpu::now();
    if (now >= deadline || drv->removed()) break;
    drv->wait(true, deadline - now);
  }
  // Clear a reported error (RW1C) so the engine resumes.
  if (status > 0 && !drv->removed())
    drv->write_reg(dma::kError, static_cast<std::uint32_t>(status));
  drv->set_busy(false);
  return status;
}

std::uint64_t Host::peer_dma_address(PciDev& initiator, PciDev& target, unsigned bar) {
  const std::uint64_t base = pci_->bar_address(target, bar);
  if (!base)
    throw UsageError(target.name, target.name + " BAR" + std::to_string(bar) + " has no address");
  DmaDriver* drv = driver(initiator);
  DmaSpace& space = drv ? drv->dma_space() : space_of(initiator);
  return space.map_peer(base, pci_->bar_size(target, bar));
}

IommuDomain& Host::iommu_domain(const std::string& name) {
  if (!iommu_) throw UsageError(name, "there is no IOMMU (iommu: {enabled: true})");
  if (IommuDomain* d = iommu_->domain(name)) return *d;
  std::string known;
  for (const auto& [n, d] : iommu_->domains())
    known += (known.empty() ? "" : ", ") + n;
  throw UsageError(name, "no IOMMU domain named '" + name +
                             "' (domains: " + (known.empty() ? "none" : known) + ")");
}

void Host::iommu_flush(const std::string& kind, const std::string& domain, std::uint64_t iova,
                       std::uint64_t length, PciDev* dev) {
  namespace io = models::iommu;
  if (!iommu_) throw UsageError("iommu_flush", "there is no IOMMU");
  if (kind == "global") {
    iommu_->flush_context(io::kGlobal);
    iommu_->flush_iotlb(io::kGlobal);
  } else if (kind == "domain") {
    iommu_->flush_iotlb(io::kDomain, iommu_domain(domain).id);
  } else if (kind == "page") {
    iommu_->flush_iotlb(io::kSelective, iommu_domain(domain).id, iova, length);
  } else if (kind == "device") {
    if (!dev) throw UsageError("iommu_flush", "a device flush needs a function");
    IommuDomain* d = iommu_->domain_of(*dev);
    iommu_->flush_context(io::kSelective, d ? d->id : 0, dev->rid);
    if (d) iommu_->flush_iotlb(io::kDomain, d->id);
  } else {
    throw UsageError("iommu_flush",
                     "kind must be global, domain, page or device, got '" + kind + "'");
  }
}

std::uint64_t Host::vm_to_host(const std::string& name, std::uint64_t gpa, std::uint64_t length) {
  Vm* v = vm(name);
  if (!v) throw UsageError(name, "no VM named '" + name + "'");
  return v->to_host(gpa, length);
}

std::uint16_t Host::acs_wanted() const {
  // Linux's pci_enable_acs(): with an IOMMU, Source Validation, Request and
  // Completion Redirect and Upstream Forwarding wherever they exist.
  const SystemConfig& cfg = system_.config();
  if (cfg.host.acs) return *cfg.host.acs;
  return cfg.iommu.enabled ? std::uint16_t(PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF)
                           : std::uint16_t(0);
}

void Host::enable_acs(PciDev& d) {
  const std::uint16_t want = acs_wanted();
  if (!want || !d.acs) return;
  const std::uint16_t cap =
      static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.acs + PCI_ACS_CAP, 2));
  const std::uint16_t ctrl =
      static_cast<std::uint16_t>(cpu_.config_read(d.rid, d.acs + PCI_ACS_CTRL, 2));
  const std::uint16_t next = static_cast<std::uint16_t>((ctrl & ~want) | (cap & want));
  if (next != ctrl) cpu_.config_write(d.rid, d.acs + PCI_ACS_CTRL, 2, next);
}

void Host::create_vms() {
  for (const VmSpec& spec : system_.config().vms) {
    std::uint64_t base = spec.host_base;
    if (base && alloc_->allocated(base, spec.memory)) {
      note("VM " + spec.name + ": host_base overlaps memory the host already uses");
      continue;
    }
    if (base)
      alloc_->reserve(base, spec.memory);
    else
      base = alloc_->alloc(spec.memory, spec.memory >= (1ull << 30) ? (1ull << 30) : (2ull << 20));
    if (!system_.memory().contains(base, spec.memory)) {
      note("VM " + spec.name + ": its memory is not inside host DRAM");
      continue;
    }
    IommuDomain& d = iommu_->create_domain(spec.name, IommuDomain::kDma);
    auto vm = std::make_unique<Vm>(spec, base, *iommu_, d);
    Vm& ref = *vm;
    vms_[spec.name] = std::move(vm);
    for (const std::string& fn : spec.functions) {
      PciDev* dev = pci_->find(fn);
      if (!dev) {
        note("VM " + spec.name + ": " + fn + " does not exist (not enumerated or not enabled)");
        continue;
      }
      std::string err = assign(*dev, ref);
      if (!err.empty()) note("VM " + spec.name + ": " + err);
    }
  }
}

void Host::unbind(PciDev& dev) {
  auto it = drivers_.find(&dev);
  if (it == drivers_.end()) return;
  // Out of the map before remove(), which takes simulated time: whatever
  // runs meanwhile (another unbind of the same function, a rebind) must
  // not find, or free, the driver being removed.
  std::shared_ptr<DmaDriver> drv = std::move(it->second);
  drivers_.erase(it);
  mailboxes_.erase(&dev);  // a command in flight keeps its own reference
  drv->remove();
}

Workload* Host::workload(const std::string& name) {
  for (auto& w : workloads_)
    if (w->spec().name == name) return w.get();
  return nullptr;
}

GuestCpu* Host::guest_cpu(const std::string& vm) {
  auto it = guest_cpus_.find(vm);
  return it == guest_cpus_.end() ? nullptr : it->second.get();
}

void Host::set_cpu_dirty_log(const std::string& name, bool enable) {
  Vm* v = vm(name);
  if (!v) throw UsageError(name, "no VM named '" + name + "'");
  CpuDirtyLog& log = cpu_logs_[name];
  if (!enable) {
    log.stop();
  } else if (!log.started()) {
    log.start(*dirty_ledger_, name, v->host_base(), v->spec().memory);
  }
}

int Host::read_cpu_dirty_log(const std::string& name, bool clear,
                             std::vector<std::uint64_t>* bitmap, std::uint64_t* pages) {
  if (!vm(name)) throw UsageError(name, "no VM named '" + name + "'");
  return cpu_logs_[name].read(*dirty_ledger_, clear, bitmap, pages);
}

int Host::set_iommu_dirty_tracking(const std::string& domain, bool enable) {
  if (!iommu_dirty_) throw UsageError("iommu", "the system has no enabled IOMMU");
  IommuDomain& d = iommu_domain(domain);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> memory;
  for (const auto& [name, vm] : vms_)
    if (&vm->domain() == &d) memory.push_back({vm->host_base(), vm->spec().memory});
  return iommu_dirty_->set(d, enable, memory);
}

void Host::boot() {
  pci_->enumerate();
  if (aer_) aer_->init();
  const SystemConfig& cfg = system_.config();
  if (cfg.iommu.enabled) {
    iommu_ = std::make_unique<IommuDriver>(cpu_, *alloc_, cfg.iommu);
    iommu_->init();
    iommu_dirty_ = std::make_unique<IommuDirtyTracking>(*iommu_, *dirty_ledger_);
  }
  for (PciDev* d : pci_->devices())
    enable_acs(*d);
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
      if (r)
        note(ep.name + ".pf: enabling " + std::to_string(ep.num_vfs) + " VFs failed (" +
             std::to_string(r) + ")");
    }
  }
  if (iommu_) create_vms();
  booted_ = true;
  boot_end_ = HostCpu::now();
  // The config's fault plan is armed now; its times count from here.
  for (fabric::FaultSpec f : cfg.faults) {
    f.start += boot_end_;
    if (f.end != kTimeMax) f.end += boot_end_;
    faults_->add(f);
  }
  booted_event_.notify(sc_core::SC_ZERO_TIME);
  std::uint64_t n = 0;
  for (const auto& [name, vm] : vms_) {
    ++n;
    if (vm->spec().cpu.write_gbps <= 0) continue;
    auto g = std::make_unique<GuestCpu>(*vm, system_.memory(), cfg.simulation.seed * 131 + n);
    g->start(boot_end_ + vm->spec().cpu.start);
    guest_cpus_[name] = std::move(g);
  }
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

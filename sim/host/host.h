// The host: CPU access path, PCI core, drivers, interrupt routing and the
// workloads. Its main thread boots the machine (enumeration, SR-IOV,
// driver probes) and then runs the scenario.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <systemc>
#include <vector>

#include "fabric/common/sim_time.h"
#include "sim/builder/system.h"
#include "sim/config/system_config.h"
#include "sim/fault/fault_injector.h"
#include "sim/host/aer/aer_driver.h"
#include "sim/host/dma_driver.h"
#include "sim/host/guest_cpu.h"
#include "sim/host/host_cpu.h"
#include "sim/host/iommu_driver.h"
#include "sim/host/pci_core.h"
#include "sim/host/vfio/pf_mailbox.h"
#include "sim/host/vfio/vfio_device.h"
#include "sim/host/workload.h"
#include "sim/migration/dirty_tracking.h"

namespace pciesim::sim {

class Vmm;

class Host : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Host);
  Host(sc_core::sc_module_name name, System& system);
  ~Host() override;

  System& system() { return system_; }
  const HostSpec& spec() const { return system_.config().host; }
  HostCpu& cpu() { return cpu_; }
  PciCore& pci() { return *pci_; }
  HostAllocator& allocator() { return *alloc_; }

  // Interrupts: each vector the host programs gets its own message data.
  std::uint32_t allocate_msi() { return next_msi_data_++; }
  std::uint64_t msi_address() const;
  sc_core::sc_event& msi_event(std::uint32_t data);
  std::uint64_t msi_count(std::uint32_t data) const;

  DmaDriver* driver(const std::string& function);
  DmaDriver* driver(PciDev& dev);
  std::shared_ptr<DmaDriver> driver_ref(const std::string& function);
  // Binds the native driver with the function's default DMA space (with an
  // IOMMU: attached to its default domain first).
  bool bind(PciDev& dev);
  void unbind(PciDev& dev);

  // The AER / DPC services (nullptr with host.aer off).
  AerDriver* aer() { return aer_.get(); }
  // The fault plan (docs/faults.md).
  FaultInjector& faults() { return *faults_; }

  // The IOMMU driver (nullptr without an IOMMU) and VMs.
  IommuDriver* iommu() { return iommu_.get(); }
  // Dirty tracking of guest memory (sim/migration/dirty_tracking.h): the
  // ground-truth ledger, and the IOMMU dirty bits (nullptr without an IOMMU).
  DirtyLedger& dirty_ledger() { return *dirty_ledger_; }
  IommuDirtyTracking* iommu_dirty() { return iommu_dirty_.get(); }
  // Enables / disables the IOMMU dirty bits of domain `name`; a VM's RAM is
  // watched by the ledger. 0 or a negative errno.
  int set_iommu_dirty_tracking(const std::string& domain, bool enable);
  // The CPU dirty log of a VM (CpuDirtyLog): enable/disable, and a read
  // (0 or -22 when not enabled).
  void set_cpu_dirty_log(const std::string& vm, bool enable);
  int read_cpu_dirty_log(const std::string& vm, bool clear, std::vector<std::uint64_t>* bitmap,
                         std::uint64_t* pages);
  Vm* vm(const std::string& name);
  const std::map<std::string, std::unique_ptr<Vm>>& vms() const { return vms_; }
  // A VM's vCPU activity model (nullptr when its cpu.write_gbps is 0).
  GuestCpu* guest_cpu(const std::string& vm);
  const CpuDirtyLog* cpu_dirty_log(const std::string& vm) const {
    auto it = cpu_logs_.find(vm);
    return it == cpu_logs_.end() ? nullptr : &it->second;
  }
  // Assigns a function to a VM: unbinds the host driver, attaches the
  // function to the VM's domain and binds the guest's driver (the host
  // sees vfio-pci). Returns the error text, empty on success.
  std::string assign(PciDev& dev, Vm& vm);
  // Live migration (sim/migration/vmm.h): the VMM, and the hand-over at
  // the end of a migration -- the guest's drivers now drive the paired
  // destination functions in `to`, the source VM stays paused, `to` runs.
  Vmm& vmm() { return *vmm_; }
  void hand_over(Vm& from, Vm& to, const std::vector<std::pair<PciDev*, PciDev*>>& pairs);
  // The function that a guest's device named `name` is now (the
  // destination's after a migration; `name` itself otherwise).
  std::string current_function(const std::string& name) const;
  // The functions assigned to `vm`: those of its spec in order, then any
  // assigned later, by name.
  std::vector<PciDev*> functions_of(const Vm& vm) const;
  // Whether a guest runs in `vm` (a guest driver drives one of its functions).
  bool vm_has_guest(const Vm& vm) const;
  // The DMA space the function's driver uses (its VM's when assigned).
  DmaSpace& space_of(PciDev& dev);
  Vm* vm_of(PciDev& dev);

  // Migration (docs/migration.md). The PF driver's firmware mailbox, or
  // nullptr when the PF is not bound to its native driver.
  std::shared_ptr<PfMailbox> mailbox(PciDev& pf);
  // Opens `dev` through VFIO (it must be assigned to a VM); the same
  // device object on every call.
  VfioDevice& vfio(PciDev& dev);
  VfioDevice* vfio_if_open(PciDev& dev);
  const std::map<PciDev*, std::unique_ptr<VfioDevice>, PciDevLess>& vfio_devices() const {
    return vfio_;
  }

  // Host operations shared by scenario steps and the Python API. They
  // throw UsageError on bad arguments (unknown domain, no driver...).
  //
  // One descriptor through the function's driver, waited for: the engine's
  // completion status (0 ok, dma_regs.h error codes), or -110 (ETIMEDOUT)
  // when nothing completed within `timeout`. A failed descriptor's error is
  // cleared afterwards so the engine runs again. *bytes: bytes copied.
  int dma_once(PciDev& dev, std::uint64_t src, std::uint64_t dst, std::uint32_t length,
               bool src_local, bool dst_local, fabric::Time timeout, std::uint32_t* bytes);
  // The address `initiator` uses to reach `target`'s BAR (mapped into the
  // initiator's IOMMU domain or VM if needed); throws if unassigned.
  std::uint64_t peer_dma_address(PciDev& initiator, PciDev& target, unsigned bar);
  IommuDomain& iommu_domain(const std::string& name);
  // kind: global, domain, page or device (dev's domain and context).
  void iommu_flush(const std::string& kind, const std::string& domain, std::uint64_t iova,
                   std::uint64_t length, PciDev* dev);
  // A guest-physical range of a VM as a host physical address.
  std::uint64_t vm_to_host(const std::string& vm, std::uint64_t gpa, std::uint64_t length);
  Workload* workload(const std::string& name);
  const std::vector<std::unique_ptr<Workload>>& workloads() const { return workloads_; }
  std::vector<std::string> boot_messages() const { return messages_; }
  void note(const std::string& message) { messages_.push_back(message); }

  bool booted() const { return booted_; }
  fabric::Time boot_end() const { return boot_end_; }
  sc_core::sc_event& booted_event() { return booted_event_; }
  // Runs after boot in the main thread (the scenario); set before sc_start.
  std::function<void()> after_boot;

 private:
  void main_thread();
  void boot();
  std::uint16_t acs_wanted() const;
  void enable_acs(PciDev& d);
  void create_vms();
  bool bind_with(PciDev& dev, DmaSpace& space, const std::string& shown_driver);
  const Vm* vm_of_const(const PciDev& dev) const;

  System& system_;
  HostCpu cpu_;
  std::unique_ptr<PciCore> pci_;
  std::unique_ptr<HostAllocator> alloc_;
  std::unique_ptr<AerDriver> aer_;
  std::unique_ptr<FaultInjector> faults_;
  // Shared: a workload or a DMA step keeps its driver alive (and sees it
  // marked removed) if the function goes away under it.
  std::map<PciDev*, std::shared_ptr<DmaDriver>, PciDevLess> drivers_;
  std::unique_ptr<PhysicalSpace> physical_;
  std::unique_ptr<IommuDriver> iommu_;
  std::unique_ptr<DirtyLedger> dirty_ledger_;
  std::unique_ptr<IommuDirtyTracking> iommu_dirty_;
  std::map<std::string, std::unique_ptr<DomainSpace>> domain_spaces_;
  std::map<std::string, std::unique_ptr<Vm>> vms_;
  std::map<std::string, std::unique_ptr<GuestCpu>> guest_cpus_;
  std::map<std::string, CpuDirtyLog> cpu_logs_;
  std::map<PciDev*, Vm*, PciDevLess> assigned_;
  std::map<PciDev*, std::shared_ptr<PfMailbox>, PciDevLess> mailboxes_;
  std::map<PciDev*, std::unique_ptr<VfioDevice>, PciDevLess> vfio_;
  std::vector<std::unique_ptr<Workload>> workloads_;
  std::unique_ptr<Vmm> vmm_;
  std::map<std::string, std::string> aliases_;  // migrated function -> its destination
  std::vector<std::string> messages_;
  std::uint32_t next_msi_data_ = 0x4100;
  bool booted_ = false;
  fabric::Time boot_end_ = 0;
  sc_core::sc_event booted_event_;
};

}  // namespace pciesim::sim

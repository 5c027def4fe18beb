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
#include "sim/host/dma_driver.h"
#include "sim/host/host_cpu.h"
#include "sim/host/pci_core.h"
#include "sim/host/workload.h"

namespace pciesim::sim {

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
  bool bind(PciDev& dev);
  void unbind(PciDev& dev);
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

  System& system_;
  HostCpu cpu_;
  std::unique_ptr<PciCore> pci_;
  std::unique_ptr<HostAllocator> alloc_;
  std::map<PciDev*, std::unique_ptr<DmaDriver>> drivers_;
  std::vector<std::unique_ptr<Workload>> workloads_;
  std::vector<std::string> messages_;
  std::uint32_t next_msi_data_ = 0x4100;
  bool booted_ = false;
  fabric::Time boot_end_ = 0;
  sc_core::sc_event booted_event_;
};

}  // namespace pciesim::sim

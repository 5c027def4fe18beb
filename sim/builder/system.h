// Builds the hardware a SystemConfig describes (elaboration: needs an
// active fabric::KernelContext) and names every function in it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fabric/kernel/completion_ledger.h"
#include "fabric/link/link.h"
#include "fabric/tlp/routing_id.h"
#include "models/dma_endpoint/dma_device.h"
#include "models/host_memory/host_memory.h"
#include "models/iommu/iommu.h"
#include "models/root_complex/root_complex.h"
#include "models/switch/pcie_switch.h"
#include "sim/config/system_config.h"

namespace pciesim::sim {

// A named function of the system, whatever model implements it.
class FunctionRef {
 public:
  enum Kind { kHostBridge, kRootPort, kSwitchUpstream, kSwitchDownstream, kDma };
  FunctionRef(std::string name, Kind kind) : name_(std::move(name)), kind_(kind) {}

  const std::string& name() const { return name_; }
  Kind kind() const { return kind_; }
  bool is_bridge() const { return kind_ != kHostBridge && kind_ != kDma; }
  // The routing ID the function currently has (captured bus number; VFs
  // computed from their PF). A VF that does not exist reports where it
  // would be.
  fabric::RoutingId rid() const;
  bool exists() const;
  fabric::ConfigSpace& config() const;
  models::DmaFunction* dma() const { return dma_; }
  models::BridgeFunction* bridge() const { return bridge_; }
  models::DmaDevice* device() const { return device_; }

 private:
  friend class System;
  std::string name_;
  Kind kind_;
  fabric::ConfigSpace* host_bridge_ = nullptr;
  models::BridgeFunction* bridge_ = nullptr;
  models::DmaFunction* dma_ = nullptr;
  models::DmaDevice* device_ = nullptr;
};

class System {
 public:
  explicit System(const SystemConfig& config);
  ~System();

  const SystemConfig& config() const { return config_; }
  models::HostMemory& memory() { return *memory_; }
  models::RootComplex& rc() { return *rc_; }
  models::Iommu* iommu() { return iommu_.get(); }  // nullptr without one
  models::DmaDevice* device(const std::string& name);
  models::PcieSwitch* switch_device(const std::string& name);
  std::vector<models::DmaDevice*> devices();

  struct LinkInfo {
    std::string name;  // "rc.rp0--sw0.usp"
    std::unique_ptr<fabric::Link> link;
    int generation;  // trained
    int width;
    // Busy time of each direction when the first workload started and when
    // the last one ended (stats: utilisation while workloads ran).
    fabric::Time busy_at_start[2] = {0, 0};
    fabric::Time busy_at_end[2] = {0, 0};
  };
  const std::vector<LinkInfo>& links() const { return links_; }
  // Every non-posted request's ending (DESIGN.md 3), installed for the
  // requesters while the system lives.
  fabric::CompletionLedger& completion_ledger() { return ledger_; }
  // Workloads report their start and end, so that link utilisation can be
  // given over the window in which they ran, not averaged over boot and
  // idle time.
  void note_workload_start();
  void note_workload_end();
  bool workloads_ran() const { return workloads_started_ > 0; }
  bool workloads_running() const { return workloads_running_ > 0; }
  fabric::Time workloads_start() const { return workloads_start_; }
  fabric::Time workloads_end() const { return workloads_end_; }

  FunctionRef* function(const std::string& name);
  // The existing function currently at `rid`, or nullptr.
  FunctionRef* function_at(fabric::RoutingId rid);
  // The same, remembering answers (for per-message attribution).
  FunctionRef* function_at_cached(fabric::RoutingId rid);
  const std::vector<std::unique_ptr<FunctionRef>>& functions() const { return functions_; }

 private:
  void add_function(std::unique_ptr<FunctionRef> f);
  fabric::Port* upstream_port_of(const std::string& node, unsigned port);
  fabric::Port* device_port_of(const std::string& node);

  SystemConfig config_;
  std::unique_ptr<models::HostMemory> memory_;
  std::unique_ptr<models::RootComplex> rc_;
  std::unique_ptr<models::Iommu> iommu_;
  std::vector<std::unique_ptr<models::PcieSwitch>> switches_;
  std::vector<std::unique_ptr<models::DmaDevice>> devices_;
  std::vector<LinkInfo> links_;
  fabric::CompletionLedger ledger_;
  unsigned workloads_started_ = 0, workloads_running_ = 0;
  fabric::Time workloads_start_ = 0, workloads_end_ = 0;
  std::vector<std::unique_ptr<FunctionRef>> functions_;
  std::map<std::string, FunctionRef*> by_name_;
  std::map<std::uint16_t, FunctionRef*> rid_cache_;
};

}  // namespace pciesim::sim

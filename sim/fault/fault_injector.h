// The run's fault plan (DESIGN.md 9, docs/faults.md): owns the fault
// registry the models' fault points consult, resolves names for it, and
// carries out the timed faults (link down, surprise removal, internal
// error, surprise FLR, migration firmware failures, stuck quiesce, IOMMU
// unmap under DMA) at their simulated time from a thread of its own.
#pragma once

#include <functional>
#include <string>
#include <systemc>

#include "fabric/fault/fault_registry.h"

namespace pciesim::sim {

class System;
class FunctionRef;
class Host;

class FaultInjector : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(FaultInjector);
  FaultInjector(sc_core::sc_module_name name, System& system, Host& host, std::uint64_t seed);
  ~FaultInjector() override;

  fabric::FaultRegistry& registry() { return registry_; }
  // Checks `spec` against the system (its place exists, its parameters
  // make sense for its kind) and arms it; UsageError naming `spec.label`
  // otherwise. Returns the fault's id.
  unsigned add(const fabric::FaultSpec& spec);
  // The checks of add() without arming.
  void check(const fabric::FaultSpec& spec) const { validate(spec); }
  // Notified (delta) whenever a fault fires.
  sc_core::sc_event& fired_event() { return fired_; }

 private:
  void thread();
  void fire(unsigned id);
  void validate(const fabric::FaultSpec& s) const;
  void validate_aer_report(const fabric::FaultSpec& s,
                           const std::function<void(const std::string&)>& fail) const;
  // An aer_report's function: by name, or by PCI address once enumerated.
  FunctionRef* report_target(const std::string& where) const;
  void fire_aer_report(unsigned id, const fabric::FaultSpec& s, fabric::Time t);
  bool is_link(const std::string& where) const;

  System& system_;
  Host& host_;
  fabric::FaultRegistry registry_;
  sc_core::sc_event changed_;
  sc_core::sc_event fired_;
};

}  // namespace pciesim::sim

#include "sim/scenario/scenario_runner.h"

#include <linux/pci_regs.h>

#include "fabric/common/error.h"
#include "sim/builder/system.h"
#include "sim/host/host.h"

namespace pciesim::sim {

using namespace fabric;

ScenarioRunner::ScenarioRunner(System& system, Host& host, Checker& checker,
                               std::vector<CheckResult>& results)
    : system_(system), host_(host), checker_(checker), results_(results) {
  checker_.step_value = [this](int i) { return recorded(i); };
}

const double* ScenarioRunner::recorded(int index) const {
  for (const StepRecord& r : records_)
    if (r.index == index && r.recorded) return &r.number;
  return nullptr;
}

PciDev& ScenarioRunner::host_device(const ScenarioStep& s) {
  PciDev* d = host_.pci().find(s.target);
  if (!d)
    if (auto rid = RoutingId::parse(s.target)) d = host_.pci().find(*rid);
  if (!d)
    throw UsageError(s.label, "the host has no device '" + s.target +
                                  "' (not enumerated, or a VF that is not enabled)");
  return *d;
}

namespace {
const char* action_name(ScenarioStep::Action a) {
  switch (a) {
    case ScenarioStep::kConfigRead:
      return "config_read";
    case ScenarioStep::kConfigWrite:
      return "config_write";
    case ScenarioStep::kMmioRead:
      return "mmio_read";
    case ScenarioStep::kMmioWrite:
      return "mmio_write";
    case ScenarioStep::kStartWorkload:
      return "start_workload";
    case ScenarioStep::kWaitWorkload:
      return "wait_workload";
    case ScenarioStep::kWait:
      return "wait";
    case ScenarioStep::kCheck:
      return "check";
    case ScenarioStep::kEnableVfs:
      return "enable_vfs";
    case ScenarioStep::kDisableVfs:
      return "disable_vfs";
    case ScenarioStep::kFlr:
      return "flr";
    case ScenarioStep::kResetFunction:
      return "reset_function";
    case ScenarioStep::kHotReset:
      return "hot_reset";
    case ScenarioStep::kSetPowerState:
      return "set_power_state";
    case ScenarioStep::kSetBusMaster:
      return "bus_master";
    case ScenarioStep::kSetMemorySpace:
      return "memory_space";
    case ScenarioStep::kSnapshot:
      return "snapshot";
  }
  return "?";
}
}  // namespace

void ScenarioRunner::execute(const ScenarioStep& s, StepRecord& rec) {
  HostCpu& cpu = host_.cpu();
  PciCore& pci = host_.pci();
  switch (s.action) {
    case ScenarioStep::kConfigRead: {
      RoutingId rid = checker_.target_rid(s.target);
      const std::uint16_t off = checker_.config_offset(s.target, s.cap, s.offset);
      rec.value = cpu.config_read(rid, off, s.size);
      rec.recorded = true;
      rec.detail = s.target + " (" + rid.str() + ") config[" + std::to_string(off) + "]";
      if (s.check.label == s.label)  // the step carries a comparison
        results_.push_back(checker_.compare(s.check, rec.value, rec.detail));
      break;
    }
    case ScenarioStep::kConfigWrite: {
      RoutingId rid = checker_.target_rid(s.target);
      cpu.config_write(rid, checker_.config_offset(s.target, s.cap, s.offset), s.size,
                       static_cast<std::uint32_t>(s.value));
      rec.detail = s.target + " (" + rid.str() + ")";
      break;
    }
    case ScenarioStep::kMmioRead:
    case ScenarioStep::kMmioWrite: {
      PciDev& d = host_device(s);
      std::uint64_t base = pci.bar_address(d, s.bar);
      if (!base)
        throw UsageError(s.label, s.target + " BAR" + std::to_string(s.bar) + " has no address");
      if (s.action == ScenarioStep::kMmioRead) {
        rec.value = cpu.mmio_read(base + s.offset, s.size);
        rec.recorded = true;
        rec.detail =
            s.target + " BAR" + std::to_string(s.bar) + "[" + std::to_string(s.offset) + "]";
        if (s.check.label == s.label)
          results_.push_back(checker_.compare(s.check, rec.value, rec.detail));
      } else {
        cpu.mmio_write(base + s.offset, s.size, s.value);
      }
      break;
    }
    case ScenarioStep::kStartWorkload:
      host_.workload(s.workload)->start();
      break;
    case ScenarioStep::kWaitWorkload: {
      Workload* w = host_.workload(s.workload);
      w->start();
      while (!w->finished())
        sc_core::wait(w->done_event());
      break;
    }
    case ScenarioStep::kWait:
      HostCpu::sleep(s.duration);
      break;
    case ScenarioStep::kCheck:
      results_.push_back(checker_.evaluate(s.check));
      break;
    case ScenarioStep::kEnableVfs:
      rec.status = pci.sriov_numvfs(host_device(s), s.count);
      break;
    case ScenarioStep::kDisableVfs:
      rec.status = pci.sriov_numvfs(host_device(s), 0);
      break;
    case ScenarioStep::kFlr: {
      PciDev& d = host_device(s);
      rec.status = s.flag ? pci.reset_function(d, "flr") : pci.bare_flr(d);
      break;
    }
    case ScenarioStep::kResetFunction:
      rec.status = pci.reset_function(host_device(s), s.method);
      break;
    case ScenarioStep::kHotReset:
      rec.status = pci.secondary_bus_reset(host_device(s), s.flag);
      break;
    case ScenarioStep::kSetPowerState:
      pci.set_power_state(host_device(s), s.power_state);
      break;
    case ScenarioStep::kSetBusMaster:
      pci.set_master(host_device(s), s.flag);
      break;
    case ScenarioStep::kSetMemorySpace:
      pci.enable_memory(host_device(s), s.flag);
      break;
    case ScenarioStep::kSnapshot: {
      Expectation probe;
      probe.kind = Expectation::kStat;
      probe.stat = s.stat;
      probe.cmp.op = Comparison::kGe;
      probe.cmp.a = -1e300;
      CheckResult r = checker_.evaluate(probe);
      if (r.observed == "no such stat" || r.observed.rfind("not a number", 0) == 0)
        throw UsageError(s.label, "snapshot of '" + s.stat + "': " + r.observed);
      rec.number = std::stod(r.observed);  // exact: stats print integers exactly
      rec.value = static_cast<std::uint64_t>(rec.number);
      rec.recorded = true;
      rec.detail = s.stat + " = " + r.observed;
      break;
    }
  }
}

void ScenarioRunner::run() {
  const Time base = host_.boot_end();
  for (const ScenarioStep& s : system_.config().scenario) {
    if (s.at && HostCpu::now() < base + *s.at) HostCpu::sleep(base + *s.at - HostCpu::now());
    StepRecord rec;
    rec.index = static_cast<int>(records_.size());
    rec.label = s.label;
    rec.action = action_name(s.action);
    rec.start = HostCpu::now();
    try {
      execute(s, rec);
    } catch (const UsageError& e) {
      // A step that cannot be carried out fails the run like a failed check.
      rec.error = true;
      rec.detail = e.message();
      CheckResult r;
      r.label = s.label;
      r.description = std::string("step '") + rec.action + "' carried out";
      r.observed = e.message();
      r.passed = false;
      r.at = HostCpu::now();
      results_.push_back(r);
    }
    if (rec.recorded && s.action != ScenarioStep::kSnapshot)
      rec.number = static_cast<double>(rec.value);
    rec.end = HostCpu::now();
    records_.push_back(rec);
  }
  done_ = true;
  done_event_.notify(sc_core::SC_ZERO_TIME);
}

}  // namespace pciesim::sim

#include "sim/scenario/scenario_runner.h"

#include <fstream>
#include <iterator>
#include <map>

#include <linux/pci_regs.h>

#include "fabric/common/error.h"
#include "fabric/kernel/trace.h"
#include "sim/builder/system.h"
#include "sim/fault/fault_injector.h"
#include "sim/host/host.h"
#include "sim/lspci/lspci.h"
#include "sim/migration/vmm.h"

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

std::uint64_t ScenarioRunner::bar_reference(const ScenarioStep& s, const std::string& ref,
                                            PciDev& initiator) {
  // "<function>.bar<N>[+offset]": the BAR as the host assigned it, in the
  // initiator's DMA address space (mapped into its IOMMU domain if needed).
  const std::size_t at = ref.rfind(".bar");
  const std::string fn = ref.substr(0, at);
  const unsigned bar = static_cast<unsigned>(ref[at + 4] - '0');
  std::uint64_t offset = 0;
  if (std::size_t plus = ref.find('+', at); plus != std::string::npos)
    offset = std::stoull(ref.substr(plus + 1), nullptr, 0);
  PciDev* target = host_.pci().find(fn);
  if (!target) throw UsageError(s.label, "the host has no device '" + fn + "'");
  const std::uint64_t size = host_.pci().bar_size(*target, bar);
  if (offset + s.length > size)
    throw UsageError(s.label, ref + " with length " + std::to_string(s.length) +
                                  " goes beyond the BAR (" + std::to_string(size) + " bytes)");
  try {
    return host_.peer_dma_address(initiator, *target, bar) + offset;
  } catch (const UsageError& e) {
    throw UsageError(s.label, e.message());
  }
}

namespace {
// One line for a dirty-tracking report in the scenario record.
std::string describe(const DirtyReport& r) {
  return std::to_string(r.dirty_units) + " of " + std::to_string(r.units) + " units dirty, " +
         std::to_string(r.written_pages) + " pages written, " + std::to_string(r.missed_pages) +
         " missed";
}

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
    case ScenarioStep::kWriteMemory:
      return "write_memory";
    case ScenarioStep::kDma:
      return "dma";
    case ScenarioStep::kIommuMap:
      return "iommu_map";
    case ScenarioStep::kIommuUnmap:
      return "iommu_unmap";
    case ScenarioStep::kIommuFlush:
      return "iommu_flush";
    case ScenarioStep::kDirtyTracking:
      return "dirty_tracking";
    case ScenarioStep::kReadDirty:
      return "read_dirty";
    case ScenarioStep::kDmaLoggingStart:
      return "dma_logging_start";
    case ScenarioStep::kDmaLoggingReport:
      return "dma_logging_report";
    case ScenarioStep::kDmaLoggingStop:
      return "dma_logging_stop";
    case ScenarioStep::kCreateDomain:
      return "create_domain";
    case ScenarioStep::kAttach:
      return "attach";
    case ScenarioStep::kAssign:
      return "assign";
    case ScenarioStep::kMigrationState:
      return "migration_state";
    case ScenarioStep::kMigrationRead:
      return "migration_read";
    case ScenarioStep::kMigrationWrite:
      return "migration_write";
    case ScenarioStep::kMigrationReset:
      return "migration_reset";
    case ScenarioStep::kPrecopyInfo:
      return "precopy_info";
    case ScenarioStep::kVfioMmioRead:
      return "vfio_mmio_read";
    case ScenarioStep::kVfioMmioWrite:
      return "vfio_mmio_write";
    case ScenarioStep::kInject:
      return "inject";
    case ScenarioStep::kWaitFault:
      return "wait_fault";
    case ScenarioStep::kLspci:
      return "lspci";
    case ScenarioStep::kMigrate:
      return "migrate";
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
      const std::uint64_t addr = pci.mmio_address(d, s.bar, s.offset, s.size, s.label);
      if (s.action == ScenarioStep::kMmioRead) {
        rec.value = cpu.mmio_read(addr, s.size);
        rec.recorded = true;
        rec.detail =
            s.target + " BAR" + std::to_string(s.bar) + "[" + std::to_string(s.offset) + "]";
        if (s.check.label == s.label)
          results_.push_back(checker_.compare(s.check, rec.value, rec.detail));
      } else {
        cpu.mmio_write(addr, s.size, s.value);
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
    case ScenarioStep::kWriteMemory: {
      std::uint64_t a =
          s.vm.empty() ? s.address : host_.vm_to_host(s.vm, s.address, s.bytes.size());
      try {
        system_.memory().write(a, s.bytes.data(), s.bytes.size());
      } catch (const UsageError& e) {
        throw UsageError(s.label, e.message());
      }
      break;
    }
    case ScenarioStep::kDma: {
      std::uint32_t bytes = 0;
      PciDev& dev = host_device(s);
      const std::uint64_t src = s.src_ref.empty() ? s.src : bar_reference(s, s.src_ref, dev);
      const std::uint64_t dst = s.dst_ref.empty() ? s.dst : bar_reference(s, s.dst_ref, dev);
      rec.status = host_.dma_once(dev, src, dst, static_cast<std::uint32_t>(s.length), s.src_local,
                                  s.dst_local, 10 * kMs, &bytes);
      rec.value = bytes;
      rec.detail = s.target + " dma: status " + std::to_string(rec.status);
      break;
    }
    case ScenarioStep::kIommuMap: {
      IommuDomain& d = host_.iommu_domain(s.domain);
      rec.status = host_.iommu()->map(d, s.iova, s.address, s.length, s.read, s.write);
      break;
    }
    case ScenarioStep::kIommuUnmap: {
      IommuDomain& d = host_.iommu_domain(s.domain);
      rec.status = host_.iommu()->unmap(d, s.iova, s.length, s.flag);
      break;
    }
    case ScenarioStep::kDirtyTracking:
      rec.status = host_.set_iommu_dirty_tracking(s.domain, s.flag);
      break;
    case ScenarioStep::kReadDirty: {
      // The report is checked against the ground truth (stats
      // dirty_tracking.iommu.<domain>); value: the dirty units.
      IommuDomain& d = host_.iommu_domain(s.domain);
      const IommuDirtyTracking::Report r =
          host_.iommu_dirty()->read(d, s.iova, s.length, s.page_size, s.no_clear);
      rec.status = r.status;
      rec.value = r.dirty_units;
      rec.recorded = true;
      rec.detail = describe(r);
      break;
    }
    case ScenarioStep::kDmaLoggingStart: {
      // value: the page size the device logs at.
      std::uint64_t ps = s.page_size;
      rec.status = host_.vfio(host_device(s)).dma_logging_start(s.ranges, &ps);
      rec.value = ps;
      rec.recorded = true;
      break;
    }
    case ScenarioStep::kDmaLoggingReport: {
      // Checked against the ground truth (stats dirty_tracking.device.<f>);
      // value: the dirty units.
      const DirtyReport r =
          host_.vfio(host_device(s)).dma_logging_report(s.iova, s.length, s.page_size);
      rec.status = r.status;
      rec.value = r.dirty_units;
      rec.recorded = true;
      rec.detail = describe(r);
      break;
    }
    case ScenarioStep::kDmaLoggingStop:
      rec.status = host_.vfio(host_device(s)).dma_logging_stop();
      break;
    case ScenarioStep::kIommuFlush:
      host_.iommu_flush(s.kind, s.domain, s.iova, s.length,
                        s.target.empty() ? nullptr : &host_device(s));
      break;
    case ScenarioStep::kCreateDomain: {
      const IommuDomain::Type t = s.kind == "identity"  ? IommuDomain::kIdentity
                                  : s.kind == "blocked" ? IommuDomain::kBlocked
                                                        : IommuDomain::kDma;
      if (host_.iommu()->domain(s.domain))
        throw UsageError(s.label, "an IOMMU domain named '" + s.domain + "' exists");
      host_.iommu()->create_domain(s.domain, t);
      break;
    }
    case ScenarioStep::kAttach: {
      IommuDomain& d = host_.iommu_domain(s.domain);
      host_.iommu()->attach(host_device(s), d);
      break;
    }
    case ScenarioStep::kAssign: {
      Vm* vm = host_.vm(s.vm);
      if (!vm) throw UsageError(s.label, "no VM named '" + s.vm + "'");
      std::string err = host_.assign(host_device(s), *vm);
      if (!err.empty()) throw UsageError(s.label, err);
      break;
    }
    case ScenarioStep::kInject: {
      // The fault's times count from this step.
      fabric::FaultSpec f = s.fault;
      const fabric::Time now = HostCpu::now();
      f.start += now;
      if (f.end != fabric::kTimeMax) f.end += now;
      rec.value = host_.faults().add(f);
      rec.recorded = true;
      rec.detail = std::string(fabric::to_string(f.kind)) + " at " + f.where + ": fault " +
                   std::to_string(rec.value);
      break;
    }
    case ScenarioStep::kWaitFault: {
      // Until the fault fired `count` times, at most `duration`.
      fabric::FaultRegistry& reg = host_.faults().registry();
      if (s.fault_id > reg.size())
        throw UsageError(s.label, "no fault " + std::to_string(s.fault_id) + " (" +
                                      std::to_string(reg.size()) + " armed so far)");
      const fabric::Time deadline = HostCpu::now() + s.duration;
      while (reg.state(s.fault_id).fired < s.count && HostCpu::now() < deadline)
        sc_core::wait(to_sc(deadline - HostCpu::now()), host_.faults().fired_event());
      rec.value = reg.state(s.fault_id).fired;
      // A temporally decoupled model may act on a TLP ahead of its time:
      // the step ends at the simulated time of the firing it waited for.
      if (rec.value >= s.count) {
        const std::vector<const fabric::FaultEvent*> log = reg.log_of(s.fault_id);
        if (log.size() >= s.count && log[s.count - 1]->at > HostCpu::now())
          HostCpu::sleep(log[s.count - 1]->at - HostCpu::now());
      }
      rec.recorded = true;
      rec.detail = "fault " + std::to_string(s.fault_id) + " fired " + std::to_string(rec.value) +
                   " time(s)";
      if (rec.value < s.count) rec.status = -110;  // -ETIMEDOUT
      break;
    }
    case ScenarioStep::kMigrate: {
      const nlohmann::ordered_json r = host_.vmm().migrate(s.migration);
      rec.status = r["code"].get<int>();
      if (r["status"] == "completed") {
        rec.detail = s.migration.vm + " -> " + s.migration.to + ": " +
                     std::to_string(r["iterations"].get<unsigned>()) + " passes (" +
                     r["stop_reason"].get<std::string>() + "), downtime " +
                     format_time(ns(r["downtime_ns"].get<double>())) + ", total " +
                     format_time(ns(r["total_ns"].get<double>())) + ", " +
                     std::to_string(r["missed_dirty_pages"].get<std::uint64_t>()) +
                     " missed dirty pages" +
                     (r["diverged"].get<bool>() ? ", DESTINATION DIVERGED" : "");
      } else {
        rec.detail = s.migration.vm + " -> " + s.migration.to + ": " +
                     r["status"].get<std::string>() + ": " +
                     r["error"].value("message", std::string());
      }
      break;
    }
    case ScenarioStep::kLspci: {
      // Zero-time debug reads, as the CLI's lspci: the registers as they
      // are at this instant (what the host has not yet cleared).
      PciDev& d = host_device(s);
      LspciOptions o;
      o.hex = 4;
      rec.output = format_lspci({lspci_function(host_, d)}, o);
      rec.detail = s.target + " (" + d.rid.str() + "): " + std::to_string(rec.output.size()) +
                   " bytes of lspci -xxxx";
      if (!s.file.empty()) {
        std::ofstream out(s.file, std::ios::trunc);
        out << rec.output;
        if (!out) throw UsageError(s.label, "cannot write the dump to '" + s.file + "'");
      }
      break;
    }
    case ScenarioStep::kMigrationState:
    case ScenarioStep::kMigrationRead:
    case ScenarioStep::kMigrationWrite:
    case ScenarioStep::kMigrationReset:
    case ScenarioStep::kPrecopyInfo:
    case ScenarioStep::kVfioMmioRead:
    case ScenarioStep::kVfioMmioWrite:
      try {
        migration_step(s, rec);
      } catch (const MigrationError& e) {
        rec.status = e.code();
        rec.detail = e.what();
      }
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

void ScenarioRunner::migration_step(const ScenarioStep& s, StepRecord& rec) {
  VfioDevice& v = host_.vfio(host_device(s));
  switch (s.action) {
    case ScenarioStep::kMigrationState: {
      std::string p;
      for (vfio::MigState x : v.set_state(*vfio::parse_state(s.mig_state)))
        p += std::string(p.empty() ? "" : " -> ") + vfio::state_name(x);
      rec.detail = s.target + ": " + p;
      break;
    }
    case ScenarioStep::kMigrationRead: {
      // The whole stream (STOP_COPY: to its end; PRE_COPY: what is there).
      std::vector<std::uint8_t> all;
      for (;;) {
        std::vector<std::uint8_t> b;
        try {
          b = v.read(1 << 20);
        } catch (const MigrationError& e) {
          if (e.errno_name() == "ENOMSG" && !all.empty()) break;
          throw;
        }
        if (b.empty()) break;
        all.insert(all.end(), b.begin(), b.end());
      }
      rec.value = all.size();
      rec.recorded = true;
      if (!s.file.empty()) {
        std::ofstream out(s.file, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(all.data()),
                  static_cast<std::streamsize>(all.size()));
        if (!out) throw UsageError(s.label, "cannot write the stream to '" + s.file + "'");
        rec.detail = s.target + ": " + std::to_string(all.size()) + " bytes to " + s.file;
      } else {
        std::vector<std::uint8_t>& dst = streams_[s.stream];
        dst.insert(dst.end(), all.begin(), all.end());
        rec.detail = s.target + ": " + std::to_string(all.size()) + " bytes to stream '" +
                     s.stream + "' (" + std::to_string(dst.size()) + " in it)";
      }
      break;
    }
    case ScenarioStep::kMigrationWrite: {
      std::vector<std::uint8_t> data;
      if (!s.file.empty()) {
        std::ifstream in(s.file, std::ios::binary);
        if (!in) throw UsageError(s.label, "cannot read the stream file '" + s.file + "'");
        data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      } else {
        auto it = streams_.find(s.stream);
        if (it == streams_.end())
          throw UsageError(
              s.label, "no stream named '" + s.stream + "' (a migration_read step fills it first)");
        data = it->second;
      }
      rec.value = v.write(data);
      rec.recorded = true;
      rec.detail = s.target + ": " + std::to_string(data.size()) + " bytes written";
      break;
    }
    case ScenarioStep::kMigrationReset:
      v.reset();
      break;
    case ScenarioStep::kPrecopyInfo: {
      auto [initial, dirty] = v.precopy_info();
      rec.value = dirty;
      rec.recorded = true;
      rec.detail = s.target + ": initial " + std::to_string(initial) + " bytes, dirty " +
                   std::to_string(dirty) + " bytes";
      break;
    }
    case ScenarioStep::kVfioMmioRead:
      rec.value = v.mmio_read(s.bar, s.offset, s.size);
      rec.recorded = true;
      rec.detail = s.target + " BAR" + std::to_string(s.bar) + "[" + std::to_string(s.offset) + "]";
      break;
    case ScenarioStep::kVfioMmioWrite:
      v.mmio_write(s.bar, s.offset, s.size, s.value);
      break;
    default:
      break;
  }
}

std::string ScenarioRunner::status_text(long long status) {
  if (status >= 0) return std::to_string(status);
  // The errno values the host's PCI core and IOMMU driver return.
  static const std::map<long long, const char*> names = {
      {-1, "EPERM"},      {-2, "ENOENT"},   {-5, "EIO"},         {-12, "ENOMEM"},
      {-16, "EBUSY"},     {-17, "EEXIST"},  {-19, "ENODEV"},     {-22, "EINVAL"},
      {-25, "ENOTTY"},    {-28, "ENOSPC"},  {-34, "ERANGE"},     {-42, "ENOMSG"},
      {-71, "EPROTO"},    {-74, "EBADMSG"}, {-95, "EOPNOTSUPP"}, {-107, "ENOTCONN"},
      {-110, "ETIMEDOUT"}};
  auto it = names.find(status);
  return std::to_string(status) + (it == names.end() ? "" : std::string(" (-") + it->second + ")");
}

void ScenarioRunner::judge_status(const ScenarioStep& s, const StepRecord& rec) {
  // Read steps record the value they read, not a status.
  if (s.action == ScenarioStep::kConfigRead || s.action == ScenarioStep::kMmioRead) return;
  switch (s.status_policy) {
    case ScenarioStep::kStatusAny:
    case ScenarioStep::kStatusChecked:
      return;
    case ScenarioStep::kStatusExpected: {
      CheckResult r;
      r.label = s.label;
      r.description = std::string("step '") + action_name(s.action) + "' returns status " +
                      status_text(s.expected_status);
      r.observed = status_text(rec.status);
      r.passed = rec.status == s.expected_status;
      r.at = HostCpu::now();
      results_.push_back(r);
      return;
    }
    case ScenarioStep::kStatusZero:
      if (rec.status == 0) return;
      CheckResult r;
      r.label = s.label;
      r.description = std::string("step '") + action_name(s.action) +
                      "' succeeds (give the step `status: N` or `status: any`, or check "
                      "scenario." +
                      std::to_string(rec.index) + ".status, if this is expected)";
      r.observed = "status " + status_text(rec.status);
      if (rec.action.rfind("migration", 0) == 0 || rec.action.rfind("vfio", 0) == 0 ||
          rec.action == "precopy_info")
        r.observed += ": " + rec.detail;
      r.passed = false;
      r.at = HostCpu::now();
      results_.push_back(r);
      return;
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
    if (fabric::trace_sink())
      fabric::trace_begin(rec.start, "host", "scenario",
                          s.label.empty() ? rec.action : rec.action + " (" + s.label + ")",
                          "step=" + std::to_string(rec.index));
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
    if (!rec.error) judge_status(s, rec);
    if (rec.recorded && s.action != ScenarioStep::kSnapshot)
      rec.number = static_cast<double>(rec.value);
    rec.end = HostCpu::now();
    if (fabric::trace_sink()) fabric::trace_end(rec.end, "host", "scenario");
    records_.push_back(rec);
  }
  done_ = true;
  done_event_.notify(sc_core::SC_ZERO_TIME);
}

}  // namespace pciesim::sim

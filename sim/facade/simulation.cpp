#include "sim/facade/simulation.h"

#include "models/dma_endpoint/migration_firmware.h"

#include <tlm_utils/tlm_quantumkeeper.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <systemc>

#include "fabric/common/error.h"
#include "fabric/kernel/completion_ledger.h"
#include "fabric/kernel/kernel_context.h"
#include "fabric/kernel/sanitizer.h"
#include "fabric/kernel/trace.h"
#include "fabric/port/port.h"
#include "sim/builder/system.h"
#include "sim/config/config_loader.h"
#include "sim/host/host.h"
#include "sim/migration/vmm.h"
#include "sim/scenario/scenario_runner.h"
#include "sim/stats/stats.h"
#include "sim/trace/sampler.h"
#include "sim/trace/trace_output.h"

namespace pciesim::sim {

namespace {
// A dirty-tracking report as the Python API returns it.
nlohmann::ordered_json report_json(const DirtyReport& r) {
  nlohmann::ordered_json j;
  j["status"] = r.status;
  j["bitmap"] = r.bitmap;
  j["page_size"] = r.page_size;
  j["units"] = r.units;
  j["dirty_units"] = r.dirty_units;
  j["written_pages"] = r.written_pages;
  j["missed_pages"] = r.missed_pages;
  j["missed"] = r.missed;
  j["over_reported_units"] = r.over_reported_units;
  j["unchecked_pages"] = r.unchecked_pages;
  return j;
}
}  // namespace

using namespace fabric;

bool RunResult::passed() const {
  for (const CheckResult& c : checks)
    if (!c.passed) return false;
  return true;
}

Simulation::Simulation(const SystemConfig& config) {
  kernel_ = std::make_unique<KernelContext>();
  try {
    tlm_utils::tlm_quantumkeeper::set_global_quantum(to_sc(config.simulation.quantum));
    system_ = std::make_unique<System>(config);
    host_ = std::make_unique<Host>("host", *system_);
    checker_ = std::make_unique<Checker>(*system_, *host_, [this] { return stats(); });
    scenario_ = std::make_unique<ScenarioRunner>(*system_, *host_, *checker_, scenario_checks_);
    host_->after_boot = [this] { scenario_->run(); };
    sampler_ = std::make_unique<Sampler>(*system_, *host_);
    start_monitor();
    if (config.simulation.sample_interval) sampler_->start(config.simulation.sample_interval, true);
  } catch (...) {
    sampler_.reset();
    host_.reset();
    system_.reset();
    kernel_.reset();
    throw;
  }
}

Simulation::~Simulation() {
  if (trace_) set_trace_sink(nullptr);
  sampler_.reset();
  scenario_.reset();
  checker_.reset();
  host_.reset();
  system_.reset();
  kernel_.reset();
}

std::unique_ptr<Simulation> Simulation::from_file(const std::string& path,
                                                  const std::vector<std::string>& overrides) {
  return std::make_unique<Simulation>(load_config_file(path, overrides));
}

const SystemConfig& Simulation::config() const {
  return system_->config();
}

void Simulation::trace_to(const std::string& path) {
  add_trace("jsonl", path, trace::TraceFilter{}, trace::PerfettoOptions{}, 0);
}

void Simulation::add_trace(const std::string& format, const std::string& path,
                           const trace::TraceFilter& filter, const trace::PerfettoOptions& options,
                           Time counter_interval) {
  check_alive();
  filter.validate();
  if (counter_interval && counter_interval < 10 * kNs)
    throw UsageError("trace",
                     "a counter interval of " + format_time(counter_interval) + " is below 10ns");
  std::unique_ptr<trace::TraceOutput> out;
  if (format == "jsonl")
    out = trace::make_jsonl_output(path, filter);
  else if (format == "perfetto")
    out = trace::make_perfetto_output(path, filter, options);
  else if (format == "vcd")
    out = trace::make_vcd_output(path, filter);
  else
    throw UsageError("trace", "no trace format '" + format + "' (jsonl, perfetto, vcd)");
  // An output of the same format is replaced: the old one is complete up
  // to now.
  auto hub = std::make_unique<trace::TraceHub>();
  hub->set_next_id(trace_ ? trace_->next_id() : next_trace_id_);
  hub->name_of = [this](RoutingId rid) {
    FunctionRef* f = system_->function_at_cached(rid);
    return f ? f->name() : std::string();
  };
  std::vector<std::string> formats;
  std::string err;
  if (trace_) {
    set_trace_sink(nullptr);
    std::vector<trace::TraceHub::Output> outs = trace_->take_outputs();
    for (std::size_t i = 0; i < outs.size(); ++i) {
      if (trace_formats_[i] == format) {
        const std::string e = outs[i].first->finish(now(), false);
        if (err.empty()) err = e;
        continue;
      }
      hub->add(std::move(outs[i].first), outs[i].second);
      formats.push_back(trace_formats_[i]);
    }
  }
  hub->add(std::move(out), filter);
  formats.push_back(format);
  trace_ = std::move(hub);
  trace_formats_ = std::move(formats);
  set_trace_sink(trace_.get());
  if (counter_interval && (format == "perfetto" || format == "vcd"))
    sampler_->start(counter_interval, false);
  if (!err.empty()) throw UsageError("trace", err);
}

void Simulation::finish_trace(bool interrupted) {
  if (!trace_) return;
  set_trace_sink(nullptr);
  std::unique_ptr<trace::TraceHub> t = std::move(trace_);
  next_trace_id_ = t->next_id();
  trace_formats_.clear();
  const std::string err = t->finish(now(), interrupted);
  last_truncations_ = t->truncations();
  if (!err.empty()) throw UsageError("trace", err);
}

std::vector<std::string> Simulation::trace_truncations() const {
  return trace_ ? trace_->truncations() : last_truncations_;
}

void Simulation::set_monitor(std::function<bool(Time)> should_stop) {
  monitor_ = std::move(should_stop);
}

void Simulation::start_monitor() {
  // Every simulation has the monitor thread, so that CLI, Python and C++
  // runs have the same kernel events. Its steps are fixed -- 1 us doubling
  // to 1 ms -- never taken from the wall clock, so results cannot depend on
  // how fast the host machine is; it only reads.
  sc_core::sc_spawn(
      [this] {
        KernelContext::guard([this] {
          Time step = kMonitorFirstStep;
          for (;;) {
            sc_core::wait(to_sc(step));
            if (step < kMonitorMaxStep) step *= 2;
            if (!monitor_ || !monitor_(now_fs())) continue;
            interrupted_ = true;
            monitor_ = nullptr;
            interrupt(std::make_exception_ptr(
                Interrupted("run", "interrupted at " + format_time(now_fs()))));
          }
        });
      },
      "monitor");
}

Time Simulation::now() const {
  return now_fs();
}
bool Simulation::booted() const {
  return host_->booted();
}
bool Simulation::scenario_done() const {
  return scenario_->done();
}

void Simulation::check_alive() const {
  if (dead_)
    throw UsageError("simulation", "this simulation stopped on an error; create a new one");
}

bool Simulation::in_process() {
  // Before the first sc_start() the "current process" is the last one
  // created (IEEE 1666, 5.6.5): only while the kernel runs is it the caller.
  return sc_core::sc_get_status() == sc_core::SC_RUNNING &&
         sc_core::sc_get_current_process_handle().valid();
}

void Simulation::interrupt(std::exception_ptr error) {
  if (!interrupt_) interrupt_ = error;
  sc_core::sc_pause();
}

void Simulation::rethrow_interrupt() {
  if (trace_ && !trace_->error().empty()) {
    const std::string err = trace_->error();
    set_trace_sink(nullptr);
    next_trace_id_ = trace_->next_id();
    trace_.reset();
    trace_formats_.clear();
    throw UsageError("trace", err + " (tracing stopped; the simulation can go on)");
  }
  if (kernel_->failed()) {
    dead_ = true;
    interrupt_ = nullptr;
    kernel_->rethrow_failure();
  }
  if (!interrupt_) return;
  std::exception_ptr e = interrupt_;
  interrupt_ = nullptr;
  std::rethrow_exception(e);
}

void Simulation::advance(Time until) {
  check_alive();
  if (until <= now()) return;
  if (in_process()) {
    // Inside a callback, letting time pass is waiting.
    sc_core::wait(to_sc(until - now()));
    return;
  }
  sc_core::sc_start(to_sc(until - now()));
  back_on_thread_stack();
  rethrow_interrupt();
}

void Simulation::run_op(const std::shared_ptr<PendingOp>& op) {
  check_alive();
  if (in_process()) {
    op->body();  // already inside a simulation thread (a scheduled callback)
    return;
  }
  sc_core::sc_spawn(
      [op] {
        fresh_coroutine_stack();
        try {
          op->body();
        } catch (const sc_core::sc_unwind_exception&) {
          throw;
        } catch (...) {
          op->error = std::current_exception();
        }
        op->done = true;
        op->body = nullptr;
        // Only the run that waits for it stops here; an abandoned
        // operation finishing later must not cut another run short.
        if (op->waited) sc_core::sc_pause();
      },
      ("op_" + std::to_string(spawn_seq_++)).c_str());
  const Time limit = config().simulation.max_time;
  try {
    while (!op->done) {
      if (now() >= limit)
        throw UsageError("simulation", "simulation.max_time (" + format_time(limit) +
                                           ") reached before the operation completed");
      sc_core::sc_start(to_sc(limit - now()));
      back_on_thread_stack();
      rethrow_interrupt();
    }
  } catch (...) {
    op->waited = false;
    throw;
  }
  if (op->error) std::rethrow_exception(op->error);
}

void Simulation::boot() {
  call([this] {
    while (!host_->booted())
      sc_core::wait(host_->booted_event());
  });
}

RunResult Simulation::run() {
  if (in_process())
    throw UsageError("run",
                     "a full run() cannot start inside a callback (the run is already going"
                     "); run(duration) inside a callback waits that long");
  RunResult r;
  try {
    boot();
    call([this] {
      while (!scenario_->done())
        sc_core::wait(scenario_->done_event());
      for (const auto& w : host_->workloads())
        while (w->pending())
          sc_core::wait(w->done_event());
      // An error being handled is part of the run: its recovery ends it.
      while (host_->aer() && host_->aer()->busy())
        sc_core::wait(host_->aer()->idle_event());
    });
    r.completed = true;
  } catch (const UsageError& e) {
    if (e.message().find("max_time") == std::string::npos) throw;
    r.time_limit = true;
  }
  r.checks = scenario_checks_;
  // DESIGN.md 3: a request that ended twice, or with neither a completion
  // nor a timeout, is a simulator defect the run must not hide.
  const CompletionLedgerStats& ledger = system_->completion_ledger().stats();
  if (ledger.violations) {
    CheckResult c;
    c.label = "completions";
    c.description = "every non-posted request ends with exactly one completion or timeout";
    c.observed =
        std::to_string(ledger.violations) + " violation(s), first: " + ledger.violation_log.front();
    c.passed = false;
    c.at = now();
    r.checks.push_back(c);
  }
  if (r.time_limit) {
    CheckResult c;
    c.label = "simulation";
    c.description = "the scenario and its workloads finish before simulation.max_time";
    c.observed = "stopped at " + format_time(now());
    c.passed = false;
    c.at = now();
    r.checks.push_back(c);
  }
  for (const CheckResult& c : check_expectations())
    r.checks.push_back(c);
  run_checks_ = r.checks;
  ran_ = true;
  return r;
}

void Simulation::run_for(Time duration) {
  advance(now() + duration);
}
void Simulation::run_until(Time t) {
  advance(t);
}

std::vector<CheckResult> Simulation::check_expectations() {
  std::vector<CheckResult> out;
  Checker::Batch batch(*checker_);  // one stats document for all of them
  for (const Expectation& e : config().expect)
    out.push_back(checker_->evaluate(e));
  return out;
}

nlohmann::ordered_json Simulation::stats() {
  set_stats_distributions(config().simulation.sample_interval != 0);
  nlohmann::ordered_json j =
      build_stats(*system_, *host_, scenario_.get(), ran_ ? &run_checks_ : &scenario_checks_);
  if (interrupted_) j["interrupted"] = true;
  nlohmann::ordered_json series = sampler_->series();
  if (!series.is_null()) j["series"] = std::move(series);
  return j;
}

PciDev& Simulation::host_device(const std::string& target) {
  PciDev* d = host_->pci().find(target);
  if (!d)
    if (auto rid = RoutingId::parse(target)) d = host_->pci().find(*rid);
  if (!d) {
    if (!config().function_exists(target) && !RoutingId::parse(target))
      throw UsageError(target, "no function named '" + target + "'");
    throw UsageError(target, "the host has no device '" + target +
                                 "' (not enumerated yet, or a VF that is not enabled)");
  }
  return *d;
}

VfioDevice& Simulation::vfio_device(const std::string& target) {
  if (PciDev* d = host_->pci().find(target)) return host_->vfio(*d);
  // A VF disabled since it was opened: its VFIO device still answers (with
  // ENODEV), as an open file descriptor would.
  VfioDevice* found = nullptr;
  for (const auto& [dev, v] : host_->vfio_devices())
    if (v->name() == target) found = v.get();
  if (found) return *found;
  return host_->vfio(host_device(target));
}

Simulation::VfioInfo Simulation::vfio_open(const std::string& target) {
  return call([this, target] {
    VfioDevice& v = vfio_device(target);
    VfioInfo i;
    i.flags = vfio::flag_names(v.migration_flags());
    i.state = vfio::state_name(v.state());
    i.unavailable = v.unavailable();
    i.style = v.style_name();
    return i;
  });
}

std::vector<std::string> Simulation::vfio_set_state(const std::string& target,
                                                    const std::string& state) {
  std::optional<vfio::MigState> s = vfio::parse_state(state);
  if (!s)
    throw UsageError(target, "no migration state '" + state +
                                 "' (RUNNING, RUNNING_P2P, STOP, STOP_COPY, RESUMING, PRE_COPY, "
                                 "PRE_COPY_P2P, ERROR)");
  return call([this, target, st = *s] {
    std::vector<std::string> out;
    for (vfio::MigState x : vfio_device(target).set_state(st))
      out.push_back(vfio::state_name(x));
    return out;
  });
}

std::vector<std::uint8_t> Simulation::vfio_read(const std::string& target,
                                                std::uint64_t max_bytes) {
  return call([this, target, max_bytes] { return vfio_device(target).read(max_bytes); });
}

std::uint64_t Simulation::vfio_write(const std::string& target,
                                     const std::vector<std::uint8_t>& data) {
  return call([this, target, data] { return vfio_device(target).write(data); });
}

std::pair<std::uint64_t, std::uint64_t> Simulation::vfio_precopy_info(const std::string& target) {
  return call([this, target] { return vfio_device(target).precopy_info(); });
}

std::uint64_t Simulation::vfio_data_size(const std::string& target) {
  return call([this, target] { return vfio_device(target).data_size(); });
}

void Simulation::vfio_reset(const std::string& target) {
  call([this, target] { vfio_device(target).reset(); });
}

std::uint64_t Simulation::vfio_mmio_read(const std::string& target, unsigned bar,
                                         std::uint64_t offset, unsigned size) {
  return call([this, target, bar, offset, size] {
    return vfio_device(target).mmio_read(bar, offset, size);
  });
}

void Simulation::vfio_mmio_write(const std::string& target, unsigned bar, std::uint64_t offset,
                                 unsigned size, std::uint64_t value) {
  call([this, target, bar, offset, size, value] {
    vfio_device(target).mmio_write(bar, offset, size, value);
  });
}

void Simulation::migration_fault(const std::string& endpoint, const std::string& command,
                                 const std::string& mode, unsigned after, unsigned count) {
  check_alive();
  models::DmaDevice* dev = system_->device(endpoint);
  if (!dev) throw UsageError(endpoint, "no endpoint named '" + endpoint + "'");
  if (!dev->firmware())
    throw UsageError(endpoint, endpoint + " has no migration support (endpoints[].migration)");
  std::uint32_t op = 0;
  for (std::uint32_t o = 1; o <= models::dma::kMigOpLast; ++o)
    if (command == models::MigrationFirmware::op_name(o)) op = o;
  if (!op && command != "none")
    throw UsageError(endpoint, "no firmware command '" + command +
                                   "' (query, suspend_initiator, suspend_responder, "
                                   "resume_responder, resume_initiator, save, load, get_state, "
                                   "stop_tracking, or none)");
  if (mode != "error" && mode != "timeout")
    throw UsageError(endpoint, "fault mode must be 'error' or 'timeout', got '" + mode + "'");
  if (after == 0) throw UsageError(endpoint, "after counts from 1 (the first such command)");
  dev->firmware()->set_failure(op, mode == "timeout", after, count);
}

unsigned Simulation::inject(const std::string& fault_text) {
  check_alive();
  fabric::FaultSpec f = load_fault_text(fault_text, "inject");
  f.label = "inject";
  return host_->faults().add(f);
}

std::vector<unsigned> Simulation::aer_inject(const std::string& text, const std::string& source,
                                             fabric::Time at) {
  check_alive();
  const std::vector<fabric::FaultSpec> specs = aer_inject_faults(text, source, "aer_inject", at);
  // All or nothing: check every record against the system before arming.
  for (const fabric::FaultSpec& f : specs)
    host_->faults().check(f);
  std::vector<unsigned> ids;
  for (const fabric::FaultSpec& f : specs)
    ids.push_back(host_->faults().add(f));
  return ids;
}

nlohmann::ordered_json Simulation::fault(unsigned id) {
  check_alive();
  const fabric::FaultState& f = host_->faults().registry().state(id);
  nlohmann::ordered_json j;
  j["id"] = id;
  j["kind"] = fabric::to_string(f.spec.kind);
  j["where"] = f.spec.where;
  j["matched"] = f.matched;
  j["fired"] = f.fired;
  j["cancelled"] = f.cancelled;
  nlohmann::ordered_json log = nlohmann::ordered_json::array();
  for (const fabric::FaultEvent* e : host_->faults().registry().log_of(id))
    log.push_back({{"t_ns", fabric::to_ns(e->at)}, {"detail", e->detail}});
  j["log"] = log;
  return j;
}

void Simulation::cancel_fault(unsigned id) {
  check_alive();
  host_->faults().registry().cancel(id);
}

nlohmann::ordered_json Simulation::aer(const std::string& target) {
  check_alive();
  FunctionRef* f = system_->function(target);
  if (!f) throw UsageError(target, "no function named '" + target + "'");
  nlohmann::ordered_json j = aer_registers(f->config());
  j["function"] = target;
  j["rid"] = f->rid().str();
  if (host_->aer()) j["recovery"] = host_->aer()->outcome(target);
  return j;
}

RoutingId Simulation::address_of(const std::string& target) {
  check_alive();
  // A function captures its bus number from the host's first configuration
  // write; before enumeration every named function would answer 00:00.0
  // (the host bridge's address).
  if (!host_->booted() && !RoutingId::parse(target)) {
    if (!system_->function(target)) throw UsageError(target, "no function named '" + target + "'");
    throw UsageError(target, "'" + target +
                                 "' has no bus address before the host enumerates: call boot() "
                                 "(or run) first");
  }
  return checker_->target_rid(target);
}

std::string Simulation::bdf(const std::string& target) {
  return address_of(target).str();
}

std::vector<std::string> Simulation::functions(bool existing_only) {
  std::vector<std::string> out;
  for (const auto& f : system_->functions())
    if (!existing_only || f->exists()) out.push_back(f->name());
  return out;
}

std::uint32_t Simulation::config_read(const std::string& target, std::uint16_t offset,
                                      unsigned size) {
  RoutingId rid = address_of(target);
  if (!ConfigSpace::valid_access(offset, size))
    throw UsageError(target, "config access of " + std::to_string(size) + " bytes at " +
                                 std::to_string(offset) +
                                 " must be 1/2/4 bytes, aligned, below 4096");
  return call([this, rid, offset, size] { return host_->cpu().config_read(rid, offset, size); });
}

void Simulation::config_write(const std::string& target, std::uint16_t offset, unsigned size,
                              std::uint32_t value) {
  RoutingId rid = address_of(target);
  if (!ConfigSpace::valid_access(offset, size))
    throw UsageError(target, "config access of " + std::to_string(size) + " bytes at " +
                                 std::to_string(offset) +
                                 " must be 1/2/4 bytes, aligned, below 4096");
  if (size < 4 && (value >> (8 * size)))
    throw UsageError(target, "value " + format_hex(value) + " does not fit " +
                                 std::to_string(size) + " byte(s)");
  call([this, rid, offset, size, value] { host_->cpu().config_write(rid, offset, size, value); });
}

std::uint64_t Simulation::mmio_read(const std::string& target, unsigned bar, std::uint64_t offset,
                                    unsigned size) {
  return call([this, target, bar, offset, size] {
    std::uint64_t a = host_->pci().mmio_address(host_device(target), bar, offset, size, target);
    return host_->cpu().mmio_read(a, size);
  });
}

void Simulation::mmio_write(const std::string& target, unsigned bar, std::uint64_t offset,
                            unsigned size, std::uint64_t value) {
  call([this, target, bar, offset, size, value] {
    if (size < 8 && (value >> (8 * size)))
      throw UsageError(target, "value " + format_hex(value) + " does not fit " +
                                   std::to_string(size) + " byte(s)");
    std::uint64_t a = host_->pci().mmio_address(host_device(target), bar, offset, size, target);
    host_->cpu().mmio_write(a, size, value);
  });
}

std::vector<std::uint8_t> Simulation::memory_read(std::uint64_t address, std::size_t length) {
  return system_->memory().read(address, length);
}

void Simulation::memory_write(std::uint64_t address, const std::vector<std::uint8_t>& data) {
  system_->memory().write(address, data.data(), data.size());
}

void Simulation::start_workload(const std::string& name) {
  Workload* w = host_->workload(name);
  if (!w) throw UsageError(name, "no workload named '" + name + "'");
  call([this, w] {
    while (!host_->booted())
      sc_core::wait(host_->booted_event());
    w->start();
  });
}

void Simulation::wait_workload(const std::string& name) {
  Workload* w = host_->workload(name);
  if (!w) throw UsageError(name, "no workload named '" + name + "'");
  call([w] {
    w->start();
    while (!w->finished())
      sc_core::wait(w->done_event());
  });
}

int Simulation::enable_vfs(const std::string& pf, unsigned count) {
  return call([this, pf, count] { return host_->pci().sriov_numvfs(host_device(pf), count); });
}

int Simulation::disable_vfs(const std::string& pf) {
  return enable_vfs(pf, 0);
}

int Simulation::dma(const std::string& target, std::uint64_t src, std::uint64_t dst,
                    std::uint32_t length, bool src_local, bool dst_local, Time timeout,
                    std::uint32_t* bytes) {
  if (length == 0) throw UsageError(target, "dma length must be at least 1 byte");
  auto r = call([this, target, src, dst, length, src_local, dst_local, timeout] {
    std::uint32_t copied = 0;
    int st = host_->dma_once(host_device(target), src, dst, length, src_local, dst_local, timeout,
                             &copied);
    return std::make_pair(st, copied);
  });
  if (bytes) *bytes = r.second;
  return r.first;
}

int Simulation::iommu_map(const std::string& domain, std::uint64_t iova, std::uint64_t hpa,
                          std::uint64_t length, bool read, bool write) {
  return call([this, domain, iova, hpa, length, read, write] {
    IommuDomain& d = host_->iommu_domain(domain);
    return host_->iommu()->map(d, iova, hpa, length, read, write);
  });
}

int Simulation::iommu_unmap(const std::string& domain, std::uint64_t iova, std::uint64_t length,
                            bool flush) {
  return call([this, domain, iova, length, flush] {
    IommuDomain& d = host_->iommu_domain(domain);
    return host_->iommu()->unmap(d, iova, length, flush);
  });
}

int Simulation::iommu_dirty_tracking(const std::string& domain, bool enable) {
  return call([this, domain, enable] { return host_->set_iommu_dirty_tracking(domain, enable); });
}

nlohmann::ordered_json Simulation::iommu_read_dirty(const std::string& domain, std::uint64_t iova,
                                                    std::uint64_t length, std::uint64_t page_size,
                                                    bool no_clear) {
  return call([this, domain, iova, length, page_size, no_clear] {
    if (!host_->iommu_dirty()) throw UsageError("iommu", "the system has no enabled IOMMU");
    IommuDomain& d = host_->iommu_domain(domain);
    return report_json(host_->iommu_dirty()->read(d, iova, length, page_size, no_clear));
  });
}

nlohmann::ordered_json Simulation::dma_logging_start(
    const std::string& target, const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges,
    std::uint64_t page_size) {
  return call([this, target, ranges, page_size] {
    VfioDevice& v = vfio_device(target);
    std::uint64_t ps = page_size;
    nlohmann::ordered_json j;
    j["status"] = v.dma_logging_start(ranges, &ps);
    j["page_size"] = ps;
    nlohmann::ordered_json rs = nlohmann::ordered_json::array();
    for (const auto& [iova, len] : v.dma_log_ranges())
      rs.push_back({iova, len});
    j["ranges"] = rs;
    return j;
  });
}

nlohmann::ordered_json Simulation::migrate(const std::string& policy_text) {
  const MigrationPolicy p = load_migration_policy_text(policy_text, "migrate");
  return call([this, p] { return host_->vmm().migrate(p); });
}

void Simulation::vm_pause(const std::string& vm, bool pause) {
  call([this, vm, pause] {
    Vm* v = host_->vm(vm);
    if (!v) throw UsageError(vm, "no VM named '" + vm + "'");
    if (pause)
      v->pause();
    else
      v->resume();
  });
}

void Simulation::cpu_dirty_log(const std::string& vm, bool enable) {
  call([this, vm, enable] { host_->set_cpu_dirty_log(vm, enable); });
}

nlohmann::ordered_json Simulation::read_cpu_dirty_log(const std::string& vm, bool clear) {
  return call([this, vm, clear] {
    std::vector<std::uint64_t> bitmap;
    std::uint64_t pages = 0;
    nlohmann::ordered_json j;
    j["status"] = host_->read_cpu_dirty_log(vm, clear, &bitmap, &pages);
    j["dirty_pages"] = pages;
    j["bitmap"] = bitmap;
    return j;
  });
}

int Simulation::dma_logging_stop(const std::string& target) {
  return call([this, target] { return vfio_device(target).dma_logging_stop(); });
}

nlohmann::ordered_json Simulation::dma_logging_report(const std::string& target, std::uint64_t iova,
                                                      std::uint64_t length,
                                                      std::uint64_t page_size) {
  return call([this, target, iova, length, page_size] {
    return report_json(vfio_device(target).dma_logging_report(iova, length, page_size));
  });
}

void Simulation::iommu_flush(const std::string& kind, const std::string& domain, std::uint64_t iova,
                             std::uint64_t length, const std::string& target) {
  call([this, kind, domain, iova, length, target] {
    host_->iommu_flush(kind, domain, iova, length, target.empty() ? nullptr : &host_device(target));
  });
}

void Simulation::create_domain(const std::string& name, const std::string& type) {
  IommuDomain::Type t;
  if (type == "dma")
    t = IommuDomain::kDma;
  else if (type == "identity")
    t = IommuDomain::kIdentity;
  else if (type == "blocked")
    t = IommuDomain::kBlocked;
  else
    throw UsageError(name, "domain type must be dma, identity or blocked, got '" + type + "'");
  call([this, name, t] {
    if (!host_->iommu()) throw UsageError(name, "there is no IOMMU (iommu: {enabled: true})");
    if (host_->iommu()->domain(name))
      throw UsageError(name, "an IOMMU domain named '" + name + "' exists");
    host_->iommu()->create_domain(name, t);
  });
}

void Simulation::attach(const std::string& target, const std::string& domain) {
  call([this, target, domain] {
    IommuDomain& d = host_->iommu_domain(domain);  // throws without an IOMMU or domain
    host_->iommu()->attach(host_device(target), d);
  });
}

void Simulation::assign(const std::string& target, const std::string& vm) {
  call([this, target, vm] {
    Vm* v = host_->vm(vm);
    if (!v) throw UsageError(vm, "no VM named '" + vm + "'");
    std::string err = host_->assign(host_device(target), *v);
    if (!err.empty()) throw UsageError(target, err);
  });
}

bool Simulation::iommu_lookup(const std::string& domain, std::uint64_t iova, std::uint64_t* hpa) {
  check_alive();
  return host_->iommu_domain(domain).type == IommuDomain::kDma &&
         host_->iommu()->lookup(host_->iommu_domain(domain), iova, hpa);
}

std::uint64_t Simulation::peer_address(const std::string& initiator, const std::string& target,
                                       unsigned bar) {
  if (bar > 5) throw UsageError(target, "BAR index must be 0..5");
  return call([this, initiator, target, bar] {
    return host_->peer_dma_address(host_device(initiator), host_device(target), bar);
  });
}

std::uint64_t Simulation::vm_to_host(const std::string& vm, std::uint64_t gpa,
                                     std::uint64_t length) {
  check_alive();
  return host_->vm_to_host(vm, gpa, length);
}

int Simulation::flr(const std::string& target, bool restore) {
  return call([this, target, restore] {
    PciDev& d = host_device(target);
    return restore ? host_->pci().reset_function(d, "flr") : host_->pci().bare_flr(d);
  });
}

int Simulation::reset_function(const std::string& target, const std::string& method) {
  if (method != "auto" && method != "flr" && method != "pm" && method != "bus")
    throw UsageError(target, "reset method must be auto, flr, pm or bus, got '" + method + "'");
  return call(
      [this, target, method] { return host_->pci().reset_function(host_device(target), method); });
}

int Simulation::hot_reset(const std::string& bridge, bool restore) {
  return call([this, bridge, restore] {
    PciDev& d = host_device(bridge);
    if (!d.bridge) throw UsageError(bridge, "hot reset needs a bridge (root port or switch port)");
    return host_->pci().secondary_bus_reset(d, restore);
  });
}

void Simulation::set_power_state(const std::string& target, unsigned state) {
  if (state != 0 && state != 3)
    throw UsageError(target,
                     "power state must be 0 (D0) or 3 (D3hot), got " + std::to_string(state));
  call([this, target, state] { host_->pci().set_power_state(host_device(target), state); });
}

void Simulation::set_bus_master(const std::string& target, bool enable) {
  call([this, target, enable] { host_->pci().set_master(host_device(target), enable); });
}

void Simulation::set_memory_space(const std::string& target, bool enable) {
  call([this, target, enable] { host_->pci().enable_memory(host_device(target), enable); });
}

void Simulation::schedule(Time at, std::function<void()> fn) {
  check_alive();
  sc_core::sc_spawn(
      [this, fn = std::move(fn), at] {
        fresh_coroutine_stack();
        Time t = now_fs();
        if (at > t) sc_core::wait(to_sc(at - t));
        try {
          fn();
        } catch (const sc_core::sc_unwind_exception&) {
          throw;
        } catch (...) {
          interrupt(std::current_exception());
        }
      },
      ("scheduled_" + std::to_string(spawn_seq_++)).c_str());
}

std::string Simulation::lspci(const LspciOptions& options) {
  if (!host_->booted()) boot();
  return format_lspci(lspci_snapshot(*host_), options);
}

std::string Simulation::topology_dot() const {
  const SystemConfig& c = config();
  std::ostringstream o;
  o << "digraph pcie {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n";
  o << "  \"" << c.root_complex.name << "\" [label=\"" << c.root_complex.name << "\\nroot complex, "
    << c.root_complex.params.root_ports << " root ports\", style=filled, fillcolor=\"#dde8f8\"];\n";
  for (const SwitchSpec& s : c.switches)
    o << "  \"" << s.name << "\" [label=\"" << s.name << "\\nswitch, " << s.params.downstream_ports
      << " downstream ports\", style=filled, fillcolor=\"#e8f4e0\"];\n";
  for (const EndpointSpec& e : c.endpoints) {
    o << "  \"" << e.name << "\" [label=\"" << e.name << "\\n" << e.model << " endpoint";
    if (e.params.total_vfs)
      o << "\\nSR-IOV: " << e.params.total_vfs << " VFs (" << e.num_vfs << " enabled)";
    o << "\", style=filled, fillcolor=\"#fdf0d8\"];\n";
  }
  for (const System::LinkInfo& l : system_->links()) {
    std::string n = l.name;
    std::size_t sep = n.find("--");
    std::string up = n.substr(0, sep), down = n.substr(sep + 2);
    std::string upnode = up.substr(0, up.rfind('.'));
    std::string downnode =
        down.find(".usp") != std::string::npos ? down.substr(0, down.rfind('.')) : down;
    o << "  \"" << upnode << "\" -> \"" << downnode << "\" [label=\""
      << up.substr(up.rfind('.') + 1) << "\\nGen" << l.generation << " x" << l.width << "\"];\n";
  }
  o << "}\n";
  return o.str();
}

}  // namespace pciesim::sim

// The simulation facade: one object per simulation, used by the CLI and the
// Python module alike. It owns a fresh SystemC kernel context, the models,
// the host and the scenario. Host operations (config/MMIO accesses, resets,
// SR-IOV) take simulated time; called between runs they run the kernel
// until they complete, called from a scheduled callback they run inline.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "fabric/common/sim_time.h"
#include "sim/config/system_config.h"
#include "sim/lspci/lspci.h"
#include "sim/scenario/checker.h"

namespace pciesim::fabric {
class KernelContext;
}

namespace pciesim::sim {

class System;
class Host;
class ScenarioRunner;
namespace trace {
class TraceHub;
struct TraceFilter;
struct PerfettoOptions;
}  // namespace trace
class Sampler;
struct PciDev;
class VfioDevice;

struct RunResult {
  bool completed = false;           // scenario and started workloads finished
  bool time_limit = false;          // stopped at simulation.max_time
  std::vector<CheckResult> checks;  // scenario checks, then expectations
  bool passed() const;
};

class Simulation {
 public:
  explicit Simulation(const SystemConfig& config);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  static std::unique_ptr<Simulation> from_file(const std::string& path,
                                               const std::vector<std::string>& overrides = {});

  const SystemConfig& config() const;
  System& system() { return *system_; }
  Host& host() { return *host_; }

  // Writes a JSON-lines TLP trace (one object per TLP hop, completions
  // included, in time order) to `path`. A write error (a full disk) stops
  // the run that hits it with a UsageError naming the file and the reason.
  // A second call replaces the first (which is complete up to now).
  void trace_to(const std::string& path);
  // Trace outputs by format: "jsonl", "perfetto", "vcd"
  // (docs/observability.md). `counter_interval`: how often the counter
  // tracks / signals are sampled (Perfetto, VCD).
  void add_trace(const std::string& format, const std::string& path,
                 const trace::TraceFilter& filter, const trace::PerfettoOptions& options,
                 fabric::Time counter_interval);
  // Flushes and closes every trace; UsageError if any write failed.
  // `interrupted`: the run was stopped (marked in the files).
  void finish_trace(bool interrupted = false);
  // Messages of traces that hit their size cap.
  std::vector<std::string> trace_truncations() const;

  // Called from the monitor thread while the kernel runs, every
  // kMonitorMaxStep of simulated time once the run is going: progress
  // display and Ctrl-C. Returning true stops the run, which then throws
  // Interrupted. The monitor only reads: results do not depend on it.
  void set_monitor(std::function<bool(fabric::Time now)> should_stop);
  static constexpr fabric::Time kMonitorFirstStep = 1 * fabric::kUs;
  static constexpr fabric::Time kMonitorMaxStep = 1 * fabric::kMs;
  bool interrupted() const { return interrupted_; }

  // --- running ---
  void boot();
  // Boot, scenario, and every started workload, until done or max_time.
  RunResult run();
  void run_for(fabric::Time duration);
  void run_until(fabric::Time t);
  fabric::Time now() const;
  bool booted() const;
  bool scenario_done() const;

  // --- host operations ---
  std::uint32_t config_read(const std::string& target, std::uint16_t offset, unsigned size);
  void config_write(const std::string& target, std::uint16_t offset, unsigned size,
                    std::uint32_t value);
  std::uint64_t mmio_read(const std::string& target, unsigned bar, std::uint64_t offset,
                          unsigned size);
  void mmio_write(const std::string& target, unsigned bar, std::uint64_t offset, unsigned size,
                  std::uint64_t value);
  std::vector<std::uint8_t> memory_read(std::uint64_t address, std::size_t length);
  void memory_write(std::uint64_t address, const std::vector<std::uint8_t>& data);
  void start_workload(const std::string& name);
  void wait_workload(const std::string& name);
  int enable_vfs(const std::string& pf, unsigned count);
  int disable_vfs(const std::string& pf);
  int flr(const std::string& target, bool restore);
  int reset_function(const std::string& target, const std::string& method);
  int hot_reset(const std::string& bridge, bool restore);
  void set_power_state(const std::string& target, unsigned state);
  void set_bus_master(const std::string& target, bool enable);
  void set_memory_space(const std::string& target, bool enable);
  // --- DMA and IOMMU (docs/iommu.md) ---
  // One descriptor on `target`'s engine: status (0 ok, an engine error
  // code, -110 timeout); *bytes copied.
  int dma(const std::string& target, std::uint64_t src, std::uint64_t dst, std::uint32_t length,
          bool src_local, bool dst_local, fabric::Time timeout, std::uint32_t* bytes);
  int iommu_map(const std::string& domain, std::uint64_t iova, std::uint64_t hpa,
                std::uint64_t length, bool read, bool write);
  int iommu_unmap(const std::string& domain, std::uint64_t iova, std::uint64_t length, bool flush);
  // IOMMU dirty tracking (docs/migration.md "Dirty tracking of guest
  // memory"): enable/disable per domain (0 or a negative errno), and a
  // read of the dirty bitmap checked against the simulator's ground truth:
  // status, bitmap (64-bit words), units, dirty_units, written_pages,
  // missed_pages, missed (IOVAs), over_reported_units, unchecked_pages.
  int iommu_dirty_tracking(const std::string& domain, bool enable);
  nlohmann::ordered_json iommu_read_dirty(const std::string& domain, std::uint64_t iova,
                                          std::uint64_t length, std::uint64_t page_size,
                                          bool no_clear);
  // Device DMA logging through the function's VFIO device (docs/migration.md):
  // start ({status, page_size the device chose, ranges it tracks}), stop,
  // and a report checked against the ground truth (as iommu_read_dirty).
  nlohmann::ordered_json dma_logging_start(
      const std::string& target, const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges,
      std::uint64_t page_size);
  int dma_logging_stop(const std::string& target);
  // The hypervisor's log of a VM's own CPU stores (KVM dirty log).
  void cpu_dirty_log(const std::string& vm, bool enable);
  // Pauses / resumes a VM's vCPUs (what a VMM does at a switchover).
  void vm_pause(const std::string& vm, bool pause);
  nlohmann::ordered_json read_cpu_dirty_log(const std::string& vm, bool clear);
  nlohmann::ordered_json dma_logging_report(const std::string& target, std::uint64_t iova,
                                            std::uint64_t length, std::uint64_t page_size);
  void iommu_flush(const std::string& kind, const std::string& domain, std::uint64_t iova,
                   std::uint64_t length, const std::string& target);
  void create_domain(const std::string& name, const std::string& type);
  void attach(const std::string& target, const std::string& domain);
  void assign(const std::string& target, const std::string& vm);
  // What the domain's page tables map `iova` to (not the IOTLB), if anything.
  bool iommu_lookup(const std::string& domain, std::uint64_t iova, std::uint64_t* hpa);
  // The address `initiator` uses for `target`'s BAR (peer-to-peer), mapped
  // into the initiator's IOMMU domain when there is one.
  std::uint64_t peer_address(const std::string& initiator, const std::string& target, unsigned bar);
  std::uint64_t vm_to_host(const std::string& vm, std::uint64_t gpa, std::uint64_t length);

  // --- VFIO migration (docs/migration.md) ---
  struct VfioInfo {
    std::vector<std::string> flags;  // empty: migration not offered
    std::string state;
    std::string unavailable;  // why not, when flags is empty
    std::string style;
  };
  // Opens `target` (assigned to a VM) through VFIO; MigrationError from
  // the operations below carries the errno name and the state left.
  VfioInfo vfio_open(const std::string& target);
  std::vector<std::string> vfio_set_state(const std::string& target, const std::string& state);
  std::vector<std::uint8_t> vfio_read(const std::string& target, std::uint64_t max_bytes);
  std::uint64_t vfio_write(const std::string& target, const std::vector<std::uint8_t>& data);
  std::pair<std::uint64_t, std::uint64_t> vfio_precopy_info(const std::string& target);
  std::uint64_t vfio_data_size(const std::string& target);
  void vfio_reset(const std::string& target);
  std::uint64_t vfio_mmio_read(const std::string& target, unsigned bar, std::uint64_t offset,
                               unsigned size);
  void vfio_mmio_write(const std::string& target, unsigned bar, std::uint64_t offset, unsigned size,
                       std::uint64_t value);
  // Injects a firmware failure on `endpoint`'s PF (MigrationDeviceParams).
  void migration_fault(const std::string& endpoint, const std::string& command,
                       const std::string& mode, unsigned after, unsigned count);

  // Migrates a VM (docs/migration.md "Migrating a VM"): `policy_text` is a
  // YAML / JSON mapping with vm, to and the migrate step's policy keys. The
  // report (as stats migrations.<name>).
  nlohmann::ordered_json migrate(const std::string& policy_text);

  // --- faults (docs/faults.md) ---
  // Arms a fault given as a faults[] mapping in YAML / JSON (times are
  // absolute simulated times); its id. Usable before boot, between runs
  // and from scheduled callbacks.
  unsigned inject(const std::string& fault_text);
  // Arms the records of an aer-inject file's text (`source` names it in
  // errors) as aer_report faults at absolute time `at`; their ids. A PCI
  // address is resolved once the host has enumerated.
  std::vector<unsigned> aer_inject(const std::string& text, const std::string& source,
                                   fabric::Time at);
  // A fault's state: kind, where, matched, fired, cancelled, its log.
  nlohmann::ordered_json fault(unsigned id);
  void cancel_fault(unsigned id);
  // The function's error registers, decoded (stats' functions.<f>.aer).
  nlohmann::ordered_json aer(const std::string& target);

  std::string bdf(const std::string& target);  // current routing ID
  std::vector<std::string> functions(bool existing_only = true);

  // Runs `fn` in a simulation thread at absolute time `at` (now if past);
  // it may call the host operations above, which then take simulated time
  // inline. An exception escaping `fn` interrupts the current run: run(),
  // run_for() or the host operation that was running the kernel rethrows
  // it, and the simulation stays usable.
  void schedule(fabric::Time at, std::function<void()> fn);
  // True inside a simulation thread (a scheduled callback).
  static bool in_process();
  // From inside a simulation thread: stop the current run and make the
  // caller of the run rethrow `error` (the first one wins).
  void interrupt(std::exception_ptr error);

  // --- results ---
  nlohmann::ordered_json stats();
  std::vector<CheckResult> check_expectations();
  const std::vector<CheckResult>& scenario_checks() const { return scenario_checks_; }
  std::string lspci(const LspciOptions& options);
  std::string topology_dot() const;

 private:
  // A host operation in flight. It owns everything it uses, so that one
  // abandoned at simulation.max_time (or by an interrupt) can finish in a
  // later run without touching the frame that started it.
  struct PendingOp {
    std::function<void()> body;
    bool done = false;
    bool waited = true;  // the starter still runs the kernel for it
    std::exception_ptr error;
  };
  // Runs `op` in a simulation thread, running the kernel until it is done;
  // inline when already inside one.
  void run_op(const std::shared_ptr<PendingOp>& op);
  // `fn` must own what it captures (capture by value).
  template <class F>
  auto call(F fn) -> decltype(fn()) {
    using R = decltype(fn());
    auto op = std::make_shared<PendingOp>();
    if constexpr (std::is_void_v<R>) {
      op->body = std::move(fn);
      run_op(op);
    } else {
      auto result = std::make_shared<R>();
      op->body = [result, fn = std::move(fn)]() mutable { *result = fn(); };
      run_op(op);
      return *result;
    }
  }
  void advance(fabric::Time until);
  void rethrow_interrupt();
  void check_alive() const;
  PciDev& host_device(const std::string& target);
  VfioDevice& vfio_device(const std::string& target);
  // The routing ID a config access to `target` uses; refuses a named
  // function before enumeration has given it a bus.
  fabric::RoutingId address_of(const std::string& target);

  std::unique_ptr<fabric::KernelContext> kernel_;
  std::unique_ptr<System> system_;
  std::unique_ptr<Host> host_;
  std::unique_ptr<Checker> checker_;
  std::unique_ptr<ScenarioRunner> scenario_;
  std::unique_ptr<trace::TraceHub> trace_;
  std::vector<std::string> trace_formats_;  // parallel to the hub's outputs
  std::unique_ptr<Sampler> sampler_;
  std::function<bool(fabric::Time)> monitor_;
  void start_monitor();
  bool interrupted_ = false;
  std::vector<std::string> last_truncations_;
  std::uint64_t next_trace_id_ = 1;  // TLP trace ids, unique in this simulation
  std::vector<CheckResult> scenario_checks_;
  // After run(): every check of the run (scenario, time limit, expect), so
  // the stats written afterwards report them all.
  std::vector<CheckResult> run_checks_;
  bool ran_ = false;
  bool dead_ = false;             // a model error stopped the kernel
  std::exception_ptr interrupt_;  // from a callback, for the caller of the run
  std::uint64_t spawn_seq_ = 0;
};

}  // namespace pciesim::sim

// The parsed, validated configuration of one simulation. Produced by the
// loader from a YAML file, a YAML string or a Python dict; consumed by the
// system builder and the host software model.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/fault/fault_registry.h"
#include "fabric/link/link.h"
#include "models/dma_endpoint/dma_device.h"
#include "models/host_memory/host_memory.h"
#include "models/iommu/iommu.h"
#include "models/root_complex/root_complex.h"
#include "models/switch/pcie_switch.h"
#include "sim/config/yaml_reader.h"

namespace pciesim::sim {

struct SimulationSpec {
  std::uint64_t seed = 1;
  // Temporal decoupling quantum; 0 = exact ordering (docs/timing.md).
  fabric::Time quantum = 100 * fabric::kNs;
  fabric::Time max_time = 10 * fabric::kSec;
  // Time series in the stats (link utilisation, credits, tags, throughput,
  // IOTLB hit rate): sampled at this interval; 0 = off (docs/observability.md).
  fabric::Time sample_interval = 0;
};

struct HostSpec {
  models::HostMemoryParams memory;
  fabric::Time interrupt_latency = 1 * fabric::kUs;
  std::uint32_t mps = 0;  // 0 = auto: the largest every device on the path supports
  std::uint32_t mrrs = 512;
  bool extended_tags = true;
  bool ten_bit_tags = false;
  bool rrs_sw_visibility = true;
  // Native PCIe error handling (Linux AER and DPC services, FAULTS.md 4):
  // error reporting enabled everywhere at boot, recovery on errors.
  bool aer = true;
  // ECRC generation and checking where devices can (Linux pci=ecrc=on;
  // the default "bios" leaves them off).
  bool ecrc = false;
  bool ari = true;  // enable ARI forwarding where devices support it
  // ACS controls the host enables where supported; nullopt = as Linux
  // does: SV, RR, CR and UF when an IOMMU is enabled, nothing otherwise.
  std::optional<std::uint16_t> acs;
};

struct IommuSpec {
  bool enabled = false;
  models::IommuParams params;
  // What functions bound to host drivers get: their own translated DMA
  // domain (Linux's default) or the shared pass-through domain
  // (iommu.passthrough=1 / iommu=pt).
  enum DefaultDomain { kDma, kPassThrough } default_domain = kDma;
  // The host maps with 2 MiB / 1 GiB pages where alignment allows.
  bool host_large_pages = true;
};

// The guest's own CPU activity (docs/migration.md "Guest activity"): its
// vCPUs store into guest RAM at a steady rate, so that memory dirties at a
// known rate while its devices DMA.
struct GuestCpuSpec {
  double write_gbps = 0;      // 0: the vCPUs write nothing
  std::uint32_t chunk = 256;  // bytes per store burst
  enum Pattern { kSequential, kRandom } pattern = kSequential;
  std::uint64_t region_base = 0;  // guest-physical; with region_size 0: the upper half of RAM
  std::uint64_t region_size = 0;
  fabric::Time start = 0;  // after boot
};

struct VmSpec {
  std::string name;
  std::uint64_t memory = 256ull << 20;  // guest RAM, GPA 0 .. memory
  std::uint64_t host_base = 0;          // its host physical base; 0 = allocated
  std::vector<std::string> functions;   // assigned at boot
  // A destination VM waiting for an incoming migration (QEMU -incoming):
  // its functions are assigned but no guest runs yet, so no guest driver
  // probes them; `migrate` brings the guest in.
  bool incoming = false;
  GuestCpuSpec cpu;
  Node where;
};

// What a `migrate` step or sim.migrate asks the VMM to do (docs/migration.md
// "Migrating a VM"). Defaults are QEMU's where QEMU has one.
struct MigrationPolicy {
  std::string name;  // stats key migrations.<name>; default <vm>_to_<to>
  std::string vm;    // the source VM
  std::string to;    // the destination VM (incoming)
  // Source function -> destination function; empty: the VMs' functions
  // paired in the order they were assigned.
  std::vector<std::pair<std::string, std::string>> functions;
  // The migration network (QEMU max-bandwidth; default MAX_THROTTLE,
  // 128 MiB/s, migration/options.c), in bytes per second.
  double bandwidth = 128.0 * 1024 * 1024;
  // Allowed downtime (QEMU downtime-limit; DEFAULT_MIGRATE_SET_DOWNTIME,
  // 300 ms): switchover once the remaining data fits it at `bandwidth`.
  fabric::Time downtime_limit = 300 * fabric::kMs;
  // Pre-copy passes before switching over anyway (QEMU has no such limit;
  // pciesim stops a migration that does not converge after this many).
  unsigned max_iterations = 30;
  enum Tracking { kAuto, kDevice, kIommu, kNone } dirty_tracking = kAuto;
  bool p2p_quiesce = true;  // false: stop devices one by one (unsafe, for the race)
  bool force = false;       // migrate several devices even without P2P support
  // The user cancels this long after the start (kTimeMax: never).
  fabric::Time cancel_after = fabric::kTimeMax;
};

struct RootComplexSpec {
  std::string name = "rc";
  models::RootComplexParams params;
};

struct SwitchSpec {
  std::string name;
  models::SwitchParams params;
  Node where;
};

// What the VF variant driver offers (docs/migration.md).
struct EndpointMigrationSpec {
  std::uint32_t flags = 0;  // VFIO_MIGRATION_* (vfio::MigFlags); 0 = no migration
  // How the arcs map to firmware commands: two_level (quiesce at
  // RUNNING_P2P, freeze at STOP: mlx5, pds) or full (one suspend of both
  // levels at RUNNING_P2P: qat, xe, virtio).
  enum Style { kTwoLevel, kFullSuspend } style = kTwoLevel;
  // Variant driver's wait for one firmware command: pds_vfio polls the
  // suspend status for up to 5 s before it gives up with ETIMEDOUT.
  fabric::Time command_timeout = 5 * fabric::kSec;
  // Bytes a resume stream may hold (0: 16 of the function's largest images).
  std::uint64_t max_stream = 0;
};

struct EndpointSpec {
  std::string name;
  std::string model = "dma";
  models::DmaDeviceParams params;
  std::string driver = "dma";  // "dma" or "none" (unmanaged PF)
  unsigned num_vfs = 0;        // VFs the host enables at boot
  bool autoprobe = true;       // sriov_drivers_autoprobe
  EndpointMigrationSpec migration;
  Node where;
};

struct LinkSpec {
  std::string upstream;    // "rc.rp0", "sw0.dsp1"
  std::string downstream;  // "sw0", "ep0"
  fabric::LinkConfig config;
  std::string label;  // "links[2]"
  Node where;
};

struct Placement {
  enum Kind { kHost, kDevice, kPeer } kind = kHost;
  std::string peer;  // function name for kPeer
};

struct WorkloadSpec {
  std::string name;
  std::vector<std::string> functions;  // each runs `count` jobs
  std::uint64_t size = 4096;
  std::uint64_t count = 1;
  unsigned queue_depth = 1;
  Placement src;
  Placement dst;
  std::uint32_t xfer_size = 0;
  fabric::Time start = 0;
  bool manual = false;  // started by a scenario step
  bool interrupts = true;
  bool verify = true;
  // type: bench -- the device's traffic generator (dma_regs.h GenReg, as
  // pcie-bench drives a NIC's DMA engines): `count` transfers of `size`
  // bytes within a host window, `queue_depth` in flight (0 = engine limit).
  enum Type { kCopy, kBench } type = kCopy;
  enum Direction { kRead, kWrite, kWriteRead, kAlternate } direction = kRead;
  std::uint64_t window = 8192;
  bool random = false;
  std::uint32_t host_offset = 0;
  std::uint32_t device_offset = 0;
  // Host cache state before a bench starts: warm (the CPU wrote the
  // window: it is in the LLC), cold (caches flushed) or as it is.
  enum Cache { kKeep, kWarm, kCold } cache = kKeep;
  Node where;
};

struct Comparison {
  enum Op { kEq, kNe, kLt, kLe, kGt, kGe, kBetween, kApprox } op = kEq;
  double a = 0;
  double b = 0;        // upper bound (between) or relative tolerance (approx)
  int step = -1;       // >= 0: `a` is the value scenario[step] recorded (equals_step)
  std::string a_stat;  // non-empty: `a` is this stats value when evaluated ({stat: path})
  // equals / not_equals with a text operand: compares a string stat
  // (`state: STOP`); `has_text` says the operand is text.
  bool has_text = false;
  std::string a_text;
  std::string text() const;
  bool holds(double v) const;
};

struct Expectation {
  enum Kind { kStat, kRegister, kMmio, kMemory, kVisible } kind = kStat;
  std::string stat;
  std::string target;  // function name or bb:dd.f
  std::string cap;     // offset relative to this capability ("sriov", "exp", ...)
  std::uint16_t offset = 0;
  unsigned size = 4;
  std::uint64_t mask = ~std::uint64_t{0};
  unsigned bar = 0;
  std::uint64_t address = 0;
  std::vector<std::uint8_t> bytes;
  std::string vm;  // memory: address is a guest-physical address of this VM
  bool visible = true;
  Comparison cmp;
  std::string label;  // "expect[3]" or "scenario[2].check"
  Node where;
};

struct ScenarioStep {
  enum Action {
    kConfigRead,
    kConfigWrite,
    kMmioRead,
    kMmioWrite,
    kStartWorkload,
    kWaitWorkload,
    kWait,
    kCheck,
    kEnableVfs,
    kDisableVfs,
    kFlr,
    kResetFunction,
    kHotReset,
    kSetPowerState,
    kSetBusMaster,
    kSetMemorySpace,
    kSnapshot,
    kWriteMemory,
    kDma,
    kIommuMap,
    kIommuUnmap,
    kIommuFlush,
    kDirtyTracking,
    kReadDirty,
    kDmaLoggingStart,
    kDmaLoggingReport,
    kDmaLoggingStop,
    kCreateDomain,
    kAttach,
    kAssign,
    kMigrationState,
    kMigrationRead,
    kMigrationWrite,
    kMigrationReset,
    kPrecopyInfo,
    kVfioMmioRead,
    kVfioMmioWrite,
    kInject,
    kWaitFault,
    kLspci,
    kMigrate,
  } action = kWait;
  std::optional<fabric::Time> at;
  std::string target;
  std::string cap;   // offset relative to this capability
  std::string stat;  // snapshot
  std::uint16_t offset = 0;
  unsigned size = 4;
  std::uint64_t value = 0;
  unsigned bar = 0;
  std::string workload;
  fabric::Time duration = 0;
  unsigned count = 0;
  std::string method;  // reset method
  bool flag = false;   // set/clear for BME/MSE; restore for reset
  unsigned power_state = 0;
  // Memory and IOMMU steps.
  std::uint64_t address = 0;  // write_memory, iommu_map (host physical)
  std::vector<std::uint8_t> bytes;
  std::string vm;      // write_memory in a VM's memory; assign
  std::string domain;  // iommu_* / attach / create_domain
  std::uint64_t iova = 0;
  std::uint32_t page_size = 4096;                               // read_dirty
  bool no_clear = false;                                        // read_dirty
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // dma_logging_start
  std::uint64_t length = 0;                                     // bytes: dma, iommu_map/unmap/flush
  std::uint64_t src = 0, dst = 0;  // dma: addresses as the function sees them
  // dma: "ep1.pf.bar2+0x100" -- a BAR as the host assigned it (mapped into
  // the function's DMA space), instead of a number.
  std::string src_ref, dst_ref;
  bool src_local = false, dst_local = false;
  bool read = true, write = true;  // iommu_map permissions
  std::string
      kind;  // iommu_flush: global, domain, page, device; create_domain: dma, identity, blocked
  // Migration steps (docs/migration.md): the requested state, and where a
  // stream goes to / comes from (a named in-memory stream or a file).
  std::string mig_state;
  std::string stream;
  std::string file;
  Expectation check;
  // inject: the fault (times relative to the step).
  fabric::FaultSpec fault;
  // migrate: the VM, where to, and how.
  MigrationPolicy migration;
  // wait_fault: the fault's id (faults[] are 1..N, inject steps follow) and
  // the firings to wait for; `duration` bounds the wait.
  unsigned fault_id = 0;
  // What the step's status (0, -errno, an engine error code) must be. By
  // default a non-zero status fails the run, unless an expectation or check
  // looks at `scenario.<i>.status`; `status: N` makes the step check it is
  // N, `status: any` records it without judging.
  enum StatusPolicy {
    kStatusZero,
    kStatusExpected,
    kStatusAny,
    kStatusChecked
  } status_policy = kStatusZero;
  long long expected_status = 0;
  std::string label;
  Node where;
};

struct SystemConfig {
  std::string source;    // file name or "<dict>"
  std::string platform;  // the preset the defaults came from (platform.h)
  SimulationSpec simulation;
  HostSpec host;
  RootComplexSpec root_complex;
  std::vector<SwitchSpec> switches;
  std::vector<EndpointSpec> endpoints;
  std::vector<LinkSpec> links;
  IommuSpec iommu;
  std::vector<VmSpec> vms;
  std::vector<WorkloadSpec> workloads;
  std::vector<ScenarioStep> scenario;
  std::vector<Expectation> expect;
  // The fault plan (docs/faults.md): times are after boot.
  std::vector<fabric::FaultSpec> faults;
  // Things the config asks for that the hardware will do differently
  // (a link that trains lower, an MPS the devices cannot take); printed by
  // `validate` and `run`, and in the stats.
  std::vector<std::string> warnings;

  const EndpointSpec* endpoint(const std::string& name) const;
  const SwitchSpec* switch_spec(const std::string& name) const;
  const WorkloadSpec* workload(const std::string& name) const;
  const VmSpec* vm(const std::string& name) const;
  // Is `name` a function the system can have ("ep0.pf", "ep0.vf3", "rc.rp1",
  // "sw0.dsp0", "sw0.usp", "rc.hb")?
  bool function_exists(const std::string& name) const;
  // The endpoint of a function name ("ep0.vf3" -> ep0), or nullptr.
  const EndpointSpec* endpoint_of(const std::string& function) const;
};

}  // namespace pciesim::sim

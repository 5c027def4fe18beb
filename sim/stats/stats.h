// The statistics of a run as JSON (schema_version 1): simulated time, per
// link and direction TLPs/bytes/utilization/credit stalls, per function DMA
// traffic, descriptors and interrupts, switches, the root complex, the host
// and the workloads. The same document is `--stats FILE`, Python's
// `Simulation.stats()` and what `expect: stat:` paths address. It holds
// simulated quantities only, so a config and seed give identical output.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace pciesim::fabric {
class ConfigSpace;
}

namespace pciesim::sim {

class System;
class Host;
class ScenarioRunner;
struct CheckResult;

constexpr int kStatsSchemaVersion = 1;

// The function's error registers decoded (FAULTS.md 2): Device Status
// error bits, the AER status / mask / severity with bit names, the First
// Error Pointer and Header Log, the root port's Root Error Status and
// Error Source Identification, and DPC status when present.
nlohmann::ordered_json aer_registers(const fabric::ConfigSpace& cs);

// Latency histograms also carry a "cdf" (percentile, ns) list; on while
// time series are sampled (simulation.sample_interval).
void set_stats_distributions(bool on);

nlohmann::ordered_json build_stats(System& system, Host& host, const ScenarioRunner* scenario,
                                   const std::vector<CheckResult>* checks);

}  // namespace pciesim::sim

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

namespace pciesim::sim {

class System;
class Host;
class ScenarioRunner;
struct CheckResult;

constexpr int kStatsSchemaVersion = 1;

nlohmann::ordered_json build_stats(System& system, Host& host, const ScenarioRunner* scenario,
                                   const std::vector<CheckResult>* checks);

}  // namespace pciesim::sim

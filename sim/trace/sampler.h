// Samples what a run's state looks like over simulated time: per link
// direction the utilisation and the header credits available per class;
// per function the outstanding tags, the DMA throughput and its state; the
// IOMMU's IOTLB hit rate; per VFIO device its migration state. Feeds the
// trace outputs (Perfetto counter tracks, VCD signals) and the stats'
// time series (simulation.sample_interval).
//
// The values are those the kernel has at each sample time. Initiators run
// ahead of the kernel by up to a quantum (docs/timing.md), so work they
// have already done in the next quantum can show in a sample; with
// simulation.quantum: 0ns samples are exact.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fabric/common/sim_time.h"

namespace pciesim::sim {

class System;
class Host;

class Sampler {
 public:
  Sampler(System& system, Host& host) : system_(system), host_(host) {}
  // Starts sampling every `interval` (its thread is spawned on the first
  // call); `keep`: also keep the series for the stats.
  void start(fabric::Time interval, bool keep);
  fabric::Time interval() const { return interval_; }
  // {"interval_ns", "t_ns": [...], "signals": {"<component>/<name>": [...]}},
  // or null when no series was kept.
  nlohmann::ordered_json series() const;

 private:
  void sample();
  void put(const std::string& component, const std::string& name, double v, const char* unit);

  System& system_;
  Host& host_;
  fabric::Time interval_ = 0;
  bool keep_ = false;
  bool running_ = false;
  std::vector<fabric::Time> times_;
  std::map<std::string, std::vector<double>> signals_;
  // Cumulative counters at the previous sample (for rates).
  std::map<std::string, double> last_;
};

}  // namespace pciesim::sim

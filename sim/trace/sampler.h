// Samples what a run's state looks like over simulated time: per link
// direction the utilisation and the header credits available per class;
// per function the outstanding tags, the DMA throughput and its state; the
// IOMMU's IOTLB hit rate; per VFIO device its migration state. Feeds the
// trace outputs (Perfetto counter tracks, VCD signals) and the stats'
// time series (simulation.sample_interval).
//
// Rates (utilisation, throughput) are exact: models book wire time and
// completed bytes into time bins at the time they happen. Levels (credits,
// tags, state) are what the kernel has at the sample time; initiators run
// ahead of the kernel by up to a quantum (docs/timing.md), so a request
// already issued for the next quantum can show; with simulation.quantum:
// 0ns they are exact too.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fabric/common/sim_time.h"
#include "fabric/common/time_bins.h"

namespace pciesim::sim {

class System;
class Host;

class Sampler {
 public:
  Sampler(System& system, Host& host) : system_(system), host_(host) {}
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;
  // Starts sampling every `interval` (its thread is spawned on the first
  // call); `keep`: also keep the series for the stats.
  void start(fabric::Time interval, bool keep);
  fabric::Time interval() const { return interval_; }
  // {"interval_ns", "t_ns": [...], "signals": {"<component>/<name>": [...]}},
  // or null when no series was kept.
  nlohmann::ordered_json series() const;

 private:
  void sample();
  struct Name {
    std::string component, name;
    const char* unit;
  };
  // The signal of (object, what); `describe()` names it on first use only.
  template <typename F>
  std::size_t slot(const void* object, int what, F&& describe) {
    auto it = index_.find({object, what});
    if (it != index_.end()) return it->second;
    Name n = describe();
    const std::size_t k = new_slot(std::move(n.component), std::move(n.name), n.unit);
    index_.emplace(std::make_pair(object, what), k);
    return k;
  }
  std::size_t new_slot(std::string component, std::string name, const char* unit);
  void put(std::size_t slot, double v);

  System& system_;
  Host& host_;
  fabric::Time interval_ = 0;
  bool keep_ = false;
  bool running_ = false;
  std::vector<fabric::Time> times_;
  struct Slot {
    std::string component, name;
    const char* unit = "";
    std::size_t first = 0;       // the sample it appeared at
    std::vector<double> series;  // from `first` on (kept for the stats)
    double last = 0;             // the last value traced
    bool traced = false;
  };
  std::vector<Slot> slots_;
  static constexpr std::uint64_t kKeyframe = 64;  // samples between full re-sends
  std::uint64_t samples_ = 0;
  bool keyframe_ = false;
  std::map<std::pair<const void*, int>, std::size_t> index_;
  // Cumulative counters at the previous sample (for rates).
  std::map<std::string, double> last_;
  // Per link direction, then per function (read, write), in system order.
  std::vector<std::unique_ptr<fabric::TimeBins>> bins_;
};

}  // namespace pciesim::sim

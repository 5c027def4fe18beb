// A copy workload: `count` jobs of `size` bytes, `queue_depth` outstanding,
// from src to dst (host memory, the function's device memory, or a peer
// function's device memory), each destination verified against its source.
#pragma once

#include <cstdint>
#include <string>
#include <systemc>
#include <vector>

#include "fabric/common/histogram.h"
#include "fabric/common/sim_time.h"
#include "sim/config/system_config.h"

namespace pciesim::sim {

class Host;
class DmaDriver;

struct WorkloadStats {
  std::uint64_t jobs_submitted = 0;
  std::uint64_t jobs_completed = 0;
  std::uint64_t bytes = 0;
  std::uint64_t verified_bytes = 0;
  std::uint64_t mismatches = 0;  // jobs whose destination differs from the source
  std::uint64_t errors = 0;      // completions reporting an engine error
  std::uint64_t interrupts = 0;
  bool started = false;
  bool finished = false;
  bool stalled = false;  // no progress for the stall timeout
  std::string failure;
  fabric::Time start = 0;
  fabric::Time end = 0;
  fabric::Histogram latency;  // per job, submit to completion seen by the host
};

class Workload {
 public:
  // Without progress for this long the workload gives up (stalled).
  static constexpr fabric::Time kStallTimeout = 50 * fabric::kMs;

  Workload(Host& host, const WorkloadSpec& spec);
  const WorkloadSpec& spec() const { return spec_; }
  const WorkloadStats& stats() const { return stats_; }
  bool finished() const { return stats_.finished; }
  // Started (possibly still waiting for its start time) and not finished.
  bool pending() const { return spawned_ && !stats_.finished; }
  sc_core::sc_event& done_event() { return done_; }
  // Spawns the workload thread (at most once).
  void start(fabric::Time delay = 0);

 private:
  struct Buffer {
    std::uint64_t src = 0;
    std::uint64_t dst = 0;
  };
  void run();
  bool prepare(DmaDriver& drv);
  void fill_source(std::uint64_t job, unsigned slot);
  bool verify(std::uint64_t job, unsigned slot);
  std::vector<std::uint8_t> pattern(std::uint64_t job) const;
  void write_placement(const Placement& p, std::uint64_t addr, const std::vector<std::uint8_t>& b);
  std::vector<std::uint8_t> read_placement(const Placement& p, std::uint64_t addr, std::size_t len);

  Host& host_;
  WorkloadSpec spec_;
  WorkloadStats stats_;
  sc_core::sc_event done_;
  std::vector<Buffer> slots_;
  std::vector<fabric::Time> submitted_at_;
  bool spawned_ = false;
};

}  // namespace pciesim::sim

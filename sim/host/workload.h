// A copy workload: on each of its functions, `count` jobs of `size` bytes
// with `queue_depth` outstanding, from src to dst (host memory, the
// function's device memory, or a peer function's device memory), every
// destination verified against its source. Each function runs in its own
// host thread with its own buffers; statistics are summed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <systemc>
#include <vector>

#include "fabric/common/histogram.h"
#include "fabric/common/sim_time.h"
#include "sim/config/system_config.h"

namespace pciesim::sim {

class Host;
class DmaDriver;

struct WorkloadCounters {
  std::uint64_t jobs_submitted = 0;
  std::uint64_t jobs_completed = 0;
  std::uint64_t bytes = 0;
  std::uint64_t verified_bytes = 0;
  std::uint64_t mismatches = 0;  // jobs whose destination differs from the source
  std::uint64_t errors = 0;      // completions reporting an engine error
  std::uint64_t interrupts = 0;
  bool stalled = false;  // no progress for the stall timeout
  std::string failure;
};

struct WorkloadStats : WorkloadCounters {
  bool started = false;
  bool finished = false;
  fabric::Time start = 0;
  fabric::Time end = 0;
  fabric::Histogram latency;  // per job, submit to completion seen by the host
  std::map<std::string, WorkloadCounters> per_function;
};

class Workload {
 public:
  // Without progress for this long a function's part gives up (stalled):
  // the driver's watchdog, which waits for the device's own completion
  // timeout (Device Control 2) first, so that a lost read ends as the
  // device reports it.
  static constexpr fabric::Time kStallTimeout = 50 * fabric::kMs;

  Workload(Host& host, const WorkloadSpec& spec);
  const WorkloadSpec& spec() const { return spec_; }
  // A snapshot with the totals over all functions.
  WorkloadStats stats() const;
  bool finished() const { return stats_.finished; }
  // Started (possibly still waiting for its start time) and not finished.
  bool pending() const { return spawned_ && !stats_.finished; }
  sc_core::sc_event& done_event() { return done_; }
  // Spawns the workload (at most once), `delay` from now.
  void start(fabric::Time delay = 0);

 private:
  void run();
  void run_one(const std::string& function, WorkloadCounters& c);
  void run_bench(DmaDriver& drv, WorkloadCounters& c);
  std::vector<std::uint8_t> pattern(const std::string& function, std::uint64_t job) const;
  void write_placement(const std::string& function, const Placement& p, std::uint64_t addr,
                       const std::vector<std::uint8_t>& b);
  std::vector<std::uint8_t> read_placement(const std::string& function, const Placement& p,
                                           std::uint64_t addr, std::size_t len);

  Host& host_;
  WorkloadSpec spec_;
  WorkloadStats stats_;
  sc_core::sc_event done_;
  sc_core::sc_event part_done_;
  unsigned parts_running_ = 0;
  bool spawned_ = false;
};

}  // namespace pciesim::sim

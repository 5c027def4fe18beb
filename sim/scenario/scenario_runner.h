// Runs the config's scenario steps in the host's main thread after boot:
// each step waits for its `at` time (relative to the end of boot), then
// acts through the host software model.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <systemc>
#include <vector>

#include "sim/config/system_config.h"
#include "sim/scenario/checker.h"

namespace pciesim::sim {

class System;
class Host;
struct PciDev;

struct StepRecord {
  int index = 0;
  std::string label;
  std::string action;
  std::string detail;
  fabric::Time start = 0;
  fabric::Time end = 0;
  long long status = 0;     // 0 ok; -errno from the PCI core; 1 value read
  std::uint64_t value = 0;  // read steps
  bool recorded = false;    // value/number hold an observation
  double number = 0;        // the same, for comparisons (snapshots of stats)
  bool error = false;       // the step could not be carried out
  std::string output;       // lspci: the function's dump (lspci -xxxx format)
};

class ScenarioRunner {
 public:
  ScenarioRunner(System& system, Host& host, Checker& checker, std::vector<CheckResult>& results);
  void run();  // call from the host main thread
  bool done() const { return done_; }
  sc_core::sc_event& done_event() { return done_event_; }
  const std::vector<StepRecord>& records() const { return records_; }
  // "-16 (-EBUSY)": a step status for people.
  static std::string status_text(long long status);
  // The value scenario[index] recorded, if it ran and recorded one.
  const double* recorded(int index) const;

 private:
  void execute(const ScenarioStep& s, StepRecord& rec);
  // Adds the check a step's status calls for (ScenarioStep::status_policy).
  void judge_status(const ScenarioStep& s, const StepRecord& rec);
  PciDev& host_device(const ScenarioStep& s);
  void migration_step(const ScenarioStep& s, StepRecord& rec);
  std::uint64_t bar_reference(const ScenarioStep& s, const std::string& ref, PciDev& initiator);

  System& system_;
  Host& host_;
  Checker& checker_;
  std::vector<CheckResult>& results_;
  std::vector<StepRecord> records_;
  std::map<std::string, std::vector<std::uint8_t>> streams_;  // migration streams by name
  bool done_ = false;
  sc_core::sc_event done_event_;
};

}  // namespace pciesim::sim

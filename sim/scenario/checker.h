// Evaluates expectations (DESIGN.md: `expect` checks on stats, memory
// contents and register values) with zero-time debug accesses.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>

#include "sim/config/system_config.h"

namespace pciesim::sim {

class System;
class Host;

struct CheckResult {
  std::string label;        // "expect[2]"
  std::string description;  // what was checked
  std::string observed;
  bool passed = false;
  fabric::Time at = 0;
};

// Resolves "functions.ep0.pf.dma.read_bytes" in a JSON tree; keys may
// contain dots (the longest matching key wins) and arrays take indices.
const nlohmann::ordered_json* resolve_stat(const nlohmann::ordered_json& root,
                                           const std::string& path);

class Checker {
 public:
  Checker(System& system, Host& host, std::function<nlohmann::ordered_json()> stats);
  CheckResult evaluate(const Expectation& e);
  // Evaluates a comparison on a value already read by a scenario step.
  CheckResult compare(const Expectation& e, std::uint64_t raw, const std::string& what);
  // The routing ID of a target: a function name or "bb:dd.f".
  fabric::RoutingId target_rid(const std::string& target);
  // A config offset, capability-relative ("sriov" + 0x10) or absolute.
  std::uint16_t config_offset(const std::string& target, const std::string& cap, std::uint32_t off);
  // Values recorded by earlier scenario steps (equals_step).
  std::function<const double*(int)> step_value;

  // While a Batch lives, every stat check reads one stats document, built
  // at its first use (checks evaluated together at one time share it;
  // building the document costs ~0.1 ms per function).
  class Batch {
   public:
    explicit Batch(Checker& c) : c_(c) { ++c_.batch_depth_; }
    ~Batch() {
      if (--c_.batch_depth_ == 0) c_.batch_stats_.reset();
    }
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    Checker& c_;
  };

 private:
  const nlohmann::ordered_json& stats_doc();
  bool resolve_operand(const Expectation& e, Comparison* cmp, std::string* why);
  std::string operand_note(const Expectation& e, const Comparison& cmp) const;
  System& system_;
  Host& host_;
  std::function<nlohmann::ordered_json()> stats_;
  std::optional<nlohmann::ordered_json> batch_stats_;
  unsigned batch_depth_ = 0;
};

}  // namespace pciesim::sim

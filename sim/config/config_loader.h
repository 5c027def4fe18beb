// Loading a SystemConfig from YAML (file, text or an in-memory tree, e.g.
// built from a Python dict), with `--set key=value` overrides applied to the
// document first. Every error is a ConfigError naming file:line:col (or the
// key path) and what was expected.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

#include "sim/config/system_config.h"

namespace pciesim::sim {

SystemConfig load_config_file(const std::string& path,
                              const std::vector<std::string>& overrides = {});
SystemConfig load_config_text(const std::string& text, const std::string& source,
                              const std::vector<std::string>& overrides = {});
SystemConfig load_config_tree(YAML::Node root, const std::string& source,
                              const std::vector<std::string>& overrides = {});
// One fault mapping (as in faults[]) from YAML / JSON text; `source`
// names it in errors.
fabric::FaultSpec load_fault_text(const std::string& text, const std::string& source);
// A migration (vm, to and the policy keys of a `migrate` step) from YAML /
// JSON text; `source` names it in errors.
MigrationPolicy load_migration_policy_text(const std::string& text, const std::string& source);
// The records of an aer-inject file (fabric/fault/aer_inject.h) as
// aer_report faults at `at`, addressed by PCI address; UsageError naming
// "source:line" for a bad file.
std::vector<fabric::FaultSpec> aer_inject_faults(const std::string& text, const std::string& source,
                                                 const std::string& label, fabric::Time at);

// Applies "a.b[2].c=value" (list items may also be addressed by their
// `name`: "endpoints.ep0.sriov.num_vfs=4"); returns the key path it set,
// with list items as indexes ("endpoints[0].sriov.num_vfs").
std::string apply_override(YAML::Node& root, const std::string& assignment);

// Markdown reference of every key, generated from the readers themselves.
std::string config_reference_markdown();

// Capability names usable in register offsets ("sriov+0x10", "exp+8"):
// name -> (extended capability?, capability ID).
const std::map<std::string, std::pair<bool, unsigned>>& capability_names();

}  // namespace pciesim::sim

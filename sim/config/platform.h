// Platform presets: named sets of host and root-complex timing parameters
// (`platform: <name>` in a config, docs/timing.md "Platforms"). A preset
// sets defaults; every field stays overridable in host, root_complex and
// iommu. Each value's source is in platform.cpp and docs/timing.md.
#pragma once

#include <string>
#include <vector>

namespace pciesim::sim {

struct SystemConfig;

struct PlatformPreset {
  const char* name;
  const char* summary;
  void (*apply)(SystemConfig&);
};

// Every preset; the first is the default.
const std::vector<PlatformPreset>& platform_presets();
const PlatformPreset* find_platform(const std::string& name);
constexpr const char* kDefaultPlatform = "xeon-e5-v4";

}  // namespace pciesim::sim

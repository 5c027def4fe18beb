#include "fabric/common/sim_time.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace pciesim::fabric {

std::string format_time(Time t) {
  struct Unit {
    Time scale;
    const char* name;
  };
  static const Unit units[] = {{kSec, "s"}, {kMs, "ms"}, {kUs, "us"}, {kNs, "ns"}, {kPs, "ps"}};
  for (const Unit& u : units) {
    if (t >= u.scale) {
      char buf[64];
      double v = static_cast<double>(t) / static_cast<double>(u.scale);
      std::snprintf(buf, sizeof buf, "%.6g %s", v, u.name);
      return buf;
    }
  }
  return std::to_string(t) + " fs";
}

bool parse_time(const std::string& text, Time* out) {
  const char* s = text.c_str();
  while (std::isspace(static_cast<unsigned char>(*s)))
    ++s;
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || !std::isfinite(v) || v < 0) return false;
  while (std::isspace(static_cast<unsigned char>(*end)))
    ++end;
  std::string unit(end);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back())))
    unit.pop_back();
  Time scale;
  if (unit == "s")
    scale = kSec;
  else if (unit == "ms")
    scale = kMs;
  else if (unit == "us")
    scale = kUs;
  else if (unit == "ns")
    scale = kNs;
  else if (unit == "ps")
    scale = kPs;
  else if (unit == "fs")
    scale = kFs;
  else
    return false;
  double fs = v * static_cast<double>(scale);
  if (fs >= 1.8e19) return false;  // beyond the 64-bit femtosecond range
  *out = static_cast<Time>(std::llround(fs));
  return true;
}

}  // namespace pciesim::fabric

#include "sim/lspci/pci_ids.h"

#include <cstdio>
#include <fstream>
#include <string>

namespace pciesim::sim {

namespace {
bool hexval(const std::string& s, std::size_t pos, std::size_t len, std::uint32_t* out) {
  if (pos + len > s.size()) return false;
  std::uint32_t v = 0;
  for (std::size_t i = pos; i < pos + len; ++i) {
    char c = s[i];
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (d < 0) return false;
    v = v * 16 + static_cast<std::uint32_t>(d);
  }
  *out = v;
  return true;
}
}  // namespace

PciIds::PciIds(const std::string& path) {
  const char* candidates[] = {"/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids",
                              "/usr/share/pci.ids"};
  std::ifstream in;
  if (!path.empty()) in.open(path);
  for (const char* c : candidates) {
    if (in.is_open()) break;
    in.open(c);
  }
  if (!in.is_open()) return;
  loaded_ = true;
  std::string line;
  std::uint32_t vendor = 0, device = 0, cls = 0, sub = 0;
  bool in_class = false;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::uint32_t a = 0, b = 0;
    if (line[0] == 'C' && line.size() > 2 && line[1] == ' ') {
      if (hexval(line, 2, 2, &a)) {
        cls = a;
        in_class = true;
        classes_[cls] = line.substr(line.find_first_not_of(' ', 4));
      }
      continue;
    }
    if (line[0] != '\t' && line[0] != 'C') {
      if (line.size() > 6 && line[0] >= '0' && hexval(line, 0, 4, &a) && line[4] == ' ') {
        vendor = a;
        in_class = false;
        vendors_[vendor] = line.substr(6);
      } else {
        in_class = false;  // other sections (device classes are last; "X" etc.)
        vendor = 0xffffffff;
      }
      continue;
    }
    if (line.size() > 1 && line[0] == '\t' && line[1] != '\t') {
      if (in_class) {
        if (hexval(line, 1, 2, &a)) {
          sub = a;
          subclasses_[(cls << 8) | sub] = line.substr(line.find_first_not_of(' ', 3));
        }
      } else if (vendor != 0xffffffff && hexval(line, 1, 4, &a) && line.size() > 7) {
        device = a;
        devices_[(vendor << 16) | device] = line.substr(7);
      }
      continue;
    }
    if (line.size() > 2 && line[0] == '\t' && line[1] == '\t') {
      if (in_class) {
        if (hexval(line, 2, 2, &a))
          progifs_[(cls << 16) | (sub << 8) | a] = line.substr(line.find_first_not_of(' ', 4));
      } else if (vendor != 0xffffffff && hexval(line, 2, 4, &a) && hexval(line, 7, 4, &b) &&
                 line.size() > 13) {
        std::uint64_t key = (static_cast<std::uint64_t>(vendor) << 48) |
                            (static_cast<std::uint64_t>(device) << 32) | (a << 16) | b;
        subsystems_[key] = line.substr(13);
      }
    }
  }
}

const PciIds& PciIds::instance() {
  static const PciIds ids;
  return ids;
}

std::string PciIds::vendor_device(std::uint16_t v, std::uint16_t d) const {
  char num[16];
  std::snprintf(num, sizeof num, "%04x:%04x", v, d);
  auto vi = vendors_.find(v);
  auto di = devices_.find((static_cast<std::uint32_t>(v) << 16) | d);
  if (vi != vendors_.end() && di != devices_.end()) return vi->second + " " + di->second;
  if (vi == vendors_.end()) return std::string("Device ") + num;
  return vi->second + " Device " + (num + 5);
}

std::string PciIds::class_name(std::uint16_t cls) const {
  char num[16];
  std::snprintf(num, sizeof num, "%04x", cls);
  auto si = subclasses_.find(cls);
  if (si != subclasses_.end()) return si->second;
  auto ci = classes_.find(cls >> 8);
  if (ci != classes_.end()) return ci->second + " [" + num + "]";
  return std::string("Class ") + num;
}

std::string PciIds::progif(std::uint16_t cls, std::uint8_t pif) const {
  auto it = progifs_.find((static_cast<std::uint32_t>(cls) << 8) | pif);
  return it == progifs_.end() ? std::string() : it->second;
}

std::string PciIds::subsystem(std::uint16_t v, std::uint16_t d, std::uint16_t sv,
                              std::uint16_t sd) const {
  char num[16];
  std::snprintf(num, sizeof num, "%04x:%04x", sv, sd);
  auto vi = vendors_.find(sv);
  std::uint64_t key = (static_cast<std::uint64_t>(v) << 48) |
                      (static_cast<std::uint64_t>(d) << 32) |
                      (static_cast<std::uint64_t>(sv) << 16) | sd;
  auto si = subsystems_.find(key);
  std::string dn;
  if (si != subsystems_.end())
    dn = si->second;
  else if (v == sv && d == sd) {
    auto di = devices_.find((static_cast<std::uint32_t>(v) << 16) | d);
    if (di != devices_.end()) dn = di->second;
  }
  if (vi != vendors_.end() && !dn.empty()) return vi->second + " " + dn;
  if (vi == vendors_.end()) return std::string("Device ") + num;
  return vi->second + " Device " + (num + 5);
}

}  // namespace pciesim::sim

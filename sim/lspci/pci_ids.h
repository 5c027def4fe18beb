// Names from the pci.ids database, looked up the way pciutils' names.c
// does, so that pciesim's lspci output matches the real tool's.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace pciesim::sim {

class PciIds {
 public:
  // Loads the first of /usr/share/misc/pci.ids, /usr/share/hwdata/pci.ids,
  // /usr/share/pci.ids that exists (or `path`). Without one, lookups fail
  // and names come out numeric, as lspci's do.
  explicit PciIds(const std::string& path = "");
  static const PciIds& instance();

  // "Vendor Device", "Vendor Device 0001", "Device 5ec0:0001".
  std::string vendor_device(std::uint16_t vendor, std::uint16_t device) const;
  // Subclass name, "Class name [cc00]", or "Class cc00".
  std::string class_name(std::uint16_t cls) const;
  // Prog-if name or empty.
  std::string progif(std::uint16_t cls, std::uint8_t pif) const;
  std::string subsystem(std::uint16_t vendor, std::uint16_t device, std::uint16_t sv,
                        std::uint16_t sd) const;
  bool loaded() const { return loaded_; }

 private:
  std::map<std::uint32_t, std::string> vendors_;     // v
  std::map<std::uint32_t, std::string> devices_;     // v<<16|d
  std::map<std::uint64_t, std::string> subsystems_;  // v,d,sv,sd
  std::map<std::uint32_t, std::string> classes_;     // c
  std::map<std::uint32_t, std::string> subclasses_;  // c<<8|s
  std::map<std::uint32_t, std::string> progifs_;     // c<<16|s<<8|p
  bool loaded_ = false;
};

}  // namespace pciesim::sim

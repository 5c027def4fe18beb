// `pciesim lspci`: the host-visible functions printed in the text formats
// of pciutils' lspci (3.9): default terse lines, -v, -t (tree, -tv),
// -x/-xxx/-xxxx hex dumps that the real `lspci -F FILE` decodes, and -n
// numeric IDs. Verbosity above -v is not produced natively: decode a dump
// with the real lspci (`pciesim lspci CFG -xxxx > d && lspci -F d -vv`).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fabric/tlp/routing_id.h"

namespace pciesim::sim {

class Host;
struct PciDev;

struct LspciFunction {
  fabric::RoutingId rid;
  std::array<std::uint8_t, 4096> config{};
  std::string driver;                        // "Kernel driver in use", if bound
  std::array<std::uint64_t, 6> bar_sizes{};  // as the host sized them
  // What the OS reports for regions the function's own BARs do not hold
  // (a VF's, carved from the PF's VF BARs): address and BAR type bits, as a
  // live lspci reads them from sysfs and prints "[virtual]".
  std::array<std::uint64_t, 6> os_addrs{};
  std::array<std::uint32_t, 6> os_flags{};
};

struct LspciOptions {
  int verbose = 0;  // 0 or 1
  int hex = 0;      // 0, 1 (-x: 64 bytes), 3 (-xxx: 256), 4 (-xxxx: 4096)
  bool tree = false;
  bool numeric = false;
};

// The functions the host enumerated, read with zero-time debug accesses.
std::vector<LspciFunction> lspci_snapshot(Host& host);
LspciFunction lspci_function(Host& host, PciDev& dev);
std::string format_lspci(const std::vector<LspciFunction>& functions, const LspciOptions& o);

}  // namespace pciesim::sim

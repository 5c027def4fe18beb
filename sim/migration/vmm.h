// The VMM's live migration of a whole VM (docs/migration.md "Migrating a
// VM"; MIGRATION.md 4-5; QEMU migration/ram.c and hw/vfio/migration.c).
//
// A migration moves the guest of one VM, with its assigned functions, to a
// destination VM waiting for it in the same simulated machine (`incoming`:
// its own RAM elsewhere in host memory, its own functions, no guest yet):
//
//   setup       CPU dirty log on; DMA dirty tracking chosen as QEMU does
//               (device logging if every device offers it, else the IOMMU's
//               dirty bits, else every page counts as dirty at every pass);
//               devices with PRE_COPY enter it; destination devices
//               RESUMING.
//   pre-copy    pass 0 sends all of guest RAM, each later pass what the
//               trackers reported dirty since, at the migration bandwidth,
//               plus the devices' pre-copy data; it stops when what is left
//               fits the downtime limit, or after max_iterations.
//   switchover  vCPUs paused; every device to RUNNING_P2P / PRE_COPY_P2P,
//               then each to STOP_COPY and its final image read; the last
//               dirty pages sent; destination: images loaded (STOP), all
//               RUNNING_P2P, all RUNNING; the guest resumes there.
//
// The simulator checks what a real VMM cannot: every page written after it
// was last copied must have been re-sent (the dirty ledger: missed pages),
// destination RAM and device state must equal the source's at switchover
// byte for byte, and nothing may reach a device after its image was taken
// (the P2P race; `p2p_quiesce: false` shows it). A failing device step or a
// cancel returns the source to RUNNING, as QEMU does.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "sim/config/system_config.h"

namespace pciesim::sim {

class Host;

class Vmm {
 public:
  explicit Vmm(Host& host) : host_(host) {}
  // Runs one migration in the calling host thread (it takes simulated
  // time) and returns its report; UsageError for arguments that name no
  // VM or function, or a destination that cannot take the guest. A refusal
  // by policy, a failure and a cancel are reports (status and error).
  nlohmann::ordered_json migrate(const MigrationPolicy& policy);
  // migrations.<name>: every report so far.
  nlohmann::ordered_json stats() const;
  const nlohmann::ordered_json* report(const std::string& name) const;

 private:
  Host& host_;
  std::map<std::string, nlohmann::ordered_json> reports_;
};

}  // namespace pciesim::sim

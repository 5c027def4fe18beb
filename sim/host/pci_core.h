// The host's PCI core, modelled on Linux drivers/pci: depth-first bus
// numbering (pci_scan_child_bus), BAR sizing and assignment with bridge
// windows, MPS/MRRS/tag configuration, SR-IOV enable/disable with
// sriov_numvfs semantics (iov.c), and the reset methods with their waits
// (pci.c: pcie_flr, pci_pm_reset, pci_reset_secondary_bus, pci_dev_wait,
// pci_reset_function with save/restore). Every action goes through the
// HostCpu, so it takes simulated time and sees what real software would.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/routing_id.h"
#include "models/host_memory/host_memory.h"
#include "sim/config/system_config.h"
#include "sim/host/host_cpu.h"

namespace pciesim::sim {

class System;

struct PciBar {
  std::uint64_t addr = 0;
  std::uint64_t size = 0;  // per VF for VF BARs
  bool is64 = false;
  bool pref = false;
};

struct MsixEntry {
  std::uint64_t address = 0;
  std::uint32_t data = 0;
  bool masked = true;
};

struct PciDev {
  // Creation order (PciCore numbers every device it creates): the key of
  // every container of devices, so their iteration order never depends on
  // where the heap put them.
  std::uint64_t seq = 0;
  fabric::RoutingId rid;
  std::string name;  // the system's name for it, if any
  std::uint16_t vendor = 0;
  std::uint16_t device = 0;
  std::uint32_t class_code = 0;
  std::uint8_t header_type = 0;
  bool bridge = false;
  std::uint8_t pcie_type = 0;
  std::uint16_t exp = 0, pm = 0, msix = 0, sriov = 0, ari = 0, acs = 0, aer = 0, dpc = 0;
  PciDev* parent = nullptr;  // bridge above (nullptr on bus 0)
  std::array<PciBar, 6> bars{};
  // Bridges.
  unsigned secondary = 0;
  unsigned subordinate = 0;
  models::MemoryRange mem_window{};
  models::MemoryRange pref_window{};
  // SR-IOV PF: what the host believes.
  unsigned total_vfs = 0;
  unsigned num_vfs = 0;
  std::uint16_t vf_offset = 0;
  std::uint16_t vf_stride = 0;
  std::array<PciBar, 6> vf_bars{};
  bool autoprobe = true;
  std::vector<PciDev*> vfs;
  // VFs.
  bool is_vf = false;
  bool removed = false;  // no longer in the device list (a VF that was disabled)
  PciDev* physfn = nullptr;
  unsigned vf_number = 0;
  // Host state.
  std::string driver;  // "" = unbound
  std::vector<MsixEntry> msix_entries;
  bool msix_enabled = false;
  struct Saved {
    bool valid = false;
    std::array<std::uint32_t, 16> header{};
    std::uint16_t devctl = 0, lnkctl = 0, devctl2 = 0, lnkctl2 = 0, rtctl = 0, sltctl = 0;
    std::uint16_t acs_ctrl = 0;
    std::uint16_t msix_ctrl = 0;
    // pci_save_aer_state: masks and severity (and the Root Error Command).
    std::uint32_t aer_uncor_mask = 0, aer_uncor_sever = 0, aer_cor_mask = 0, aer_root_cmd = 0;
  } saved;
  // The PCI core's own SR-IOV state (Linux struct pci_sriov: ctrl,
  // num_VFs, pgsz; VF BAR addresses are vf_bars). sriov_restore_state
  // writes these back, not what the hardware holds at save time.
  std::uint16_t sriov_ctrl = 0;
  std::uint32_t sriov_pgsz = 0;
};

struct PciDevLess {
  bool operator()(const PciDev* a, const PciDev* b) const { return a->seq < b->seq; }
};

struct PciCoreStats {
  std::uint64_t devices_found = 0;
  std::uint64_t rrs_waits = 0;
  std::uint64_t resets = 0;
  std::uint64_t reset_failures = 0;
  std::uint64_t sriov_enables = 0;
  std::uint64_t sriov_enable_failures = 0;  // -EIO: a VF that does not answer
  std::uint64_t sriov_disables = 0;
};

class PciCore {
 public:
  PciCore(HostCpu& cpu, System& system, const HostSpec& host, const models::RootComplexParams& rc);

  // Scan, assign resources, configure MPS/MRRS/tags, enable bridges.
  void enumerate();

  std::vector<PciDev*> devices();  // sorted by routing ID
  PciDev* find(fabric::RoutingId rid);
  PciDev* find(const std::string& name);
  const PciCoreStats& stats() const { return stats_; }

  // Address of a BAR as the host assigned it (VFs: from the PF's VF BARs).
  std::uint64_t bar_address(const PciDev& dev, unsigned bar) const;
  std::uint64_t bar_size(const PciDev& dev, unsigned bar) const;
  // The address of an MMIO access of `size` bytes at `offset` in `bar`, as
  // the host mapped it; UsageError (named `who`) if the BAR is not there or
  // the access does not lie wholly inside it (it would reach a neighbour,
  // e.g. the next VF's registers).
  std::uint64_t mmio_address(const PciDev& dev, unsigned bar, std::uint64_t offset, unsigned size,
                             const std::string& who) const;

  void enable_memory(PciDev& dev, bool on);  // Command MSE (pci_enable_device)
  void set_master(PciDev& dev, bool on);     // Command BME (pci_set_master)
  void write_msix_entry(PciDev& dev, unsigned vector, const MsixEntry& e);
  void enable_msix(PciDev& dev, bool on);

  // sriov_numvfs store: 0 on success, else -ERANGE, -EBUSY, -ENOENT,
  // -ENOMEM, -EIO (as Linux returns).
  int sriov_numvfs(PciDev& pf, unsigned num);
  // pci_reset_function with a method ("auto", "flr", "pm", "bus"): 0 or -errno.
  int reset_function(PciDev& dev, const std::string& method);
  // pcie_flr alone (no save/restore): the host's view may go stale.
  int bare_flr(PciDev& dev);
  // Secondary Bus Reset of a bridge; with `restore`, like pci_reset_bus
  // (save everything below, reset, restore).
  int secondary_bus_reset(PciDev& bridge, bool restore);
  // pci_set_power_state for D0 / D3hot.
  void set_power_state(PciDev& dev, unsigned state);

  void save_state(PciDev& dev);
  void restore_state(PciDev& dev);
  // Every function below `bridge` (its whole hierarchy, VFs included).
  std::vector<PciDev*> below(PciDev& bridge);
  // pci_bridge_wait_for_secondary_bus: 0, or -ENOTTY when nothing below
  // answers in time.
  int wait_for_secondary_bus(PciDev& bridge);

  // Driver binding hooks (the Host binds the native driver).
  std::function<void(PciDev&)> on_added;     // a VF appeared (autoprobe decides)
  std::function<void(PciDev&)> on_removing;  // a VF is about to go away
  std::function<void(PciDev&)> on_reset_prepare;
  std::function<void(PciDev&)> on_reset_done;
  // Things the PCI core tells the user (Linux logs them): an FLR that
  // waited for Transactions Pending, a reset that gave up.
  std::function<void(const std::string&)> on_note;

  static constexpr int kErange = -34, kEbusy = -16, kEnoent = -2, kEnomem = -12, kEio = -5,
                       kEnotty = -25, kEinval = -22;

 private:
  // Enumeration.
  PciDev* probe(fabric::RoutingId rid, PciDev* parent);
  void scan_bus(unsigned bus, PciDev* bridge);
  void read_capabilities(PciDev& d);
  void size_bars(PciDev& d);
  void sriov_init(PciDev& pf);
  bool ari_forwarding(const PciDev* bridge) const;
  // Resources.
  struct Item {
    std::uint64_t size;
    std::uint64_t align;
    PciDev* dev;
    int bar;  // 0-5 BARs, 6-11 VF BARs, -1 a child bridge's window
    bool pref;
    PciDev* child_bridge;
  };
  void window_requirements(PciDev& bridge, std::uint64_t* np_size, std::uint64_t* np_align,
                           std::uint64_t* p_size, std::uint64_t* p_align);
  void collect_items(PciDev& bridge, bool pref, std::vector<Item>* items);
  void assign_bridge(PciDev& bridge, std::uint64_t np_base, std::uint64_t np_size,
                     std::uint64_t p_base, std::uint64_t p_size);
  void program_windows(PciDev& bridge);
  void program_bar(PciDev& dev, int bar, std::uint64_t addr);
  void configure_device(PciDev& d, std::uint32_t mps);
  std::uint32_t subtree_mps(PciDev& root_port);
  // Resets and waits.
  bool wait_pending_transactions(PciDev& dev);
  int dev_wait(PciDev& dev, fabric::Time timeout);
  std::uint32_t read_vendor_waiting_rrs(fabric::RoutingId rid);
  int pm_reset(PciDev& dev);
  int bus_reset_function(PciDev& dev);
  void sriov_restore_state(PciDev& pf);
  void restore_vf_bars(PciDev& pf);
  void reset_secondary_bus(PciDev& bridge);
  void add_vfs(PciDev& pf, unsigned num);
  void remove_vfs(PciDev& pf);
  PciDev* root_port_of(PciDev& dev);
  std::string name_of(fabric::RoutingId rid);

  HostCpu& cpu_;
  System& system_;
  HostSpec host_;
  models::RootComplexParams rc_;
  std::vector<std::unique_ptr<PciDev>> devs_;
  std::vector<std::unique_ptr<PciDev>> removed_;  // removed VFs, kept valid (remove_vfs)
  std::uint64_t dev_seq_ = 0;                     // PciDev::seq of the last one created
  unsigned last_bus_ = 0;
  PciCoreStats stats_;
};

}  // namespace pciesim::sim

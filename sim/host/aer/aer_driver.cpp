#include "sim/host/aer/aer_driver.h"

#include <linux/pci_regs.h>

#include <algorithm>
#include <cstdio>

#include "fabric/config_space/capabilities.h"
#include "fabric/kernel/kernel_context.h"
#include "sim/host/host.h"
#include "sim/trace/trace_span.h"

namespace pciesim::sim {

using namespace fabric;

namespace {
constexpr std::size_t kMaxMessages = 1000;
constexpr std::size_t kMaxRecords = 1000;
// PCI_EXP_AER_FLAGS (aer.c): what pci_aer_init enables in Device Control.
constexpr std::uint16_t kAerFlags =
    PCI_EXP_DEVCTL_CERE | PCI_EXP_DEVCTL_NFERE | PCI_EXP_DEVCTL_FERE | PCI_EXP_DEVCTL_URRE;

const char* const kUncNames[32] = {"Undefined",
                                   nullptr,
                                   nullptr,
                                   nullptr,
                                   "DLP",
                                   "SDES",
                                   nullptr,
                                   nullptr,
                                   nullptr,
                                   nullptr,
                                   nullptr,
                                   nullptr,
                                   "TLP",
                                   "FCP",
                                   "CmpltTO",
                                   "CmpltAbrt",
                                   "UnxCmplt",
                                   "RxOF",
                                   "MalfTLP",
                                   "ECRC",
                                   "UnsupReq",
                                   "ACSViol",
                                   "UncorrIntErr",
                                   "BlockedTLP",
                                   "AtomicOpBlocked",
                                   "TLPBlockedErr",
                                   "PoisonTLPBlocked",
                                   nullptr,
                                   nullptr,
                                   nullptr,
                                   nullptr,
                                   nullptr};
const char* const kCorNames[16] = {
    "RxErr",    nullptr, nullptr, nullptr, nullptr,   nullptr,       "BadTLP",     "BadDLLP",
    "Rollover", nullptr, nullptr, nullptr, "Timeout", "NonFatalErr", "CorrIntErr", "HeaderOF"};

// merge_result (err.c).
ErsResult merge(ErsResult orig, ErsResult vote) {
  if (vote == ErsResult::kNoAerDriver) return ErsResult::kNoAerDriver;
  if (vote == ErsResult::kNone) return orig;
  switch (orig) {
    case ErsResult::kCanRecover:
    case ErsResult::kRecovered:
      return vote;
    case ErsResult::kDisconnect:
      return vote == ErsResult::kNeedReset ? ErsResult::kNeedReset : orig;
    default:
      return orig;
  }
}
}  // namespace

const char* to_string(ErsResult r) {
  switch (r) {
    case ErsResult::kNone:
      return "none";
    case ErsResult::kCanRecover:
      return "can_recover";
    case ErsResult::kNeedReset:
      return "need_reset";
    case ErsResult::kDisconnect:
      return "disconnect";
    case ErsResult::kRecovered:
      return "recovered";
    case ErsResult::kNoAerDriver:
      return "no_aer_driver";
  }
  return "?";
}

AerDriver::AerDriver(sc_core::sc_module_name name, Host& host)
    : sc_core::sc_module(name), host_(host) {
  SC_THREAD(service);
}

void AerDriver::log(const std::string& m) {
  trace_host_instant("host", "aer", [&] { return std::make_pair(m, std::string()); });
  if (stats_.messages.size() < kMaxMessages)
    stats_.messages.push_back(format_time(HostCpu::now()) + " " + m);
}

void AerDriver::init() {
  HostCpu& cpu = host_.cpu();
  const HostSpec& hs = host_.spec();
  for (PciDev* d : host_.pci().devices()) {
    if (!d->exp || d->is_vf) continue;  // a VF's reporting enables are its PF's
    // pci_aer_init: error reporting enabled in Device Control.
    const std::uint16_t ctl =
        static_cast<std::uint16_t>(cpu.config_read(d->rid, d->exp + PCI_EXP_DEVCTL, 2));
    cpu.config_write(d->rid, d->exp + PCI_EXP_DEVCTL, 2, ctl | kAerFlags);
    if (d->aer && hs.ecrc) {
      // pcie_set_ecrc_checking with pci=ecrc=on: generation and checking.
      const std::uint32_t cap = cpu.config_read(d->rid, d->aer + PCI_ERR_CAP, 4);
      std::uint32_t v = cap;
      if (cap & PCI_ERR_CAP_ECRC_GENC) v |= PCI_ERR_CAP_ECRC_GENE;
      if (cap & PCI_ERR_CAP_ECRC_CHKC) v |= PCI_ERR_CAP_ECRC_CHKE;
      cpu.config_write(d->rid, d->aer + PCI_ERR_CAP, 4, v);
    }
    if (d->bridge) {
      // pci_configure_serr: bridges forward ERR_* from below.
      const std::uint16_t bc =
          static_cast<std::uint16_t>(cpu.config_read(d->rid, PCI_BRIDGE_CONTROL, 2));
      cpu.config_write(d->rid, PCI_BRIDGE_CONTROL, 2, bc | PCI_BRIDGE_CTL_SERR);
    }
    if (d->pcie_type == PCI_EXP_TYPE_ROOT_PORT && d->aer) {
      // aer_enable_rootport: no system error on ERR_*, stale status
      // cleared, the root port's interrupt for every severity.
      const std::uint16_t rt =
          static_cast<std::uint16_t>(cpu.config_read(d->rid, d->exp + PCI_EXP_RTCTL, 2));
      cpu.config_write(d->rid, d->exp + PCI_EXP_RTCTL, 2,
                       rt & ~(PCI_EXP_RTCTL_SECEE | PCI_EXP_RTCTL_SENFEE | PCI_EXP_RTCTL_SEFEE));
      cpu.config_write(d->rid, d->aer + PCI_ERR_ROOT_STATUS, 4,
                       cpu.config_read(d->rid, d->aer + PCI_ERR_ROOT_STATUS, 4));
      cpu.config_write(
          d->rid, d->aer + PCI_ERR_ROOT_COMMAND, 4,
          PCI_ERR_ROOT_CMD_COR_EN | PCI_ERR_ROOT_CMD_NONFATAL_EN | PCI_ERR_ROOT_CMD_FATAL_EN);
    }
    if (d->dpc) {
      // dpc_probe: trigger on ERR_FATAL, interrupt enabled.
      const std::uint16_t c =
          static_cast<std::uint16_t>(cpu.config_read(d->rid, d->dpc + PCI_EXP_DPC_CTL, 2));
      cpu.config_write(d->rid, d->dpc + PCI_EXP_DPC_CTL, 2,
                       (c & 0xfff4) | PCI_EXP_DPC_CTL_EN_FATAL | PCI_EXP_DPC_CTL_INT_EN);
    }
  }
}

void AerDriver::root_port_interrupt(unsigned port, Time t) {
  queue_.push_back({false, port, RoutingId(), t});
  wake_.notify(to_sc(t > now_fs() ? t - now_fs() : 0) + to_sc(host_.spec().interrupt_latency));
}

void AerDriver::dpc_interrupt(RoutingId port, Time t) {
  queue_.push_back({true, 0, port, t});
  wake_.notify(to_sc(t > now_fs() ? t - now_fs() : 0) + to_sc(host_.spec().interrupt_latency));
}

void AerDriver::service() {
  KernelContext::guard([this] {
    for (;;) {
      while (queue_.empty() || !host_.booted())
        sc_core::wait(wake_);
      const Event e = queue_.front();
      handling_ = true;
      const Time due = e.at + host_.spec().interrupt_latency;
      if (now_fs() < due) sc_core::wait(to_sc(due - now_fs()));
      queue_.pop_front();
      if (e.dpc) {
        ++stats_.dpc_interrupts;
        handle_dpc(e.rid);
      } else {
        ++stats_.interrupts;
        handle_root_port(e.port);
      }
      handling_ = false;
      if (queue_.empty()) idle_.notify(sc_core::SC_ZERO_TIME);
    }
  });
}

std::string AerDriver::decode(PciDev& dev, bool correctable) {
  HostCpu& cpu = host_.cpu();
  if (!dev.aer) return "";
  const std::uint32_t st = cpu.config_read(
      dev.rid, dev.aer + (correctable ? PCI_ERR_COR_STATUS : PCI_ERR_UNCOR_STATUS), 4);
  const std::uint32_t mask =
      cpu.config_read(dev.rid, dev.aer + (correctable ? PCI_ERR_COR_MASK : PCI_ERR_UNCOR_MASK), 4);
  std::string out;
  char buf[64];
  std::snprintf(buf, sizeof buf, "status 0x%08x mask 0x%08x:", st, mask);
  out = buf;
  for (unsigned b = 0; b < (correctable ? 16u : 32u); ++b) {
    if (!((st >> b) & 1)) continue;
    const char* n = correctable ? kCorNames[b] : kUncNames[b];
    out += " ";
    out += n ? n : "?";
    if ((mask >> b) & 1) out += "(masked)";
  }
  if (!correctable && st != 0xffffffffu) {
    const std::uint32_t cap = cpu.config_read(dev.rid, dev.aer + PCI_ERR_CAP, 4);
    std::snprintf(buf, sizeof buf, "; first %u; header", cap & 0x1f);
    out += buf;
    for (unsigned i = 0; i < 4; ++i) {
      std::snprintf(buf, sizeof buf, " %08x",
                    cpu.config_read(dev.rid, dev.aer + PCI_ERR_HEADER_LOG + 4 * i, 4));
      out += buf;
    }
  }
  return out;
}

bool AerDriver::is_source(PciDev& dev, bool correctable) const {
  // is_error_source (aer.c): an unmasked status bit set.
  if (!dev.aer || dev.removed) return false;
  HostCpu& cpu = host_.cpu();
  const std::uint32_t st = cpu.config_read(
      dev.rid, dev.aer + (correctable ? PCI_ERR_COR_STATUS : PCI_ERR_UNCOR_STATUS), 4);
  if (st == 0xffffffffu) return false;
  const std::uint32_t mask =
      cpu.config_read(dev.rid, dev.aer + (correctable ? PCI_ERR_COR_MASK : PCI_ERR_UNCOR_MASK), 4);
  return (st & ~mask) != 0;
}

void AerDriver::handle_root_port(unsigned port) {
  HostCpu& cpu = host_.cpu();
  PciDev* rp = host_.pci().find(RoutingId(0, port + 1, 0));
  if (!rp || !rp->aer) return;
  // aer_isr: read and clear the Root Error Status, then each source.
  const std::uint32_t st = cpu.config_read(rp->rid, rp->aer + PCI_ERR_ROOT_STATUS, 4);
  const std::uint32_t src = cpu.config_read(rp->rid, rp->aer + PCI_ERR_ROOT_ERR_SRC, 4);
  if (!(st & (PCI_ERR_ROOT_COR_RCV | PCI_ERR_ROOT_UNCOR_RCV))) return;
  cpu.config_write(rp->rid, rp->aer + PCI_ERR_ROOT_STATUS, 4, st);
  for (int pass = 0; pass < 2; ++pass) {
    const bool cor = pass == 0;
    if (!(st & (cor ? PCI_ERR_ROOT_COR_RCV : PCI_ERR_ROOT_UNCOR_RCV))) continue;
    const bool multi = st & (cor ? PCI_ERR_ROOT_MULTI_COR_RCV : PCI_ERR_ROOT_MULTI_UNCOR_RCV);
    const bool fatal = !cor && (st & PCI_ERR_ROOT_FIRST_FATAL);
    const RoutingId id(static_cast<std::uint16_t>(cor ? (src & 0xffff) : (src >> 16)));
    // find_source_device: the reported ID, and with several errors every
    // function below the root port that logged one.
    std::vector<PciDev*> sources;
    if (PciDev* d = host_.pci().find(id); d && !d->removed) sources.push_back(d);
    if (multi || sources.empty()) {
      std::vector<PciDev*> all = host_.pci().below(*rp);
      all.insert(all.begin(), rp);
      for (PciDev* d : all)
        if (std::find(sources.begin(), sources.end(), d) == sources.end() && is_source(*d, cor))
          sources.push_back(d);
    }
    if (sources.empty()) {
      log("AER: " + std::string(cor ? "correctable" : "uncorrectable") +
          " error message received from " + id.str() + ", no error source found");
      continue;
    }
    for (PciDev* d : sources)
      handle_source(*d, cor, fatal);
  }
}

void AerDriver::handle_source(PciDev& dev, bool correctable, bool fatal) {
  HostCpu& cpu = host_.cpu();
  const std::string errors = decode(dev, correctable);
  const char* sev = correctable ? "Correctable"
                    : fatal     ? "Uncorrectable (Fatal)"
                                : "Uncorrectable (Non-Fatal)";
  log(dev.name + " (" + dev.rid.str() + "): AER: " + sev + " error: " + errors);
  if (correctable) {
    ++stats_.correctable;
    // The correctable status is cleared (aer_process_err_devices).
    if (dev.aer)
      cpu.config_write(dev.rid, dev.aer + PCI_ERR_COR_STATUS, 4,
                       cpu.config_read(dev.rid, dev.aer + PCI_ERR_COR_STATUS, 4));
    return;
  }
  if (fatal)
    ++stats_.fatal;
  else
    ++stats_.non_fatal;
  do_recovery(dev, fatal, false, errors);
}

void AerDriver::handle_dpc(RoutingId port) {
  HostCpu& cpu = host_.cpu();
  PciDev* p = host_.pci().find(port);
  if (!p || !p->dpc) return;
  const std::uint16_t st =
      static_cast<std::uint16_t>(cpu.config_read(p->rid, p->dpc + PCI_EXP_DPC_STATUS, 2));
  if (!(st & PCI_EXP_DPC_STATUS_TRIGGER)) return;
  const std::uint16_t source =
      static_cast<std::uint16_t>(cpu.config_read(p->rid, p->dpc + PCI_EXP_DPC_SOURCE_ID, 2));
  static const char* const kReasons[4] = {"unmasked uncorrectable error", "ERR_NONFATAL",
                                          "ERR_FATAL", "extended reason"};
  const std::string errors = std::string("DPC: containment event, status 0x") +
                             [&] {
                               char b[16];
                               std::snprintf(b, sizeof b, "%04x", st);
                               return std::string(b);
                             }() +
                             " source " + RoutingId(source).str() + ": " + kReasons[(st >> 1) & 3];
  log(p->name + ": " + errors);
  ++stats_.fatal;
  do_recovery(*p, true, true, errors);
}

ErsResult AerDriver::error_detected(PciDev& d, bool frozen) {
  if (d.bridge) {
    // portdrv (pcie_portdrv_error_detected): a frozen link needs a reset.
    return frozen ? ErsResult::kNeedReset : ErsResult::kCanRecover;
  }
  if (Vm* vm = host_.vm_of(d)) {
    // vfio-pci (vfio_pci_core_aer_err_detected): the user (QEMU) is told
    // through the error eventfd and stops the VM (vfio_err_notifier_handler).
    vm->stop(d.name + ": PCIe error reported to the user (" +
                 std::string(frozen ? "frozen" : "normal") + ")",
             HostCpu::now());
    return ErsResult::kCanRecover;
  }
  if (DmaDriver* drv = host_.driver(d)) {
    // The native driver holds its work until resume(); a frozen channel
    // needs a reset.
    drv->begin_recovery();
    return frozen ? ErsResult::kNeedReset : ErsResult::kCanRecover;
  }
  return ErsResult::kNoAerDriver;  // unbound, or a driver without handlers (pci-pf-stub)
}

ErsResult AerDriver::mmio_enabled(PciDev& d) {
  if (d.bridge) return ErsResult::kRecovered;
  if (host_.vm_of(d)) return ErsResult::kNone;  // vfio-pci has no mmio_enabled
  if (DmaDriver* drv = host_.driver(d)) {
    // A register that reads all ones: the device is gone.
    if (drv->read_reg(models::dma::kStatus) == 0xffffffffu) return ErsResult::kDisconnect;
    return ErsResult::kRecovered;
  }
  return ErsResult::kNone;  // vfio-pci has no mmio_enabled
}

ErsResult AerDriver::slot_reset(PciDev& d) {
  if (host_.vm_of(d)) return ErsResult::kNone;  // nor slot_reset
  if (d.bridge) {
    // pcie_portdrv_slot_reset: restore the port's config.
    host_.pci().restore_state(d);
    return ErsResult::kRecovered;
  }
  if (DmaDriver* drv = host_.driver(d)) {
    // The driver restores what the reset lost (config, SR-IOV on a PF)
    // and programs the engine again.
    host_.pci().restore_state(d);
    return drv->reinit() ? ErsResult::kRecovered : ErsResult::kDisconnect;
  }
  return ErsResult::kNone;
}

void AerDriver::resume(PciDev& d) {
  if (host_.vm_of(d)) return;  // vfio-pci: the VM was stopped, its user decides
  if (DmaDriver* drv = host_.driver(d)) drv->resume();
}

void AerDriver::do_recovery(PciDev& dev, bool frozen, bool dpc, const std::string& errors) {
  PciCore& pci = host_.pci();
  HostCpu& cpu = host_.cpu();
  RecoveryRecord rec;
  rec.start = HostCpu::now();
  rec.source = dev.name.empty() ? dev.rid.str() : dev.name;
  rec.severity = frozen ? "fatal" : "non_fatal";
  rec.trigger = dpc ? "dpc" : "aer";
  rec.errors = errors;
  ++stats_.recoveries;
  // The walk covers the hierarchy below the reporting port, or below the
  // port above the function that reported.
  PciDev* bridge = &dev;
  if (!(dev.pcie_type == PCI_EXP_TYPE_ROOT_PORT || dev.pcie_type == PCI_EXP_TYPE_DOWNSTREAM))
    bridge = dev.is_vf ? dev.physfn->parent : dev.parent;
  std::vector<PciDev*> walk;
  if (bridge) {
    rec.bridge = bridge->name;
    walk = pci.below(*bridge);
  } else {
    walk = {&dev};
  }
  walk.erase(std::remove_if(walk.begin(), walk.end(), [](PciDev* d) { return d->removed; }),
             walk.end());
  std::sort(walk.begin(), walk.end(), [](PciDev* a, PciDev* b) { return a->rid < b->rid; });
  std::vector<ErsResult> votes;
  ErsResult status = ErsResult::kCanRecover;
  for (PciDev* d : walk) {
    const ErsResult v = error_detected(*d, frozen);
    votes.push_back(v);
    status = merge(status, v);
  }
  log((rec.bridge.empty() ? rec.source : rec.bridge) + ": broadcast error_detected message (" +
      (frozen ? "frozen" : "normal") + "): " + to_string(status));
  if (frozen) {
    int r;
    if (dpc) {
      // dpc_reset_link: clear Trigger Status, the link retrains; wait for
      // the secondary bus.
      const std::uint16_t st =
          static_cast<std::uint16_t>(cpu.config_read(dev.rid, dev.dpc + PCI_EXP_DPC_STATUS, 2));
      cpu.config_write(dev.rid, dev.dpc + PCI_EXP_DPC_STATUS, 2,
                       st & (PCI_EXP_DPC_STATUS_TRIGGER | PCI_EXP_DPC_STATUS_INTERRUPT));
      r = pci.wait_for_secondary_bus(dev);
    } else {
      // aer_root_reset -> pci_bus_error_reset: a secondary bus reset.
      r = bridge ? pci.secondary_bus_reset(*bridge, false) : PciCore::kEnotty;
    }
    if (r) {
      rec.reason = "subordinate device reset failed (" + std::to_string(r) + ")";
      status = ErsResult::kDisconnect;
    }
  }
  if (rec.reason.empty()) {
    if (status == ErsResult::kCanRecover) {
      status = ErsResult::kRecovered;
      for (PciDev* d : walk)
        status = merge(status, mmio_enabled(*d));
    }
    if (status == ErsResult::kNeedReset) {
      status = ErsResult::kRecovered;
      for (PciDev* d : walk)
        status = merge(status, slot_reset(*d));
    }
    if (status != ErsResult::kRecovered)
      rec.reason = std::string("drivers voted ") + to_string(status);
  }
  const bool ok = rec.reason.empty();
  if (!ok)
    for (PciDev* d : walk)
      if (DmaDriver* drv = host_.vm_of(*d) ? nullptr : host_.driver(*d)) drv->fail(rec.reason);
  if (ok) {
    for (PciDev* d : walk)
      resume(*d);
    // pcie_clear_device_status and the AER status of the source.
    if (dev.exp)
      cpu.config_write(dev.rid, dev.exp + PCI_EXP_DEVSTA, 2,
                       cpu.config_read(dev.rid, dev.exp + PCI_EXP_DEVSTA, 2));
    if (dev.aer)
      cpu.config_write(dev.rid, dev.aer + PCI_ERR_UNCOR_STATUS, 4,
                       cpu.config_read(dev.rid, dev.aer + PCI_ERR_UNCOR_STATUS, 4));
  }
  for (std::size_t i = 0; i < walk.size(); ++i) {
    PciDev* d = walk[i];
    std::string o = votes[i] == ErsResult::kNoAerDriver ? "no_handler"
                    : ok                                ? "recovered"
                                                        : "disconnected";
    const std::string name = d->name.empty() ? d->rid.str() : d->name;
    rec.outcomes.push_back({name, o});
    auto it = std::find_if(outcomes_.begin(), outcomes_.end(),
                           [&](const auto& p) { return p.first == name; });
    if (it == outcomes_.end())
      outcomes_.push_back({name, o});
    else
      it->second = o;
  }
  rec.result = ok ? "recovered" : "failed";
  rec.end = HostCpu::now();
  log((rec.bridge.empty() ? rec.source : rec.bridge) + ": device recovery " +
      (ok ? "successful" : "failed" + (" (" + rec.reason + ")")));
  if (ok)
    ++stats_.recovered;
  else
    ++stats_.failed;
  if (stats_.log.size() < kMaxRecords) stats_.log.push_back(std::move(rec));
}

std::string AerDriver::outcome(const std::string& function) const {
  for (const auto& p : outcomes_)
    if (p.first == function) return p.second;
  return "";
}

}  // namespace pciesim::sim

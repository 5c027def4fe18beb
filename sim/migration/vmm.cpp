#include "sim/migration/vmm.h"

#include <linux/pci_regs.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <vector>

#include "fabric/common/error.h"
#include "models/dma_endpoint/dma_function.h"
#include "models/host_memory/host_memory.h"
#include "sim/builder/system.h"
#include "sim/config/yaml_reader.h"
#include "sim/host/host.h"
#include "sim/trace/trace_span.h"

namespace pciesim::sim {

using namespace fabric;
using vfio::MigState;
using Json = nlohmann::ordered_json;

namespace {

constexpr std::uint64_t kPage = 4096;
// RAM goes out in runs of this many pages: the unit in which the copy
// interleaves with the guest's own writes (QEMU sends a page at a time;
// 32 pages keep the event count low and the interleaving fine enough:
// at 10 Gb/s one run is 105 us).
constexpr std::uint64_t kRunPages = 32;
// A device's pre-copy data is read in pieces of this size (QEMU reads the
// migration FD in buffers of VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE, 1 MiB).
constexpr std::uint64_t kReadChunk = 1 << 20;
constexpr int kEopnotsupp = -95, kEcanceled = -125, kEnomsg = -42;

struct Cancelled {};

// A step of the migration failed: which device, what, and the errno.
struct StepFailure {
  std::string device, step, message, state;
  int code = 0;
};

// What reached a source device after its final image was taken.
struct LateWrites {
  bool armed = false;
  Time armed_at = 0;
  std::uint64_t writes = 0, bytes = 0, applied_bytes = 0, dropped_bytes = 0;
  Time first = 0;
  std::uint16_t first_requester = 0;
  std::uint64_t first_offset = 0;
  std::map<std::uint16_t, std::uint64_t> bytes_by_requester;
};

struct Dev {
  PciDev* src = nullptr;
  PciDev* dst = nullptr;
  VfioDevice* vs = nullptr;
  VfioDevice* vd = nullptr;
  models::DmaFunction* fs = nullptr;  // the models, for the ground truth only
  models::DmaFunction* fd = nullptr;
  std::uint64_t precopy_bytes = 0, final_bytes = 0;
  LateWrites late;
  Json compare;
};

// Compares two function states (full captures): what differs.
Json compare_states(const models::mig::FunctionState& a, const models::mig::FunctionState& b) {
  Json j;
  std::uint64_t differ = 0, pages = 0;
  std::vector<std::uint8_t> zero(models::mig::kPageBytes, 0);
  auto page_of = [&](const models::mig::FunctionState& s,
                     std::uint64_t off) -> const std::vector<std::uint8_t>& {
    auto it = s.pages.find(off);
    return it == s.pages.end() ? zero : it->second;
  };
  std::vector<std::uint64_t> offsets;
  for (const auto& [off, data] : a.pages)
    offsets.push_back(off);
  for (const auto& [off, data] : b.pages)
    if (!a.pages.count(off)) offsets.push_back(off);
  std::sort(offsets.begin(), offsets.end());
  std::uint64_t first = 0;
  for (std::uint64_t off : offsets) {
    const auto& pa = page_of(a, off);
    const auto& pb = page_of(b, off);
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < pa.size() && i < pb.size(); ++i)
      if (pa[i] != pb[i]) {
        if (!differ && !n) first = off + i;
        ++n;
      }
    if (n) ++pages;
    differ += n;
  }
  const bool regs = !(a.regs == b.regs);
  const bool progress = !(a.progress == b.progress);
  const bool msix = a.msix_table != b.msix_table || a.pba != b.pba;
  j["equal"] = !differ && !regs && !progress && !msix;
  j["devmem_bytes_differ"] = differ;
  j["devmem_pages_differ"] = pages;
  if (differ) j["first_difference_offset"] = first;
  j["registers_differ"] = regs;
  j["progress_differs"] = progress;
  j["msix_differs"] = msix;
  return j;
}

class Migration {
 public:
  Migration(Host& host, const MigrationPolicy& p)
      : host_(host), p_(p), memory_(host.system().memory()) {}
  ~Migration() { disarm(); }
  Json run();

 private:
  void validate();
  void setup();
  void precopy();
  void switchover();
  void rollback(const std::string& status);
  // Sends `bytes` over the migration network: simulated time at the
  // bandwidth.
  void wire(std::uint64_t bytes);
  void check_cancel();
  // Reads every tracker (clearing) into `dirty` (one bit per page).
  void sync(std::vector<bool>& dirty, bool check_cancel_too);
  // Copies the pages set in `dirty` (clears them): returns pages sent.
  std::uint64_t send_pages(std::vector<bool>& dirty, bool cancellable, std::uint64_t* resent);
  std::uint64_t stream(Dev& d, std::uint64_t budget, bool precopy);
  std::uint64_t send_device_precopy(Dev& d);
  std::uint64_t send_device_final(Dev& d);
  std::vector<MigState> set_state(Dev& d, bool dest, MigState s, const std::string& step);
  std::uint64_t pending_device_bytes();
  void arm(Dev& d);
  void disarm();
  void restore_config(Dev& d);
  std::uint64_t peer_hpa(std::uint64_t gpa) const;
  Json report_json();

  Host& host_;
  MigrationPolicy p_;
  models::HostMemory& memory_;
  Vm* src_ = nullptr;
  Vm* dst_ = nullptr;
  std::vector<Dev> devs_;
  std::string tracker_;  // device, iommu, none
  std::uint64_t pages_ = 0;
  std::vector<std::uint64_t> copied_at_;  // per page: ledger event number of its last copy
  std::vector<std::uint32_t> sends_;      // per page: times sent
  std::vector<bool> pending_;             // dirty pages not yet sent
  Time t0_ = 0, t_precopy_ = 0, t_pause_ = 0, t_resume_ = 0, t_end_ = 0;
  std::vector<std::pair<std::string, Time>> phases_;
  Json iterations_ = Json::array();
  std::uint64_t ram_bytes_ = 0, device_bytes_ = 0, resent_pages_ = 0;
  std::uint64_t tracker_missed_ = 0, tracker_reads_ = 0, tracker_failures_ = 0;
  std::uint64_t missed_ = 0, ram_pages_differ_ = 0;
  Json missed_gpas_ = Json::array();
  bool converged_ = false;
  std::string stop_reason_;
  Time expected_downtime_ = 0;
  std::string status_ = "completed";
  int code_ = 0;
  Json error_;
  bool switchover_started_ = false;
  bool cancel_too_late_ = false;
};

void Migration::wire(std::uint64_t bytes) {
  if (!bytes) return;
  const double fs = static_cast<double>(bytes) * 1e15 / p_.bandwidth;
  HostCpu::sleep(std::max<Time>(1, static_cast<Time>(std::llround(fs))));
}

void Migration::check_cancel() {
  if (p_.cancel_after == kTimeMax) return;
  if (HostCpu::now() - t0_ < p_.cancel_after) return;
  if (switchover_started_) {
    cancel_too_late_ = true;  // QEMU: too late once the devices stop
    return;
  }
  throw Cancelled{};
}

std::vector<MigState> Migration::set_state(Dev& d, bool dest, MigState s, const std::string& step) {
  VfioDevice& v = dest ? *d.vd : *d.vs;
  try {
    return v.set_state(s);
  } catch (const MigrationError& e) {
    throw StepFailure{v.name(), step, e.message(), e.state(), e.code()};
  }
}

void Migration::validate() {
  src_ = host_.vm(p_.vm);
  if (!src_) throw UsageError(p_.name, "no VM named '" + p_.vm + "'");
  dst_ = host_.vm(p_.to);
  if (!dst_) throw UsageError(p_.name, "no VM named '" + p_.to + "' (the destination)");
  if (src_ == dst_) throw UsageError(p_.name, "a VM cannot migrate to itself");
  if (src_->moved_to())
    throw UsageError(
        p_.name, "VM " + p_.vm + "'s guest has already migrated to " + src_->moved_to()->name());
  if (src_->stopped())
    throw UsageError(p_.name, "VM " + p_.vm + " was stopped (" + src_->stop_reason() + ")");
  if (!dst_->spec().incoming || dst_->moved_to() || host_.vm_has_guest(*dst_))
    throw UsageError(p_.name, "VM " + p_.to +
                                  " is not waiting for a migration (vms[].incoming: true, "
                                  "and no guest has come in yet)");
  if (dst_->spec().memory != src_->spec().memory)
    throw UsageError(p_.name, "the destination's memory (" + std::to_string(dst_->spec().memory) +
                                  " bytes) differs from the source's (" +
                                  std::to_string(src_->spec().memory) + ")");
  // Pairs: as given, or the two VMs' functions in order.
  auto pairs = p_.functions;
  if (pairs.empty()) {
    const auto a = host_.functions_of(*src_), b = host_.functions_of(*dst_);
    if (a.size() != b.size())
      throw UsageError(p_.name, "VM " + p_.vm + " has " + std::to_string(a.size()) +
                                    " functions and " + p_.to + " has " + std::to_string(b.size()) +
                                    ": say which goes where (functions: {source: destination})");
    for (std::size_t i = 0; i < a.size(); ++i)
      pairs.push_back({a[i]->name, b[i]->name});
  }
  std::set<PciDev*, PciDevLess> seen;
  for (const auto& [a, b] : pairs) {
    Dev d;
    d.src = host_.pci().find(a);
    d.dst = host_.pci().find(b);
    if (!d.src) throw UsageError(p_.name, "no function '" + a + "'");
    if (!d.dst) throw UsageError(p_.name, "no function '" + b + "'");
    if (host_.vm_of(*d.src) != src_)
      throw UsageError(p_.name, a + " is not assigned to VM " + p_.vm);
    if (host_.vm_of(*d.dst) != dst_)
      throw UsageError(p_.name, b + " is not assigned to VM " + p_.to);
    if (!seen.insert(d.src).second || !seen.insert(d.dst).second)
      throw UsageError(p_.name, "function " + a + " or " + b + " is paired twice");
    d.vs = &host_.vfio(*d.src);
    d.vd = &host_.vfio(*d.dst);
    FunctionRef* fs = host_.system().function(d.src->name);
    FunctionRef* fd = host_.system().function(d.dst->name);
    d.fs = fs ? fs->dma() : nullptr;
    d.fd = fd ? fd->dma() : nullptr;
    devs_.push_back(std::move(d));
  }
  if (devs_.size() != host_.functions_of(*src_).size())
    throw UsageError(p_.name, "every function of VM " + p_.vm +
                                  " must migrate with it (functions: pairs them all)");
}

std::uint64_t Migration::peer_hpa(std::uint64_t gpa) const {
  // A peer BAR the guest maps is one of its own functions' BARs (at the
  // source's host address): the destination maps the same guest-physical
  // window onto the paired function's BAR.
  for (const Dev& d : devs_)
    for (unsigned bar = 0; bar < 6; ++bar) {
      const std::uint64_t a = host_.pci().bar_address(*d.src, bar);
      const std::uint64_t n = host_.pci().bar_size(*d.src, bar);
      if (a && gpa >= a && gpa < a + n) return host_.pci().bar_address(*d.dst, bar) + (gpa - a);
    }
  throw UsageError(p_.name, "the guest maps a peer BAR at " + format_hex(gpa) +
                                " that belongs to no function migrating with it");
}

void Migration::setup() {
  // QEMU (vfio_block_multiple_devices_migration): more than one device
  // needs every one of them to support P2P, unless forced.
  for (Dev& d : devs_)
    if (!d.vs->migration_flags() || !d.vd->migration_flags()) {
      status_ = "refused";
      code_ = kEopnotsupp;
      VfioDevice& v = d.vs->migration_flags() ? *d.vd : *d.vs;
      error_ = {{"device", v.name()},
                {"message", v.name() + " offers no migration (" + v.unavailable() + ")"}};
      return;
    }
  if (devs_.size() > 1 && !p_.force)
    for (Dev& d : devs_)
      if (!(d.vs->migration_flags() & vfio::kFlagP2p)) {
        status_ = "refused";
        code_ = kEopnotsupp;
        error_ = {{"device", d.vs->name()},
                  {"message", "several devices migrate only if all of them support P2P; " +
                                  d.vs->name() + " does not (force: true migrates anyway)"}};
        return;
      }
  for (const auto& [gpa, size] : src_->peer_windows())
    (void)peer_hpa(gpa);  // refuse early a peer that does not come along
  // Dirty tracking (QEMU vfio_devices_all_dirty_tracking_started and the
  // IOMMU fallback): device logging if every device offers it, else the
  // IOMMU's dirty bits, else every page is dirty at every pass.
  bool all_log = true;
  for (Dev& d : devs_)
    all_log = all_log && d.vs->dma_logging_offered();
  const bool iommu_ok =
      host_.iommu() && host_.iommu()->spec().params.access_dirty && host_.iommu_dirty();
  using T = MigrationPolicy::Tracking;
  switch (p_.dirty_tracking) {
    case T::kAuto:
      // A VM without devices: the CPU dirty log alone is exact.
      tracker_ = devs_.empty() ? "cpu" : all_log ? "device" : iommu_ok ? "iommu" : "none";
      break;
    case T::kDevice:
      tracker_ = "device";
      if (!all_log) {
        status_ = "refused";
        code_ = kEopnotsupp;
        error_ = {{"message", "dirty_tracking: device, but not every device offers DMA logging"}};
        return;
      }
      break;
    case T::kIommu:
      tracker_ = "iommu";
      if (!iommu_ok) {
        status_ = "refused";
        code_ = kEopnotsupp;
        error_ = {{"message",
                   "dirty_tracking: iommu, but the IOMMU has no dirty bits "
                   "(iommu.access_dirty: true)"}};
        return;
      }
      break;
    case T::kNone:
      tracker_ = "none";
      break;
  }
  const std::uint64_t mem = src_->spec().memory;
  pages_ = mem / kPage;
  copied_at_.assign(pages_, 0);
  sends_.assign(pages_, 0);
  pending_.assign(pages_, true);  // pass 0: everything
  host_.dirty_ledger().watch(p_.vm, src_->host_base(), mem);
  host_.set_cpu_dirty_log(p_.vm, true);
  if (tracker_ == "iommu") {
    if (int e = host_.set_iommu_dirty_tracking(p_.vm, true))
      throw StepFailure{"iommu", "dirty tracking", "enabling the IOMMU's dirty bits failed", "", e};
  } else if (tracker_ == "device") {
    for (Dev& d : devs_) {
      std::uint64_t ps = kPage;
      if (int e = d.vs->dma_logging_start({{0, mem}}, &ps))
        throw StepFailure{d.vs->name(), "dma_logging_start", "DMA logging did not start", "", e};
    }
  }
  // Destination devices wait in RESUMING; sources with PRE_COPY enter it.
  for (Dev& d : devs_)
    set_state(d, true, MigState::kResuming, "destination RESUMING");
  for (Dev& d : devs_)
    if (d.vs->migration_flags() & vfio::kFlagPreCopy)
      set_state(d, false, MigState::kPreCopy, "PRE_COPY");
}

void Migration::sync(std::vector<bool>& dirty, bool cancellable) {
  const std::uint64_t mem = src_->spec().memory;
  if (cancellable) check_cancel();
  auto merge = [&](const std::vector<std::uint64_t>& bitmap) {
    for (std::uint64_t p = 0; p < pages_; ++p)
      if (p / 64 < bitmap.size() && (bitmap[p / 64] >> (p % 64) & 1)) dirty[p] = true;
  };
  auto all = [&] { std::fill(dirty.begin(), dirty.end(), true); };
  std::vector<std::uint64_t> bitmap;
  std::uint64_t n = 0;
  ++tracker_reads_;
  if (host_.read_cpu_dirty_log(p_.vm, true, &bitmap, &n) == 0)
    merge(bitmap);
  else
    all();
  if (tracker_ == "none") {
    all();  // nobody knows what the devices wrote
  } else if (tracker_ == "iommu") {
    DirtyReport r =
        host_.iommu_dirty()->read(host_.iommu_domain(p_.vm), 0, mem, kPage, /*no_clear=*/false);
    tracker_missed_ += r.missed_pages;
    if (r.status) {
      ++tracker_failures_;
      all();  // a failed read: the log is lost, everything is dirty
    } else {
      merge(r.bitmap);
    }
  } else {
    for (Dev& d : devs_) {
      DirtyReport r = d.vs->dma_logging_report(0, mem, kPage);
      tracker_missed_ += r.missed_pages;
      if (r.status) {
        ++tracker_failures_;
        all();
      } else {
        merge(r.bitmap);
      }
    }
  }
}

std::uint64_t Migration::send_pages(std::vector<bool>& dirty, bool cancellable,
                                    std::uint64_t* resent) {
  const std::uint64_t sbase = src_->host_base(), dbase = dst_->host_base();
  std::vector<std::uint8_t> buf(kPage);
  std::uint64_t sent = 0;
  std::uint64_t p = 0;
  while (p < pages_) {
    if (cancellable) check_cancel();
    // One run: the next kRunPages dirty pages, copied as they are now,
    // then their time on the wire.
    std::uint64_t in_run = 0;
    for (; p < pages_ && in_run < kRunPages; ++p) {
      if (!dirty[p]) continue;
      dirty[p] = false;
      memory_.read(sbase + p * kPage, buf.data(), kPage);
      memory_.write(dbase + p * kPage, buf.data(), kPage);
      copied_at_[p] = host_.dirty_ledger().now();
      if (sends_[p]++) ++*resent;
      ++in_run;
    }
    if (!in_run) break;
    sent += in_run;
    ram_bytes_ += in_run * kPage;
    wire(in_run * kPage);
  }
  return sent;
}

std::uint64_t Migration::stream(Dev& d, std::uint64_t budget, bool precopy) {
  // Reads the source's data stream in pieces, each on the wire and then
  // written into the destination's resume stream, until `budget` bytes,
  // the end of the stream (STOP_COPY) or nothing more for now (PRE_COPY).
  std::uint64_t total = 0;
  while (budget) {
    std::vector<std::uint8_t> data;
    try {
      data = d.vs->read(std::min(budget, kReadChunk));
    } catch (const MigrationError& e) {
      if (precopy && e.code() == kEnomsg) break;  // nothing more now
      throw StepFailure{d.vs->name(), precopy ? "pre-copy read" : "STOP_COPY read", e.message(),
                        e.state(), e.code()};
    }
    if (data.empty()) break;  // end of stream
    budget -= std::min<std::uint64_t>(budget, data.size());
    wire(data.size());
    try {
      d.vd->write(data);
    } catch (const MigrationError& e) {
      throw StepFailure{d.vd->name(), "resume write", e.message(), e.state(), e.code()};
    }
    total += data.size();
  }
  (precopy ? d.precopy_bytes : d.final_bytes) += total;
  device_bytes_ += total;
  return total;
}

std::uint64_t Migration::send_device_precopy(Dev& d) {
  const MigState s = d.vs->state();
  if (s != MigState::kPreCopy && s != MigState::kPreCopyP2p) return 0;
  std::pair<std::uint64_t, std::uint64_t> info;
  try {
    info = d.vs->precopy_info();
  } catch (const MigrationError& e) {
    throw StepFailure{d.vs->name(), "precopy_info", e.message(), e.state(), e.code()};
  }
  // At most what the query reported: a device that keeps changing would
  // otherwise be read forever.
  return stream(d, info.first + info.second, true);
}

std::uint64_t Migration::send_device_final(Dev& d) {
  return stream(d, ~std::uint64_t{0}, false);
}

std::uint64_t Migration::pending_device_bytes() {
  std::uint64_t n = 0;
  for (Dev& d : devs_) {
    try {
      n += d.vs->data_size();
    } catch (const MigrationError& e) {
      throw StepFailure{d.vs->name(), "data size query", e.message(), e.state(), e.code()};
    }
  }
  return n;
}

void Migration::precopy() {
  t_precopy_ = HostCpu::now();
  for (unsigned it = 0;; ++it) {
    Json rec;
    const Time start = HostCpu::now();
    std::uint64_t resent = 0;
    const std::uint64_t pages = send_pages(pending_, true, &resent);
    const Time ram_end = HostCpu::now();
    std::uint64_t devbytes = 0;
    for (Dev& d : devs_)
      devbytes += send_device_precopy(d);
    resent_pages_ += resent;
    // What was dirtied meanwhile decides whether to go on.
    const Time sync_start = HostCpu::now();
    sync(pending_, true);
    std::uint64_t left = 0;
    for (bool b : pending_)
      left += b;
    const std::uint64_t dev_left = pending_device_bytes();
    const double remaining = static_cast<double>(left * kPage + dev_left);
    expected_downtime_ = static_cast<Time>(remaining * 1e15 / p_.bandwidth);
    rec["index"] = it;
    rec["start_ns"] = to_ns(start - t0_);
    rec["end_ns"] = to_ns(HostCpu::now() - t0_);
    rec["ram_ns"] = to_ns(ram_end - start);               // the pages on the wire
    rec["sync_ns"] = to_ns(HostCpu::now() - sync_start);  // tracker reads, size queries
    rec["pages_sent"] = pages;
    rec["bytes_sent"] = pages * kPage + devbytes;
    rec["device_bytes"] = devbytes;
    rec["pages_resent"] = resent;
    rec["dirty_pages"] = left;
    rec["remaining_bytes"] = left * kPage + dev_left;
    rec["expected_downtime_ns"] = to_ns(expected_downtime_);
    iterations_.push_back(rec);
    if (expected_downtime_ <= p_.downtime_limit) {
      converged_ = true;
      stop_reason_ = "converged";
      return;
    }
    if (it + 1 >= p_.max_iterations) {
      stop_reason_ = "max_iterations";
      return;
    }
  }
}

void Migration::arm(Dev& d) {
  if (!d.fs) return;
  // Armed before the device's STOP_COPY arc: writes count once the final
  // image has been captured (the firmware captures, then moves the image
  // by DMA, then the arc returns).
  d.late.armed = true;
  d.late.armed_at = HostCpu::now();
  LateWrites* late = &d.late;
  models::DmaFunction* f = d.fs;
  const std::uint64_t saved_before = f->stats().images_saved;
  d.fs->set_inbound_write_hook([late, f, saved_before](std::uint16_t requester,
                                                       std::uint64_t offset, std::uint32_t len,
                                                       bool applied) {
    if (f->stats().images_saved <= saved_before) return;  // before the final image
    if (!late->writes) {
      late->first = HostCpu::now();
      late->first_requester = requester;
      late->first_offset = offset;
    }
    ++late->writes;
    late->bytes += len;
    (applied ? late->applied_bytes : late->dropped_bytes) += len;
    late->bytes_by_requester[requester] += len;
  });
}

void Migration::disarm() {
  for (Dev& d : devs_)
    if (d.fs && d.late.armed) {
      d.fs->set_inbound_write_hook(nullptr);
      d.late.armed = false;
    }
}

void Migration::restore_config(Dev& d) {
  // What QEMU sends with a device's state (vfio_save_config / load_config:
  // the emulated config space): the Command register's enables and the
  // MSI-X enable and function mask. The MSI-X table itself is device state.
  HostCpu& cpu = host_.cpu();
  const std::uint32_t cmd = cpu.config_read(d.src->rid, PCI_COMMAND, 2);
  const std::uint32_t keep = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE;
  const std::uint32_t now = cpu.config_read(d.dst->rid, PCI_COMMAND, 2);
  cpu.config_write(d.dst->rid, PCI_COMMAND, 2, (now & ~keep) | (cmd & keep));
  if (d.src->msix && d.dst->msix) {
    const std::uint32_t ctl = cpu.config_read(d.src->rid, d.src->msix + PCI_MSIX_FLAGS, 2);
    const std::uint32_t mask = PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL;
    const std::uint32_t cur = cpu.config_read(d.dst->rid, d.dst->msix + PCI_MSIX_FLAGS, 2);
    cpu.config_write(d.dst->rid, d.dst->msix + PCI_MSIX_FLAGS, 2, (cur & ~mask) | (ctl & mask));
  }
}

void Migration::switchover() {
  switchover_started_ = true;
  auto phase = [&](const char* name, Time since) {
    phases_.push_back({name, HostCpu::now() - since});
  };
  t_pause_ = HostCpu::now();
  src_->pause();
  Time t = HostCpu::now();
  if (p_.p2p_quiesce) {
    // Every P2P-capable device stops initiating before any is stopped.
    for (Dev& d : devs_) {
      if (!(d.vs->migration_flags() & vfio::kFlagP2p)) continue;
      const MigState s = d.vs->state();
      set_state(d, false, s == MigState::kPreCopy ? MigState::kPreCopyP2p : MigState::kRunningP2p,
                "RUNNING_P2P");
    }
    phase("quiesce_p2p", t);
  }
  t = HostCpu::now();
  Time images = 0;
  for (Dev& d : devs_) {
    arm(d);  // once its final image is taken, nothing may change it
    set_state(d, false, MigState::kStopCopy, "STOP_COPY");
    const Time r = HostCpu::now();
    send_device_final(d);
    images += HostCpu::now() - r;
  }
  phases_.push_back({"stop_copy", HostCpu::now() - t - images});
  phases_.push_back({"device_state", images});
  // Every device is stopped: the last dirty pages.
  t = HostCpu::now();
  sync(pending_, false);
  std::uint64_t resent = 0;
  std::uint64_t final_pages = send_pages(pending_, false, &resent);
  resent_pages_ += resent;
  phase("final_ram", t);
  Json rec;
  rec["index"] = "final";
  rec["start_ns"] = to_ns(t - t0_);
  rec["end_ns"] = to_ns(HostCpu::now() - t0_);
  rec["pages_sent"] = final_pages;
  std::uint64_t final_dev = 0;
  for (Dev& d : devs_)
    final_dev += d.final_bytes;
  rec["bytes_sent"] = final_pages * kPage + final_dev;
  rec["device_bytes"] = final_dev;
  rec["pages_resent"] = resent;
  iterations_.push_back(rec);
  // Tracking ends with the source.
  t = HostCpu::now();
  host_.set_cpu_dirty_log(p_.vm, false);
  if (tracker_ == "iommu") host_.set_iommu_dirty_tracking(p_.vm, false);
  if (tracker_ == "device")
    for (Dev& d : devs_)
      d.vs->dma_logging_stop();
  phase("stop_tracking", t);
  // Ground truth: every page written after its last copy is a missed
  // dirty page; destination RAM must equal the source's.
  {
    DirtyLedger& ledger = host_.dirty_ledger();
    const std::uint64_t sbase = src_->host_base(), dbase = dst_->host_base();
    std::vector<std::uint8_t> a(kPage), b(kPage);
    for (std::uint64_t p = 0; p < pages_; ++p) {
      const std::uint64_t hpa = sbase + p * kPage;
      const std::uint64_t last =
          std::max(ledger.device_write_at(hpa, ledger.now()), ledger.last_host_write(hpa));
      if (last > copied_at_[p]) {
        if (missed_gpas_.size() < 64) missed_gpas_.push_back(p * kPage);
        ++missed_;
      }
      memory_.read(hpa, a.data(), kPage);
      memory_.read(dbase + p * kPage, b.data(), kPage);
      if (a != b) ++ram_pages_differ_;
    }
  }
  // Destination: config, load every image (STOP), compare with the source
  // as it is now (stopped), then all RUNNING_P2P, then all RUNNING.
  t = HostCpu::now();
  dst_->adopt_layout(*src_, [this](std::uint64_t gpa) { return peer_hpa(gpa); });
  for (Dev& d : devs_)
    restore_config(d);
  for (Dev& d : devs_)
    set_state(d, true, MigState::kStop, "destination load");
  for (Dev& d : devs_)
    if (d.fs && d.fd)
      d.compare = compare_states(d.fs->capture(true, false), d.fd->capture(true, false));
  for (Dev& d : devs_)
    if (d.vd->migration_flags() & vfio::kFlagP2p)
      set_state(d, true, MigState::kRunningP2p, "destination RUNNING_P2P");
  for (Dev& d : devs_)
    set_state(d, true, MigState::kRunning, "destination RUNNING");
  phase("destination", t);
  // The guest resumes on the destination.
  std::vector<std::pair<PciDev*, PciDev*>> pairs;
  for (Dev& d : devs_)
    pairs.push_back({d.src, d.dst});
  t = HostCpu::now();
  host_.hand_over(*src_, *dst_, pairs);
  t_resume_ = HostCpu::now();
  phase("resume", t);
  disarm();
  // The source's devices stay stopped (QEMU leaves them in STOP).
  for (Dev& d : devs_)
    set_state(d, false, MigState::kStop, "source STOP");
}

void Migration::rollback(const std::string& status) {
  // QEMU (vfio_migration_state_notifier on FAILED / CANCELLED): the
  // source devices go back to RUNNING, the VM resumes; a device that
  // cannot is reset. The destination is discarded (reset).
  disarm();
  for (Dev& d : devs_) {
    try {
      if (d.vs->state() != MigState::kRunning) d.vs->set_state(MigState::kRunning);
    } catch (const MigrationError&) {
      try {
        d.vs->reset();
      } catch (const Error&) {
      }
    }
    try {
      if (d.vs->dma_logging()) d.vs->dma_logging_stop();
    } catch (const Error&) {
    }
    try {
      if (d.vd->state() != MigState::kRunning) d.vd->reset();
    } catch (const Error&) {
    }
  }
  host_.set_cpu_dirty_log(p_.vm, false);
  if (tracker_ == "iommu") host_.set_iommu_dirty_tracking(p_.vm, false);
  if (src_->paused()) src_->resume();
  status_ = status;
}

Json Migration::run() {
  t0_ = HostCpu::now();
  validate();
  TraceSpan whole("host", "migration", [&] {
    return std::make_pair("migrate " + p_.vm + (p_.name.empty() ? "" : " (" + p_.name + ")"),
                          std::string());
  });
  // The phases as slices on their own track (one open at a time).
  auto phase_span = [](const char* name) {
    if (fabric::trace_sink()) fabric::trace_begin(HostCpu::now(), "host", "migration phase", name);
  };
  auto phase_end = [] {
    if (fabric::trace_sink()) fabric::trace_end(HostCpu::now(), "host", "migration phase");
  };
  try {
    phase_span("setup");
    setup();
    phase_end();
    if (status_ == "completed") {
      phases_.push_back({"setup", HostCpu::now() - t0_});
      phase_span("precopy");
      precopy();
      phase_end();
      phases_.push_back({"precopy", HostCpu::now() - t_precopy_});
      phase_span("switchover");
      switchover();
      phase_end();
    }
  } catch (const Cancelled&) {
    code_ = kEcanceled;
    error_ = {{"message", "cancelled by the user during pre-copy"}};
    phase_end();
    rollback("cancelled");
  } catch (const StepFailure& f) {
    code_ = f.code ? f.code : -5;
    error_ = {{"device", f.device},
              {"step", f.step},
              {"errno", MigrationError::errno_name_of(code_)},
              {"message", f.message}};
    if (!f.state.empty()) error_["state"] = f.state;
    phase_end();
    rollback("failed");
  }
  t_end_ = HostCpu::now();
  return report_json();
}

Json Migration::report_json() {
  Json j;
  j["vm"] = p_.vm;
  j["to"] = p_.to;
  j["status"] = status_;
  j["code"] = code_;
  if (!error_.is_null()) j["error"] = error_;
  j["dirty_tracking"] = tracker_.empty() ? "none" : tracker_;
  j["p2p_quiesce"] = p_.p2p_quiesce;
  j["bandwidth_bytes_per_s"] = p_.bandwidth;
  j["downtime_limit_ns"] = to_ns(p_.downtime_limit);
  j["max_iterations"] = p_.max_iterations;
  const bool done = status_ == "completed";
  unsigned passes = 0;
  for (const Json& r : iterations_)
    if (r["index"].is_number()) ++passes;
  j["iterations"] = passes;
  j["converged"] = converged_;
  j["stop_reason"] = stop_reason_.empty() ? status_ : stop_reason_;
  j["expected_downtime_ns"] = to_ns(expected_downtime_);
  j["total_ns"] = to_ns(t_end_ - t0_);
  j["downtime_ns"] = done ? to_ns(t_resume_ - t_pause_) : 0.0;
  Json ph;
  for (const auto& [name, d] : phases_)
    ph[name + "_ns"] = to_ns(d);
  j["phases"] = ph;
  j["bytes_sent"] = ram_bytes_ + device_bytes_;
  j["ram_bytes_sent"] = ram_bytes_;
  j["device_bytes_sent"] = device_bytes_;
  j["pages_resent"] = resent_pages_;
  j["guest_pages"] = pages_;
  j["missed_dirty_pages"] = missed_;
  if (missed_) j["missed_gpas"] = missed_gpas_;
  j["tracker_missed_pages"] = tracker_missed_;
  j["tracker_reads"] = tracker_reads_;
  j["tracker_failed_reads"] = tracker_failures_;
  if (cancel_too_late_) j["cancel"] = "came during the switchover: too late, ignored";
  Json devices = Json::object();
  Json diverged;
  diverged["ram_pages"] = ram_pages_differ_;
  Json ddiv = Json::array();
  Json race = Json::array();
  bool any = ram_pages_differ_ > 0 || missed_ > 0;
  for (Dev& d : devs_) {
    Json x;
    x["to"] = d.dst->name;
    x["flags"] = vfio::flag_names(d.vs->migration_flags());
    x["state"] = vfio::state_name(d.vs->state());
    x["destination_state"] = vfio::state_name(d.vd->state());
    x["precopy_bytes"] = d.precopy_bytes;
    x["image_bytes"] = d.final_bytes;
    if (!d.compare.is_null()) {
      x["destination_equal"] = d.compare["equal"];
      x["compare"] = d.compare;
      if (!d.compare["equal"].get<bool>()) {
        ddiv.push_back(d.src->name);
        any = true;
      }
    }
    if (d.late.writes) {
      Json r;
      r["device"] = d.src->name;
      r["writes"] = d.late.writes;
      r["bytes"] = d.late.bytes;
      r["applied_bytes"] = d.late.applied_bytes;
      r["dropped_bytes"] = d.late.dropped_bytes;
      r["first_after_stop_copy_ns"] = to_ns(d.late.first - d.late.armed_at);
      PciDev* peer = host_.pci().find(RoutingId(d.late.first_requester));
      r["first_peer"] = peer ? peer->name : RoutingId(d.late.first_requester).str();
      r["first_offset"] = d.late.first_offset;
      Json by = Json::object();
      for (const auto& [rid, n] : d.late.bytes_by_requester) {
        PciDev* pd = host_.pci().find(RoutingId(rid));
        by[pd ? pd->name : RoutingId(rid).str()] = n;
      }
      r["bytes_by_peer"] = by;
      r["message"] =
          d.src->name + " received " + std::to_string(d.late.bytes) + " bytes in " +
          std::to_string(d.late.writes) + " writes after its image was taken, first from " +
          r["first_peer"].get<std::string>() + " at BAR2 offset " +
          format_hex(d.late.first_offset) +
          (d.late.applied_bytes ? " (they changed it: the destination does not have them)"
                                : " (discarded by the frozen device: lost)");
      race.push_back(r);
      any = true;
    }
    devices[d.src->name] = x;
  }
  diverged["devices"] = ddiv;
  j["diverged"] = any;
  j["divergence"] = diverged;
  j["race"] = race;
  j["devices"] = devices;
  j["iteration_log"] = iterations_;
  return j;
}

}  // namespace

Json Vmm::migrate(const MigrationPolicy& policy) {
  if (!host_.booted())
    throw UsageError(policy.name, "the machine has not booted yet (its VMs do not exist)");
  if (reports_.count(policy.name))
    throw UsageError(policy.name, "a migration named '" + policy.name + "' already ran");
  Migration m(host_, policy);
  Json r = m.run();
  reports_[policy.name] = r;
  return r;
}

Json Vmm::stats() const {
  Json j = Json::object();
  for (const auto& [name, r] : reports_)
    j[name] = r;
  return j;
}

const Json* Vmm::report(const std::string& name) const {
  auto it = reports_.find(name);
  return it == reports_.end() ? nullptr : &it->second;
}

}  // namespace pciesim::sim

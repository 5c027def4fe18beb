#include "sim/host/vfio/vfio_device.h"

#include <algorithm>
#include <cstring>

#include "fabric/common/error.h"
#include "fabric/kernel/trace.h"
#include "models/dma_endpoint/dma_regs.h"
#include "models/dma_endpoint/migration_firmware.h"
#include "models/dma_endpoint/migration_image.h"
#include "sim/host/host.h"
#include "sim/host/vfio/pf_mailbox.h"

namespace pciesim::sim {

using namespace fabric;
using vfio::MigState;
namespace dma = models::dma;

namespace {
constexpr int kE2big = -7, kEoverflow = -75, kEtimedout = -110;
constexpr int kEio = -5, kEnomem = -12, kEnodev = -19, kEinval = -22, kEnotty = -25, kEnospc = -28,
              kEnomsg = -42, kEproto = -71, kEbadmsg = -74, kEopnotsupp = -95, kEnotconn = -107;
}  // namespace

VfioDevice::VfioDevice(Host& host, PciDev& dev, const EndpointSpec& ep)
    : host_(host), dev_(dev), spec_(ep.migration), log_params_(ep.params.migration) {
  const models::DmaDeviceParams& p = ep.params;
  max_image_ = models::mig::max_image_size(p.vf_device_memory, p.vf_msix_vectors);
  if (!dev.is_vf) {
    unavailable_ = dev.name + " is a PF: the device migrates VFs only (docs/migration.md)";
  } else if (!spec_.flags) {
    unavailable_ = ep.name + " has no migration support (endpoints[].migration)";
  } else if (!dev.physfn || !host.driver(*dev.physfn)) {
    // As mlx5_vfio_pci: without the PF's own driver nobody can relay the
    // commands to the firmware.
    unavailable_ = (dev.physfn ? dev.physfn->name : ep.name + ".pf") +
                   " is not bound to its native driver (an unmanaged PF): migration is not "
                   "offered";
  } else {
    flags_ = spec_.flags;
  }
}

const std::string& VfioDevice::name() const {
  return dev_.name;
}

VfioDevice::Lock::Lock(VfioDevice& d) : d_(d) {
  while (d_.busy_)
    sc_core::wait(d_.idle_);
  d_.busy_ = true;
}

VfioDevice::Lock::~Lock() {
  d_.busy_ = false;
  d_.idle_.notify(sc_core::SC_ZERO_TIME);
}

const char* VfioDevice::style_name() const {
  return spec_.style == EndpointMigrationSpec::kFullSuspend ? "full" : "two_level";
}

void VfioDevice::fail(int code, const std::string& message, const std::string& reason) {
  throw MigrationError(dev_.name, message, code, vfio::state_name(state_), reason);
}

void VfioDevice::check_open() {
  if (!flags_) fail(kEnotty, "migration is not supported: " + unavailable_);
}

bool VfioDevice::mmio_allowed() const {
  // The device serves MMIO as a target in RUNNING and the P2P states
  // (SPEC.md F); in STOP, STOP_COPY and RESUMING its state must not change
  // and vfio revokes the user's mappings; in ERROR it is unknown.
  return state_ == MigState::kRunning || state_ == MigState::kPreCopy ||
         state_ == MigState::kRunningP2p || state_ == MigState::kPreCopyP2p;
}

std::shared_ptr<PfMailbox> VfioDevice::mailbox(std::string* message) {
  if (dev_.removed) {
    *message = dev_.name + " no longer exists (its VFs were disabled)";
    return nullptr;
  }
  std::shared_ptr<PfMailbox> m = dev_.physfn ? host_.mailbox(*dev_.physfn) : nullptr;
  if (!m) *message = "the PF driver of " + dev_.name + " is gone";
  return m;
}

int VfioDevice::command(std::uint32_t op, std::uint32_t flags, std::uint64_t addr,
                        std::uint32_t length, MailboxReply* reply, std::string* message) {
  std::shared_ptr<PfMailbox> m = mailbox(message);
  if (!m) {
    state_ = MigState::kError;
    return kEnodev;
  }
  *reply = m->exec(op, dev_.vf_number, flags, addr, length, spec_.command_timeout);
  CommandStats& cs = stats_.commands[models::MigrationFirmware::op_name(op)];
  ++cs.count;
  cs.latency.add(to_ns(reply->latency));
  const std::string what =
      std::string("firmware command ") + models::MigrationFirmware::op_name(op);
  if (reply->err) {
    ++cs.failures;
    state_ = MigState::kError;
    *message = what + (reply->err == -110 ? " timed out after " + format_time(spec_.command_timeout)
                                          : " could not be sent: the PF driver is gone");
    return reply->err == -110 ? -110 : kEnodev;
  }
  if (reply->code == dma::kMigOk) return 0;
  ++cs.failures;
  // Image errors are the caller's to judge (the device is unchanged).
  if (reply->code >= dma::kMigErrTruncated && reply->code <= dma::kMigErrMalformed) return 1;
  state_ = MigState::kError;
  switch (reply->code) {
    case dma::kMigErrFunction:
      *message =
          what + ": the firmware no longer knows " + dev_.name + " (VF disabled or PF reset)";
      return kEnotconn;
    case dma::kMigErrState:
      *message = what + ": " + dev_.name +
                 " is not in the state the command needs (it was reset behind the driver?)";
      return kEio;
    case dma::kMigErrNoSpace:
      *message = what + ": the image does not fit the buffer";
      return kEnospc;
    case dma::kMigErrDma:
      *message = what + ": a DMA of the image failed";
      return kEio;
    case dma::kMigErrAborted:
      *message = what + " was aborted by a reset";
      return kEio;
    default:
      *message = what + " failed (firmware error " + std::to_string(reply->code) + ")";
      return kEio;
  }
}

int VfioDevice::check_suspended(std::string* message) {
  // Arcs without a firmware command of their own ask the firmware whether
  // the function is still suspended: a reset behind the driver's back (PF
  // FLR, VF disable) turns into an error at the next transition, as pds
  // reports a firmware reset there.
  MailboxReply r;
  if (int e = command(dma::kMigOpGetState, 0, 0, 0, &r, message)) return e;
  const std::uint64_t want = dma::kMigStateExists | dma::kMigStateQuiesced | dma::kMigStateFrozen;
  if ((r.result & want) != want) {
    state_ = MigState::kError;
    *message = dev_.name + " lost its migration state (reset while suspended)";
    return kEio;
  }
  return 0;
}

int VfioDevice::save(std::uint32_t flags, std::string* message) {
  // Query the size, make room, then save (mlx5: query, allocate, save).
  MailboxReply q;
  const std::uint32_t qflags = flags & dma::kMigFlagIncremental;
  if (int e = command(dma::kMigOpQuery, qflags, 0, 0, &q, message)) return e;
  for (int attempt = 0; attempt < 2; ++attempt) {
    // Slack: a running function may grow between the query and the save.
    const std::uint64_t need = std::max<std::uint64_t>(q.result, 4096) + 64 * 1024;
    if (need > save_cap_) {
      const std::uint64_t cap = std::max(need, 2 * save_cap_);
      std::shared_ptr<PfMailbox> m = mailbox(message);
      if (!m) {
        state_ = MigState::kError;
        return kEnodev;
      }
      save_buf_ = m->alloc(cap);
      save_cap_ = cap;
    }
    MailboxReply r;
    const std::uint32_t len = static_cast<std::uint32_t>(std::min<std::uint64_t>(save_cap_, ~0u));
    const MigState keep = state_;
    const int e = command(dma::kMigOpSave, flags, save_buf_.dma, len, &r, message);
    if (e == kEnospc && attempt == 0) {
      state_ = keep;  // grew meanwhile: a bigger buffer, once
      q.result = r.result;
      continue;
    }
    if (e) {
      stream_failed_ = true;
      return e;
    }
    std::vector<std::uint8_t> bytes(r.result);
    host_.cpu().memory().read(save_buf_.cpu, bytes.data(), bytes.size());
    if (out_pos_ == out_.size()) {
      out_.clear();
      out_pos_ = 0;
    }
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    stats_.image_bytes_saved += bytes.size();
    ++stats_.images_saved;
    return 0;
  }
  return kEnospc;
}

int VfioDevice::load(std::string* message, std::string* reason) {
  if (in_.size() > ~0u) {
    *message = "the resume stream is larger than a firmware command can load";
    return kEnomem;
  }
  if (in_.size() > load_cap_) {
    std::shared_ptr<PfMailbox> m = mailbox(message);
    if (!m) {
      state_ = MigState::kError;
      return kEnodev;
    }
    const std::uint64_t cap = std::max<std::uint64_t>(in_.size(), 2 * load_cap_);
    load_buf_ = m->alloc(cap);
    load_cap_ = cap;
  }
  if (!in_.empty()) host_.cpu().memory().write(load_buf_.cpu, in_.data(), in_.size());
  MailboxReply r;
  const int e = command(dma::kMigOpLoad, 0, load_buf_.dma, static_cast<std::uint32_t>(in_.size()),
                        &r, message);
  if (e <= 0) {
    if (e == 0) stats_.image_bytes_loaded += in_.size();
    return e;
  }
  // The firmware refused the image; the function is unchanged and the
  // device stays RESUMING (mlx5 and hisi_acc return the error).
  ++stats_.loads_refused;
  const std::string at = " (stream byte " + std::to_string(r.result2) + ")";
  switch (r.code) {
    case dma::kMigErrTruncated:
      *reason = "truncated";
      *message = "the image is incomplete" + at;
      return kEinval;
    case dma::kMigErrMagic:
      *reason = "magic";
      *message = "the stream is not a migration image" + at;
      return kEbadmsg;
    case dma::kMigErrVersion:
      *reason = "version";
      *message = "the image has another format version" + at;
      return kEproto;
    case dma::kMigErrDevice:
      *reason = "device";
      *message = "the image belongs to another kind of device" + at;
      return kEinval;
    case dma::kMigErrChecksum:
      *reason = "checksum";
      *message = "the image is corrupt (checksum mismatch)" + at;
      return kEbadmsg;
    case dma::kMigErrUnknownRecord:
      *reason = "unknown_record";
      *message = "the image has a mandatory record this device does not know" + at;
      return kEopnotsupp;
    case dma::kMigErrOversize:
      *reason = "oversize_record";
      *message = "the image has a record larger than the device can hold" + at;
      return kEnomem;
    default:
      *reason = "malformed";
      *message = "the image is malformed" + at;
      return kEbadmsg;
  }
}

void VfioDevice::close_streams() {
  out_.clear();
  out_pos_ = 0;
  initial_left_ = 0;
  stream_failed_ = false;
  in_.clear();
}

int VfioDevice::step(MigState from, MigState to, std::string* message, std::string* reason) {
  using S = MigState;
  const bool full = spec_.style == EndpointMigrationSpec::kFullSuspend;
  MailboxReply r;
  auto cmd = [&](std::uint32_t op, std::uint32_t flags) {
    return command(op, flags, 0, 0, &r, message);
  };
  const std::uint32_t both = dma::kMigFlagBoth;
  auto suspend_initiator = [&] { return cmd(dma::kMigOpSuspendInitiator, full ? both : 0); };
  auto resume_initiator = [&] {
    return full ? cmd(dma::kMigOpResumeResponder, both) : cmd(dma::kMigOpResumeInitiator, 0);
  };
  auto freeze = [&] {
    return full ? check_suspended(message) : cmd(dma::kMigOpSuspendResponder, 0);
  };
  auto unfreeze = [&] {
    if (!full) return cmd(dma::kMigOpResumeResponder, 0);
    return check_suspended(message);
  };
  auto final_save = [&](bool incremental) {
    return save(dma::kMigFlagFinal | (incremental ? dma::kMigFlagIncremental : 0u), message);
  };
  auto pre = [&](S a, S b) { return from == a && to == b; };
  int e = 0;
  if (pre(S::kRunning, S::kRunningP2p) || pre(S::kPreCopy, S::kPreCopyP2p)) {
    e = suspend_initiator();
  } else if (pre(S::kRunningP2p, S::kStop)) {
    e = freeze();
  } else if (pre(S::kStop, S::kRunningP2p)) {
    e = unfreeze();
  } else if (pre(S::kRunningP2p, S::kRunning) || pre(S::kPreCopyP2p, S::kPreCopy)) {
    e = resume_initiator();
  } else if (pre(S::kRunning, S::kStop)) {
    e = cmd(dma::kMigOpSuspendInitiator, both);
  } else if (pre(S::kStop, S::kRunning)) {
    e = cmd(dma::kMigOpResumeResponder, both);
  } else if (pre(S::kStop, S::kStopCopy)) {
    close_streams();
    e = final_save(false);
  } else if (pre(S::kPreCopyP2p, S::kStopCopy)) {
    e = freeze();
    if (!e) e = final_save(true);
  } else if (pre(S::kPreCopy, S::kStopCopy)) {
    e = cmd(dma::kMigOpSuspendInitiator, both);
    if (!e) e = final_save(true);
  } else if (pre(S::kStopCopy, S::kStop)) {
    close_streams();
    e = check_suspended(message);
  } else if (pre(S::kStop, S::kResuming)) {
    e = check_suspended(message);
    if (!e) close_streams();
  } else if (pre(S::kResuming, S::kStop)) {
    e = load(message, reason);
    if (!e) close_streams();
  } else if (pre(S::kRunning, S::kPreCopy) || pre(S::kRunningP2p, S::kPreCopyP2p)) {
    close_streams();
    e = save(dma::kMigFlagTrack, message);
    if (!e) initial_left_ = out_.size();
  } else if (pre(S::kPreCopy, S::kRunning) || pre(S::kPreCopyP2p, S::kRunningP2p)) {
    close_streams();
    e = cmd(dma::kMigOpStopTracking, 0);
  } else {
    *message = std::string("no arc ") + vfio::state_name(from) + " -> " + vfio::state_name(to);
    return kEinval;
  }
  return e;
}

std::vector<MigState> VfioDevice::set_state(MigState target) {
  Lock lock(*this);
  check_open();
  if (static_cast<unsigned>(target) >= vfio::kNumStates || target == MigState::kError ||
      !vfio::supports(flags_, target))
    fail(
        kEinval, std::string("state ") + vfio::state_name(target) +
                     " cannot be requested (flags: " +
                     [&] {
                       std::string s;
                       for (const std::string& f : vfio::flag_names(flags_))
                         s += (s.empty() ? "" : ", ") + f;
                       return s;
                     }() +
                     ")");
  if (state_ == MigState::kError) fail(kEinval, "the device is in ERROR: only a reset leaves it");
  std::vector<MigState> path{state_};
  while (state_ != target) {
    std::optional<MigState> next = vfio::next_state(flags_, state_, target);
    if (!next) {
      ++stats_.failed_transitions;
      fail(kEinval, std::string("no transition from ") + vfio::state_name(state_) + " to " +
                        vfio::state_name(target));
    }
    ArcRecord rec{state_, *next, HostCpu::now(), 0, 0};
    std::string message, reason;
    const MigState before = state_;
    if (fabric::trace_sink())
      fabric::trace_begin(rec.start, name(), "migration",
                          std::string(vfio::state_name(before)) + " -> " + vfio::state_name(*next),
                          "target=" + std::string(vfio::state_name(target)));
    const int e = step(before, *next, &message, &reason);
    rec.end = HostCpu::now();
    if (fabric::trace_sink()) {
      fabric::trace_end(rec.end, name(), "migration");
      if (e)
        fabric::trace_instant(rec.end, name(), "migration", "arc failed",
                              "errno=" + std::to_string(e) + ", " + message);
    }
    rec.status = e;
    stats_.arcs.push_back(rec);
    if (e) {
      ++stats_.failed_transitions;
      std::string p;
      for (MigState s : path)
        p += std::string(p.empty() ? "" : " -> ") + vfio::state_name(s);
      fail(e,
           std::string("arc ") + vfio::state_name(before) + " -> " + vfio::state_name(*next) +
               " failed: " + message + " (reached: " + p + ")",
           reason);
    }
    state_ = *next;
    path.push_back(state_);
  }
  ++stats_.transitions;
  return path;
}

std::vector<std::uint8_t> VfioDevice::read(std::uint64_t max_bytes) {
  Lock lock(*this);
  check_open();
  if (!vfio::saving(state_))
    fail(kEinval, std::string("no data stream to read in ") + vfio::state_name(state_) +
                      " (PRE_COPY, PRE_COPY_P2P or STOP_COPY)");
  if (stream_failed_) fail(kEnodev, "the stream's save failed");
  if (out_pos_ == out_.size() && state_ != MigState::kStopCopy) {
    // Everything read: save what changed since, if anything (mlx5 starts
    // a new incremental save when new state is dirty).
    MailboxReply q;
    std::string message;
    int e = command(dma::kMigOpQuery, dma::kMigFlagIncremental, 0, 0, &q, &message);
    if (!e && q.result == 0)
      fail(kEnomsg, "no pre-copy data available now (nothing changed since the last read)");
    if (!e) e = save(dma::kMigFlagIncremental, &message);
    if (e) {
      stream_failed_ = true;
      fail(e, message);
    }
  }
  const std::uint64_t n = std::min<std::uint64_t>(max_bytes, out_.size() - out_pos_);
  std::vector<std::uint8_t> chunk(out_.begin() + static_cast<std::ptrdiff_t>(out_pos_),
                                  out_.begin() + static_cast<std::ptrdiff_t>(out_pos_ + n));
  out_pos_ += n;
  initial_left_ -= std::min(initial_left_, n);
  stats_.stream_bytes_read += n;
  return chunk;
}

std::uint64_t VfioDevice::write(const std::vector<std::uint8_t>& data) {
  Lock lock(*this);
  check_open();
  if (state_ != MigState::kResuming)
    fail(kEinval, std::string("the resume stream is only open in RESUMING, not in ") +
                      vfio::state_name(state_));
  const std::uint64_t limit = spec_.max_stream ? spec_.max_stream : 16 * max_image_;
  if (in_.size() + data.size() > limit)
    fail(kEnomem, "the resume stream would exceed " + std::to_string(limit) +
                      " bytes (endpoints[].migration.max_stream); nothing written");
  in_.insert(in_.end(), data.begin(), data.end());
  stats_.stream_bytes_written += data.size();
  return data.size();
}

std::pair<std::uint64_t, std::uint64_t> VfioDevice::precopy_info() {
  Lock lock(*this);
  check_open();
  if (state_ != MigState::kPreCopy && state_ != MigState::kPreCopyP2p)
    fail(kEinval, std::string("the pre-copy query is only valid in PRE_COPY states, not in ") +
                      vfio::state_name(state_));
  if (stream_failed_) fail(kEnodev, "the stream's save failed");
  MailboxReply q;
  std::string message;
  if (int e = command(dma::kMigOpQuery, dma::kMigFlagIncremental, 0, 0, &q, &message))
    fail(e, message);
  const std::uint64_t unread = out_.size() - out_pos_;
  stats_.initial_bytes = initial_left_;
  stats_.dirty_bytes = unread - initial_left_ + q.result;
  return {stats_.initial_bytes, stats_.dirty_bytes};
}

std::uint64_t VfioDevice::data_size() {
  Lock lock(*this);
  check_open();
  if (state_ == MigState::kError) fail(kEio, "the device is in ERROR");
  const std::uint64_t unread = out_.size() - out_pos_;
  if (state_ == MigState::kStopCopy || state_ == MigState::kResuming) return unread;
  MailboxReply q;
  std::string message;
  const bool tracking = state_ == MigState::kPreCopy || state_ == MigState::kPreCopyP2p;
  if (int e =
          command(dma::kMigOpQuery, tracking ? dma::kMigFlagIncremental : 0u, 0, 0, &q, &message))
    fail(e, message);
  return unread + q.result;
}

void VfioDevice::reset() {
  Lock lock(*this);
  if (dev_.removed) fail(kEnodev, dev_.name + " no longer exists");
  const int r = host_.pci().reset_function(dev_, "flr");
  if (r) fail(r, "the function reset failed");
  // The FLR ended the function's suspension, tracking and any firmware
  // command for it; the variant driver's reset_done starts over.
  state_ = MigState::kRunning;
  close_streams();
  ++stats_.resets;
}

void VfioDevice::reset_done() {
  state_ = MigState::kRunning;
  close_streams();
  // The reset ended the firmware's logging session too (MIGRATION.md 6.4).
  logging_ = false;
  log_window_.stop();
}

std::uint64_t VfioDevice::mmio_read(unsigned bar, std::uint64_t offset, unsigned size) {
  if (!mmio_allowed()) {
    ++stats_.refused_mmio;
    fail(kEio, "MMIO read of BAR" + std::to_string(bar) + " refused: the mapping is revoked");
  }
  const std::uint64_t addr = host_.pci().mmio_address(dev_, bar, offset, size, dev_.name);
  ++stats_.mmio;
  return host_.cpu().mmio_read(addr, size);
}

void VfioDevice::mmio_write(unsigned bar, std::uint64_t offset, unsigned size,
                            std::uint64_t value) {
  if (!mmio_allowed()) {
    ++stats_.refused_mmio;
    fail(kEio, "MMIO write of BAR" + std::to_string(bar) + " refused: the mapping is revoked");
  }
  const std::uint64_t addr = host_.pci().mmio_address(dev_, bar, offset, size, dev_.name);
  ++stats_.mmio;
  host_.cpu().mmio_write(addr, size, value);
}

// ------------------------------------------------------------ DMA logging

namespace {
bool power_of_two(std::uint64_t v) {
  return v && !(v & (v - 1));
}
constexpr std::size_t kLogMaxRanges = 256;  // vfio_main.c LOG_MAX_RANGES
}  // namespace

int VfioDevice::log_command(std::uint32_t op, std::uint32_t length, MailboxReply* reply) {
  std::string message;
  std::shared_ptr<PfMailbox> m = mailbox(&message);
  if (!m) return kEnodev;
  *reply = m->exec(op, dev_.vf_number, 0, log_buf_.dma, length, spec_.command_timeout);
  CommandStats& cs = stats_.commands[models::MigrationFirmware::op_name(op)];
  ++cs.count;
  cs.latency.add(to_ns(reply->latency));
  if (reply->err) {
    ++cs.failures;
    return reply->err == kEtimedout ? kEtimedout : kEnodev;
  }
  if (reply->code == dma::kMigOk) return 0;
  ++cs.failures;
  switch (reply->code) {
    case dma::kMigErrRange:
    case dma::kMigErrState:
      return kEinval;
    case dma::kMigErrNoSpace:
      return kEnospc;
    case dma::kMigErrOpcode:
      return kEnotty;
    default:
      return kEio;
  }
}

int VfioDevice::dma_logging_start(
    const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges, std::uint64_t* page_size) {
  Lock lock(*this);
  if (!flags_ || !log_params_.dma_logging) return kEnotty;
  // vfio_ioctl_device_feature_logging_start's checks.
  if (ranges.empty()) return kEinval;
  if (ranges.size() > kLogMaxRanges) return kE2big;
  if (!power_of_two(*page_size)) return kEinval;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> r = ranges;
  for (const auto& [iova, len] : r) {
    if (len == 0 || iova % *page_size || len % *page_size) return kEinval;
    if (iova + len < iova) return kEoverflow;
  }
  std::sort(r.begin(), r.end());
  for (std::size_t i = 1; i < r.size(); ++i)
    if (r[i].first < r[i - 1].first + r[i - 1].second) return kEinval;  // overlap
  if (logging_) return kEinval;  // mlx5vf_start_page_tracker: one session
  // More ranges than the device tracks: merge the two neighbours with the
  // smallest gap until they fit (vfio_combine_iova_ranges).
  while (r.size() > log_params_.log_max_ranges) {
    std::size_t best = 1;
    std::uint64_t gap = ~std::uint64_t{0};
    for (std::size_t i = 1; i < r.size(); ++i) {
      const std::uint64_t g = r[i].first - (r[i - 1].first + r[i - 1].second);
      if (g < gap) {
        gap = g;
        best = i;
      }
    }
    r[best - 1].second = r[best].first + r[best].second - r[best - 1].first;
    r.erase(r.begin() + static_cast<std::ptrdiff_t>(best));
  }
  const std::uint64_t bytes = 16 + 16 * r.size();
  std::string message;
  std::shared_ptr<PfMailbox> m = mailbox(&message);
  if (!m) return kEnodev;
  if (log_cap_ < bytes) {
    log_cap_ = std::max<std::uint64_t>(bytes, 4096);
    log_buf_ = m->alloc(log_cap_);
  }
  std::vector<std::uint8_t> buf(bytes, 0);
  const std::uint64_t ps = *page_size;
  const std::uint32_t n = static_cast<std::uint32_t>(r.size());
  std::memcpy(buf.data(), &ps, 8);
  std::memcpy(buf.data() + 8, &n, 4);
  for (std::size_t i = 0; i < r.size(); ++i) {
    std::memcpy(buf.data() + 16 + 16 * i, &r[i].first, 8);
    std::memcpy(buf.data() + 24 + 16 * i, &r[i].second, 8);
  }
  host_.cpu().memory().write(log_buf_.cpu, buf.data(), buf.size());
  MailboxReply reply;
  if (int e = log_command(dma::kMigOpLogStart, static_cast<std::uint32_t>(bytes), &reply)) return e;
  logging_ = true;
  log_page_ = reply.result;
  *page_size = log_page_;
  log_ranges_ = r;
  // The ground truth watches the VM's RAM from now on.
  if (Vm* vm = host_.vm_of(dev_))
    host_.dirty_ledger().watch(vm->name(), vm->host_base(), vm->spec().memory);
  log_window_.stop();
  log_window_.start(host_.dirty_ledger());
  return 0;
}

int VfioDevice::dma_logging_stop() {
  Lock lock(*this);
  if (!logging_) return 0;  // mlx5vf_stop_page_tracker: nothing to stop
  MailboxReply reply;
  const int e = log_command(dma::kMigOpLogStop, 0, &reply);
  logging_ = false;
  log_window_.stop();
  return e;
}

DirtyReport VfioDevice::dma_logging_report(std::uint64_t iova, std::uint64_t length,
                                           std::uint64_t page_size) {
  Lock lock(*this);
  DirtyReport rep;
  rep.page_size = page_size;
  // vfio_ioctl_device_feature_logging_report's checks, then the driver's.
  if (!flags_ || !log_params_.dma_logging) {
    rep.status = kEnotty;
    return rep;
  }
  if (length == 0 || !power_of_two(page_size) || page_size < 4096) {
    rep.status = kEinval;
    return rep;
  }
  if (iova + length < iova) {
    rep.status = kEoverflow;
    return rep;
  }
  if (!logging_ || iova % page_size || length % page_size) {
    rep.status = kEinval;
    return rep;
  }
  const std::uint64_t units = length / page_size;
  if (length > DirtyWindow::kMaxRead) {
    rep.status = kEinval;
    return rep;
  }
  const std::uint64_t bytes = std::max<std::uint64_t>(24, (units + 63) / 64 * 8);
  std::string message;
  std::shared_ptr<PfMailbox> m = mailbox(&message);
  if (!m) {
    rep.status = kEnodev;
    return rep;
  }
  if (log_cap_ < bytes) {
    log_cap_ = std::max<std::uint64_t>(bytes, 4096);
    log_buf_ = m->alloc(log_cap_);
  }
  std::uint64_t hdr[3] = {iova, length, page_size};
  host_.cpu().memory().write(log_buf_.cpu, reinterpret_cast<std::uint8_t*>(hdr), sizeof hdr);
  DirtyLedger& ledger = host_.dirty_ledger();
  // Writes before the command started must be in the log it reads; those
  // while it runs may be either side (the caller copies after it returns).
  const std::uint64_t read_at = ledger.mark();
  MailboxReply reply;
  rep.status = log_command(dma::kMigOpLogReport, static_cast<std::uint32_t>(bytes), &reply);
  const std::uint64_t copied_at = ledger.now();
  if (rep.status) {
    log_window_.failed();
    return rep;
  }
  rep.bitmap.assign((units + 63) / 64, 0);
  host_.cpu().memory().read(log_buf_.cpu, reinterpret_cast<std::uint8_t*>(rep.bitmap.data()),
                            rep.bitmap.size() * 8);
  Vm* vm = host_.vm_of(dev_);
  IommuDriver* iommu = host_.iommu();
  const std::uint16_t rid = dev_.rid.value();
  log_window_.check(
      ledger, rep, iova, length, false, read_at, copied_at,
      [&](std::uint64_t v, std::uint64_t* hpa) {
        IommuDriver::Leaf leaf;
        if (!vm || !iommu || !iommu->lookup_leaf(vm->domain(), v, &leaf)) return false;
        *hpa = leaf.hpa;
        return true;
      },
      [&](std::uint64_t hpa, std::uint64_t at) { return ledger.write_by_at(hpa, rid, at); });
  return rep;
}

}  // namespace pciesim::sim

#include "models/dma_endpoint/migration_firmware.h"

#include <algorithm>
#include <cstring>

#include "fabric/kernel/kernel_context.h"
#include "fabric/link/flow_control.h"
#include "fabric/port/port.h"
#include "models/dma_endpoint/dma_device.h"
#include "models/dma_endpoint/migration_image.h"

namespace pciesim::models {

using namespace fabric;
using namespace dma;

MigrationFirmware::MigrationFirmware(sc_core::sc_module_name name, DmaDevice& dev,
                                     const MigrationDeviceParams& params)
    : sc_core::sc_module(name), dev_(dev), params_(params) {
  set_failure(params.fail_op, params.fail_timeout, params.fail_after, params.fail_count);
  SC_THREAD(thread);
}

const char* MigrationFirmware::op_name(std::uint32_t op) {
  switch (op) {
    case kMigOpQuery:
      return "query";
    case kMigOpSuspendInitiator:
      return "suspend_initiator";
    case kMigOpSuspendResponder:
      return "suspend_responder";
    case kMigOpResumeResponder:
      return "resume_responder";
    case kMigOpResumeInitiator:
      return "resume_initiator";
    case kMigOpSave:
      return "save";
    case kMigOpLoad:
      return "load";
    case kMigOpGetState:
      return "get_state";
    case kMigOpStopTracking:
      return "stop_tracking";
    case kMigOpLogStart:
      return "log_start";
    case kMigOpLogStop:
      return "log_stop";
    case kMigOpLogReport:
      return "log_report";
    default:
      return "unknown";
  }
}

void MigrationFirmware::set_failure(std::uint32_t op, bool timeout, unsigned after,
                                    unsigned count) {
  fail_op_ = op;
  fail_timeout_ = timeout;
  fail_after_ = std::max(1u, after);
  fail_count_ = count;
  fail_seen_ = 0;
}

bool MigrationFirmware::injected(std::uint32_t op, bool* hang) {
  if (!fail_op_ || op != fail_op_) return false;
  ++fail_seen_;
  if (fail_seen_ < fail_after_ || fail_seen_ >= fail_after_ + fail_count_) return false;
  ++stats_.injected;
  *hang = fail_timeout_;
  return true;
}

CplStatus MigrationFirmware::register_access(std::uint32_t off, std::uint8_t* data,
                                             std::uint32_t len, bool write, Time t) {
  // 32-bit registers; other sizes act on the registers they cover.
  const std::uint32_t base = off & ~3u;
  for (std::uint32_t r = base; r < off + len; r += 4) {
    const unsigned lo = r < off ? off - r : 0;
    const unsigned hi = std::min<std::uint32_t>(4, off + len - r);
    std::uint32_t cur = 0;
    switch (r) {
      case kMigCaps:
        cur = 1u | (std::uint32_t{mig::kVersionMajor} << 8) | (kMigOpLast << 16);
        break;
      case kMigOpcode:
        cur = regs_.op;
        break;
      case kMigFunction:
        cur = regs_.function;
        break;
      case kMigFlags:
        cur = regs_.flags;
        break;
      case kMigAddrLo:
        cur = static_cast<std::uint32_t>(regs_.addr);
        break;
      case kMigAddrHi:
        cur = static_cast<std::uint32_t>(regs_.addr >> 32);
        break;
      case kMigLength:
        cur = regs_.length;
        break;
      case kMigStatus:
        cur = status_;
        break;
      case kMigResultLo:
        cur = static_cast<std::uint32_t>(result_);
        break;
      case kMigResultHi:
        cur = static_cast<std::uint32_t>(result_ >> 32);
        break;
      case kMigResult2:
        cur = result2_;
        break;
      case kMigIrq:
        cur = irq_;
        break;
      case kMigCommands:
        cur = completed_;
        break;
      default:
        break;
    }
    if (!write) {
      for (unsigned b = lo; b < hi; ++b)
        data[r + b - off] = static_cast<std::uint8_t>(cur >> (8 * b));
      continue;
    }
    std::uint32_t v = cur;
    for (unsigned b = lo; b < hi; ++b)
      v = (v & ~(0xffu << (8 * b))) | (std::uint32_t{data[r + b - off]} << (8 * b));
    const bool busy = status_ & kMigStatusBusy;
    switch (r) {
      case kMigOpcode:
        if (!busy) regs_.op = v;
        break;
      case kMigFunction:
        if (!busy) regs_.function = v;
        break;
      case kMigFlags:
        if (!busy) regs_.flags = v;
        break;
      case kMigAddrLo:
        if (!busy) regs_.addr = (regs_.addr & ~0xffffffffull) | v;
        break;
      case kMigAddrHi:
        if (!busy) regs_.addr = (regs_.addr & 0xffffffffull) | (std::uint64_t{v} << 32);
        break;
      case kMigLength:
        if (!busy) regs_.length = v;
        break;
      case kMigIrq:
        irq_ = v & 0x800007ffu;
        break;
      case kMigDoorbell:
        if (!(v & 1)) break;
        if (busy) {
          ++stats_.busy_doorbells;  // the running command is not disturbed
          break;
        }
        running_ = regs_;
        status_ = kMigStatusBusy;
        result_ = 0;
        result2_ = 0;
        started_ = t;
        start_.notify(to_sc(t > now_fs() ? t - now_fs() : 0));
        break;
      default:
        break;  // read-only
    }
  }
  return CplStatus::kSC;
}

void MigrationFirmware::function_reset(unsigned vf) {
  // A reset ends the VF's logging session (MIGRATION.md 6.4).
  log_stop(vf);
  if ((status_ & kMigStatusBusy) && running_.function == vf) {
    ++epoch_;
    abort_.notify(sc_core::SC_ZERO_TIME);
  }
}

void MigrationFirmware::reset() {
  logs_.clear();
  active_logs_ = 0;
  ++epoch_;
  abort_.notify(sc_core::SC_ZERO_TIME);
  regs_ = Command{};
  status_ = 0;
  result_ = 0;
  result2_ = 0;
  irq_ = 0;
}

bool MigrationFirmware::wait_until(Time t) {
  const std::uint64_t epoch = epoch_;
  while (now_fs() < t && epoch == epoch_)
    sc_core::wait(to_sc(t - now_fs()), abort_);
  return epoch == epoch_;
}

bool MigrationFirmware::dma_write(std::uint64_t addr, std::vector<std::uint8_t>& data) {
  DmaFunction& pf = dev_.pf();
  std::vector<std::uint32_t> pieces;
  Time last = now_fs();
  for (std::uint64_t off = 0; off < data.size();) {
    // Memory writes of at most MPS bytes, never across a 4 KiB boundary,
    // one page per burst (PCIe 2.2.7).
    if (!pf.bus_master_enabled()) return false;
    const std::uint64_t a = addr + off;
    const std::uint64_t page_left = 4096 - (a & 4095);
    const std::uint64_t n = std::min<std::uint64_t>(page_left, data.size() - off);
    pieces.clear();
    for (std::uint64_t k = 0; k < n;) {
      const std::uint32_t p =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(dev_.mps(), n - k));
      pieces.push_back(p);
      k += p;
    }
    const std::uint64_t epoch = epoch_;
    IssueResult r = dev_.issue_writes(pf, a, data.data() + off, pieces, now_fs());
    if (epoch != epoch_) return false;
    if (r.status != CplStatus::kSC && r.status != CplStatus::kRRS) return false;
    pf.stats().write_requests += pieces.size();
    pf.stats().write_bytes += n;
    stats_.image_bytes_written += n;
    last = std::max(last, r.done);
    off += n;
    if (!wait_until(r.wire_free)) return false;
  }
  return wait_until(last);
}

bool MigrationFirmware::dma_read(std::uint64_t addr, std::vector<std::uint8_t>& data) {
  DmaFunction& pf = dev_.pf();
  // Tags come from the PF's own pool (one requester ID, one tag space);
  // at most dma_tags of them are the firmware's at a time.
  TagPool& tags = pf.tags();
  std::vector<Time> mine;  // completion times of the firmware's reads in flight
  const std::size_t limit = std::max(1u, params_.dma_tags);
  Time last = now_fs();
  bool ok = true;
  for (std::uint64_t off = 0; off < data.size() && ok;) {
    if (!pf.bus_master_enabled()) return false;
    mine.erase(std::remove_if(mine.begin(), mine.end(), [](Time t) { return t <= now_fs(); }),
               mine.end());
    if (mine.size() >= limit && !wait_until(*std::min_element(mine.begin(), mine.end())))
      return false;
    if (mine.size() >= limit) continue;
    if (tags.next_free() > now_fs() && !wait_until(tags.next_free())) return false;
    const std::uint64_t a = addr + off;
    const std::uint64_t n =
        std::min<std::uint64_t>({std::uint64_t{dev_.mrrs()}, 4096 - (a & 4095), data.size() - off});
    TagPool::Grant g = tags.acquire(now_fs());
    const std::uint64_t epoch = epoch_;
    IssueResult r = dev_.issue(pf, TlpKind::MRd, a, data.data() + off,
                               static_cast<std::uint32_t>(n), g.tag, now_fs());
    tags.release_at(g.tag, r.done);
    if (epoch != epoch_) return false;
    mine.push_back(r.done);
    last = std::max(last, r.done);
    ++pf.stats().read_requests;
    pf.stats().read_bytes += n;
    stats_.image_bytes_read += n;
    if (r.status != CplStatus::kSC) ok = false;
    off += n;
    if (!wait_until(r.wire_free)) return false;
  }
  return wait_until(last) && ok;
}

namespace {
std::uint32_t image_error_code(mig::ImageError e) {
  switch (e) {
    case mig::ImageError::kNone:
      return kMigOk;
    case mig::ImageError::kTruncated:
      return kMigErrTruncated;
    case mig::ImageError::kBadMagic:
      return kMigErrMagic;
    case mig::ImageError::kVersion:
      return kMigErrVersion;
    case mig::ImageError::kWrongDevice:
      return kMigErrDevice;
    case mig::ImageError::kChecksum:
      return kMigErrChecksum;
    case mig::ImageError::kUnknownMandatory:
      return kMigErrUnknownRecord;
    case mig::ImageError::kOversize:
      return kMigErrOversize;
    case mig::ImageError::kMalformed:
      return kMigErrMalformed;
  }
  return kMigErrMalformed;
}
}  // namespace

std::uint32_t MigrationFirmware::execute(const Command& cmd) {
  const std::uint64_t epoch0 = epoch_;
  auto epoch_aborted = [&] { return epoch_ != epoch0; };
  if (!wait_until(now_fs() + params_.command_latency)) return kMigErrAborted;
  if (cmd.op == 0 || cmd.op > kMigOpLast) return kMigErrOpcode;
  const unsigned n = cmd.function;
  if (n == 0 || n > dev_.enabled_vfs() || !dev_.vf(n).exists()) return kMigErrFunction;
  DmaFunction& f = dev_.vf(n);
  bool hang = false;
  if (injected(cmd.op, &hang)) {
    if (!hang) return kMigErrInternal;
    // A hung command: only a reset of the function or the PF ends it.
    wait_until(kTimeMax);
    return kMigErrAborted;
  }
  const Time now = now_fs();
  const DmaDeviceParams& dp = dev_.params();
  const mig::ImageIdentity id{dp.vendor_id, dp.vf_device_id};
  switch (cmd.op) {
    case kMigOpQuery: {
      if (cmd.flags & kMigFlagMax) {
        result_ = mig::max_image_size(f.devmem_size(), dp.vf_msix_vectors);
      } else if (cmd.flags & kMigFlagIncremental) {
        result_ = f.tracking() ? f.dirty_bytes() : 0;
      } else {
        result_ = mig::encoded_size(f.capture(true, /*consume=*/false));
      }
      result2_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(f.dirty_bytes(), 0xffffffffu));
      return kMigOk;
    }
    case kMigOpSuspendInitiator: {
      f.quiesce(now);
      if (cmd.flags & kMigFlagBoth) f.freeze();
      const Time drained = f.drain_time(now);
      if (!wait_until(drained)) return kMigErrAborted;
      if (!f.exists()) return kMigErrFunction;
      result_ = to_ns(drained - now);
      return kMigOk;
    }
    case kMigOpSuspendResponder:
      if (!f.quiesced()) return kMigErrState;  // freeze needs a quiesced function
      f.freeze();
      return kMigOk;
    case kMigOpResumeResponder:
      f.unfreeze();
      if (cmd.flags & kMigFlagBoth) f.unquiesce(now);
      return kMigOk;
    case kMigOpResumeInitiator:
      if (f.frozen()) return kMigErrState;  // responder first
      f.unquiesce(now);
      return kMigOk;
    case kMigOpSave: {
      const bool final_image = cmd.flags & kMigFlagFinal;
      const bool incremental = cmd.flags & kMigFlagIncremental;
      if (final_image && !f.frozen()) return kMigErrState;
      if (incremental && !f.tracking()) return kMigErrState;
      if (cmd.flags & kMigFlagTrack) f.start_tracking();
      // The state is captured when the command starts; what changes
      // while the image travels is dirty again for the next one.
      mig::FunctionState s = f.capture(!incremental);
      if (final_image) f.stop_tracking();
      std::uint32_t flags = incremental ? 0u : static_cast<std::uint32_t>(mig::kImageFull);
      if (final_image) flags |= mig::kImageFinal;
      std::vector<std::uint8_t> image = mig::encode(s, id, flags);
      result_ = image.size();
      if (image.size() > cmd.length) return kMigErrNoSpace;
      // Serialising reads the device memory at its own bandwidth.
      if (!wait_until(now_fs() + dev_.local_copy_time(static_cast<std::uint32_t>(
                                     std::min<std::size_t>(image.size(), 0xffffffffu)))))
        return kMigErrAborted;
      if (!dma_write(cmd.addr, image)) return epoch_aborted() ? kMigErrAborted : kMigErrDma;
      return kMigOk;
    }
    case kMigOpLoad: {
      if (!f.frozen() || !f.quiesced()) return kMigErrState;
      // A stream longer than 16 of the largest images is not one this
      // device wrote; refuse it before buffering it (a hostile length).
      const std::uint64_t limit = std::min<std::uint64_t>(
          16 * mig::max_image_size(f.devmem_size(), dp.vf_msix_vectors), 256ull << 20);
      if (cmd.length > limit) {
        result_ = limit;
        return kMigErrNoSpace;
      }
      std::vector<std::uint8_t> stream(cmd.length);
      if (!dma_read(cmd.addr, stream)) return epoch_aborted() ? kMigErrAborted : kMigErrDma;
      if (!f.exists()) return kMigErrFunction;
      mig::DecodeResult r =
          mig::decode_stream(stream.data(), stream.size(), id, f.devmem_size(), dp.vf_msix_vectors);
      result_ = stream.size();
      if (r.error != mig::ImageError::kNone) {
        result2_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(r.offset, 0xffffffffu));
        return image_error_code(r.error);
      }
      if (!wait_until(now_fs() + dev_.local_copy_time(static_cast<std::uint32_t>(
                                     std::min<std::size_t>(stream.size(), 0xffffffffu)))))
        return kMigErrAborted;
      f.install(r.state, now_fs());
      return kMigOk;
    }
    case kMigOpGetState:
      result_ = kMigStateExists | (f.quiesced() ? kMigStateQuiesced : 0u) |
                (f.frozen() ? kMigStateFrozen : 0u) | (f.tracking() ? kMigStateTracking : 0u);
      return kMigOk;
    case kMigOpStopTracking:
      f.stop_tracking();
      return kMigOk;
    case kMigOpLogStart:
      return log_start(n, cmd.addr, cmd.length);
    case kMigOpLogStop:
      log_stop(n);
      return kMigOk;
    case kMigOpLogReport:
      return log_report(n, cmd.addr, cmd.length);
    default:
      return kMigErrOpcode;
  }
}

// ------------------------------------------------------------ DMA logging

namespace {
std::uint64_t get_u64(const std::vector<std::uint8_t>& b, std::size_t off) {
  std::uint64_t v;
  std::memcpy(&v, b.data() + off, 8);
  return v;
}
bool power_of_two(std::uint64_t v) {
  return v && !(v & (v - 1));
}
}  // namespace

std::uint32_t MigrationFirmware::log_start(unsigned vf, std::uint64_t addr, std::uint32_t length) {
  if (!params_.dma_logging) return kMigErrOpcode;
  if (logs_.count(vf)) return kMigErrState;  // one session at a time
  if (length < 16) return kMigErrRange;
  std::vector<std::uint8_t> hdr(16);
  if (!dma_read(addr, hdr)) return kMigErrDma;
  const std::uint64_t want = get_u64(hdr, 0);
  std::uint32_t count;
  std::memcpy(&count, hdr.data() + 8, 4);
  if (count == 0 || count > params_.log_max_ranges || length < 16 + 16ull * count)
    return kMigErrRange;
  std::vector<std::uint8_t> body(16ull * count);
  if (!dma_read(addr + 16, body)) return kMigErrDma;
  // The device logs at a page size it supports: the request, clamped.
  std::uint64_t page = power_of_two(want) ? want : 4096;
  page = std::max(params_.log_min_page, std::min(params_.log_max_page, page));
  DmaLog log;
  log.page_size = page;
  std::uint64_t pages = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint64_t iova = get_u64(body, 16 * i), len = get_u64(body, 16 * i + 8);
    if (len == 0 || iova + len < iova) return kMigErrRange;
    // Widened to whole log pages: over-reporting is allowed, never under.
    LogRange r;
    r.iova = iova & ~(page - 1);
    const std::uint64_t end = ((iova + len - 1) | (page - 1)) + 1;
    r.length = end - r.iova;
    for (const LogRange& o : log.ranges)
      if (r.iova < o.iova + o.length && o.iova < r.iova + r.length) return kMigErrRange;
    pages += r.length / page;
    if (pages > params_.log_max_pages) return kMigErrNoSpace;
    r.bits.assign((r.length / page + 63) / 64, 0);
    log.ranges.push_back(std::move(r));
  }
  if (!dev_.vf(vf).exists()) return kMigErrFunction;
  logs_[vf] = std::move(log);
  ++active_logs_;
  result_ = page;
  return kMigOk;
}

void MigrationFirmware::log_stop(unsigned vf) {
  if (logs_.erase(vf)) --active_logs_;
}

void MigrationFirmware::log_write(unsigned vf, std::uint64_t addr, std::uint64_t len) {
  auto it = logs_.find(vf);
  if (it == logs_.end() || len == 0) return;
  DmaLog& log = it->second;
  for (LogRange& r : log.ranges) {
    if (addr >= r.iova + r.length || addr + len <= r.iova) continue;
    const std::uint64_t lo = std::max(addr, r.iova), hi = std::min(addr + len, r.iova + r.length);
    for (std::uint64_t p = (lo - r.iova) / log.page_size; p <= (hi - 1 - r.iova) / log.page_size;
         ++p)
      r.bits[p / 64] |= std::uint64_t{1} << (p % 64);
  }
}

std::uint32_t MigrationFirmware::log_report(unsigned vf, std::uint64_t addr, std::uint32_t length) {
  auto it = logs_.find(vf);
  if (it == logs_.end()) return kMigErrState;
  if (length < 24) return kMigErrRange;
  std::vector<std::uint8_t> hdr(24);
  if (!dma_read(addr, hdr)) return kMigErrDma;
  const std::uint64_t iova = get_u64(hdr, 0), len = get_u64(hdr, 8), unit = get_u64(hdr, 16);
  if (!power_of_two(unit) || unit < 4096 || len == 0 || iova + len < iova || iova % unit ||
      len % unit)
    return kMigErrRange;
  const std::uint64_t units = len / unit;
  const std::uint64_t bytes = (units + 63) / 64 * 8;
  if (bytes > length) {
    result_ = bytes;
    return kMigErrNoSpace;
  }
  std::vector<std::uint64_t> bitmap((units + 63) / 64, 0);
  DmaLog& log = it->second;
  for (LogRange& r : log.ranges) {
    if (iova >= r.iova + r.length || iova + len <= r.iova) continue;
    for (std::uint64_t p = 0; p < r.length / log.page_size; ++p) {
      if (!((r.bits[p / 64] >> (p % 64)) & 1)) continue;
      const std::uint64_t plo = r.iova + p * log.page_size, phi = plo + log.page_size;
      if (phi <= iova || plo >= iova + len) continue;
      const std::uint64_t lo = std::max(plo, iova), hi = std::min(phi, iova + len);
      for (std::uint64_t u = (lo - iova) / unit; u <= (hi - 1 - iova) / unit; ++u)
        bitmap[u / 64] |= std::uint64_t{1} << (u % 64);
      // Read and clear: a log page wholly inside the report is cleared;
      // one reaching beyond it stays set (reported again: over-reporting).
      if (plo >= iova && phi <= iova + len) r.bits[p / 64] &= ~(std::uint64_t{1} << (p % 64));
    }
  }
  std::vector<std::uint8_t> out(bytes);
  std::memcpy(out.data(), bitmap.data(), bytes);
  if (!dma_write(addr, out)) return kMigErrDma;
  result_ = units;
  return kMigOk;
}

void MigrationFirmware::finish(std::uint32_t error) {
  const Time now = now_fs();
  status_ = kMigStatusDone | (error << 8);
  ++completed_;
  const std::uint32_t op = running_.op <= kMigOpLast ? running_.op : 0;
  ++stats_.commands[op];
  if (error) ++stats_.errors[op];
  if (error == kMigErrAborted) ++stats_.aborted;
  stats_.latency.add(to_ns(now - started_));
  // Completion interrupt: a memory write of the PF (needs its BME, MSI-X).
  if (irq_ & 0x80000000u) dev_.pf().send_msix(irq_ & 0x7ffu, now);
}

void MigrationFirmware::thread() {
  KernelContext::guard([this] {
    for (;;) {
      sc_core::wait(start_);
      if (!(status_ & kMigStatusBusy)) continue;  // reset before it started
      const std::uint64_t epoch = epoch_;
      const Command cmd = running_;
      std::uint32_t err = execute(cmd);
      if (epoch != epoch_) {
        // A reset ended the command. A PF reset left the mailbox idle; a
        // VF reset completes the command with kMigErrAborted.
        if (!(status_ & kMigStatusBusy)) {
          ++stats_.aborted;
          continue;
        }
        err = kMigErrAborted;
      }
      finish(err);
    }
  });
}

}  // namespace pciesim::models

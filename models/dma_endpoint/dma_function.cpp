#include "models/dma_endpoint/dma_function.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "models/dma_endpoint/migration_firmware.h"

#include "fabric/common/error.h"
#include "fabric/config_space/capabilities.h"
#include "fabric/kernel/trace.h"
#include "models/dma_endpoint/dma_device.h"

namespace pciesim::models {

using namespace fabric;
using namespace dma;

namespace {
constexpr std::uint32_t kMaxChunk = 4096;
constexpr std::uint32_t kDescBytes = sizeof(Descriptor);

bool valid_ring_size(std::uint32_t n) {
  return n >= 2 && n <= 65536 && (n & (n - 1)) == 0;
}
std::uint32_t to_error(CplStatus s) {
  switch (s) {
    case CplStatus::kUR:
      return kErrDmaUr;
    case CplStatus::kCA:
      return kErrDmaCa;
    case CplStatus::kPoisoned:
      return kErrDmaPoisoned;
    default:
      return kErrDmaTimeout;
  }
}
}  // namespace

DmaFunction::DmaFunction(DmaDevice& device, std::string name, unsigned vf_number, ConfigSpace cs)
    : dev_(device),
      name_(std::move(name)),
      vf_number_(vf_number),
      cs_(std::move(cs)),
      exists_(vf_number == 0),
      devmem_size_(vf_number == 0 ? device.params().device_memory
                                  : device.params().vf_device_memory) {
  exp_ = cs_.find_capability(PCI_CAP_ID_EXP);
  msix_ = cs_.find_capability(PCI_CAP_ID_MSIX);
  pm_ = cs_.find_capability(PCI_CAP_ID_PM);
  cs_.set_listener(this);
  reset_msix();
}

std::uint32_t DmaFunction::vectors() const {
  return msix_ ? (cs_.get16(msix_ + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1u : 0u;
}

TagPool& DmaFunction::tags() {
  if (!tags_) {
    unsigned n = dev_.params().ten_bit_tags ? 768 : dev_.params().tags;
    tags_ = std::make_unique<TagPool>(n);
  }
  return *tags_;
}

// ------------------------------------------------------------ life cycle

void DmaFunction::create(Time t, Time ready_at) {
  exists_ = true;
  cs_.reset(ResetKind::kFundamental);  // a new VF: nothing survives
  regs_ = Regs{};
  reset_engine(t, EngineReset::kSoft);
  if (tags_) tags_->reset();
  reset_msix();
  devmem_.reset();
  power_ = PowerState::kD0;
  reset_end_ = t;
  ready_at_ = ready_at;
  reset_migration();
}

void DmaFunction::destroy(Time t) {
  if (!exists_) return;
  reset_migration();
  if (is_vf() && dev_.firmware()) dev_.firmware()->function_reset(vf_number_);
  reset_engine(t, EngineReset::kDestroy);
  exists_ = false;
  regs_ = Regs{};
  devmem_.reset();
}

void DmaFunction::flr(Time t, Time flr_end, Time ready_at) {
  ++stats_.flrs;
  reset_migration();
  if (is_vf() && dev_.firmware()) dev_.firmware()->function_reset(vf_number_);
  reset_engine(t, EngineReset::kFlr);
  cs_.reset(ResetKind::kFlr);
  regs_ = Regs{};
  reset_msix();
  devmem_.reset();  // a function reset to be reassigned must not leak data
  power_ = PowerState::kD0;
  reset_end_ = flr_end;
  ready_at_ = ready_at;
}

void DmaFunction::conventional_reset(Time t, Time ready_at) {
  reset_migration();
  reset_engine(t, EngineReset::kFlr);
  cs_.reset(ResetKind::kConventional);
  regs_ = Regs{};
  reset_msix();
  devmem_.reset();
  power_ = PowerState::kD0;
  reset_end_ = t;
  ready_at_ = ready_at;
}

void DmaFunction::reset_msix() {
  msix_table_.assign(vectors() * PCI_MSIX_ENTRY_SIZE, 0);
  for (std::uint32_t v = 0; v < vectors(); ++v)
    msix_table_[v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
  msix_pba_.assign((vectors() + 63) / 64, 0);
  msix_resend_ = false;
}

void DmaFunction::clear_pipeline() {
  fetch_error_.pending = false;
  descs_.clear();
  chunks_.clear();
  local_dst_chunks_ = 0;
  op_starts_.clear();
  if (fabric::trace_sink() && (!op_ids_.empty() || !open_descs_.empty())) {
    // What was in flight ends here in the trace.
    const Time t = now_fs();
    for (std::uint64_t op : op_ids_)
      fabric::trace_end(t, name_, "operations", "op " + std::to_string(op));
    for (std::uint32_t d : open_descs_)
      fabric::trace_end(t, name_, "descriptors", "desc " + std::to_string(d));
    fabric::trace_instant(t, name_, "descriptors", "pipeline cleared");
  }
  op_ids_.clear();
  open_descs_.clear();
  staging_head_ = 0;
  staging_used_ = 0;
  desc_offset_ = 0;
  op_offset_ = 0;
  ++epoch_;
}

void DmaFunction::reset_engine(Time t, EngineReset how) {
  // Reads still on the wire complete after the reset: for FLR and a
  // destroyed VF they are unexpected completions (SPEC.md D).
  unsigned late = tags_ ? tags_->outstanding(t) : 0;
  clear_pipeline();
  finish_.clear();
  gen_.running = false;
  gen_.read_due = false;
  gen_.starts.clear();
  fetch_index_ = 0;
  fetch_ready_ = 0;
  local_busy_ = 0;
  if (how != EngineReset::kSoft) {
    if (late) {
      stats_.unexpected_completions += late;
      // The late completions match nothing outstanding: Unexpected
      // Completion, advisory (6.2.3.2.4.2); the header is a completion's.
      dev_.report_error(*this, ErrorKind::kUnexpectedCompletion,
                        {0x4a000000u, 0, std::uint32_t{rid_.value()} << 16, 0}, t, true);
    }
    if (tags_) tags_->reset();
  }
}

// ------------------------------------------------------------ state

bool DmaFunction::bus_master_enabled() const {
  if (!(cs_.get16(PCI_COMMAND) & PCI_COMMAND_MASTER)) return false;
  if (is_vf() && dev_.params().pf_bme_gates_vfs && !dev_.pf_bus_master()) return false;
  return true;
}

bool DmaFunction::memory_decode_enabled() const {
  if (!is_vf()) return cs_.get16(PCI_COMMAND) & PCI_COMMAND_MEMORY;
  const ConfigSpace& pf = dev_.pf().config();
  std::uint16_t ctl = pf.get16(dev_.sriov_cap() + PCI_SRIOV_CTRL);
  return (ctl & PCI_SRIOV_CTRL_VFE) && (ctl & PCI_SRIOV_CTRL_MSE);
}

bool DmaFunction::msix_enabled() const {
  return msix_ && (cs_.get16(msix_ + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE);
}

bool DmaFunction::idle() const {
  return chunks_.empty() && finish_.empty() && descs_.empty() &&
         (regs_.ring_size == 0 || fetch_index_ == regs_.tail) && !msix_resend_;
}

std::uint32_t DmaFunction::engine_status() const {
  std::uint32_t s = 0;
  if ((regs_.ctrl & kCtrlEnable) && (!idle() || regs_.head != regs_.tail)) s |= kStatusBusy;
  if (regs_.halted) s |= kStatusHalted;
  return s;
}

void DmaFunction::wake(Time t) {
  dev_.schedule(*this, t);
}

// ------------------------------------------------------------ config

CplStatus DmaFunction::config_access(std::uint16_t reg, unsigned size, bool write,
                                     std::uint8_t* data, Time t) {
  if (in_reset(t)) {
    ++stats_.discarded;
    return CplStatus::kDiscarded;
  }
  if (!ready(t) || transitioning(t)) {
    ++stats_.rrs_returned;
    return CplStatus::kRRS;
  }
  access_time_ = t;
  if (write) {
    ++stats_.config_writes;
    std::uint32_t v = 0;
    for (unsigned i = 0; i < size; ++i)
      v |= static_cast<std::uint32_t>(data[i]) << (8 * i);
    cs_.write(reg, size, v);
  } else {
    ++stats_.config_reads;
    std::uint32_t v = cs_.read(reg, size);
    for (unsigned i = 0; i < size; ++i)
      data[i] = static_cast<std::uint8_t>(v >> (8 * i));
  }
  return CplStatus::kSC;
}

void DmaFunction::config_before_read(ConfigSpace& cs, int watch) {
  if (watch == kWatchDevSta)
    cs.set_bits16(exp_ + PCI_EXP_DEVSTA, PCI_EXP_DEVSTA_TRPND, outstanding(access_time_) > 0);
}

void DmaFunction::config_written(ConfigSpace& cs, int watch, const ConfigWrite& w) {
  const Time t = access_time_;
  switch (watch) {
    case kWatchCommand:
      if (!(w.old_field(PCI_COMMAND, 2) & PCI_COMMAND_MASTER) &&
          (w.new_field(PCI_COMMAND, 2) & PCI_COMMAND_MASTER))
        wake(t);
      break;
    case kWatchDevCtl: {
      const std::uint16_t off = static_cast<std::uint16_t>(exp_ + PCI_EXP_DEVCTL);
      if ((w.written_field(off, 2) & PCI_EXP_DEVCTL_BCR_FLR) &&
          (cs.get32(exp_ + PCI_EXP_DEVCAP) & PCI_EXP_DEVCAP_FLR)) {
        // The config write completes first; then the function resets.
        if (is_vf()) {
          const DmaDeviceParams& p = dev_.params();
          flr(t, t + p.flr_time, t + p.flr_time + p.flr_ready_delay);
        } else {
          dev_.pf_flr(t);
        }
        return;
      }
      if (!is_vf() && ((w.old_field(off, 2) ^ w.new_field(off, 2)) & PCI_EXP_DEVCTL_PAYLOAD) &&
          dev_.port().link())
        dev_.port().link()->set_mps(max_payload_size(cs));
      break;
    }
    case kWatchMsixCtl: {
      const std::uint16_t off = static_cast<std::uint16_t>(msix_ + PCI_MSIX_FLAGS);
      bool was_live = (w.old_field(off, 2) & PCI_MSIX_FLAGS_ENABLE) &&
                      !(w.old_field(off, 2) & PCI_MSIX_FLAGS_MASKALL);
      bool live = (w.new_field(off, 2) & PCI_MSIX_FLAGS_ENABLE) &&
                  !(w.new_field(off, 2) & PCI_MSIX_FLAGS_MASKALL);
      if (!was_live && live) {
        for (std::uint64_t q : msix_pba_)
          if (q) msix_resend_ = true;
        if (msix_resend_) wake(t);
      }
      break;
    }
    case kWatchPmcsr: {
      const std::uint16_t off = static_cast<std::uint16_t>(pm_ + PCI_PM_CTRL);
      unsigned from = w.old_field(off, 2) & PCI_PM_CTRL_STATE_MASK;
      unsigned to = w.new_field(off, 2) & PCI_PM_CTRL_STATE_MASK;
      if (to != 0 && to != 3) {
        // D1/D2 are not supported: the write does not change the state.
        cs.set16(off, static_cast<std::uint16_t>((cs.get16(off) & ~PCI_PM_CTRL_STATE_MASK) | from));
        break;
      }
      if (from == to) break;
      const Time done = t + dev_.params().pm_transition_time;
      pm_busy_until_ = done;
      if (to == 3) {
        power_ = PowerState::kD3hot;
      } else {
        power_ = PowerState::kD0;
        // D3hot -> D0 with No_Soft_Reset clear is a conventional reset of
        // the function (PCI PM 1.2 5.6.1; SPEC.md D).
        if (!(cs.get16(off) & PCI_PM_CTRL_NO_SOFT_RESET)) dev_.pf_power_reset(t);
        wake(done);
      }
      break;
    }
    case kWatchSriovCtl: {
      const std::uint16_t off = static_cast<std::uint16_t>(dev_.sriov_cap() + PCI_SRIOV_CTRL);
      dev_.sriov_control_written(static_cast<std::uint16_t>(w.old_field(off, 2)),
                                 static_cast<std::uint16_t>(w.new_field(off, 2)), t);
      break;
    }
    case kWatchSriovPageSize: {
      // Exactly one supported bit (SR-IOV 1.1, 3.3.13): a value with none
      // or several is not a page size, and the register keeps the last
      // valid one (the write mask already drops unsupported bits).
      const std::uint16_t off = static_cast<std::uint16_t>(dev_.sriov_cap() + PCI_SRIOV_SYS_PGSIZE);
      const std::uint32_t v = w.new_field(off, 4);
      if (v == 0 || (v & (v - 1))) {
        cs.set32(off, w.old_field(off, 4));
        ++stats_.ignored_writes;
        break;
      }
      dev_.sriov_page_size_written();
      break;
    }
    default:
      break;
  }
}

// ------------------------------------------------------------ BAR0

std::uint32_t DmaFunction::reg_read(std::uint32_t off) const {
  switch (off) {
    case kId:
      return kIdValue;
    case kVersion:
      return kVersionValue;
    case kCtrl:
      return regs_.ctrl;
    case kStatus:
      return engine_status();
    case kRingBaseLo:
      return static_cast<std::uint32_t>(regs_.ring_base);
    case kRingBaseHi:
      return static_cast<std::uint32_t>(regs_.ring_base >> 32);
    case kRingSize:
      return regs_.ring_size;
    case kRingHead:
      return regs_.head;
    case kRingTail:
      return regs_.tail;
    case kCqBaseLo:
      return static_cast<std::uint32_t>(regs_.cq_base);
    case kCqBaseHi:
      return static_cast<std::uint32_t>(regs_.cq_base >> 32);
    case kCqTail:
      return regs_.cq_tail;
    case kCompleted:
      return regs_.completed;
    case kError:
      return regs_.error;
    case kErrorAddrLo:
      return static_cast<std::uint32_t>(regs_.error_addr);
    case kErrorAddrHi:
      return static_cast<std::uint32_t>(regs_.error_addr >> 32);
    case kIrqVector:
      return regs_.irq_vector;
    case kMaxReads:
      return regs_.max_reads;
    case kPrefetch:
      return regs_.prefetch;
    case kBytesRead:
      return static_cast<std::uint32_t>(regs_.bytes_read);
    case kBytesRead + 4:
      return static_cast<std::uint32_t>(regs_.bytes_read >> 32);
    case kBytesWritten:
      return static_cast<std::uint32_t>(regs_.bytes_written);
    case kBytesWritten + 4:
      return static_cast<std::uint32_t>(regs_.bytes_written >> 32);
    case kGenBaseLo:
      return static_cast<std::uint32_t>(gen_.base);
    case kGenBaseHi:
      return static_cast<std::uint32_t>(gen_.base >> 32);
    case kGenWindow:
      return gen_.window;
    case kGenSize:
      return gen_.size;
    case kGenCountLo:
      return static_cast<std::uint32_t>(gen_.count);
    case kGenCountHi:
      return static_cast<std::uint32_t>(gen_.count >> 32);
    case kGenSeed:
      return gen_.seed;
    case kGenHostOffset:
      return gen_.host_offset;
    case kGenDevOffset:
      return gen_.dev_offset;
    case kGenOutstanding:
      return gen_.outstanding;
    case kGenCtrl:
      return gen_.ctrl;
    case kGenStatus:
      return gen_.status | (gen_.running ? kGenRunning : 0u);
    case kGenDoneLo:
      return static_cast<std::uint32_t>(gen_.done);
    case kGenDoneHi:
      return static_cast<std::uint32_t>(gen_.done >> 32);
    default:
      return 0;
  }
}

void DmaFunction::reg_write(std::uint32_t off, std::uint32_t v, Time t) {
  const bool enabled = regs_.ctrl & kCtrlEnable;
  switch (off) {
    case kCtrl: {
      if (v & kCtrlReset) {
        reset_engine(t, EngineReset::kSoft);
        regs_.head = regs_.tail = regs_.cq_tail = regs_.completed = 0;
        regs_.error = 0;
        regs_.error_addr = 0;
        regs_.halted = false;
      }
      regs_.ctrl = v & (kCtrlEnable | kCtrlIrqEnable);
      if (!enabled && (v & kCtrlEnable)) {
        if (!valid_ring_size(regs_.ring_size)) {
          regs_.error = kErrBadRing;
          regs_.halted = true;
          ++stats_.errors;
        }
        fetch_index_ = regs_.head;
      }
      wake(t);
      break;
    }
    case kRingBaseLo:
      if (!enabled) regs_.ring_base = (regs_.ring_base & ~0xffffffffull) | v;
      break;
    case kRingBaseHi:
      if (!enabled) regs_.ring_base = (regs_.ring_base & 0xffffffffull) | (std::uint64_t{v} << 32);
      break;
    case kRingSize:
      if (!enabled) regs_.ring_size = v;
      break;
    case kCqBaseLo:
      if (!enabled) regs_.cq_base = (regs_.cq_base & ~0xffffffffull) | v;
      break;
    case kCqBaseHi:
      if (!enabled) regs_.cq_base = (regs_.cq_base & 0xffffffffull) | (std::uint64_t{v} << 32);
      break;
    case kRingTail:
      if (valid_ring_size(regs_.ring_size)) {
        regs_.tail = v & (regs_.ring_size - 1);
        wake(t);
      }
      break;
    case kError:
      regs_.error &= ~v;
      if (regs_.error == 0 && regs_.halted) {
        regs_.halted = false;
        wake(t);
      }
      break;
    case kIrqVector:
      regs_.irq_vector = v;
      break;
    case kMaxReads:
      regs_.max_reads = v;
      pending_tag_limit_ =
          v ? std::min<unsigned>(v, dev_.params().ten_bit_tags ? 768 : dev_.params().tags)
            : (dev_.params().ten_bit_tags ? 768 : dev_.params().tags);
      break;
    case kPrefetch:
      regs_.prefetch = std::clamp<std::uint32_t>(v, 1, 32);
      break;
    // The generator's arguments are taken while it is stopped.
    case kGenBaseLo:
      if (!gen_.running) gen_.base = (gen_.base & ~0xffffffffull) | v;
      break;
    case kGenBaseHi:
      if (!gen_.running) gen_.base = (gen_.base & 0xffffffffull) | (std::uint64_t{v} << 32);
      break;
    case kGenWindow:
      if (!gen_.running) gen_.window = v;
      break;
    case kGenSize:
      if (!gen_.running) gen_.size = v;
      break;
    case kGenCountLo:
      if (!gen_.running) gen_.count = (gen_.count & ~0xffffffffull) | v;
      break;
    case kGenCountHi:
      if (!gen_.running) gen_.count = (gen_.count & 0xffffffffull) | (std::uint64_t{v} << 32);
      break;
    case kGenSeed:
      if (!gen_.running) gen_.seed = v;
      break;
    case kGenHostOffset:
      if (!gen_.running) gen_.host_offset = v;
      break;
    case kGenDevOffset:
      if (!gen_.running) gen_.dev_offset = v;
      break;
    case kGenOutstanding:
      if (!gen_.running) gen_.outstanding = v;
      break;
    case kGenCtrl:
      if (v & kGenStop) {
        gen_.count = gen_.issued;  // the transfers in flight finish
        gen_.read_due = false;
      }
      if (!gen_.running) gen_.ctrl = v & (kGenRandom | kGenModeMask);
      if ((v & kGenStart) && !gen_.running) gen_start(t);
      wake(t);
      break;
    default:
      break;  // read-only or unimplemented: ignored
  }
}

CplStatus DmaFunction::bar0_access(std::uint32_t offset, std::uint8_t* data, std::uint32_t len,
                                   bool write, Time t, bool debug) {
  if (!debug) {
    if (write)
      ++stats_.mmio_writes;
    else
      ++stats_.mmio_reads;
  }
  access_time_ = t;
  if (write && !debug) {
    if (frozen_) {
      // Suspend responder (docs/migration.md): the state is fixed; a
      // posted write has nobody to report to, so it is counted and dropped.
      ++stats_.frozen_drops;
      return CplStatus::kSC;
    }
    regs_dirty_ = true;
  }
  if (!is_vf() && offset >= kMigBase && offset + len <= kMigBase + kMigSize && dev_.firmware())
    return dev_.firmware()->register_access(offset - kMigBase, data, len, write, t);
  const std::uint32_t table_end = kMsixTableOffset + vectors() * PCI_MSIX_ENTRY_SIZE;
  if (offset >= kMsixTableOffset && offset + len <= table_end) {
    std::uint8_t* entry = msix_table_.data() + (offset - kMsixTableOffset);
    if (!write) {
      std::memcpy(data, entry, len);
      return CplStatus::kSC;
    }
    std::memcpy(entry, data, len);
    // Unmasking an entry with its pending bit set sends the message.
    for (std::uint32_t v = 0; v < vectors(); ++v) {
      bool masked = msix_table_[v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL] &
                    PCI_MSIX_ENTRY_CTRL_MASKBIT;
      if (!masked && (msix_pba_[v / 64] >> (v % 64) & 1)) msix_resend_ = true;
    }
    if (msix_resend_) wake(t);
    return CplStatus::kSC;
  }
  if (offset >= kMsixPbaOffset && offset + len <= kMsixPbaOffset + msix_pba_.size() * 8) {
    if (!write)
      std::memcpy(
          data, reinterpret_cast<const std::uint8_t*>(msix_pba_.data()) + (offset - kMsixPbaOffset),
          len);
    return CplStatus::kSC;  // the PBA is read-only
  }
  if (offset + len > 0x1000) {
    if (!write) std::memset(data, 0, len);
    return CplStatus::kSC;
  }
  // Registers: 32-bit granularity; an 8-byte access covers two registers.
  std::uint32_t base = offset & ~3u;
  std::uint32_t end = offset + len;
  for (std::uint32_t r = base; r < end; r += 4) {
    std::uint32_t cur = reg_read(r);
    unsigned lo = r < offset ? offset - r : 0;
    unsigned hi = std::min<std::uint32_t>(4, end - r);
    if (write) {
      std::uint32_t v = cur;
      for (unsigned b = lo; b < hi; ++b) {
        std::uint32_t byte = data[r + b - offset];
        v = (v & ~(0xffu << (8 * b))) | (byte << (8 * b));
      }
      reg_write(r, v, t);
    } else {
      for (unsigned b = lo; b < hi; ++b)
        data[r + b - offset] = static_cast<std::uint8_t>(cur >> (8 * b));
    }
  }
  return CplStatus::kSC;
}

std::uint8_t* DmaFunction::devmem(std::uint64_t offset, std::uint32_t len) {
  if (offset + len > devmem_size_ || offset + len < offset) return nullptr;
  if (!devmem_) {
    devmem_.reset(static_cast<std::uint8_t*>(std::calloc(devmem_size_, 1)));
    if (!devmem_)
      throw ModelError(
          name_, "cannot allocate " + std::to_string(devmem_size_) + " bytes of device memory");
  }
  return devmem_.get() + offset;
}

CplStatus DmaFunction::devmem_access(std::uint64_t offset, std::uint8_t* data, std::uint32_t len,
                                     bool write, std::uint16_t requester) {
  if (write)
    ++stats_.mmio_writes;
  else
    ++stats_.mmio_reads;
  if (write && frozen_ && !dev_.params().migration.frozen_devmem_accepts) {
    ++stats_.frozen_drops;
    if (inbound_hook_) inbound_hook_(requester, offset, len, false);
    return CplStatus::kSC;
  }
  devmem_debug(offset, data, len, write);
  if (write && inbound_hook_) inbound_hook_(requester, offset, len, true);
  return CplStatus::kSC;
}

void DmaFunction::devmem_debug(std::uint64_t offset, std::uint8_t* data, std::uint32_t len,
                               bool write) {
  if (offset + len > devmem_size_) {
    if (!write) std::memset(data, 0, len);
    return;
  }
  if (!write && !devmem_) {
    std::memset(data, 0, len);
    return;
  }
  std::uint8_t* p = devmem(offset, len);
  if (write) mark_dirty(offset, len);
  if (write)
    std::memcpy(p, data, len);
  else
    std::memcpy(data, p, len);
}

// ------------------------------------------------------------ MSI-X

bool DmaFunction::raise_msix(std::uint32_t vector, Time t, Time* next) {
  if (vector >= vectors() || !msix_enabled() || !bus_master_enabled()) {
    ++stats_.msix_dropped;  // no INTx fallback on this device
    return false;
  }
  const std::uint8_t* e = msix_table_.data() + vector * PCI_MSIX_ENTRY_SIZE;
  bool masked = (cs_.get16(msix_ + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_MASKALL) ||
                (e[PCI_MSIX_ENTRY_VECTOR_CTRL] & PCI_MSIX_ENTRY_CTRL_MASKBIT);
  if (masked) {
    msix_pba_[vector / 64] |= std::uint64_t{1} << (vector % 64);
    ++stats_.msix_masked;
    return false;
  }
  std::uint32_t lo, hi, data;
  std::memcpy(&lo, e + PCI_MSIX_ENTRY_LOWER_ADDR, 4);
  std::memcpy(&hi, e + PCI_MSIX_ENTRY_UPPER_ADDR, 4);
  std::memcpy(&data, e + PCI_MSIX_ENTRY_DATA, 4);
  std::uint8_t buf[4];
  std::memcpy(buf, &data, 4);
  IssueResult r = dev_.issue(*this, TlpKind::MWr, (std::uint64_t{hi} << 32) | lo, buf, 4, 0, t);
  ++stats_.msix_sent;
  if (fabric::trace_sink())
    fabric::trace_instant(t, name_, "interrupts", "MSI-X " + std::to_string(vector),
                          "status=" + std::string(to_string(r.status)));
  *next = r.wire_free;
  return true;
}

DmaFunction::Action DmaFunction::do_msix_resend(Time t) {
  if (!msix_resend_) return {false, kTimeMax};
  for (std::uint32_t v = 0; v < vectors(); ++v) {
    if (!(msix_pba_[v / 64] >> (v % 64) & 1)) continue;
    const std::uint8_t* e = msix_table_.data() + v * PCI_MSIX_ENTRY_SIZE;
    if ((e[PCI_MSIX_ENTRY_VECTOR_CTRL] & PCI_MSIX_ENTRY_CTRL_MASKBIT) ||
        (cs_.get16(msix_ + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_MASKALL) || !msix_enabled())
      continue;
    if (!bus_master_enabled()) break;  // stays pending
    msix_pba_[v / 64] &= ~(std::uint64_t{1} << (v % 64));
    Time next = t;
    if (raise_msix(v, t, &next)) return {true, next};
  }
  msix_resend_ = false;
  return {false, kTimeMax};
}

// ------------------------------------------------------------ engine

bool DmaFunction::can_issue() {
  if (bus_master_enabled()) return true;
  halt_on_bme();
  return false;
}

void DmaFunction::halt_on_bme() {
  // Documented behaviour (docs/dma-engine.md): with BME clear the engine
  // issues nothing more. The oldest unfinished descriptor is abandoned
  // without a completion record or interrupt (both would be memory writes)
  // and HEAD stays on it; requests already issued complete normally.
  halt_abandoning(kErrBusMasterDisabled);
  ++stats_.bme_aborts;
}

void DmaFunction::halt_abandoning(std::uint32_t code) {
  std::uint32_t idx = fetch_error_.pending ? fetch_error_.index : fetch_index_;
  if (!finish_.empty())
    idx = finish_.front().index;
  else if (!chunks_.empty())
    idx = chunks_.front().desc_index;
  else if (!descs_.empty())
    idx = descs_.front().index;
  regs_.error = code;
  regs_.halted = true;
  regs_.head = idx;
  ++stats_.errors;
  clear_pipeline();
  finish_.clear();
  fetch_index_ = idx;
}

void DmaFunction::abort_descriptor(std::uint32_t code, std::uint64_t addr, Time t) {
  const Chunk& c = chunks_.front();
  Finish f{c.desc_index, c.cookie, c.flags, code, 0, false};
  regs_.error = code;
  regs_.error_addr = addr;
  regs_.halted = true;
  ++stats_.errors;
  clear_pipeline();
  // The failed descriptor is consumed with an error record; the ones after
  // it are fetched again once software clears the error.
  fetch_index_ = (f.index + 1) & (regs_.ring_size - 1);
  fetch_ready_ = 0;
  finish_.push_back(f);
  (void)t;
}

void DmaFunction::note_completion_error(CplStatus s, std::uint64_t addr, std::uint32_t len,
                                        std::uint16_t tag, Time t) {
  if (s == CplStatus::kUR) {
    note_received_ur(cs_);
  } else if (s == CplStatus::kCA) {
    note_received_ca(cs_);
  } else if (s == CplStatus::kPoisoned) {
    // Logged by the completion check; Master Data Parity Error needs
    // Parity Error Response (7.5.1.2).
    if (cs_.get16(PCI_COMMAND) & PCI_COMMAND_PARITY)
      cs_.set_bits16(PCI_STATUS, PCI_STATUS_PARITY, true);
  } else {
    // Completion Timeout: the engine does not retry, so not advisory.
    Tlp req;
    static std::uint8_t none[1];
    req.memory(TlpKind::MRd, rid_, addr, none, len);
    req.ext().tag = tag;
    dev_.report_error(*this, ErrorKind::kCompletionTimeout, header_log(req.gp(), req.ext()), t);
  }
}

void DmaFunction::halt_internal_error(Time t) {
  (void)t;
  if (exists_) halt_abandoning(kErrInternal);  // as for BME: nothing more is issued
}

bool DmaFunction::staging_alloc(std::uint32_t len, std::uint32_t* off, std::uint32_t* span) {
  const std::uint32_t cap = dev_.params().staging_bytes;
  if (staging_.size() != cap) staging_.assign(cap, 0);
  std::uint32_t start = staging_head_;
  std::uint32_t pad = 0;
  if (start + len > cap) {
    pad = cap - start;  // wrap: the tail end stays unused
    start = 0;
  }
  if (staging_used_ + pad + len > cap) return false;
  staging_used_ += pad + len;
  staging_head_ = start + len;
  *off = start;
  *span = pad + len;
  return true;
}

Time DmaFunction::step(Time t) {
  if (!exists_ || in_reset(t) || !ready(t)) return kTimeMax;
  if (power_ != PowerState::kD0 || transitioning(t)) return kTimeMax;
  // Quiesced: nothing is issued; unquiesce() wakes the engine again.
  if (quiesced_) return kTimeMax;
  if (tracking_) regs_dirty_ = true;  // the engine may change its state now
  Time wait = kTimeMax;
  Action a = do_msix_resend(t);
  if (a.acted) return a.next;
  if (!(regs_.ctrl & kCtrlEnable) && !gen_.running) return kTimeMax;
  if (fetch_error_.pending && descs_.empty() && chunks_.empty()) {
    // Everything fetched before the failed fetch has finished: the failed
    // descriptor is consumed with its error record and the engine halts.
    fetch_error_.pending = false;
    regs_.error = fetch_error_.code;
    regs_.error_addr = fetch_error_.addr;
    regs_.halted = true;
    ++stats_.errors;
    finish_.push_back({fetch_error_.index, 0, 0, fetch_error_.code, 0, false});
    fetch_index_ = (fetch_error_.index + 1) & (regs_.ring_size - 1);
  }
  if (!regs_.halted) prefetch_local(t);
  // Descriptor prefetch runs alongside the data movement: with fewer than
  // PREFETCH descriptors on hand, fetching more comes first, so the next
  // descriptor is there when the current one ends.
  if (!regs_.halted && descs_.size() < regs_.prefetch) {
    a = do_fetch(t);
    if (a.acted) return a.next;
    wait = std::min(wait, a.next);
  }
  for (auto fn : {&DmaFunction::do_finish, &DmaFunction::do_write}) {
    a = (this->*fn)(t);
    if (a.acted) return a.next;
    wait = std::min(wait, a.next);
  }
  if (regs_.halted) return wait;
  for (auto fn : {&DmaFunction::do_read, &DmaFunction::do_fetch}) {
    a = (this->*fn)(t);
    if (a.acted) return a.next;
    wait = std::min(wait, a.next);
  }
  return wait;
}

DmaFunction::Action DmaFunction::do_finish(Time t) {
  if (finish_.empty()) return {false, kTimeMax};
  Finish& f = finish_.front();
  const bool failed = f.status != kErrNone;
  if (!f.record_done && ((f.flags & kDescReport) || failed)) {
    if (!can_issue()) return {true, t};
    Completion rec{f.cookie, f.status, f.bytes, f.index};
    std::uint8_t buf[sizeof rec];
    std::memcpy(buf, &rec, sizeof rec);
    const std::uint64_t addr =
        regs_.cq_base + std::uint64_t{regs_.cq_tail & (regs_.ring_size - 1)} * sizeof rec;
    const std::uint64_t epoch = epoch_;
    IssueResult r = dev_.issue(*this, TlpKind::MWr, addr, buf, sizeof rec, 0, t);
    if (epoch != epoch_ || finish_.empty()) return {true, r.wire_free};
    ++stats_.write_requests;
    regs_.cq_tail = (regs_.cq_tail + 1) & 0xffff;
    finish_.front().record_done = true;
    return {true, r.wire_free};
  }
  const std::uint32_t index = f.index;
  if (index == kGenIndex) {
    const bool read_half = f.flags & kDescDstLocal;
    const Time done = std::max(f.done, t);
    finish_.pop_front();
    gen_finished(done, read_half);
    return {true, t};
  }
  if (auto it = std::find(open_descs_.begin(), open_descs_.end(), index); it != open_descs_.end()) {
    open_descs_.erase(it);
    if (fabric::trace_sink()) trace_end(t, name_, "descriptors", "desc " + std::to_string(index));
  }
  const bool want_irq = ((f.flags & kDescIrq) || failed) && (regs_.ctrl & kCtrlIrqEnable);
  finish_.pop_front();
  regs_.head = (index + 1) & (regs_.ring_size - 1);
  ++regs_.completed;
  ++stats_.descriptors_completed;
  Time next = t;
  if (want_irq && can_issue() && raise_msix(regs_.irq_vector, t, &next)) return {true, next};
  return {true, t};
}

Time DmaFunction::local_access(Time t, std::uint32_t bytes) {
  local_busy_ = std::max(t, local_busy_) + dev_.local_copy_time(bytes);
  return local_busy_ + dev_.params().local_memory_latency;
}

void DmaFunction::prefetch_local(Time t) {
  // Device memory is a separate resource from the link: keep the read-ahead
  // buffer filled with device-sourced chunks while the link drains it.
  // Bounded by the staging buffer (make_chunk fails when it is full).
  for (;;) {
    if (descs_.empty() || !(descs_.front().d.flags & kDescSrcLocal)) return;
    if (!chunks_.empty() && chunks_.back().read_issued < chunks_.back().len) return;
    Time wait = kTimeMax;
    if (!make_chunk(t, &wait)) return;
  }
}

void DmaFunction::op_began(Time t) {
  op_starts_.push_back(t);
  op_ids_.push_back(++op_seq_);
  // An operation (one xfer_size piece of a descriptor), from its first TLP
  // to its last write done.
  if (fabric::trace_sink())
    fabric::trace_begin(t, name_, "operations", "op " + std::to_string(op_seq_));
}

void DmaFunction::retire_front(Time t) {
  Chunk& c = chunks_.front();
  stats_.op_bytes += c.len;
  if (c.last_in_op && !op_starts_.empty()) {
    Time start = op_starts_.front();
    op_starts_.pop_front();
    ++stats_.ops_completed;
    Time end = std::max(c.last_write_done, t);
    const std::uint64_t op = op_ids_.front();
    op_ids_.pop_front();
    if (fabric::trace_sink())
      fabric::trace_end(end, name_, "operations", "op " + std::to_string(op));
    stats_.op_latency.add(to_ns(end - start));
    if (!stats_.first_op_end) {
      stats_.first_op_end = end;
      stats_.first_op_bytes = stats_.op_bytes;
    }
    stats_.last_op_end = std::max(stats_.last_op_end, end);
  }
  if (c.last_in_desc)
    finish_.push_back({c.desc_index, c.cookie, c.flags, kErrNone, c.desc_bytes, false,
                       std::max(c.last_write_done, t)});
  staging_used_ -= c.buf_span;
  if (c.flags & kDescDstLocal) --local_dst_chunks_;
  chunks_.pop_front();
  if (chunks_.empty()) {
    staging_used_ = 0;
    staging_head_ = 0;
  }
}

DmaFunction::Action DmaFunction::do_write(Time t) {
  if (chunks_.empty()) return {false, kTimeMax};
  Chunk& c = chunks_.front();
  if (c.error) {
    if (t < c.error_at) return {false, c.error_at};
    abort_descriptor(c.error, c.error_addr, t);
    return {true, t};
  }
  if (c.read_issued < c.len) return {false, kTimeMax};
  if (c.data_ready > t) return {false, c.data_ready};
  if (c.flags & kDescDstLocal) {
    std::memcpy(devmem(c.dst, c.len), staging_.data() + c.buf_off, c.len);
    mark_dirty(c.dst, c.len);
    stats_.local_bytes += c.len;
    c.write_issued = c.len;
    c.last_write_done = local_access(t, c.len);
    retire_front(t);
    return {true, t};
  }
  if (!can_issue()) return {true, t};
  // Memory writes of at most MPS bytes, never across a 4 KiB boundary: the
  // next one, or (write_bursts) every remaining one of the chunk at once,
  // and then those of the following chunks while they are ready, continue
  // the same addresses and page, and belong to the same descriptor (its
  // completion record and interrupt come before the next one's writes).
  const bool bursts = dev_.params().write_bursts;
  const std::uint32_t mps = dev_.mps();
  const std::uint64_t dst = c.dst + c.write_issued;
  std::uint8_t* const data = staging_.data() + c.buf_off + c.write_issued;
  pieces_.clear();
  std::uint32_t bytes = 0;
  std::size_t covered = 0;  // chunks (from the front) the writes cover
  for (std::size_t i = 0; i < chunks_.size(); ++i) {
    const Chunk& k = chunks_[i];
    if (i > 0) {
      const Chunk& prev = chunks_[i - 1];
      if (prev.last_in_desc || k.error || k.read_issued < k.len || k.data_ready > t ||
          (k.flags & kDescDstLocal) || k.dst != dst + bytes ||
          k.buf_off != c.buf_off + c.write_issued + bytes)
        break;
    }
    std::uint32_t done = i == 0 ? c.write_issued : 0;
    while (done < k.len) {
      const std::uint64_t a = k.dst + done;
      std::uint32_t piece = std::min(mps, k.len - done);
      if (dev_.params().aligned_requests)
        piece = std::min<std::uint32_t>(piece, mps - static_cast<std::uint32_t>(a % mps));
      piece = std::min<std::uint32_t>(piece, 4096 - static_cast<std::uint32_t>(a & 4095));
      pieces_.push_back(piece);
      done += piece;
      bytes += piece;
      if (!bursts || pieces_.size() == fabric::kMaxBurstTlps || ((dst + bytes) & 4095) == 0) break;
    }
    ++covered;
    if (done < k.len || !bursts || pieces_.size() == fabric::kMaxBurstTlps ||
        ((dst + bytes) & 4095) == 0)
      break;
  }
  const std::uint64_t epoch = epoch_;
  IssueResult r = dev_.issue_writes(*this, dst, data, pieces_, t, &piece_timing_);
  stats_.write_requests += pieces_.size();
  stats_.write_bytes += bytes;
  regs_.bytes_written += bytes;
  if (epoch != epoch_) return {true, r.wire_free};  // reset while the write was in flight
  std::size_t p = 0;
  for (std::size_t i = 0; i < covered; ++i) {
    Chunk& k = chunks_.front();
    // An operation starts when its first TLP starts on the link.
    if (k.write_issued == 0 && k.started_op && (k.flags & kDescSrcLocal))
      op_began(piece_timing_[p].start);
    std::uint32_t n = 0;
    while (p < pieces_.size() && k.write_issued + n < k.len) {
      n += pieces_[p];
      k.last_write_done = std::max(k.last_write_done, piece_timing_[p].done);
      ++p;
    }
    k.write_issued += n;
    if (k.write_issued < k.len) break;
    retire_front(t);
  }
  return {true, r.wire_free};
}

bool DmaFunction::make_chunk(Time t, Time* wait) {
  if (descs_.empty() && !(gen_.running && gen_next(t))) return false;
  FetchedDesc& fd = descs_.front();
  if (fd.ready > t) {
    *wait = fd.ready;
    return false;
  }
  const Descriptor d = fd.d;
  const std::uint32_t index = fd.index;
  if (resume_skip_ && desc_offset_ == 0 && index == resume_index_) {
    // The descriptor a loaded image was in the middle of: its first
    // resume_done_ bytes were written before the save.
    resume_skip_ = false;
    if (resume_done_ < d.length) {
      desc_offset_ = resume_done_;
      const std::uint32_t xfer = d.xfer_size ? d.xfer_size : d.length;
      op_offset_ = resume_done_ % xfer;
    }
  }
  if (desc_offset_ == 0) {
    bool bad = d.length == 0;
    if ((d.flags & kDescSrcLocal) && (d.src + d.length > devmem_size_ || d.src + d.length < d.src))
      bad = true;
    if ((d.flags & kDescDstLocal) && (d.dst + d.length > devmem_size_ || d.dst + d.length < d.dst))
      bad = true;
    if (bad) {
      Chunk c{};
      c.desc_index = index;
      c.cookie = d.cookie;
      c.flags = d.flags;
      c.error = kErrBadDescriptor;
      c.read_issued = 0;
      c.len = 0;
      c.error_at = t;
      // Everything before it must drain first: queue an error chunk.
      c.buf_span = 0;
      descs_.pop_front();
      chunks_.push_back(c);
      return true;
    }
  }
  // Device memory has no ordering of its own: a chunk that reads it waits
  // until every earlier chunk writing it has retired (descriptors are
  // processed in order, so a later one sees an earlier one's result).
  if ((d.flags & kDescSrcLocal) && local_dst_chunks_) return false;
  const std::uint32_t xfer = d.xfer_size ? d.xfer_size : d.length;
  const std::uint64_t src = d.src + desc_offset_;
  const std::uint64_t dst = d.dst + desc_offset_;
  std::uint32_t len = std::min({d.length - desc_offset_, xfer - op_offset_, kMaxChunk});
  if (!(d.flags & kDescSrcLocal)) len = std::min<std::uint32_t>(len, 4096 - (src & 4095));
  if (!(d.flags & kDescDstLocal)) len = std::min<std::uint32_t>(len, 4096 - (dst & 4095));
  std::uint32_t off, span;
  if (!staging_alloc(len, &off, &span)) return false;  // a retiring chunk frees room
  Chunk c{};
  c.desc_index = index;
  c.cookie = d.cookie;
  c.flags = d.flags;
  c.src = src;
  c.dst = dst;
  c.len = len;
  c.buf_off = off;
  c.buf_span = span;
  c.desc_bytes = d.length;
  c.desc_off = desc_offset_;
  c.started_op = op_offset_ == 0;
  op_offset_ += len;
  desc_offset_ += len;
  c.last_in_desc = desc_offset_ == d.length;
  c.last_in_op = op_offset_ == xfer || c.last_in_desc;
  if (c.last_in_op) op_offset_ = 0;
  if (c.last_in_desc) {
    descs_.pop_front();
    desc_offset_ = 0;
  }
  if (d.flags & kDescSrcLocal) {
    std::memcpy(staging_.data() + off, devmem(src, len), len);
    stats_.local_bytes += len;
    c.read_issued = len;
    c.data_ready = local_access(t, len);
    // An operation starts with its first TLP; a device-to-device copy has none.
    if (c.started_op && (d.flags & kDescDstLocal)) op_began(t);
  }
  if (c.flags & kDescDstLocal) ++local_dst_chunks_;
  chunks_.push_back(c);
  return true;
}

// ------------------------------------------------------------ generator

void DmaFunction::gen_start(Time t) {
  (void)t;
  const std::uint32_t mode = (gen_.ctrl & kGenModeMask) >> kGenModeShift;
  const std::uint64_t stride = (std::uint64_t{gen_.size} + gen_.host_offset + 63) / 64 * 64;
  // Refused (status bit, nothing runs) unless every transfer fits.
  const bool ok = gen_.size >= 1 && gen_.size <= kMaxChunk && gen_.host_offset < 64 && mode <= 3 &&
                  gen_.window >= stride && gen_.count > 0 &&
                  std::uint64_t{gen_.dev_offset} + gen_.size <= devmem_size_ &&
                  gen_.size <= dev_.params().staging_bytes;
  gen_.status = ok ? 0 : kGenBadArgs;
  if (!ok) return;
  gen_.running = true;
  gen_.issued = gen_.done = 0;
  stats_.gen_run_bytes = stats_.gen_run_first_bytes = 0;
  stats_.gen_latency = fabric::Histogram();  // per run
  stats_.gen_run_first_end = stats_.gen_run_last_end = 0;
  gen_.read_due = false;
  gen_.starts.clear();
  gen_.rng = 0x9e3779b97f4a7c15ull ^ gen_.seed;
}

bool DmaFunction::gen_next(Time t) {
  const std::uint32_t mode = (gen_.ctrl & kGenModeMask) >> kGenModeShift;
  FetchedDesc fd{};
  if (gen_.read_due) {
    // Write-read: the read goes once the write has left (it is ordered
    // behind it on the way, PCIe Base 2.4.1: a read does not pass a write).
    if (!chunks_.empty()) return false;
    fd.d.src = gen_.pair_addr;
    fd.d.dst = gen_.dev_offset;
    fd.d.flags = kDescDstLocal;
    gen_.read_due = false;
  } else {
    if (gen_.issued >= gen_.count) return false;
    if ((gen_.outstanding || mode == 2) &&
        gen_.issued - gen_.done >= (mode == 2 ? 1u : gen_.outstanding))
      return false;
    const std::uint64_t stride = (std::uint64_t{gen_.size} + gen_.host_offset + 63) / 64 * 64;
    const std::uint64_t slots = gen_.window / stride;
    std::uint64_t slot = gen_.issued % slots;
    if (gen_.ctrl & kGenRandom) {
      // xorshift64*: reproducible from the seed.
      gen_.rng ^= gen_.rng >> 12;
      gen_.rng ^= gen_.rng << 25;
      gen_.rng ^= gen_.rng >> 27;
      slot = (gen_.rng * 0x2545f4914f6cdd1dull >> 11) % slots;
    }
    const std::uint64_t host = gen_.base + slot * stride + gen_.host_offset;
    if (mode == 0 || (mode == 3 && gen_.issued % 2 == 0)) {
      fd.d.src = host;
      fd.d.dst = gen_.dev_offset;
      fd.d.flags = kDescDstLocal;
    } else {
      fd.d.src = gen_.dev_offset;
      fd.d.dst = host;
      fd.d.flags = kDescSrcLocal;
      if (mode == 2) {
        gen_.pair_addr = host;
        gen_.read_due = true;
      }
    }
    ++gen_.issued;
    gen_.starts.push_back(t);
  }
  fd.d.length = gen_.size;
  fd.d.xfer_size = gen_.size;
  fd.index = kGenIndex;
  fd.ready = t;
  descs_.push_back(fd);
  return true;
}

void DmaFunction::gen_finished(Time t, bool read_half) {
  // t: when the transfer's data was in place (device memory or host).
  const std::uint32_t mode = (gen_.ctrl & kGenModeMask) >> kGenModeShift;
  if (mode == 2 && !read_half) return;  // the pair ends with its read
  ++gen_.done;
  ++stats_.gen_transfers;
  stats_.gen_run_bytes += std::uint64_t{gen_.size} * (mode == 2 ? 2 : 1);
  if (!stats_.gen_run_first_end) {
    stats_.gen_run_first_end = t;
    stats_.gen_run_first_bytes = stats_.gen_run_bytes;
  }
  stats_.gen_run_last_end = std::max(stats_.gen_run_last_end, t);
  if (!gen_.starts.empty()) {
    stats_.gen_latency.add(to_ns(t - gen_.starts.front()));
    gen_.starts.pop_front();
  }
  if (gen_.done >= gen_.count && !gen_.read_due) gen_.running = false;
}

DmaFunction::Action DmaFunction::do_read(Time t) {
  Chunk* c = nullptr;
  if (!chunks_.empty() && !chunks_.back().error && chunks_.back().read_issued < chunks_.back().len)
    c = &chunks_.back();
  if (!c) {
    Time wait = kTimeMax;
    if (!make_chunk(t, &wait)) return {false, wait};
    return {true, t};  // a new chunk: reads (or its local copy) on the next step
  }
  TagPool& tp = tags();
  if (pending_tag_limit_ && tp.all_released() <= t) {
    tp.resize(pending_tag_limit_);
    pending_tag_limit_ = 0;
  }
  if (tp.next_free() > t) {
    ++stats_.tag_stalls;
    stats_.tag_stall_time += tp.next_free() - t;
    return {false, tp.next_free()};
  }
  if (!can_issue()) return {true, t};
  TagPool::Grant g = tp.acquire(t);
  const std::uint64_t src = c->src + c->read_issued;
  std::uint32_t piece = std::min(dev_.mrrs(), c->len - c->read_issued);
  if (dev_.params().aligned_requests)
    piece =
        std::min<std::uint32_t>(piece, dev_.mrrs() - static_cast<std::uint32_t>(src % dev_.mrrs()));
  if (c->read_issued == 0 && c->started_op) op_began(t);
  const std::uint64_t epoch = epoch_;
  IssueResult r = dev_.issue(*this, TlpKind::MRd, src,
                             staging_.data() + c->buf_off + c->read_issued, piece, g.tag, t);
  tp.release_at(g.tag, r.done);
  ++stats_.read_requests;
  stats_.read_bytes += piece;
  regs_.bytes_read += piece;
  stats_.read_latency.add(to_ns(r.done - t));
  if (epoch != epoch_) return {true, r.wire_free};
  if (r.status != CplStatus::kSC && !c->error) {
    note_completion_error(r.status, src, piece, g.tag, r.done);
    c->error = to_error(r.status);
    c->error_addr = src;
    c->error_at = r.done;
  }
  c->data_ready = std::max(c->data_ready, r.done);
  c->read_issued += piece;
  return {true, r.wire_free};
}

DmaFunction::Action DmaFunction::do_fetch(Time t) {
  if (!(regs_.ctrl & kCtrlEnable) || regs_.ring_size == 0 || fetch_error_.pending)
    return {false, kTimeMax};
  if (fetch_ready_ > t) return {false, fetch_ready_};
  const std::uint32_t size = regs_.ring_size;
  const std::uint32_t pending = (regs_.tail - fetch_index_) & (size - 1);
  if (pending == 0 || descs_.size() >= 2 * regs_.prefetch) return {false, kTimeMax};
  std::uint32_t n = std::min({pending, regs_.prefetch, size - fetch_index_,
                              std::max<std::uint32_t>(1, dev_.mrrs() / kDescBytes)});
  TagPool& tp = tags();
  if (tp.next_free() > t) return {false, tp.next_free()};
  if (!can_issue()) return {true, t};
  TagPool::Grant g = tp.acquire(t);
  std::vector<std::uint8_t> buf(n * kDescBytes);
  const std::uint64_t addr = regs_.ring_base + std::uint64_t{fetch_index_} * kDescBytes;
  const std::uint64_t epoch = epoch_;
  IssueResult r = dev_.issue(*this, TlpKind::MRd, addr, buf.data(), n * kDescBytes, g.tag, t);
  tp.release_at(g.tag, r.done);
  ++stats_.descriptor_fetches;
  if (epoch != epoch_) return {true, r.wire_free};
  if (r.status != CplStatus::kSC) {
    note_completion_error(r.status, addr, n * kDescBytes, g.tag, r.done);
    // The failed descriptor's error record follows those of the ones
    // fetched before it (step() halts the engine once they are done).
    fetch_error_ = {true, fetch_index_, to_error(r.status), addr};
    return {true, r.wire_free};
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    FetchedDesc fd;
    std::memcpy(&fd.d, buf.data() + i * kDescBytes, kDescBytes);
    fd.index = (fetch_index_ + i) & (size - 1);
    fd.ready = r.done;
    descs_.push_back(fd);
    if (fabric::trace_sink()) {
      char args[96];
      std::snprintf(args, sizeof args, "index=%u, cookie=0x%x, length=%u, flags=0x%x", fd.index,
                    fd.d.cookie, fd.d.length, fd.d.flags);
      // From when its fetch was issued to when its record was done.
      fabric::trace_begin(t, name_, "descriptors", "desc " + std::to_string(fd.index), args);
      open_descs_.push_back(fd.index);
    }
  }
  fetch_index_ = (fetch_index_ + n) & (size - 1);
  fetch_ready_ = r.done;
  return {true, r.wire_free};
}

// ------------------------------------------------------------ migration

void DmaFunction::reset_migration() {
  quiesced_ = false;
  drain_stuck_ = false;
  frozen_ = false;
  tracking_ = false;
  regs_dirty_ = false;
  dirty_.clear();
  resume_skip_ = false;
}

void DmaFunction::quiesce(Time t) {
  (void)t;
  if (!quiesced_) ++stats_.quiesces;
  quiesced_ = true;
}

Time DmaFunction::drain_time(Time t) const {
  // Tags are held until their completion arrives; all released = no
  // outstanding non-posted request.
  if (drain_stuck_) return kTimeMax;
  return tags_ ? std::max(t, tags_->all_released()) : t;
}

void DmaFunction::unquiesce(Time t) {
  if (!quiesced_) return;
  quiesced_ = false;
  wake(t);
}

void DmaFunction::mark_dirty(std::uint64_t offset, std::uint64_t len) {
  if (!tracking_ || len == 0) return;
  const std::uint64_t first = offset / mig::kPageBytes;
  const std::uint64_t last = (offset + len - 1) / mig::kPageBytes;
  for (std::uint64_t p = first; p <= last && p / 64 < dirty_.size(); ++p)
    dirty_[p / 64] |= std::uint64_t{1} << (p % 64);
}

void DmaFunction::start_tracking() {
  tracking_ = true;
  regs_dirty_ = false;
  dirty_.assign((devmem_size_ / mig::kPageBytes + 63) / 64, 0);
}

std::uint64_t DmaFunction::dirty_bytes() const {
  if (!tracking_) return 0;
  std::uint64_t pages = 0;
  for (std::uint64_t q : dirty_)
    pages += static_cast<std::uint64_t>(__builtin_popcountll(q));
  std::uint64_t n = pages * mig::kPageBytes;
  if (regs_dirty_ || pages) {
    // The engine, progress and MSI-X records travel with every image.
    mig::FunctionState empty;
    empty.msix_table.assign(msix_table_.size(), 0);
    empty.pba.assign(msix_pba_.size(), 0);
    n += mig::encoded_size(empty);
  }
  return n;
}

mig::FunctionState DmaFunction::capture(bool full, bool consume) {
  mig::FunctionState s;
  s.devmem_size = devmem_size_;
  s.vectors = vectors();
  s.regs = regs_;
  // Progress at a request boundary: what was written stays written; data
  // read ahead but not written yet is read again after a resume.
  mig::ProgressState& p = s.progress;
  for (const Finish& f : finish_)
    p.finish.push_back({f.index, f.cookie, f.flags, f.status, f.bytes, f.record_done});
  if (!chunks_.empty()) {
    const Chunk& c = chunks_.front();
    p.in_progress = true;
    p.desc_index = c.desc_index;
    p.desc_done = c.error ? 0 : c.desc_off + c.write_issued;
    p.fetch_index = c.desc_index;
  } else if (!descs_.empty()) {
    p.in_progress = true;
    p.desc_index = descs_.front().index;
    p.desc_done = desc_offset_;
    p.fetch_index = p.desc_index;
  } else {
    p.fetch_index = fetch_index_;
  }
  if (resume_skip_ && !p.in_progress && p.fetch_index == resume_index_) {
    // Loaded, resumed and saved again before the engine fetched it.
    p.in_progress = true;
    p.desc_index = resume_index_;
    p.desc_done = resume_done_;
  }
  s.msix_table = msix_table_;
  s.pba = msix_pba_;
  s.msix_resend = msix_resend_;
  const std::uint64_t pages = devmem_size_ / mig::kPageBytes;
  for (std::uint64_t pg = 0; pg < pages; ++pg) {
    const bool dirty = pg / 64 < dirty_.size() && (dirty_[pg / 64] >> (pg % 64) & 1);
    if (!full && !dirty) continue;
    std::vector<std::uint8_t> bytes(mig::kPageBytes, 0);
    if (devmem_) std::memcpy(bytes.data(), devmem_.get() + pg * mig::kPageBytes, mig::kPageBytes);
    if (full && !dirty &&
        std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; }))
      continue;  // a full image leaves zero pages out
    s.pages.emplace(pg * mig::kPageBytes, std::move(bytes));
  }
  if (!consume) return s;
  if (tracking_) {
    std::fill(dirty_.begin(), dirty_.end(), 0);
    regs_dirty_ = false;
  }
  ++stats_.images_saved;
  return s;
}

void DmaFunction::install(const mig::FunctionState& s, Time t) {
  reset_engine(t, EngineReset::kSoft);
  const mig::EngineRegsState& g = s.regs;
  regs_ = g;
  regs_.prefetch = std::clamp<std::uint32_t>(g.prefetch, 1, 32);
  const unsigned all = dev_.params().ten_bit_tags ? 768 : dev_.params().tags;
  pending_tag_limit_ = g.max_reads ? std::min<unsigned>(g.max_reads, all) : all;
  for (const mig::FinishState& f : s.progress.finish)
    finish_.push_back({f.index, f.cookie, f.flags, f.status, f.bytes, f.record_done});
  const std::uint32_t mask = regs_.ring_size ? regs_.ring_size - 1 : 0xffffffffu;
  fetch_index_ = s.progress.fetch_index & mask;
  resume_skip_ = s.progress.in_progress && s.progress.desc_done > 0;
  resume_index_ = s.progress.desc_index & mask;
  resume_done_ = s.progress.desc_done;
  msix_table_ = s.msix_table;
  msix_pba_ = s.pba;
  msix_resend_ = s.msix_resend;
  devmem_.reset();
  for (const auto& [off, bytes] : s.pages)
    if (std::any_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b != 0; }))
      std::memcpy(devmem(off, mig::kPageBytes), bytes.data(), mig::kPageBytes);
  if (tracking_) std::fill(dirty_.begin(), dirty_.end(), 0);
  ++stats_.images_loaded;
}

bool DmaFunction::send_msix(std::uint32_t vector, Time t) {
  Time next = t;
  return raise_msix(vector, t, &next);
}

}  // namespace pciesim::models

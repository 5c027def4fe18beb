#include "models/dma_endpoint/dma_device.h"

#include "fabric/kernel/completion_ledger.h"
#include "fabric/kernel/trace.h"

#include <tlm_utils/tlm_quantumkeeper.h>

#include <algorithm>
#include <cstring>

#include "fabric/bridge/bridge_decode.h"
#include "fabric/common/error.h"
#include "fabric/config_space/capabilities.h"
#include "fabric/fault/fault_registry.h"
#include "fabric/kernel/kernel_context.h"
#include "models/common/error_signal.h"
#include "models/dma_endpoint/migration_firmware.h"

namespace pciesim::models {

using namespace fabric;

DmaDevice::DmaDevice(sc_core::sc_module_name name, const DmaDeviceParams& p)
    : sc_core::sc_module(name), params_(p), port_("port", *this, /*upstream_end=*/false, 0) {
  if (p.staging_bytes < 4096)
    throw ModelError(this->name(), "staging buffer must hold at least 4096 bytes");
  const std::string base = this->name();
  functions_.push_back(std::make_unique<DmaFunction>(*this, base + ".pf", 0, build_pf_config()));
  if (p.total_vfs) {
    ConfigSpace tmpl = build_vf_template();
    functions_.reserve(1 + p.total_vfs);
    for (unsigned n = 1; n <= p.total_vfs; ++n)
      functions_.push_back(std::make_unique<DmaFunction>(*this, base + ".vf" + std::to_string(n), n,
                                                         ConfigSpace::sharing_layout_of(tmpl)));
  }
  queued_at_.assign(functions_.size(), kTimeMax);
  if (p.migration.enabled && p.total_vfs)
    firmware_ = std::make_unique<MigrationFirmware>("firmware", *this, params_.migration);
  SC_THREAD(engine_thread);
}

DmaDevice::~DmaDevice() = default;

namespace {
// What a PF and a VF have alike after the PCI Express capability: MSI-X
// with the engine's table layout, AER, ARI and ACS. Returns MSI-X's offset.
std::uint16_t add_engine_capabilities(ConfigSpace& cs, const DmaDeviceParams& p,
                                      std::uint16_t vectors) {
  MsixOptions mo;
  mo.table_size = vectors;
  mo.table_offset = dma::kMsixTableOffset;
  mo.pba_offset = dma::kMsixPbaOffset;
  const std::uint16_t msix = add_msix_capability(cs, mo);
  add_aer_capability(cs, false);
  if (p.ari) add_ari_capability(cs, 0);
  if (p.acs_supported) add_acs_capability(cs, p.acs_supported);
  return msix;
}
}  // namespace

ConfigSpace DmaDevice::build_pf_config() {
  const DmaDeviceParams& p = params_;
  ConfigSpace cs;
  Type0Header h;
  h.vendor_id = p.vendor_id;
  h.device_id = p.device_id;
  h.revision = p.revision;
  h.class_code = p.class_code;
  h.subsystem_vendor_id = p.subsystem_vendor_id;
  h.subsystem_id = p.subsystem_id;
  BarSpecs bars{};
  bars[0] = {dma::kBar0Size, true, false};
  bars[2] = {p.device_memory, true, true};
  build_type0_header(cs, h, bars);
  std::uint16_t pm = add_pm_capability(cs, {p.no_soft_reset});
  PcieCapOptions pc;
  pc.port_type = PCI_EXP_TYPE_ENDPOINT;
  pc.flr = true;
  pc.extended_tag = true;
  pc.ten_bit_tag_requester = p.ten_bit_tags;
  pc.ten_bit_tag_completer = true;
  pc.max_link_speed = p.max_link_speed;
  pc.max_link_width = p.max_link_width;
  pc.max_payload_supported = p.max_payload_supported;
  std::uint16_t exp = add_pcie_capability(cs, pc);
  std::uint16_t msix = add_engine_capabilities(cs, p, p.msix_vectors);
  if (p.total_vfs) {
    SriovOptions so;
    so.total_vfs = p.total_vfs;
    so.first_vf_offset = p.first_vf_offset_no_ari;
    so.vf_stride = p.vf_stride_no_ari;
    so.vf_device_id = p.vf_device_id;
    so.vf_bars[0] = {dma::kBar0Size, true, false};
    so.vf_bars[2] = {p.vf_device_memory, true, true};
    sriov_ = add_sriov_capability(cs, so);
    // Offset and stride follow ARI Capable Hierarchy, which survives FLR.
    cs.set_flr_keep(sriov_ + PCI_SRIOV_VF_OFFSET, 4, 0xffffffff);
    cs.watch_writes(sriov_ + PCI_SRIOV_CTRL, 2, DmaFunction::kWatchSriovCtl);
    cs.watch_writes(sriov_ + PCI_SRIOV_NUM_VF, 2, DmaFunction::kWatchSriovNumVfs);
    cs.watch_writes(sriov_ + PCI_SRIOV_SYS_PGSIZE, 4, DmaFunction::kWatchSriovPageSize);
  }
  cs.watch_writes(PCI_COMMAND, 2, DmaFunction::kWatchCommand);
  cs.watch_writes(exp + PCI_EXP_DEVCTL, 2, DmaFunction::kWatchDevCtl);
  cs.watch_reads(exp + PCI_EXP_DEVSTA, 2, DmaFunction::kWatchDevSta);
  cs.watch_writes(msix + PCI_MSIX_FLAGS, 2, DmaFunction::kWatchMsixCtl);
  cs.watch_writes(pm + PCI_PM_CTRL, 2, DmaFunction::kWatchPmcsr);
  return cs;
}

ConfigSpace DmaDevice::build_vf_template() {
  const DmaDeviceParams& p = params_;
  ConfigSpace cs;
  // VF rules (SPEC.md C): Vendor/Device ID read 0xFFFF, no BARs of their
  // own, I/O and Memory Space Enable read zero, BME per VF, no INTx.
  Type0Header h;
  h.vendor_id = 0xffff;
  h.device_id = 0xffff;
  h.revision = p.revision;
  h.class_code = p.class_code;
  h.subsystem_vendor_id = p.subsystem_vendor_id;
  h.subsystem_id = p.subsystem_id;
  build_type0_header(cs, h, {});
  cs.set_write_mask(PCI_COMMAND, 2, PCI_COMMAND_MASTER);
  PcieCapOptions pc;
  pc.port_type = PCI_EXP_TYPE_ENDPOINT;
  pc.flr = true;
  pc.vf = true;
  pc.max_link_speed = p.max_link_speed;
  pc.max_link_width = p.max_link_width;
  pc.max_payload_supported = p.max_payload_supported;
  std::uint16_t exp = add_pcie_capability(cs, pc);
  std::uint16_t msix = add_engine_capabilities(cs, p, p.vf_msix_vectors);
  cs.watch_writes(PCI_COMMAND, 2, DmaFunction::kWatchCommand);
  cs.watch_writes(exp + PCI_EXP_DEVCTL, 2, DmaFunction::kWatchDevCtl);
  cs.watch_reads(exp + PCI_EXP_DEVSTA, 2, DmaFunction::kWatchDevSta);
  cs.watch_writes(msix + PCI_MSIX_FLAGS, 2, DmaFunction::kWatchMsixCtl);
  return cs;
}

std::vector<DmaFunction*> DmaDevice::existing_functions() {
  std::vector<DmaFunction*> out;
  for (auto& f : functions_)
    if (f->exists()) out.push_back(f.get());
  return out;
}

DmaFunction* DmaDevice::function_by_name(const std::string& name) {
  for (auto& f : functions_)
    if (f->name() == name) return f.get();
  return nullptr;
}

// ------------------------------------------------------------ SR-IOV

RoutingId DmaDevice::vf_rid(unsigned n) const {
  const ConfigSpace& cs = functions_[0]->config();
  std::uint32_t offset = cs.get16(sriov_ + PCI_SRIOV_VF_OFFSET);
  std::uint32_t stride = cs.get16(sriov_ + PCI_SRIOV_VF_STRIDE);
  return RoutingId(
      static_cast<std::uint16_t>(functions_[0]->rid().value() + offset + (n - 1) * stride));
}

DmaFunction* DmaDevice::function_by_rid(RoutingId rid) {
  DmaFunction& pf = *functions_[0];
  if (rid == pf.rid()) return &pf;
  if (!sriov_ || enabled_vfs_ == 0) return nullptr;
  const ConfigSpace& cs = pf.config();
  std::uint16_t offset = cs.get16(sriov_ + PCI_SRIOV_VF_OFFSET);
  std::uint16_t stride = cs.get16(sriov_ + PCI_SRIOV_VF_STRIDE);
  std::uint16_t diff = static_cast<std::uint16_t>(rid.value() - pf.rid().value() - offset);
  if (stride == 0) return diff == 0 ? functions_[1].get() : nullptr;
  if (diff % stride) return nullptr;
  unsigned n = diff / stride + 1u;
  if (n > enabled_vfs_) return nullptr;
  return functions_[n].get();
}

std::uint64_t DmaDevice::vf_bar_stride(unsigned bar) const {
  std::uint64_t size = bar == 0 ? dma::kBar0Size : params_.vf_device_memory;
  std::uint32_t pgsz = functions_[0]->config().get32(sriov_ + PCI_SRIOV_SYS_PGSIZE);
  std::uint64_t page = 4096;
  for (unsigned b = 0; b < 32; ++b)
    if (pgsz & (1u << b)) {
      page = std::uint64_t{1} << (12 + b);
      break;
    }
  // Each VF's BAR region is aligned to the System Page Size (SR-IOV 3.3.13).
  return std::max(size, page);
}

void DmaDevice::sriov_page_size_written() {
  // Each VF BAR is sized in, and aligned to, multiples of the System Page
  // Size (SR-IOV 1.1, 3.3.13-3.3.14): the writable address bits start at the
  // per-VF stride, and address bits below it read as zero (they must not
  // keep an address written under a smaller page size).
  ConfigSpace& cs = functions_[0]->config();
  for (unsigned bar : {0u, 2u}) {
    std::uint64_t mask = ~(vf_bar_stride(bar) - 1);
    std::uint16_t reg = static_cast<std::uint16_t>(sriov_ + PCI_SRIOV_BAR + 4 * bar);
    const std::uint32_t lo_mask = static_cast<std::uint32_t>(mask) & 0xfffffff0u;
    cs.set_write_mask(reg, 4, lo_mask);
    cs.set_write_mask(reg + 4, 4, static_cast<std::uint32_t>(mask >> 32));
    cs.set32(reg, cs.get32(reg) & (lo_mask | 0xfu));  // keep the type bits
  }
}

void DmaDevice::sriov_control_written(std::uint16_t old_ctrl, std::uint16_t new_ctrl, Time t) {
  ConfigSpace& cs = functions_[0]->config();
  const bool was = old_ctrl & PCI_SRIOV_CTRL_VFE;
  const bool now = new_ctrl & PCI_SRIOV_CTRL_VFE;
  if (!was && ((old_ctrl ^ new_ctrl) & PCI_SRIOV_CTRL_ARI)) {
    const bool ari = new_ctrl & PCI_SRIOV_CTRL_ARI;
    cs.set16(sriov_ + PCI_SRIOV_VF_OFFSET,
             ari ? params_.first_vf_offset : params_.first_vf_offset_no_ari);
    cs.set16(sriov_ + PCI_SRIOV_VF_STRIDE, ari ? params_.vf_stride : params_.vf_stride_no_ari);
  }
  if (!was && now) enable_vfs(t);
  if (was && !now) disable_vfs(t);
}

void DmaDevice::enable_vfs(Time t) {
  ConfigSpace& cs = functions_[0]->config();
  // NumVFs and System Page Size are read-only while VF Enable is set.
  cs.set_write_mask(sriov_ + PCI_SRIOV_NUM_VF, 2, 0);
  cs.set_write_mask(sriov_ + PCI_SRIOV_SYS_PGSIZE, 4, 0);
  unsigned num = cs.get16(sriov_ + PCI_SRIOV_NUM_VF);
  // NumVFs above TotalVFs enables nothing (SPEC.md C).
  enabled_vfs_ = num <= params_.total_vfs ? num : 0;
  for (unsigned n = 1; n <= enabled_vfs_; ++n) {
    functions_[n]->set_rid(vf_rid(n));
    functions_[n]->create(t, t + params_.vf_ready_time);
  }
}

void DmaDevice::disable_vfs(Time t) {
  if (!sriov_) return;
  for (unsigned n = 1; n < functions_.size(); ++n)
    functions_[n]->destroy(t);
  enabled_vfs_ = 0;
  ConfigSpace& cs = functions_[0]->config();
  cs.set_write_mask(sriov_ + PCI_SRIOV_NUM_VF, 2, 0xffff);
  cs.set_write_mask(sriov_ + PCI_SRIOV_SYS_PGSIZE, 4, cs.get32(sriov_ + PCI_SRIOV_SUP_PGSIZE));
}

void DmaDevice::pf_flr(Time t) {
  if (firmware_) firmware_->reset();
  // A PF FLR clears VF Enable: its VFs cease to exist (SPEC.md D).
  disable_vfs(t);
  functions_[0]->flr(t, t + params_.flr_time, t + params_.flr_time + params_.flr_ready_delay);
  if (sriov_) sriov_page_size_written();
}

void DmaDevice::pf_power_reset(Time t) {
  if (firmware_) firmware_->reset();
  disable_vfs(t);
  functions_[0]->conventional_reset(t, t + params_.pm_transition_time);
  if (sriov_) sriov_page_size_written();
}

void DmaDevice::port_link_state(Port& p, bool up) {
  // DL_Down at an Upstream Port resets the component (PCIe Base 2.9.1):
  // what a surprise link down or a DPC containment does to the device.
  if (!up) port_hot_reset(p);
}

void DmaDevice::port_error(Port&, ErrorKind kind, const std::array<std::uint32_t, 4>& header,
                           Time t) {
  report_error(*functions_[0], kind, header, t);
}

void DmaDevice::report_error(DmaFunction& f, ErrorKind kind,
                             const std::array<std::uint32_t, 4>& header, Time t, bool advisory) {
  at_time(t, [this, &f, kind, header, t, advisory] {
    const ErrorReport r = record_error(f.config(), kind, header, advisory,
                                       f.is_vf() ? &functions_[0]->config() : nullptr);
    if (r.message == ErrorSeverity::kNone) return;
    ++f.stats().error_messages;
    send_error_message(port_, f.rid(), r.message, t);
  });
}

void DmaDevice::internal_error(DmaFunction& f, Time t) {
  report_error(f, ErrorKind::kInternal, {0, 0, 0, 0}, t);
  f.halt_internal_error(t);
}

void DmaDevice::surprise_flr(DmaFunction& f, Time t) {
  if (!f.exists()) return;
  if (f.is_vf()) {
    f.flr(t, t + params_.flr_time, t + params_.flr_time + params_.flr_ready_delay);
  } else {
    pf_flr(t);
  }
}

bool DmaDevice::completer_fault(DmaFunction& f, tlm::tlm_generic_payload& gp, TlpExtension& ext,
                                Time t) {
  FaultRegistry* fr = fault_registry();
  if (!fr || !fr->any(FaultPoint::kCompleter)) return false;
  const unsigned id = fr->check(FaultPoint::kCompleter, f.name(), nullptr, gp, ext, t);
  if (!id) return false;
  return completer_fault_action(fr->state(id).spec.kind, f.config(), gp, ext,
                                [&](ErrorKind k, const std::array<std::uint32_t, 4>& h, bool adv) {
                                  report_error(f, k, h, t, adv);
                                });
}

void DmaDevice::port_hot_reset(Port&) {
  const Time t = now_fs();
  if (firmware_) firmware_->reset();
  disable_vfs(t);
  functions_[0]->conventional_reset(t, t + params_.reset_ready_time);
  if (sriov_) sriov_page_size_written();
}

// ------------------------------------------------------------ services

// The PF's Device Control governs all functions (VFs' MPS/MRRS fields are
// RsvdP). Read on every TLP, so straight from the known capability offset.
std::uint32_t DmaDevice::mps() const {
  return max_payload_size(functions_[0]->config(), functions_[0]->pcie_cap());
}
std::uint32_t DmaDevice::mrrs() const {
  return max_read_request(functions_[0]->config(), functions_[0]->pcie_cap());
}

bool DmaDevice::pf_bus_master() const {
  return functions_[0]->config().get16(PCI_COMMAND) & PCI_COMMAND_MASTER;
}

Time DmaDevice::local_copy_time(std::uint32_t bytes) const {
  return static_cast<Time>(bytes * 8.0 * 1e15 / (params_.local_memory_gbps * 1e9));
}

Time DmaDevice::completion_timeout() const {
  // Device Control 2 of the PF (VFs use the PF's, SPEC.md C).
  const ConfigSpace& cs = functions_[0]->config();
  const std::uint16_t exp = cs.find_capability(PCI_CAP_ID_EXP);
  const Time t = completion_timeout_fs(cs.get16(exp + PCI_EXP_DEVCTL2));
  return t ? t : kTimeMax / 4;  // disabled: never
}

void DmaDevice::schedule(DmaFunction& f, Time t) {
  if (enqueue(f, t)) work_.notify(sc_core::SC_ZERO_TIME);
}

bool DmaDevice::enqueue(DmaFunction& f, Time t) {
  unsigned i = f.is_vf() ? f.vf_number() : 0;
  if (queued_at_[i] <= t) return false;
  queued_at_[i] = t;
  queue_.push({t, seq_++, i});
  return true;
}

void DmaDevice::engine_thread() {
  KernelContext::guard([this] {
    for (;;) {
      while (!queue_.empty() && queued_at_[queue_.top().fn] != queue_.top().t)
        queue_.pop();
      if (queue_.empty()) {
        sc_core::wait(work_);
        continue;
      }
      const Slot s = queue_.top();
      const Time now = now_fs();
      const Time quantum = tlm_utils::tlm_quantumkeeper::get_global_quantum().value();
      // Temporal decoupling: run ahead of the kernel by at most a quantum
      // (quantum 0: every action at its exact time).
      if (s.t > now && (quantum == 0 || s.t - now >= quantum)) {
        sc_core::wait(to_sc(s.t - now), work_);
        continue;
      }
      queue_.pop();
      queued_at_[s.fn] = kTimeMax;
      DmaFunction& f = *functions_[s.fn];
      ++f.stats().engine_steps;
      Time next = f.step(std::max(s.t, now));
      // The engine thread looks at its queue before it waits: no wake-up.
      if (next != kTimeMax) enqueue(f, next);
    }
  });
}

const DmaDevice::DecodeState& DmaDevice::decode_state() {
  const ConfigSpace& cs = functions_[0]->config();
  if (decode_.generation == cs.generation() && decode_.vfs == enabled_vfs_) return decode_;
  DecodeState d;
  d.generation = cs.generation();
  d.vfs = static_cast<std::uint16_t>(enabled_vfs_);
  d.mse = cs.get16(PCI_COMMAND) & PCI_COMMAND_MEMORY;
  for (unsigned bar : {0u, 2u})
    d.base[bar] = bar_address(cs, static_cast<std::uint16_t>(PCI_BASE_ADDRESS_0 + 4 * bar));
  if (sriov_ && enabled_vfs_) {
    const std::uint16_t ctl = cs.get16(sriov_ + PCI_SRIOV_CTRL);
    d.vf_mse = (ctl & PCI_SRIOV_CTRL_VFE) && (ctl & PCI_SRIOV_CTRL_MSE);
    for (unsigned bar : {0u, 2u}) {
      d.vf_base[bar] =
          bar_address(cs, static_cast<std::uint16_t>(sriov_ + PCI_SRIOV_BAR + 4 * bar));
      d.vf_stride[bar] = vf_bar_stride(bar);
    }
  }
  decode_ = d;
  return decode_;
}

DmaDevice::Decoded DmaDevice::decode_memory(std::uint64_t addr, std::uint32_t len) {
  const DecodeState& d = decode_state();
  if (d.mse) {
    const std::uint64_t sizes[3] = {dma::kBar0Size, 0, params_.device_memory};
    for (unsigned bar : {0u, 2u}) {
      const std::uint64_t base = d.base[bar];
      if (addr >= base && addr - base < sizes[bar] && len <= sizes[bar] - (addr - base))
        return {functions_[0].get(), static_cast<int>(bar), addr - base};
    }
  }
  if (d.vf_mse) {
    for (unsigned bar : {0u, 2u}) {
      const std::uint64_t base = d.vf_base[bar];
      const std::uint64_t stride = d.vf_stride[bar];
      const std::uint64_t size = bar == 0 ? dma::kBar0Size : params_.vf_device_memory;
      if (addr < base) continue;
      const std::uint64_t n = (addr - base) / stride;
      const std::uint64_t off = addr - base - n * stride;
      if (n >= params_.total_vfs) continue;
      if (n >= enabled_vfs_ || off + len > size) return {};  // no such VF: UR
      return {functions_[n + 1].get(), static_cast<int>(bar), off};
    }
  }
  return {};
}

IssueResult DmaDevice::issue_writes(DmaFunction& f, std::uint64_t addr, std::uint8_t* data,
                                    const std::vector<std::uint32_t>& pieces, Time t,
                                    std::vector<PieceTiming>* timing) {
  const Time now = now_fs();
  if (t < now) t = now;
  std::uint32_t total = 0;
  for (std::uint32_t p : pieces)
    total += p;
  if (firmware_ && firmware_->logging() && f.is_vf())
    firmware_->log_write(f.vf_number(), addr, total);
  // Writes to this device's own functions take the internal path, TLP by TLP.
  if (timing) timing->clear();
  if (pieces.size() == 1 || decode_memory(addr, total).f) {
    IssueResult r{CplStatus::kSC, t, t, 0};
    std::uint32_t off = 0;
    Time at = t;
    for (std::uint32_t p : pieces) {
      IssueResult one = issue(f, TlpKind::MWr, addr + off, data + off, p, 0, at);
      if (off == 0) r.first_start = one.first_start;
      if (timing) timing->push_back({one.first_start, one.done});
      off += p;
      at = one.wire_free;
      r.done = std::max(r.done, one.done);
      r.wire_free = one.wire_free;
      if (one.status != CplStatus::kSC) r.status = one.status;
    }
    return r;
  }
  burst_.resize(pieces.size());
  std::uint32_t off = 0;
  for (std::size_t k = 0; k < pieces.size(); ++k) {
    burst_[k] = BurstTlp{};
    burst_[k].offset = off;
    burst_[k].length = pieces[k];
    burst_[k].time = t;  // all queued for the link at once
    off += pieces[k];
  }
  burst_tlp_.memory(TlpKind::MWr, f.rid(), addr, data, total);
  burst_tlp_.ext().burst = &burst_;
  sc_core::sc_time d = to_sc(t - now);
  port_.transmit(burst_tlp_.gp(), d);
  const TlpExtension& ext = burst_tlp_.ext();
  IssueResult r{ext.status, now + d.value(), ext.first_hop_done ? ext.first_hop_done : t,
                burst_[0].consumed};
  burst_tlp_.ext().burst = nullptr;
  if (TimeBins* bins = f.write_bins())
    for (const BurstTlp& b : burst_)
      bins->add_at(b.done, b.length);
  if (timing) {
    timing->resize(burst_.size());
    for (std::size_t k = 0; k < burst_.size(); ++k)
      (*timing)[k] = {burst_[k].consumed, burst_[k].done};
  }
  return r;
}

IssueResult DmaDevice::issue(DmaFunction& f, TlpKind kind, std::uint64_t addr, std::uint8_t* data,
                             std::uint32_t len, std::uint16_t tag, Time t) {
  const Time now = now_fs();
  if (t < now) t = now;
  // DMA logging sees every write as it leaves the function (the address
  // the function emits: an IOVA / guest-physical address).
  if (kind == TlpKind::MWr && firmware_ && firmware_->logging() && f.is_vf())
    firmware_->log_write(f.vf_number(), addr, len);
  // Peer-to-peer between functions of this device turns around inside it
  // unless the requester's ACS redirects it upstream (SPEC.md E).
  Decoded peer = decode_memory(addr, len);
  const std::uint16_t acs = peer.f ? fabric::acs_control(f.config()) : 0;
  if (peer.f && !(acs & PCI_ACS_RR)) {
    if (acs & PCI_ACS_EC) {
      Tlp blocked;
      blocked.memory(kind, f.rid(), addr, data, len);
      blocked.ext().tag = tag;
      report_error(f, ErrorKind::kAcsViolation, header_log(blocked.gp(), blocked.ext()), t);
      return {CplStatus::kCA, t, t, t};
    }
    ++f.stats().p2p_internal;
    CplStatus s = CplStatus::kUR;
    if (peer.f->exists() && !peer.f->in_reset(t) && peer.f->ready(t) &&
        peer.f->power_state() == PowerState::kD0) {
      const bool write = kind == TlpKind::MWr;
      s = peer.bar == 0
              ? peer.f->bar0_access(static_cast<std::uint32_t>(peer.offset), data, len, write, t)
              : peer.f->devmem_access(peer.offset, data, len, write, f.rid().value());
    }
    Time lat = peer.bar == 0 ? params_.mmio_latency : params_.devmem_latency;
    return {s, t + lat, t, t};
  }
  tlp_.memory(kind, f.rid(), addr, data, len);
  tlp_.ext().tag = tag;
  fabric::CompletionLedger* ledger = is_posted(kind) ? nullptr : fabric::completion_ledger();
  const std::uint64_t id = ledger ? ledger->open(f.rid(), kind, addr) : 0;
  sc_core::sc_time d = to_sc(t - now);
  port_.transmit(tlp_.gp(), d);
  const TlpExtension& ext = tlp_.ext();
  // After transmit, consumed_at is when the TLP started on the device's link.
  IssueResult r{ext.status, now + d.value(), ext.first_hop_done ? ext.first_hop_done : t,
                ext.hops ? ext.consumed_at : t};
  if (ext.fault_marks)
    r.status = check_completion(f.config(), tlp_.gp(), tlp_.ext(),
                                [&](ErrorKind k, const std::array<std::uint32_t, 4>& h, bool adv) {
                                  report_error(f, k, h, r.done, adv);
                                });
  if (r.status == CplStatus::kDiscarded) {
    // Nothing will answer: the requester's completion timer expires.
    r.status = CplStatus::kTimeout;
    r.done = t + completion_timeout();
  }
  if (ledger) ledger->close(id, r.status, r.done, ext.trace_id, tag, t);
  if (TimeBins* bins = kind == TlpKind::MRd ? f.read_bins() : f.write_bins())
    if (r.status == CplStatus::kSC) bins->add_at(r.done, len);
  if (kind == TlpKind::MRd && fabric::trace_sink()) {
    char args[96];
    std::snprintf(args, sizeof args, "address=0x%llx, length=%u, status=%s",
                  static_cast<unsigned long long>(addr), len, to_string(r.status));
    // An outstanding read, on the track of its tag (a tag is held by one
    // read at a time, so the slices of a tag never overlap).
    fabric::trace_slice(t, r.done, f.name(), "reads/tag " + std::to_string(tag),
                        "MRd " + std::to_string(len) + " B", args, ext.trace_id);
  }
  return r;
}

// ------------------------------------------------------------ target side

void DmaDevice::serve(tlm::tlm_generic_payload& gp, TlpExtension& ext, Time t, Time* done) {
  const std::uint64_t addr = gp.get_address();
  const std::uint32_t len = gp.get_data_length();
  std::uint8_t* data = gp.get_data_ptr();
  *done = t;
  if (is_config(ext.kind)) {
    RoutingId target = config_target(addr);
    if (ext.kind == TlpKind::CfgRd0 || ext.kind == TlpKind::CfgWr0) {
      // Functions capture their bus number from Type 0 requests.
      RoutingId pf_rid(target.bus(), 0, 0);
      if (functions_[0]->rid() != pf_rid) {
        functions_[0]->set_rid(pf_rid);
        for (unsigned n = 1; n <= enabled_vfs_; ++n)
          functions_[n]->set_rid(vf_rid(n));
      }
    }
    DmaFunction* f = function_by_rid(target);
    if (!f || !f->exists()) {
      ext.status = CplStatus::kUR;
      return;
    }
    *done = t + params_.config_latency;
    if (completer_fault(*f, gp, ext, t)) return;
    ext.status = f->config_access(config_register(addr), len, gp.is_write(), data, t);
    return;
  }
  if (!is_memory(ext.kind)) {
    ext.status = CplStatus::kSC;  // messages are accepted and dropped
    return;
  }
  Decoded dd = decode_memory(addr, len);
  // The Completer ID of the completion (2.2.9): the function that decoded
  // the request (the PF for a request nothing decodes).
  ext.completer = dd.f ? dd.f->rid() : functions_[0]->rid();
  if (!dd.f) {
    ext.status = CplStatus::kUR;
    // A non-posted request answered with UR is an advisory case for the
    // completer (6.2.3.2.4.1); a posted one is not.
    report_error(*functions_[0], ErrorKind::kUnsupportedRequest, header_log(gp, ext), t,
                 !is_posted(ext.kind));
    ++functions_[0]->stats().ur_returned;
    return;
  }
  if (dd.f->in_reset(t) || !dd.f->ready(t)) {
    // A function in reset or not yet ready may drop memory requests.
    ++dd.f->stats().discarded;
    ext.status = CplStatus::kDiscarded;
    return;
  }
  if (dd.f->power_state() != PowerState::kD0 || dd.f->transitioning(t)) {
    ++dd.f->stats().ur_returned;
    ext.status = CplStatus::kUR;
    return;
  }
  if (ext.fault_marks || ext.poisoned) {
    DmaFunction& target = *dd.f;
    if (!check_request(target.config(), gp, ext,
                       [&](ErrorKind k, const std::array<std::uint32_t, 4>& h, bool adv) {
                         report_error(target, k, h, t, adv);
                       }))
      return;
  }
  if (completer_fault(*dd.f, gp, ext, t)) return;
  const bool write = gp.is_write();
  if (dd.bar == 0) {
    ext.status = dd.f->bar0_access(static_cast<std::uint32_t>(dd.offset), data, len, write, t);
    *done = t + params_.mmio_latency;
  } else {
    ext.status = dd.f->devmem_access(dd.offset, data, len, write, ext.requester.value());
    *done = t + params_.devmem_latency;
  }
  ext.cpl_chunk = static_cast<std::uint16_t>(mps());
}

void DmaDevice::port_receive(Port&, tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  TlpExtension& ext = tlp_of(gp);
  const Time now = now_fs();
  const Time arrival = now + delay.value();
  Time done = arrival;
  serve(gp, ext, arrival, &done);
  ext.consumed_at = arrival;
  set_response_from_status(gp);
  delay = to_sc(done - now);
}

unsigned DmaDevice::port_receive_dbg(Port&, tlm::tlm_generic_payload& gp) {
  TlpExtension* ext = gp.get_extension<TlpExtension>();
  if (!ext) return 0;
  const std::uint64_t addr = gp.get_address();
  const std::uint32_t len = gp.get_data_length();
  std::uint8_t* data = gp.get_data_ptr();
  if (is_config(ext->kind)) {
    DmaFunction* f = function_by_rid(config_target(addr));
    if (!f || !f->exists()) return 0;
    std::uint16_t reg = config_register(addr);
    if (gp.is_write()) {
      std::uint32_t v = 0;
      for (unsigned i = 0; i < len; ++i)
        v |= static_cast<std::uint32_t>(data[i]) << (8 * i);
      f->config().write(reg, len, v);
    } else {
      std::uint32_t v = f->config().read(reg, len);
      for (unsigned i = 0; i < len; ++i)
        data[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    return len;
  }
  Decoded dd = decode_memory(addr, len);
  if (!dd.f) return 0;
  if (dd.bar == 2) {
    dd.f->devmem_debug(dd.offset, data, len, gp.is_write());
    return len;
  }
  if (gp.is_write()) return 0;  // register writes have side effects: not in debug
  dd.f->bar0_access(static_cast<std::uint32_t>(dd.offset), data, len, false, now_fs(), true);
  return len;
}

}  // namespace pciesim::models

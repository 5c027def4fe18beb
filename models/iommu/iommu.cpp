#include "models/iommu/iommu.h"

#include "fabric/fault/fault_registry.h"

#include <algorithm>
#include <cstring>

#include "fabric/common/error.h"

namespace pciesim::models {

using namespace fabric;
using namespace iommu;

const char* iommu::to_string(FaultReason r) {
  switch (r) {
    case FaultReason::kRootNotPresent:
      return "root entry not present";
    case FaultReason::kContextNotPresent:
      return "context entry not present";
    case FaultReason::kPasidNotPresent:
      return "PASID entry not present";
    case FaultReason::kAddressTooWide:
      return "address beyond the domain's width";
    case FaultReason::kPageNotPresent:
      return "page not present";
    case FaultReason::kReadDenied:
      return "read not permitted";
    case FaultReason::kWriteDenied:
      return "write not permitted";
    case FaultReason::kBadEntry:
      return "invalid table entry";
  }
  return "?";
}

Iommu::Iommu(const IommuParams& params, MemoryAccess memory)
    : params_(params), memory_(std::move(memory)) {
  if (params_.levels != 3 && params_.levels != 4)
    throw UsageError("iommu", "levels must be 3 or 4, got " + std::to_string(params_.levels));
  if (params_.iotlb_entries == 0) throw UsageError("iommu", "iotlb_entries must be at least 1");
  if (params_.fault_records == 0 || params_.fault_records > 255)
    throw UsageError("iommu", "fault_records must be in 1..255");
  tlb_.resize(params_.iotlb_entries);
  records_.assign(2 * params_.fault_records, 0);
  rng_ = params_.seed * 0x9e3779b97f4a7c15ull + 1;
}

// ------------------------------------------------------------ memory

Iommu::MemoryResult Iommu::read64(std::uint64_t addr, std::uint64_t* v, Time t, bool debug) {
  std::uint8_t b[8] = {};
  MemoryResult r = memory_(addr, b, 8, false, t, debug);
  std::memcpy(v, b, 8);  // little endian, like the hosts pciesim runs on
  if (!debug) ++stats_.walk_reads;
  return r;
}

Iommu::MemoryResult Iommu::write64(std::uint64_t addr, std::uint64_t v, Time t, bool debug) {
  std::uint8_t b[8];
  std::memcpy(b, &v, 8);
  return memory_(addr, b, 8, true, t, debug);
}

// ------------------------------------------------------------ context

Iommu::Lookup Iommu::context_for(RoutingId rid, bool has_pasid, std::uint32_t pasid, Time t,
                                 bool debug) {
  Lookup out;
  out.t = t;
  const std::uint64_t key = (std::uint64_t{has_pasid ? pasid + 1u : 0u} << 16) | rid.value();
  if (auto it = contexts_.find(key); it != contexts_.end()) {
    if (!debug) ++stats_.context_hits;
    out.ok = true;
    out.ctx = it->second;
    return out;
  }
  if (!debug) ++stats_.context_misses;
  std::uint64_t root = 0;
  MemoryResult m =
      read64(root_table_ + std::uint64_t{rid.bus()} * kRootEntryBytes, &root, t, debug);
  out.t = m.done;
  if (!m.ok || !(root & 1)) {
    out.reason = FaultReason::kRootNotPresent;
    return out;
  }
  const std::uint64_t ce = (root & kAddrMask12) + std::uint64_t{rid.devfn()} * kContextEntryBytes;
  std::uint64_t q0 = 0, q1 = 0, q2 = 0;
  m = read64(ce, &q0, out.t, debug);
  if (m.ok) m = read64(ce + 8, &q1, m.done, debug);
  if (m.ok && has_pasid) m = read64(ce + 16, &q2, m.done, debug);
  out.t = m.done;
  if (!m.ok || !(q0 & kCtxPresent)) {
    out.reason = FaultReason::kContextNotPresent;
    return out;
  }
  Context c;
  c.fpd = q0 & kCtxFpd;
  c.tt = static_cast<unsigned>((q0 >> kCtxTtShift) & 3);
  c.root = q0 & kPteAddrMask;
  c.levels = (q1 & 7) == 1 ? 3u : 4u;
  c.did = static_cast<std::uint16_t>(q1 >> kCtxDidShift);
  c.ad = q1 & kCtxAdEnable;
  c.pasid_table = q2 & 1;
  c.pasid_ptr = q2 & kPteAddrMask;
  if ((q1 & 7) != 1 && (q1 & 7) != 2) {
    out.reason = FaultReason::kBadEntry;
    return out;
  }
  if (has_pasid) {
    if (!c.pasid_table || pasid > kMaxPasid) {
      out.reason = FaultReason::kPasidNotPresent;
      return out;
    }
    std::uint64_t p0 = 0, p1 = 0;
    const std::uint64_t pe = c.pasid_ptr + std::uint64_t{pasid} * kPasidEntryBytes;
    m = read64(pe, &p0, out.t, debug);
    if (m.ok) m = read64(pe + 8, &p1, m.done, debug);
    out.t = m.done;
    if (!m.ok || !(p0 & 1)) {
      out.reason = FaultReason::kPasidNotPresent;
      return out;
    }
    c.root = p0 & kPteAddrMask;
    c.did = static_cast<std::uint16_t>(p1 >> kCtxDidShift);
    c.ad = p1 & kCtxAdEnable;
    c.tt = kTtTranslate;
  }
  if (c.levels > params_.levels) {
    out.reason = FaultReason::kBadEntry;
    return out;
  }
  out.ok = true;
  out.ctx = c;
  if (debug) return out;  // debug lookups leave the context cache alone
  if (contexts_.size() >= params_.context_cache_entries && !context_order_.empty()) {
    contexts_.erase(context_order_.front());
    context_order_.pop_front();
  }
  if (contexts_.emplace(key, c).second) context_order_.push_back(key);
  return out;
}

// ------------------------------------------------------------ walk

Iommu::Walk Iommu::walk(const Context& c, std::uint64_t iova, bool write, Time t, bool debug,
                        fabric::RoutingId requester) {
  Walk w;
  w.t = t;
  std::uint64_t table = c.root;
  bool can_read = true, can_write = true;
  std::uint64_t ad_addrs[5];
  std::uint64_t ad_vals[5];
  unsigned ad_n = 0;
  unsigned top = c.levels;
  const std::uint64_t space = c.root;
  const bool psc = params_.psc_entries && !debug && !(params_.access_dirty && c.ad);
  if (psc) {
    // Start below the deepest cached non-leaf entry (level 2 first).
    for (unsigned level = 2; level <= c.levels; ++level) {
      auto it = psc_.find({level, c.did, space, iova >> (12 + 9 * (level - 1))});
      if (it == psc_.end()) continue;
      it->second.stamp = ++psc_stamp_;
      table = it->second.table;
      can_read = it->second.read;
      can_write = it->second.write;
      top = level - 1;
      ++stats_.psc_hits;
      break;
    }
  }
  for (unsigned level = top; level >= 1; --level) {
    const unsigned shift = 12 + 9 * (level - 1);
    const std::uint64_t index = (iova >> shift) & 0x1ff;
    std::uint64_t pte = 0;
    const std::uint64_t at = table + index * 8;
    MemoryResult m = read64(at, &pte, w.t, debug);
    w.t = m.done + params_.walk_step_latency;
    if (!m.ok) {
      w.reason = FaultReason::kBadEntry;
      return w;
    }
    if (!(pte & (kPteRead | kPteWrite))) {
      w.reason = FaultReason::kPageNotPresent;
      return w;
    }
    // Permissions are the AND over all levels (VT-d second level).
    can_read = can_read && (pte & kPteRead);
    can_write = can_write && (pte & kPteWrite);
    const bool leaf = level == 1 || (pte & kPtePs);
    if (leaf && level > 1) {
      const bool supported = params_.large_pages && level <= 3;
      if (!supported) {
        w.reason = FaultReason::kBadEntry;
        return w;
      }
    }
    if (params_.access_dirty && c.ad) {
      std::uint64_t want = pte | kPteAccessed;
      if (leaf && write && can_write && !(pte & kPteDirty)) {
        want |= kPteDirty;
        // Injected (fabric/fault dirty_lost): an erratum that loses this
        // Dirty update; the IOTLB entry is filled as if D were clear.
        if (fabric::FaultRegistry* fr = fabric::fault_registry();
            !debug && fr && fr->any(fabric::FaultPoint::kIommu) &&
            fr->check_translation(requester, iova, true, t, fabric::FaultKind::kDirtyLost))
          want &= ~kPteDirty;
      } else if (leaf && write && can_write) {
        want |= kPteDirty;
      }
      if (want != pte) {
        ad_addrs[ad_n] = at;
        ad_vals[ad_n++] = want;
      }
      if (leaf) w.dirty = (want & kPteDirty) != 0;
    }
    if (leaf) {
      w.shift = shift;
      w.hpa = pte & kPteAddrMask & ~((std::uint64_t{1} << shift) - 1);
      w.read = can_read;
      w.write = can_write;
      w.ok = true;
      break;
    }
    table = pte & kPteAddrMask;
    if (psc) psc_insert(level, c.did, space, iova, {table, can_read, can_write, 0});
  }
  // A/D updates are atomic writes back to the entries, after the walk.
  if (!debug)
    for (unsigned i = 0; i < ad_n; ++i) {
      MemoryResult m = write64(ad_addrs[i], ad_vals[i], w.t, debug);
      w.t = std::max(w.t, m.done);
      ++stats_.ad_updates;
    }
  return w;
}

void Iommu::psc_insert(unsigned level, std::uint16_t did, std::uint64_t space, std::uint64_t iova,
                       const PscEntry& e) {
  const unsigned shift = 12 + 9 * (level - 1);
  unsigned n = 0;
  auto victim = psc_.end();
  for (auto it = psc_.begin(); it != psc_.end(); ++it) {
    if (std::get<0>(it->first) != level) continue;
    ++n;
    if (victim == psc_.end() || it->second.stamp < victim->second.stamp) victim = it;
  }
  if (n >= params_.psc_entries && victim != psc_.end()) psc_.erase(victim);
  PscEntry v = e;
  v.stamp = ++psc_stamp_;
  psc_[{level, did, space, iova >> shift}] = v;
}

// ------------------------------------------------------------ IOTLB

std::uint64_t Iommu::tlb_key(std::uint16_t did, std::uint32_t space, unsigned shift,
                             std::uint64_t vpn) const {
  // vpn < 2^36 (48-bit IOVAs); space < 2^20 + 1; shift in {12, 21, 30}.
  std::uint64_t k = vpn;
  k = k * 0x9e3779b97f4a7c15ull ^ (std::uint64_t{did} << 40) ^ (std::uint64_t{space} << 8) ^ shift;
  return k;
}

Iommu::TlbEntry* Iommu::tlb_find(std::uint16_t did, std::uint32_t space, std::uint64_t iova) {
  for (unsigned shift : {12u, 21u, 30u}) {
    auto it = tlb_index_.find(tlb_key(did, space, shift, iova >> shift));
    if (it == tlb_index_.end()) continue;
    TlbEntry& e = tlb_[it->second];
    if (e.valid && e.did == did && e.space == space && e.shift == shift && e.vpn == (iova >> shift))
      return &e;
  }
  return nullptr;
}

void Iommu::tlb_erase(std::size_t i) {
  TlbEntry& e = tlb_[i];
  if (!e.valid) return;
  tlb_index_.erase(tlb_key(e.did, e.space, e.shift, e.vpn));
  e.valid = false;
  --tlb_used_;
}

void Iommu::tlb_insert(const TlbEntry& e) {
  if (TlbEntry* old = tlb_find(e.did, e.space, e.vpn << e.shift))
    if (old->shift == e.shift) tlb_erase(static_cast<std::size_t>(old - tlb_.data()));
  std::size_t slot = tlb_.size();
  if (tlb_used_ < tlb_.size()) {
    for (std::size_t i = 0; i < tlb_.size(); ++i)
      if (!tlb_[i].valid) {
        slot = i;
        break;
      }
  } else {
    switch (params_.replacement) {
      case IotlbReplacement::kLru:
      case IotlbReplacement::kFifo: {
        // Stamps are refreshed on hits under LRU only.
        slot = 0;
        for (std::size_t i = 1; i < tlb_.size(); ++i)
          if (tlb_[i].stamp < tlb_[slot].stamp) slot = i;
        break;
      }
      case IotlbReplacement::kRandom:
        rng_ ^= rng_ >> 12;
        rng_ ^= rng_ << 25;
        rng_ ^= rng_ >> 27;
        slot = static_cast<std::size_t>((rng_ * 0x2545f4914f6cdd1dull) % tlb_.size());
        break;
    }
    tlb_erase(slot);
    ++stats_.iotlb_evictions;
  }
  tlb_[slot] = e;
  tlb_[slot].valid = true;
  tlb_[slot].stamp = ++stamp_;
  tlb_index_[tlb_key(e.did, e.space, e.shift, e.vpn)] = slot;
  ++tlb_used_;
}

std::size_t Iommu::iotlb_occupancy() const {
  return tlb_used_;
}

// ------------------------------------------------------------ translate

TranslationResult Iommu::translate(const TranslationRequest& req) {
  TranslationResult r;
  r.fault_status = params_.fault_status;
  r.address = req.address;
  r.done = req.at;
  if (!translation_enabled()) return r;
  ++stats_.translations;
  Lookup l = context_for(req.requester, req.has_pasid, req.pasid, req.at, false);
  Time t = l.t;
  if (fabric::FaultRegistry* fr = fabric::fault_registry();
      l.ok && fr && fr->any(fabric::FaultPoint::kIommu) &&
      fr->check_translation(req.requester, req.address, req.write, req.at,
                            fabric::FaultKind::kIommuFault)) {
    // Injected (fabric/fault iommu_fault): the walk finds no present
    // entry, recorded like any other translation fault.
    record_fault(req, FaultReason::kPageNotPresent, l.ctx.did, false, t);
    r.ok = false;
    r.done = t;
    return r;
  }
  if (!l.ok) {
    record_fault(req, l.reason, 0, false, t);
    r.ok = false;
    r.done = t;
    return r;
  }
  const Context& c = l.ctx;
  if (c.tt == kTtPassThrough) {
    ++stats_.passthrough;
    r.done = t;
    latest_use_ = std::max(latest_use_, t);
    return r;
  }
  const unsigned width = 12 + 9 * c.levels;
  if (req.address >> width) {
    record_fault(req, FaultReason::kAddressTooWide, c.did, c.fpd, t);
    r.ok = false;
    r.done = t;
    return r;
  }
  const std::uint32_t space = req.has_pasid ? req.pasid + 1u : 0u;
  TlbEntry* e = tlb_find(c.did, space, req.address);
  // With A/D tracking, a write through an entry whose walk did not set D
  // walks again so that D reaches memory.
  if (e && req.write && params_.access_dirty && c.ad && !e->dirty && e->write) e = nullptr;
  bool readable, writable;
  std::uint64_t hpa;
  if (e) {
    ++stats_.iotlb_hits;
    if (params_.replacement == IotlbReplacement::kLru) e->stamp = ++stamp_;
    t += params_.iotlb_hit_latency;
    readable = e->read;
    writable = e->write;
    hpa = e->hpa | (req.address & ((std::uint64_t{1} << e->shift) - 1));
  } else {
    ++stats_.iotlb_misses;
    ++stats_.walks;
    const Time t0 = t;
    Time* walker = nullptr;
    if (params_.walkers) {
      // The walk waits for the walker that is free first.
      if (walker_free_.size() != params_.walkers) walker_free_.assign(params_.walkers, 0);
      walker = &*std::min_element(walker_free_.begin(), walker_free_.end());
      t = std::max(t, *walker);
      if (t > t0) stats_.walk_wait_time += t - t0;
    }
    Walk w = walk(c, req.address, req.write, t, false, req.requester);
    if (walker) *walker = w.t;
    stats_.walk_time += w.t - t0;
    t = w.t;
    if (!w.ok) {
      record_fault(req, w.reason, c.did, c.fpd, t);
      r.ok = false;
      r.done = t;
      return r;
    }
    TlbEntry n;
    n.did = c.did;
    n.space = space;
    n.shift = w.shift;
    n.vpn = req.address >> w.shift;
    n.hpa = w.hpa;
    n.read = w.read;
    n.write = w.write;
    n.dirty = w.dirty;
    tlb_insert(n);
    readable = w.read;
    writable = w.write;
    hpa = w.hpa | (req.address & ((std::uint64_t{1} << w.shift) - 1));
  }
  if (req.write ? !writable : !readable) {
    record_fault(req, req.write ? FaultReason::kWriteDenied : FaultReason::kReadDenied, c.did,
                 c.fpd, t);
    r.ok = false;
    r.done = t;
    return r;
  }
  r.address = hpa;
  r.done = t;
  latest_use_ = std::max(latest_use_, t);
  return r;
}

bool Iommu::translate_dbg(RoutingId requester, std::uint64_t iova, bool write, std::uint64_t* out) {
  if (!translation_enabled()) {
    *out = iova;
    return true;
  }
  Lookup l = context_for(requester, false, 0, 0, true);
  if (!l.ok) return false;
  const Context& c = l.ctx;
  if (c.tt == kTtPassThrough) {
    *out = iova;
    return true;
  }
  if (iova >> (12 + 9 * c.levels)) return false;
  // The IOTLB first: a stale entry is what the hardware would use too.
  if (TlbEntry* e = tlb_find(c.did, 0, iova)) {
    if (write ? !e->write : !e->read) return false;
    *out = e->hpa | (iova & ((std::uint64_t{1} << e->shift) - 1));
    return true;
  }
  Walk w = walk(c, iova, write, 0, true);
  if (!w.ok || (write ? !w.write : !w.read)) return false;
  *out = w.hpa | (iova & ((std::uint64_t{1} << w.shift) - 1));
  return true;
}

void Iommu::record_fault(const TranslationRequest& req, FaultReason reason, std::uint16_t did,
                         bool fpd, Time t) {
  ++stats_.faults;
  ++stats_.faults_by_reason[static_cast<unsigned>(reason)];
  if (log_.size() < params_.fault_log_max) {
    IommuFault f;
    f.at = t;
    f.requester = req.requester;
    f.has_pasid = req.has_pasid;
    f.pasid = req.pasid;
    f.address = req.address;
    f.write = req.write;
    f.reason = reason;
    f.domain = did;
    log_.push_back(f);
  }
  if (fpd) return;  // fault processing disabled for this context
  std::uint64_t& hi = records_[2 * next_record_ + 1];
  if (hi & kFrcdF) {
    fault_overflow_ = true;
    ++stats_.fault_records_dropped;
    return;
  }
  records_[2 * next_record_] = req.address & kAddrMask12;
  hi = kFrcdF | (req.write ? 0 : kFrcdRead) |
       (std::uint64_t{static_cast<unsigned>(reason)} << kFrcdReasonShift) | req.requester.value();
  next_record_ = (next_record_ + 1) % params_.fault_records;
}

// ------------------------------------------------------------ invalidation

Time Iommu::completion_time(Time t) const {
  // Complete after the fixed latency and after every translation already
  // handed out has been used: no stale translation is used afterwards.
  return std::max(t + params_.invalidation_latency, latest_use_);
}

void Iommu::invalidate_context(std::uint64_t cmd, Time t) {
  psc_.clear();
  const unsigned g = static_cast<unsigned>((cmd >> kCcmdCirgShift) & 3);
  const std::uint16_t did = static_cast<std::uint16_t>(cmd & kCcmdDidMask);
  const std::uint16_t sid = static_cast<std::uint16_t>(cmd >> kCcmdSidShift);
  const unsigned gran = g == 0 ? kGlobal : g;  // 0 is reserved: treated as global
  for (auto it = contexts_.begin(); it != contexts_.end();) {
    const bool hit = gran == kGlobal || (gran == kDomain && it->second.did == did) ||
                     (gran == kSelective && (it->first & 0xffff) == sid);
    if (hit) {
      context_order_.erase(std::find(context_order_.begin(), context_order_.end(), it->first));
      it = contexts_.erase(it);
      ++stats_.entries_invalidated;
    } else {
      ++it;
    }
  }
  ++stats_.context_invalidations[gran];
  ccmd_done_ = completion_time(t);
  stats_.last_invalidation_done = std::max(stats_.last_invalidation_done, ccmd_done_);
}

void Iommu::invalidate_iotlb(std::uint64_t cmd, Time t) {
  psc_.clear();  // paging-structure caches go with every IOTLB invalidation
  const unsigned g = static_cast<unsigned>((cmd >> kIotlbIirgShift) & 3);
  const unsigned gran = g == 0 ? kGlobal : g;
  const std::uint16_t did = static_cast<std::uint16_t>(cmd >> kIotlbDidShift);
  const unsigned am = static_cast<unsigned>(iva_ & kIvaAmMask);
  const std::uint64_t lo = (iva_ & kAddrMask12) & ~((std::uint64_t{1} << (12 + am)) - 1);
  const std::uint64_t hi = lo + (std::uint64_t{1} << (12 + std::min(am, 52u)));
  for (std::size_t i = 0; i < tlb_.size(); ++i) {
    const TlbEntry& e = tlb_[i];
    if (!e.valid) continue;
    bool hit = gran == kGlobal || e.did == did;
    if (hit && gran == kSelective) {
      const std::uint64_t base = e.vpn << e.shift;
      const std::uint64_t end = base + (std::uint64_t{1} << e.shift);
      hit = base < hi && lo < end;
    }
    if (hit) {
      tlb_erase(i);
      ++stats_.entries_invalidated;
    }
  }
  ++stats_.iotlb_invalidations[gran];
  iotlb_done_ = completion_time(t);
  stats_.last_invalidation_done = std::max(stats_.last_invalidation_done, iotlb_done_);
}

// ------------------------------------------------------------ registers

std::uint64_t Iommu::read_register(std::uint32_t reg, Time t) const {
  switch (reg) {
    case kVersion:
      return kVersionValue;
    case kCap: {
      std::uint64_t cap = params_.levels;
      if (params_.large_pages) cap |= kCap2M | kCap1G;
      if (params_.access_dirty) cap |= kCapAccessDirty;
      cap |= kCapPasid;
      cap |= std::uint64_t{params_.fault_records} << kCapFaultRecordsShift;
      cap |= std::uint64_t{16} << kCapDomainBitsShift;
      return cap;
    }
    case kGsts:
      return gsts_;
    case kRtaddr:
      return rtaddr_;
    case kCcmd:
      return (ccmd_ & ~kCcmdIcc) | (t < ccmd_done_ ? kCcmdIcc : 0);
    case kFsts: {
      bool pending = false;
      for (unsigned i = 0; i < params_.fault_records; ++i)
        pending |= (records_[2 * i + 1] & kFrcdF) != 0;
      return (fault_overflow_ ? kFstsPfo : 0u) | (pending ? kFstsPpf : 0u) |
             (std::uint64_t{next_record_} << kFstsFriShift);
    }
    case kIva:
      return iva_;
    case kIotlb:
      return (iotlb_cmd_ & ~kIotlbIvt) | (t < iotlb_done_ ? kIotlbIvt : 0);
    default:
      if (reg >= kFaultRecords && reg < kFaultRecords + 16 * params_.fault_records)
        return records_[(reg - kFaultRecords) / 8];
      return 0;
  }
}

void Iommu::write_register(std::uint32_t reg, std::uint64_t value, std::uint64_t mask, Time t) {
  auto merged = [&](std::uint64_t old) { return (old & ~mask) | (value & mask); };
  switch (reg) {
    case kGcmd: {
      const std::uint32_t v = static_cast<std::uint32_t>(value & mask);
      if (v & kGcmdSrtp) {
        root_table_ = rtaddr_ & kAddrMask12;
        gsts_ |= kGstsRtps;
      }
      if (v & kGcmdTe)
        gsts_ |= kGstsTes;
      else
        gsts_ &= ~kGstsTes;
      return;
    }
    case kRtaddr:
      rtaddr_ = merged(rtaddr_) & kAddrMask12;
      return;
    case kCcmd:
      ccmd_ = merged(ccmd_);
      // The command fires when the write sets ICC (the upper dword).
      if ((mask & kCcmdIcc) && (value & kCcmdIcc)) invalidate_context(ccmd_, t);
      return;
    case kFsts:
      if (value & mask & kFstsPfo) fault_overflow_ = false;
      return;
    case kIva:
      iva_ = merged(iva_);
      return;
    case kIotlb:
      iotlb_cmd_ = merged(iotlb_cmd_);
      if ((mask & kIotlbIvt) && (value & kIotlbIvt)) invalidate_iotlb(iotlb_cmd_, t);
      return;
    default:
      if (reg >= kFaultRecords && reg < kFaultRecords + 16 * params_.fault_records) {
        std::uint64_t& q = records_[(reg - kFaultRecords) / 8];
        if (((reg - kFaultRecords) / 8) % 2 == 1 && (value & mask & kFrcdF)) q &= ~kFrcdF;  // W1C
      }
      return;  // read-only or reserved
  }
}

CplStatus Iommu::register_access(std::uint64_t offset, std::uint8_t* data, std::uint32_t len,
                                 bool write, Time t) {
  if ((len != 4 && len != 8) || offset % len || offset + len > kRegisterBlockSize)
    return CplStatus::kUR;
  const std::uint32_t slot = static_cast<std::uint32_t>(offset & ~std::uint64_t{7});
  const unsigned shift = (offset & 4) ? 32 : 0;
  const std::uint64_t mask = len == 8 ? ~std::uint64_t{0} : (0xffffffffull << shift);
  // Slots holding two 32-bit registers: VERSION, GCMD/GSTS, FSTS (high half).
  const bool split = slot == kVersion || slot == kGcmd || slot == kFsts - 4;
  if (write) {
    std::uint64_t v = 0;
    std::memcpy(&v, data, len);
    v <<= shift;
    if (!split) {
      write_register(slot, v, mask, t);
    } else {
      if (mask & 0xffffffffull) write_register(slot, v & 0xffffffffull, 0xffffffffull, t);
      if (mask >> 32) write_register(slot + 4, v >> 32, 0xffffffffull, t);
    }
    return CplStatus::kSC;
  }
  std::uint64_t v =
      split ? (read_register(slot, t) & 0xffffffffull) | (read_register(slot + 4, t) << 32)
            : read_register(slot, t);
  v >>= shift;
  std::memcpy(data, &v, len);
  return CplStatus::kSC;
}

}  // namespace pciesim::models

#include "fabric/fault/fault_registry.h"

#include <algorithm>
#include <cstdio>

#include "fabric/common/error.h"

namespace pciesim::fabric {

namespace {
FaultRegistry* g_registry = nullptr;

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

const char* kTlpWhere = "a link, optionally with its direction: rc.rp0--sw0.usp:down";
const char* kCompleterWhere = "the completer: a function (ep0.vf1) or rc (host memory)";
const char* kFunctionWhere = "a function (ep0.pf, ep0.vf2)";
}  // namespace

const std::vector<FaultKindInfo>& fault_kinds() {
  static const std::vector<FaultKindInfo> kinds = {
      {FaultKind::kLcrc,
       "lcrc",
       FaultPoint::kLink,
       kTlpWhere,
       "the TLP arrives with a bad LCRC",
       "receiver: Bad TLP (correctable), NAK; transmitter replays (the TLP is late, not lost); "
       "4 bad copies in a row roll REPLAY_NUM over: REPLAY_NUM Rollover (correctable) at the "
       "transmitter and the link retrains",
       "PCIe Base 3.6.2 (REPLAY_NUM, NAK), 6.2.2.2.1 (Bad TLP)",
       {{"repeat", "integer 1-16", "1", "consecutive bad transmissions of the same TLP"}}},
      {FaultKind::kReplayTimeout,
       "replay_timeout",
       FaultPoint::kLink,
       kTlpWhere,
       "the ACK DLLP of the TLP is lost",
       "transmitter: REPLAY_TIMER expires (Replay Timer Timeout, correctable) and replays; the "
       "receiver discards the duplicate; the TLP is late by the replay timer",
       "PCIe Base 3.6.2.1 (REPLAY_TIMER), 6.2.2.2.1",
       {}},
      {FaultKind::kTlpLost,
       "tlp_lost",
       FaultPoint::kLink,
       kTlpWhere,
       "the TLP is dropped after the link layer accepted it (a switch's internal error)",
       "posted: the data never arrives (silent); non-posted: Completion Timeout at the "
       "requester; with report: the receiving component logs Uncorrectable Internal Error",
       "PCIe Base 6.2.9 (internal errors), 2.8 (completion timeout)",
       {{"report", "bool", "false", "the dropping component logs an internal error"}}},
      {FaultKind::kEcrc,
       "ecrc",
       FaultPoint::kLink,
       kTlpWhere,
       "the TLP's data is corrupted between LCRC checks (covered only by ECRC)",
       "a final receiver with ECRC Check Enable logs ECRC Error (non-fatal) and drops the TLP "
       "(a request then times out); without ECRC checking the corrupted data is used",
       "PCIe Base 2.7.1 (ECRC), 6.2.4 (ECRC check)",
       {}},
      {FaultKind::kPoisoned,
       "poisoned",
       FaultPoint::kLink,
       kTlpWhere,
       "the TLP (a write, or the completion of a read: match kinds [CplD]) is poisoned (EP)",
       "the final receiver logs Poisoned TLP Received (non-fatal) and does not use the data; a "
       "requester getting poisoned read data sets Master Data Parity Error and its engine fails "
       "the descriptor",
       "PCIe Base 2.7.2 (data poisoning), 6.2.3.2.4.3",
       {}},
      {FaultKind::kMalformed,
       "malformed",
       FaultPoint::kLink,
       kTlpWhere,
       "the TLP is malformed on arrival",
       "the receiving port logs Malformed TLP (fatal) and drops the TLP; a request then times "
       "out at its requester",
       "PCIe Base 2.2.2, 6.2.2.2.2",
       {}},
      {FaultKind::kLinkDown,
       "link_down",
       FaultPoint::kLink,
       kTlpWhere,
       "the link goes down without warning (at `at`, or on the Nth matching TLP)",
       "the port above logs Surprise Down (fatal); requests towards the link complete with UR "
       "at the port, the device below is reset; a secondary bus reset (recovery) or DPC "
       "release retrains the link",
       "PCIe Base 2.9.1 (DL_Down), 6.2.2.2.2 (Surprise Down)",
       {{"duration", "time", "0", "the link comes back by itself after this (0: until reset)"}}},
      {FaultKind::kCplUr,
       "cpl_ur",
       FaultPoint::kCompleter,
       kCompleterWhere,
       "the completer answers Unsupported Request",
       "completer: UR logged (advisory non-fatal for a non-posted request); requester: "
       "Received Master Abort, the engine fails the descriptor; CPU reads see all ones",
       "PCIe Base 2.3.1, 6.2.3.2.4.1",
       {}},
      {FaultKind::kCplCa,
       "cpl_ca",
       FaultPoint::kCompleter,
       kCompleterWhere,
       "the completer answers Completer Abort",
       "completer: Completer Abort logged (advisory non-fatal), Signaled Target Abort; "
       "requester: Received Target Abort, the engine fails the descriptor",
       "PCIe Base 2.3.1, 6.2.3.2.4.1",
       {}},
      {FaultKind::kNoCompletion,
       "no_completion",
       FaultPoint::kCompleter,
       kCompleterWhere,
       "the completer never answers a non-posted request",
       "the requester's completion timer expires (Device Control 2 range): Completion Timeout "
       "(non-fatal) at the requester; CPU reads see all ones",
       "PCIe Base 2.8, 7.5.3.16 (Completion Timeout Value)",
       {}},
      {FaultKind::kUnexpectedCompletion,
       "unexpected_completion",
       FaultPoint::kCompleter,
       kCompleterWhere,
       "the completer sends a second completion for the request",
       "the request completes once; the requester receives a completion matching no "
       "outstanding request: Unexpected Completion (advisory non-fatal) with its header",
       "PCIe Base 2.3.2, 6.2.3.2.4.2",
       {}},
      {FaultKind::kBadByteCount,
       "bad_byte_count",
       FaultPoint::kCompleter,
       kCompleterWhere,
       "the completion's Byte Count does not match the request",
       "the requester handles the completion as Malformed TLP (fatal) and drops it; the "
       "request then ends with a completion timeout",
       "PCIe Base 2.3.2 (completion checks), 2.3.1.1",
       {}},
      {FaultKind::kInternalError,
       "internal_error",
       FaultPoint::kTimed,
       kFunctionWhere,
       "the function detects an uncorrectable internal error at `at`",
       "Uncorrectable Internal Error (fatal by default) logged, ERR_FATAL; the engine halts "
       "until the function is reset",
       "PCIe Base 6.2.9",
       {}},
      {FaultKind::kSurpriseRemoval,
       "surprise_removal",
       FaultPoint::kTimed,
       kFunctionWhere,
       "the device is pulled out at `at`",
       "the link above goes down (Surprise Down at the port); nothing below answers again "
       "(config reads all ones); recovery cannot bring it back: disconnected",
       "PCIe Base 6.7 (hot-plug), 6.2.2.2.2",
       {}},
      {FaultKind::kSurpriseFlr,
       "surprise_flr",
       FaultPoint::kTimed,
       kFunctionWhere,
       "the function goes through an FLR the host did not ask for",
       "the function's state is reset (config, engine, MSI-X, device memory); in-flight reads "
       "end as unexpected completions; the host's view is stale until it notices",
       "PCIe Base 6.6.2 (FLR)",
       {}},
      {FaultKind::kMigrationCommand,
       "migration_command",
       FaultPoint::kTimed,
       "an endpoint (ep0): its PF firmware",
       "the PF firmware fails the next such migration command (or never completes it)",
       "the VFIO operation fails with the driver's errno and the device goes to ERROR; "
       "only a reset brings it back (docs/migration.md)",
       "Linux vfio_mig_get_next_state users; drivers/vfio/pci/pds",
       {{"command", "string", "suspend_initiator",
         "query, suspend_initiator, suspend_responder, resume_initiator, resume_responder, "
         "save, load, get_state, stop_tracking, log_start, log_stop or log_report"},
        {"mode", "error | timeout", "error", "an error status, or no completion at all"}}},
      {FaultKind::kQuiesceStuck,
       "quiesce_stuck",
       FaultPoint::kTimed,
       kFunctionWhere,
       "the VF's outstanding reads never drain when it is quiesced",
       "the suspend command never completes: the variant driver times out (ETIMEDOUT) and the "
       "device goes to ERROR",
       "MIGRATION.md 3; drivers/vfio/pci/pds (suspend status poll)",
       {}},
      {FaultKind::kAerReport,
       "aer_report",
       FaultPoint::kTimed,
       "a function or port, by name (ep0.vf1, sw0.dsp0) or PCI address (02:00.1)",
       "the function detects the given errors at `at` (an error report, as aer-inject makes: "
       "no TLP is affected)",
       "AER status bits, First Error Pointer and Header Log (first unmasked uncorrectable), "
       "Device Status, one error message per unmasked error as the masks, severities and "
       "reporting enables decide; the root port logs it and the host recovers",
       "PCIe Base 6.2.5 (figure 6-2), 7.8.4; Linux aer-inject",
       {{"cor_status", "name | number | list", "none",
         "correctable errors: RCVR, BAD_TLP, BAD_DLLP, REP_ROLL, REP_TIMER, ADV_NFAT"},
        {"uncor_status", "name | number | list", "none",
         "uncorrectable errors: DLP, SURPDN, POISON_TLP, FCP, COMP_TIME, COMP_ABORT, UNX_COMP, "
         "RX_OVER, MALF_TLP, ECRC, UNSUP, ACSV, INTN"},
        {"header_log", "list of 4 integers", "0 0 0 0",
         "the TLP header logged with the first unmasked uncorrectable error"}}},
      {FaultKind::kIommuFault,
       "iommu_fault",
       FaultPoint::kIommu,
       "iommu",
       "the next translations of the matching requester fault",
       "the IOMMU records the fault (fault log, fault status) and the request completes with "
       "the IOMMU's fault status (UR); the requester's engine fails the descriptor",
       "Intel VT-d 7.1 (fault recording)",
       {{"faults", "integer", "1", "translations that fault per firing"}}},
      {FaultKind::kIommuUnmap,
       "iommu_unmap",
       FaultPoint::kTimed,
       "an IOMMU domain",
       "the host unmaps [iova, iova + length) of the domain at `at`, under running DMA",
       "the IOTLB is invalidated; later DMA to the range faults (UR), none reaches memory "
       "afterwards",
       "Intel VT-d 6.5 (invalidation)",
       {{"iova", "integer", "0", "start of the range"},
        {"length", "bytes", "0", "bytes unmapped"}}},
      {FaultKind::kDirtyLost,
       "dirty_lost",
       FaultPoint::kIommu,
       "iommu",
       "the IOMMU loses the Dirty-bit update of the matching DMA writes (an erratum)",
       "the write reaches memory but its page is not reported dirty; the dirty-tracking ground "
       "truth counts it as missed (dirty_tracking.iommu.<domain>.missed_pages) — the silent "
       "corruption a migration would suffer",
       "MIGRATION.md 4 (the invariant); Intel VT-d 3.6 (second-level A/D)",
       {}},
      {FaultKind::kTestAbort,
       "test_abort",
       FaultPoint::kTimed,
       "simulator",
       "test only: the simulator process aborts (SIGABRT) at `at`, as a simulator bug would",
       "no stats are written; a campaign classifies the run as crash and goes on "
       "(docs/campaigns.md)",
       "none: a test of the campaign runner",
       {}},
  };
  return kinds;
}

const FaultKindInfo& fault_info(FaultKind k) {
  return fault_kinds().at(static_cast<unsigned>(k));
}

const char* to_string(FaultKind k) {
  return fault_info(k).name;
}

bool parse_fault_kind(const std::string& name, FaultKind* out) {
  for (const FaultKindInfo& i : fault_kinds())
    if (name == i.name) {
      *out = i.kind;
      return true;
    }
  return false;
}

std::string describe_tlp(TlpKind kind, const tlm::tlm_generic_payload& gp,
                         const TlpExtension& ext) {
  char buf[160];
  if (is_config(kind))
    std::snprintf(buf, sizeof buf, "%s %s reg 0x%03x from %s", to_string(kind),
                  config_target(gp.get_address()).str().c_str(), config_register(gp.get_address()),
                  ext.requester.str().c_str());
  else
    std::snprintf(buf, sizeof buf, "%s 0x%llx len %u from %s tag %u", to_string(kind),
                  static_cast<unsigned long long>(gp.get_address()), gp.get_data_length(),
                  ext.requester.str().c_str(), ext.tag);
  return buf;
}

FaultRegistry::FaultRegistry(std::uint64_t seed) : seed_(seed) {}

unsigned FaultRegistry::add(const FaultSpec& spec) {
  FaultState f;
  f.spec = spec;
  if (f.spec.nth == 0) f.spec.nth = 1;
  if (!(f.spec.probability >= 0.0 && f.spec.probability <= 1.0))
    throw UsageError("fault", "probability must be in [0, 1]");
  f.rng = seed_ * 0x100000001b3ull ^ (faults_.size() + 1) * 0x9e3779b97f4a7c15ull;
  faults_.push_back(f);
  recount();
  return static_cast<unsigned>(faults_.size());
}

void FaultRegistry::cancel(unsigned id) {
  if (id == 0 || id > faults_.size()) throw UsageError("fault", "no fault " + std::to_string(id));
  faults_[id - 1].cancelled = true;
  recount();
}

const FaultState& FaultRegistry::state(unsigned id) const {
  if (id == 0 || id > faults_.size()) throw UsageError("fault", "no fault " + std::to_string(id));
  return faults_[id - 1];
}

std::vector<const FaultEvent*> FaultRegistry::log_of(unsigned id) const {
  std::vector<const FaultEvent*> out;
  for (const FaultEvent& e : log_)
    if (e.id == id) out.push_back(&e);
  return out;
}

void FaultRegistry::recount() {
  for (unsigned& n : live_)
    n = 0;
  for (const FaultState& f : faults_)
    if (!f.cancelled && !f.done) {
      FaultPoint p = fault_info(f.spec.kind).point;
      // A link-down fault with TLP criteria fires on a TLP; without, at a time.
      if (f.spec.kind == FaultKind::kLinkDown && f.spec.match.kinds == 0 &&
          f.spec.match.requester.empty() && f.spec.match.tag < 0 && f.spec.match.address_lo == 0 &&
          f.spec.match.address_hi == ~std::uint64_t{0})
        p = FaultPoint::kTimed;
      ++live_[static_cast<unsigned>(p)];
    }
}

double FaultRegistry::draw(FaultState& f) {
  return static_cast<double>(splitmix(f.rng) >> 11) * (1.0 / 9007199254740992.0);
}

bool FaultRegistry::take(FaultState& f) {
  ++f.matched;
  if (f.matched < f.spec.nth) return false;
  if (f.spec.probability < 1.0 && draw(f) >= f.spec.probability) return false;
  ++f.fired;
  if (f.spec.count && f.fired >= f.spec.count) {
    f.done = true;
    recount();
  }
  if (on_fire) on_fire(static_cast<unsigned>(&f - faults_.data()) + 1);
  return true;
}

bool FaultRegistry::matches(const FaultState& f, TlpKind kind, const tlm::tlm_generic_payload& gp,
                            const TlpExtension& ext, Time now) const {
  const FaultMatch& m = f.spec.match;
  if (now < f.spec.start || now >= f.spec.end) return false;
  const bool completion = kind == TlpKind::Cpl || kind == TlpKind::CplD;
  if (m.kinds) {
    if (!(m.kinds & (1u << static_cast<unsigned>(kind)))) return false;
  } else if (completion || kind == TlpKind::Msg) {
    return false;  // by default faults hit requests, not completions or messages
  } else if (is_posted(kind) && (f.spec.kind == FaultKind::kNoCompletion ||
                                 f.spec.kind == FaultKind::kUnexpectedCompletion ||
                                 f.spec.kind == FaultKind::kBadByteCount)) {
    return false;  // these need a request that has a completion
  }
  if (m.tag >= 0 && ext.tag != m.tag) return false;
  if (!is_config(kind)) {
    const std::uint64_t a = gp.get_address();
    if (a < m.address_lo || a >= m.address_hi) return false;
  }
  if (!m.requester.empty()) {
    RoutingId rid;
    if (!resolve || !resolve(m.requester, &rid) || rid != ext.requester) return false;
  }
  return true;
}

unsigned FaultRegistry::check(FaultPoint point, const std::string& where, const std::string* alt,
                              const tlm::tlm_generic_payload& gp, const TlpExtension& ext,
                              Time now) {
  for (std::size_t i = 0; i < faults_.size(); ++i) {
    FaultState& f = faults_[i];
    if (f.cancelled || f.done) continue;
    const FaultKindInfo& info = fault_info(f.spec.kind);
    if (info.point != point) continue;
    if (f.spec.where != where && !(alt && f.spec.where == *alt)) continue;
    if (!matches(f, ext.kind, gp, ext, now)) continue;
    if (!take(f)) continue;
    const unsigned id = static_cast<unsigned>(i + 1);
    note(id, now, describe_tlp(ext.kind, gp, ext));
    return id;
  }
  return 0;
}

unsigned FaultRegistry::check_completion(const std::string& where, const std::string* alt,
                                         TlpKind cpl_kind, const tlm::tlm_generic_payload& request,
                                         const TlpExtension& ext, Time now) {
  for (std::size_t i = 0; i < faults_.size(); ++i) {
    FaultState& f = faults_[i];
    if (f.cancelled || f.done) continue;
    if (fault_info(f.spec.kind).point != FaultPoint::kLink) continue;
    if (f.spec.where != where && !(alt && f.spec.where == *alt)) continue;
    if (!(f.spec.match.kinds & (1u << static_cast<unsigned>(cpl_kind)))) continue;
    // The completion carries the request's requester and tag; the address
    // range applies to the address the request read.
    if (!matches(f, cpl_kind, request, ext, now)) continue;
    if (!take(f)) continue;
    const unsigned id = static_cast<unsigned>(i + 1);
    note(id, now,
         std::string(to_string(cpl_kind)) + " for " + describe_tlp(ext.kind, request, ext));
    return id;
  }
  return 0;
}

std::vector<unsigned> FaultRegistry::due(Time now) {
  std::vector<unsigned> out;
  for (std::size_t i = 0; i < faults_.size(); ++i) {
    FaultState& f = faults_[i];
    if (f.cancelled || f.done || f.spec.start > now) continue;
    FaultPoint p = fault_info(f.spec.kind).point;
    const bool timed_link = f.spec.kind == FaultKind::kLinkDown && f.spec.match.kinds == 0 &&
                            f.spec.match.requester.empty() && f.spec.match.tag < 0 &&
                            f.spec.match.address_lo == 0 &&
                            f.spec.match.address_hi == ~std::uint64_t{0};
    if (p != FaultPoint::kTimed && !timed_link) continue;
    ++f.matched;
    ++f.fired;
    f.done = true;
    out.push_back(static_cast<unsigned>(i + 1));
  }
  std::stable_sort(out.begin(), out.end(), [this](unsigned a, unsigned b) {
    return faults_[a - 1].spec.start < faults_[b - 1].spec.start;
  });
  if (!out.empty()) recount();
  if (on_fire)
    for (unsigned id : out)
      on_fire(id);
  return out;
}

Time FaultRegistry::next_timed() const {
  Time t = kTimeMax;
  for (const FaultState& f : faults_) {
    if (f.cancelled || f.done) continue;
    FaultPoint p = fault_info(f.spec.kind).point;
    const bool timed_link = f.spec.kind == FaultKind::kLinkDown && f.spec.match.kinds == 0 &&
                            f.spec.match.requester.empty() && f.spec.match.tag < 0 &&
                            f.spec.match.address_lo == 0 &&
                            f.spec.match.address_hi == ~std::uint64_t{0};
    if (p == FaultPoint::kTimed || timed_link) t = std::min(t, f.spec.start);
  }
  return t;
}

unsigned FaultRegistry::check_translation(RoutingId requester, std::uint64_t iova, bool write,
                                          Time now, FaultKind kind) {
  for (std::size_t i = 0; i < faults_.size(); ++i) {
    FaultState& f = faults_[i];
    if (f.cancelled || f.done || f.spec.kind != kind) continue;
    const FaultMatch& m = f.spec.match;
    if (now < f.spec.start || now >= f.spec.end) continue;
    if (iova < m.address_lo || iova >= m.address_hi) continue;
    if (m.kinds) {
      const TlpKind k = write ? TlpKind::MWr : TlpKind::MRd;
      if (!(m.kinds & (1u << static_cast<unsigned>(k)))) continue;
    }
    if (!m.requester.empty()) {
      RoutingId rid;
      if (!resolve || !resolve(m.requester, &rid) || rid != requester) continue;
    }
    if (!take(f)) continue;
    const unsigned id = static_cast<unsigned>(i + 1);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s translation of 0x%llx from %s",
                  kind == FaultKind::kDirtyLost ? "Dirty bit lost for the " : "",
                  write ? "write" : "read", static_cast<unsigned long long>(iova),
                  requester.str().c_str());
    note(id, now, buf);
    return id;
  }
  return 0;
}

void FaultRegistry::note(unsigned id, Time at, std::string detail) {
  if (log_.size() >= kMaxLog) {
    ++log_dropped_;
    return;
  }
  const FaultSpec& s = faults_.at(id - 1).spec;
  log_.push_back({at, id, s.kind, s.where, std::move(detail)});
}

FaultRegistry* fault_registry() {
  return g_registry;
}
void set_fault_registry(FaultRegistry* r) {
  g_registry = r;
}

}  // namespace pciesim::fabric

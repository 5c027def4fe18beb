// Fault injection (DESIGN.md 9, FAULTS.md): a registry of armed faults and
// the check every fault point in the models calls. A fault is what (kind),
// where (a link direction, a function, the root complex's host-memory
// completer, the IOMMU, a PF's firmware), which TLPs (kinds, requester,
// address range, tag; the Nth match), when (a simulated-time window) and
// how often (count, probability drawn from the run's seed). Plain C++: the
// registry decides whether a fault fires and logs it; the fault point
// carries out the architected consequence.
//
// Determinism: each fault draws from its own generator seeded by (run seed,
// fault id), and only on a TLP that matched everything else, so the same
// config, plan and seed give the same firing sequence and log.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/tlp.h"

namespace pciesim::fabric {

enum class FaultKind : std::uint8_t {
  // --- link: `where` is a link ("rc.rp0--sw0.usp") with an optional
  // direction (":down" / ":up") ---
  kLcrc,           // LCRC error: NAK and replay (Bad TLP, correctable)
  kReplayTimeout,  // the ACK is lost: REPLAY_TIMER expires, replay
  kTlpLost,        // dropped past the link layer (no DLL replay)
  kEcrc,           // end-to-end CRC error: data corrupted in transit
  kPoisoned,       // EP set: the final receiver must not use the data
  kMalformed,      // the receiving port finds the TLP malformed (fatal)
  kLinkDown,       // surprise link down
  // --- completer: `where` is a function ("ep0.vf1") or "rc" (host memory) ---
  kCplUr,
  kCplCa,
  kNoCompletion,          // the request is dropped: the requester times out
  kUnexpectedCompletion,  // a second completion for the request
  kBadByteCount,          // a completion whose byte count is wrong
  // --- device: `where` is a function, at a time ---
  kInternalError,     // uncorrectable internal error (fatal)
  kSurpriseRemoval,   // the device is gone
  kSurpriseFlr,       // the function resets itself
  kMigrationCommand,  // `where` an endpoint's PF: a firmware command fails
  kQuiesceStuck,      // a VF's quiesce never drains
  kAerReport,         // a function logs the given AER errors (aer-inject's model)
  // --- IOMMU ---
  kIommuFault,  // `where` "iommu": translations fault
  kIommuUnmap,  // `where` an IOMMU domain: unmap a range under DMA
  kDirtyLost,   // `where` "iommu": a Dirty-bit update is lost (dirty tracking erratum)
  // --- test only ---
  kTestAbort,  // `where` "simulator": the process aborts (campaign crash handling)
};
constexpr unsigned kFaultKindCount = static_cast<unsigned>(FaultKind::kTestAbort) + 1;

// Which kind of fault point checks a fault kind.
enum class FaultPoint : std::uint8_t { kLink, kCompleter, kTimed, kIommu };

struct FaultParamInfo {
  const char* name;
  const char* type;
  const char* default_value;
  const char* doc;
};

struct FaultKindInfo {
  FaultKind kind;
  const char* name;
  FaultPoint point;
  const char* where;                   // what `where` names
  const char* summary;                 // the cause
  const char* outcome;                 // the architected consequence
  const char* rule;                    // spec section / Linux function
  std::vector<FaultParamInfo> params;  // kind-specific parameters
};

const std::vector<FaultKindInfo>& fault_kinds();
const FaultKindInfo& fault_info(FaultKind k);
const char* to_string(FaultKind k);
bool parse_fault_kind(const std::string& name, FaultKind* out);

// Which TLPs a fault applies to (TLP fault points only).
struct FaultMatch {
  std::uint32_t kinds = 0;  // bit per TlpKind; 0 = any request (not completions)
  std::string requester;    // function name ("" = any), resolved when checked
  std::uint64_t address_lo = 0;
  std::uint64_t address_hi = ~std::uint64_t{0};  // [lo, hi)
  int tag = -1;                                  // -1 = any
};

struct FaultSpec {
  FaultKind kind = FaultKind::kLcrc;
  std::string where;
  FaultMatch match;
  Time start = 0;           // window start (timed kinds: when they fire)
  Time end = kTimeMax;      // window end
  std::uint64_t nth = 1;    // the first firing is on the nth match
  std::uint64_t count = 1;  // firings at most (0 = every match)
  double probability = 1.0;
  // Kind parameters (FaultKindInfo::params).
  unsigned repeat = 1;                 // lcrc: consecutive bad transmissions of one TLP
  Time duration = 0;                   // link_down: back up by itself after this (0: until reset)
  bool report = false;                 // tlp_lost: the dropping component logs an internal error
  std::string domain;                  // iommu_unmap
  std::uint64_t iova = 0, length = 0;  // iommu_unmap
  std::string command = "suspend_initiator", mode = "error";  // migration_command
  unsigned faults = 1;  // iommu_fault: translations that fault per firing
  std::uint32_t cor_status = 0, uncor_status = 0;       // aer_report: AER status bits
  std::array<std::uint32_t, 4> header_log{0, 0, 0, 0};  // aer_report
  std::string label;  // where the fault was defined ("faults[2]", "python")
};

struct FaultEvent {
  Time at;
  unsigned id;
  FaultKind kind;
  std::string where;
  std::string detail;  // the TLP or the action
};

struct FaultState {
  FaultSpec spec;
  std::uint64_t matched = 0;
  std::uint64_t fired = 0;
  bool cancelled = false;
  bool done = false;  // timed: fired; counted: count reached
  std::uint64_t rng = 0;
};

class FaultRegistry {
 public:
  static constexpr std::size_t kMaxLog = 10000;
  explicit FaultRegistry(std::uint64_t seed);

  // Arms a fault; returns its id (1, 2, ...).
  unsigned add(const FaultSpec& spec);
  void cancel(unsigned id);
  const FaultState& state(unsigned id) const;
  std::size_t size() const { return faults_.size(); }
  std::vector<const FaultEvent*> log_of(unsigned id) const;
  const std::vector<FaultEvent>& log() const { return log_; }
  std::uint64_t log_dropped() const { return log_dropped_; }

  // Whether any live fault uses this kind of point (one load per TLP).
  bool any(FaultPoint p) const { return live_[static_cast<unsigned>(p)] != 0; }

  // A TLP at a fault point: `where` and the optional `alt` (a link's name
  // with and without its direction) are what the point is. Returns the id
  // of the fault that fires (0: none) among those of `kinds`.
  unsigned check(FaultPoint point, const std::string& where, const std::string* alt,
                 const tlm::tlm_generic_payload& gp, const TlpExtension& ext, Time now);
  // The same for a completion travelling back (kind Cpl/CplD, no address).
  unsigned check_completion(const std::string& where, const std::string* alt, TlpKind cpl_kind,
                            const tlm::tlm_generic_payload& request, const TlpExtension& ext,
                            Time now);
  // Timed faults due at or before `now`, in order of (start, id); marks
  // them fired. The earliest pending start is next_timed().
  std::vector<unsigned> due(Time now);
  Time next_timed() const;
  // An IOMMU translation for `requester`: whether a fault fires.
  // `kind`: kIommuFault (at translation) or kDirtyLost (when a walk sets D).
  unsigned check_translation(RoutingId requester, std::uint64_t iova, bool write, Time now,
                             FaultKind kind);

  // Records a firing decided elsewhere (timed faults) or what a fault
  // point did (detail).
  void note(unsigned id, Time at, std::string detail);

  // Maps a function name to its current routing ID (set by the system);
  // unset or unknown names never match.
  std::function<bool(const std::string&, RoutingId*)> resolve;
  // Called after a fault fires (its `fired` count already updated), e.g.
  // to wake a scenario waiting for it.
  std::function<void(unsigned id)> on_fire;

 private:
  bool matches(const FaultState& f, TlpKind kind, const tlm::tlm_generic_payload& gp,
               const TlpExtension& ext, Time now) const;
  bool take(FaultState& f);  // counts the match; whether it fires
  double draw(FaultState& f);
  void recount();

  std::uint64_t seed_;
  std::vector<FaultState> faults_;
  std::vector<FaultEvent> log_;
  std::uint64_t log_dropped_ = 0;
  unsigned live_[4] = {0, 0, 0, 0};
};

// A one-line description of a TLP for fault logs.
std::string describe_tlp(TlpKind kind, const tlm::tlm_generic_payload& gp, const TlpExtension& ext);

// The registry fault points consult (nullptr: no faults).
FaultRegistry* fault_registry();
void set_fault_registry(FaultRegistry* r);

}  // namespace pciesim::fabric

// Completion accounting (DESIGN.md 3): every non-posted request ends with
// exactly one completion (SC, UR, CA or RRS as the requester sees it) or
// exactly one completion timeout. Requesters open an entry when they issue
// a request and close it with what they got; a second close, a close of
// something never opened, or an ending that is neither a completion nor a
// timeout (a discarded request the requester never timed out) is a
// violation. The system owns one ledger; stats report it and a run with a
// violation fails. Every ending is also a trace record, so an observer of
// the trace can check the same invariant, requests completed without
// leaving their port (UR on a link that is down) included.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/routing_id.h"
#include "fabric/tlp/tlp.h"

namespace pciesim::fabric {

struct CompletionLedgerStats {
  std::uint64_t requests = 0;
  std::uint64_t completions = 0;  // SC, UR, CA, RRS
  std::uint64_t timeouts = 0;
  std::uint64_t violations = 0;
  std::vector<std::string> violation_log;  // the first kMaxLog, for people
};

class CompletionLedger {
 public:
  static constexpr std::size_t kMaxLog = 32;
  // A request `requester` issues; returns its ledger id (never 0).
  std::uint64_t open(RoutingId requester, TlpKind kind, std::uint64_t address);
  // How request `id` ended, as its requester saw it, at time `at`.
  // `tlp`, `tag`, `issued`: for the trace (the request TLP's trace id, its
  // tag, when it was issued).
  void close(std::uint64_t id, CplStatus status, Time at, std::uint64_t tlp = 0,
             std::uint16_t tag = 0, Time issued = 0);
  std::size_t outstanding() const { return open_count_; }
  const CompletionLedgerStats& stats() const { return stats_; }

 private:
  struct Entry {
    RoutingId requester;
    TlpKind kind;
    std::uint64_t address;
  };
  struct Slot {
    Entry e;
    bool open;
  };
  // Ids are issued in order and nearly every request ends soon after it
  // began (most in the same call): the recent ids live in a window indexed
  // by id, closed ones leave from its front. An entry that stays open while
  // kWindow newer ones were issued moves to `parked_`, so the window stays
  // bounded whatever a requester does. Open and close are O(1) without
  // allocation in the common case.
  static constexpr std::size_t kWindow = 4096;
  void violation(std::string what);
  std::deque<Slot> window_;
  std::uint64_t base_ = 1;  // the id of window_.front()
  std::unordered_map<std::uint64_t, Entry> parked_;
  std::size_t open_count_ = 0;
  std::uint64_t next_id_ = 1;
  CompletionLedgerStats stats_;
};

// The ledger requesters report to (nullptr: not counted).
CompletionLedger* completion_ledger();
void set_completion_ledger(CompletionLedger* ledger);

}  // namespace pciesim::fabric

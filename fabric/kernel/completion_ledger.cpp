#include "fabric/kernel/completion_ledger.h"

#include <cstdio>

#include "fabric/kernel/trace.h"

namespace pciesim::fabric {

namespace {
CompletionLedger* g_ledger = nullptr;

std::string hex(std::uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

bool is_completion(CplStatus s) {
  // A poisoned completion is a completion (its data is not used).
  return s == CplStatus::kSC || s == CplStatus::kUR || s == CplStatus::kCA ||
         s == CplStatus::kRRS || s == CplStatus::kPoisoned;
}
}  // namespace

CompletionLedger* completion_ledger() {
  return g_ledger;
}
void set_completion_ledger(CompletionLedger* ledger) {
  g_ledger = ledger;
}

std::uint64_t CompletionLedger::open(RoutingId requester, TlpKind kind, std::uint64_t address) {
  const std::uint64_t id = next_id_++;
  if (window_.empty()) base_ = id;
  window_.push_back({Entry{requester, kind, address}, true});
  ++open_count_;
  while (window_.size() > kWindow) {
    if (window_.front().open) parked_.emplace(base_, window_.front().e);
    window_.pop_front();
    ++base_;
  }
  ++stats_.requests;
  return id;
}

void CompletionLedger::close(std::uint64_t id, CplStatus status, Time at, std::uint64_t tlp,
                             std::uint16_t tag, Time issued) {
  Entry e;
  bool found = false;
  if (id >= base_ && id - base_ < window_.size()) {
    Slot& s = window_[id - base_];
    if (s.open) {
      e = s.e;
      s.open = false;
      found = true;
      while (!window_.empty() && !window_.front().open) {
        window_.pop_front();
        ++base_;
      }
    }
  } else if (auto it = parked_.find(id); it != parked_.end()) {
    e = it->second;
    parked_.erase(it);
    found = true;
  }
  if (!found) {
    violation("request #" + std::to_string(id) + " ended twice (or was never issued): " +
              to_string(status) + " at " + format_time(at));
    return;
  }
  --open_count_;
  if (is_completion(status))
    ++stats_.completions;
  else if (status == CplStatus::kTimeout)
    ++stats_.timeouts;
  else
    violation(std::string(to_string(e.kind)) + " from " + e.requester.str() + " to " +
              hex(e.address) + " ended with neither a completion nor a timeout (" +
              to_string(status) + ") at " + format_time(at));
  if (TraceSink* sink = trace_sink())
    sink->request_end({at, id, e.kind, e.requester, e.address, status, tlp, tag, issued});
}

void CompletionLedger::violation(std::string what) {
  ++stats_.violations;
  if (stats_.violation_log.size() < kMaxLog) stats_.violation_log.push_back(std::move(what));
}

}  // namespace pciesim::fabric

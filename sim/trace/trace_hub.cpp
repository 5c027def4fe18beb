#include <fnmatch.h>

#include "fabric/common/error.h"
#include "fabric/port/port.h"
#include "sim/trace/trace_output.h"

namespace pciesim::sim::trace {

using fabric::TlpKind;
using pciesim::UsageError;

namespace {
constexpr TlpKind kAllKinds[] = {TlpKind::MRd,    TlpKind::MWr,    TlpKind::CfgRd0,
                                 TlpKind::CfgWr0, TlpKind::CfgRd1, TlpKind::CfgWr1,
                                 TlpKind::Msg,    TlpKind::Cpl,    TlpKind::CplD};
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text + ",") {
    if (c == ',') {
      const auto b = cur.find_first_not_of(" \t");
      const auto e = cur.find_last_not_of(" \t");
      if (b != std::string::npos) out.push_back(cur.substr(b, e - b + 1));
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

void TraceFilter::validate() const {
  if (from >= to)
    throw UsageError("trace", "the trace window is empty: from " + fabric::format_time(from) +
                                  " is not before to " + fabric::format_time(to));
  for (const std::string& k : kinds) {
    bool known = false;
    for (TlpKind x : kAllKinds)
      known = known || k == fabric::to_string(x);
    if (!known)
      throw UsageError("trace", "no TLP kind '" + k +
                                    "' (MRd, MWr, CfgRd0, CfgWr0, CfgRd1, CfgWr1, Msg, Cpl, CplD)");
  }
  for (const std::string& p : components)
    if (p.empty()) throw UsageError("trace", "an empty component pattern");
}

bool TraceFilter::keeps_component(const std::string& name) const {
  if (components.empty()) return true;
  for (const std::string& p : components)
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  return false;
}

bool TraceFilter::keeps_kind(TlpKind k) const {
  if (kinds.empty()) return true;
  for (const std::string& s : kinds)
    if (s == fabric::to_string(k)) return true;
  return false;
}

void TraceHub::add(std::unique_ptr<TraceOutput> out, TraceFilter filter) {
  filter.validate();
  outputs_.emplace_back(std::move(out), std::move(filter));
}

void TraceHub::advance() {
  const Time h = fabric::now_fs();
  for (auto& [o, f] : outputs_)
    o->advance(h);
}

void TraceHub::tlp(const TlpTraceRecord& r) {
  std::string requester;
  bool named = false;
  for (auto& [o, f] : outputs_) {
    if (!f.keeps_time(r.start) || !f.keeps_kind(r.kind)) continue;
    bool keep = f.keeps_component(*r.link);
    if (!keep && name_of) {
      if (!named) requester = name_of(r.requester);
      named = true;
      keep = !requester.empty() && f.keeps_component(requester);
    }
    if (keep) o->tlp(r);
  }
  advance();
}

void TraceHub::request_end(const RequestEndRecord& r) {
  for (auto& [o, f] : outputs_)
    if (f.keeps_time(r.at) && f.keeps_kind(r.kind)) o->request_end(r);
}

void TraceHub::event(const EventRecord& e) {
  for (auto& [o, f] : outputs_)
    if (f.keeps_time(e.at) && f.keeps_component(e.component)) o->event(e);
  advance();
}

void TraceHub::counter(const CounterRecord& c) {
  for (auto& [o, f] : outputs_)
    if (f.keeps_time(c.at) && f.keeps_component(c.component)) o->counter(c);
  advance();
}

std::string TraceHub::error() const {
  for (const auto& [o, f] : outputs_)
    if (!o->error().empty()) return o->error();
  return {};
}

std::string TraceHub::finish(Time end, bool interrupted) {
  std::string first;
  for (auto& [o, f] : outputs_) {
    std::string e = o->finish(end, interrupted);
    if (first.empty()) first = e;
  }
  return first;
}

std::vector<std::string> TraceHub::truncations() const {
  std::vector<std::string> out;
  for (const auto& [o, f] : outputs_)
    if (!o->truncated().empty()) out.push_back(o->truncated());
  return out;
}

std::uint64_t TraceHub::late() const {
  std::uint64_t n = 0;
  for (const auto& [o, f] : outputs_)
    n += o->late();
  return n;
}

}  // namespace pciesim::sim::trace

// Trace outputs (DESIGN.md 12, "traces"): the sinks behind the one trace
// hook every hop, model and host action calls (fabric/kernel/trace.h). The
// hub fans each record out to the outputs whose filter takes it; each
// output puts records in the time order it needs with a Reorder buffer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/kernel/trace.h"

namespace pciesim::sim::trace {

using fabric::CounterRecord;
using fabric::EventRecord;
using fabric::RequestEndRecord;
using fabric::Time;
using fabric::TlpTraceRecord;

// What an output keeps. Applies to every kind of record by its time and
// component; `kinds` to TLPs only.
struct TraceFilter {
  Time from = 0;                        // records before this are dropped
  Time to = fabric::kTimeMax;           // ... and from this on
  std::vector<std::string> components;  // glob patterns (fnmatch) over link
                                        // and component names; a TLP also
                                        // matches by its requester; empty: all
  std::vector<std::string> kinds;       // TLP kinds (MRd, MWr, CplD, Cpl,
                                        // CfgRd0, ...); empty: all
  std::uint64_t max_bytes = 0;          // 0: no cap
  // Validates patterns and kinds; throws UsageError naming the bad one.
  void validate() const;
  bool keeps_time(Time t) const { return t >= from && t < to; }
  bool keeps_component(const std::string& name) const;
  bool keeps_kind(fabric::TlpKind k) const;
};

// Parses "MRd,CplD" and "ep0*,sw0*" lists (CLI and Python).
std::vector<std::string> split_list(const std::string& text);

class TraceOutput {
 public:
  virtual ~TraceOutput() = default;
  virtual void tlp(const TlpTraceRecord& r) = 0;
  virtual void request_end(const RequestEndRecord&) {}
  virtual void event(const EventRecord&) {}
  virtual void counter(const CounterRecord&) {}
  // Every record with a time before `horizon` has been reported: buffered
  // ones before it may be written.
  virtual void advance(Time horizon) = 0;
  // The run is over (or interrupted): write what is buffered and close.
  // Returns the first write error, or empty.
  virtual std::string finish(Time end, bool interrupted) = 0;
  // The first write error so far, or empty.
  virtual const std::string& error() const = 0;
  virtual const std::string& path() const = 0;
  // Set once the size cap stopped the output: a message for people.
  virtual const std::string& truncated() const = 0;
  // Records that arrived behind the time already written (0 unless a
  // model reports a record later than the rule in trace.h allows).
  virtual std::uint64_t late() const { return 0; }
};

// Records of one kind in order of a key, released up to a horizon. Ties
// keep arrival order, so the output is deterministic.
template <typename T>
class Reorder {
 public:
  void push(Time key, T value) {
    if (key < released_) ++late_;
    heap_.push_back({key, seq_++, std::move(value)});
    std::push_heap(heap_.begin(), heap_.end(), later);
  }
  template <typename F>
  void release(Time horizon, F&& f) {
    while (!heap_.empty() && heap_.front().key < horizon)
      pop(f);
  }
  // Releases everything (the end of the trace).
  template <typename F>
  void drain(F&& f) {
    while (!heap_.empty())
      pop(f);
  }
  bool empty() const { return heap_.empty(); }
  std::uint64_t late() const { return late_; }
  // The key of the record being released.
  Time current() const { return current_; }
  void clear() { heap_.clear(); }

 private:
  struct Item {
    Time key;
    std::uint64_t seq;
    T value;
  };
  template <typename F>
  void pop(F& f) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    Item it = std::move(heap_.back());
    heap_.pop_back();
    released_ = std::max(released_, it.key);
    current_ = it.key;
    f(it.value);
  }
  static bool later(const Item& a, const Item& b) {
    return a.key != b.key ? a.key > b.key : a.seq > b.seq;
  }
  std::vector<Item> heap_;
  std::uint64_t seq_ = 0;
  Time released_ = 0;
  Time current_ = 0;
  std::uint64_t late_ = 0;
};

struct PerfettoOptions {
  // Trace timestamps are integers: "ns" writes simulated nanoseconds (the
  // UI shows real times; TLPs shorter than 1 ns round), "ps" writes
  // simulated picoseconds as the trace's nanoseconds (every TLP visible;
  // the UI's times read 1000x too long).
  std::string time_unit = "ns";
};

std::unique_ptr<TraceOutput> make_jsonl_output(const std::string& path, TraceFilter filter);
std::unique_ptr<TraceOutput> make_perfetto_output(const std::string& path, TraceFilter filter,
                                                  PerfettoOptions options);
std::unique_ptr<TraceOutput> make_vcd_output(const std::string& path, TraceFilter filter);

// The sink the fabric sees: filters per output and fans out.
class TraceHub : public fabric::TraceSink {
 public:
  // The function name of a routing ID (component filters match TLPs by
  // requester too); empty when none.
  std::function<std::string(fabric::RoutingId)> name_of;
  void add(std::unique_ptr<TraceOutput> out, TraceFilter filter);
  bool empty() const { return outputs_.empty(); }
  void tlp(const TlpTraceRecord& r) override;
  void request_end(const RequestEndRecord& r) override;
  void event(const EventRecord& e) override;
  void counter(const CounterRecord& c) override;
  // The first write error of any output, or empty.
  std::string error() const;
  // Finishes every output; returns the first error, or empty.
  std::string finish(Time end, bool interrupted);
  // The outputs' truncation messages.
  std::vector<std::string> truncations() const;
  std::uint64_t late() const;
  using Output = std::pair<std::unique_ptr<TraceOutput>, TraceFilter>;
  // Hands the outputs over (to a new hub), in the order they were added.
  std::vector<Output> take_outputs() { return std::move(outputs_); }

 private:
  void advance();
  std::vector<Output> outputs_;
};

}  // namespace pciesim::sim::trace

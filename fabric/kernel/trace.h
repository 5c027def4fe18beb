// Optional tracing: when a sink is installed, every TLP a port sends is
// reported once the hop completes, with the completion TLPs that came back
// over the same hop; models and host software report what they did as
// events. Costs one pointer test when off (call sites test trace_sink()
// before they build a record).
//
// Every record carries simulated times only. A record is reported no
// earlier than the kernel time of its earliest timestamp (loosely-timed
// processes run ahead of the kernel, never behind it), which is what lets
// a sink put records in time order with a bounded buffer (sim/trace).
#pragma once

#include <cstdint>
#include <string>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/tlp.h"

namespace pciesim::fabric {

// One TLP crossing one link. Requests and completions alike; a request's
// `id` is the same on every hop it takes, and its completions name it in
// `request` (and have ids of their own, the same on every hop back).
struct TlpTraceRecord {
  Time start;       // when the TLP was ready at the sending port
  Time wire_start;  // when its first byte went on the wire
  Time wire_end;    // when its last byte was on the wire
  Time arrival;     // when its last byte reached the receiving port
  Time done;        // when the hop (and its completion, if any) finished
  const std::string* link;
  const char* direction;
  TlpKind kind;
  RoutingId requester;
  RoutingId completer;  // completions: the Completer ID; requests: 0
  std::uint16_t tag;
  std::uint64_t address;  // completions: the request's address of this piece
  std::uint32_t length;   // payload bytes (reads: bytes requested)
  CplStatus status;
  P2pPath p2p;
  std::uint64_t id;       // this TLP, on every hop
  std::uint64_t request;  // completions: the request's id; requests: 0
};

// How a non-posted request ended at its requester (CompletionLedger): one
// record per request, also for requests that never left their port.
struct RequestEndRecord {
  Time at;
  std::uint64_t id;  // the ledger's id
  TlpKind kind;
  RoutingId requester;
  std::uint64_t address;
  CplStatus status;       // a completion status, or kTimeout
  std::uint64_t tlp = 0;  // the request TLP's trace id (0: it never left)
  std::uint16_t tag = 0;
  Time issued = 0;  // when the requester issued it
};

// Something a model or the host did. A slice is either one kComplete
// record (begin and end known together) or a kBegin/kEnd pair on the same
// track, reported at their own times; kInstant is a point in time.
enum class EventPhase : std::uint8_t { kBegin, kEnd, kInstant, kComplete };

struct EventRecord {
  Time at = 0;   // begin, or the instant
  Time end = 0;  // kComplete only
  EventPhase phase = EventPhase::kInstant;
  // Where it shows: the component ("ep0.vf1", "host") and, below it, the
  // activity ("descriptors", "reads", "scenario", ...).
  std::string component;
  std::string track;
  std::string name;
  std::string args;        // "key=value, key=value" for people
  std::uint64_t flow = 0;  // a TLP id the event belongs to (0: none)
};

// A sampled value (sim/trace's sampler): link utilisation, credits,
// outstanding tags, IOTLB hit rate.
struct CounterRecord {
  Time at = 0;
  std::string component;
  std::string name;
  double value = 0;
  const char* unit = "";
};

class TraceSink {
 public:
  virtual ~TraceSink() = default;
  virtual void tlp(const TlpTraceRecord& r) = 0;
  virtual void request_end(const RequestEndRecord&) {}
  virtual void event(const EventRecord&) {}
  virtual void counter(const CounterRecord&) {}
  // A fresh TLP id (`n` consecutive ones for a burst of n TLPs).
  std::uint64_t new_ids(unsigned n = 1) {
    const std::uint64_t id = next_id_;
    next_id_ += n;
    return id;
  }
  // A sink that replaces another continues its numbering (TLPs in flight
  // keep the ids they have; ids stay unique within a simulation).
  std::uint64_t next_id() const { return next_id_; }
  void set_next_id(std::uint64_t id) { next_id_ = id; }

 private:
  std::uint64_t next_id_ = 1;
};

TraceSink* trace_sink();
void set_trace_sink(TraceSink* sink);

// Shorthands for models and host code (no-ops when tracing is off; build
// the strings only after testing trace_sink() where that matters).
void trace_instant(Time at, std::string component, std::string track, std::string name,
                   std::string args = {}, std::uint64_t flow = 0);
void trace_slice(Time begin, Time end, std::string component, std::string track, std::string name,
                 std::string args = {}, std::uint64_t flow = 0);
void trace_begin(Time at, std::string component, std::string track, std::string name,
                 std::string args = {});
// Ends the open slice of `name` on the track (empty: the latest one).
void trace_end(Time at, std::string component, std::string track, std::string name = {});

}  // namespace pciesim::fabric

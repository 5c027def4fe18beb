// Optional TLP trace: when a sink is installed, every TLP a port sends is
// reported once the hop completes. Costs one pointer test when off.
#pragma once

#include <cstdint>
#include <string>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/tlp.h"

namespace pciesim::fabric {

struct TlpTraceRecord {
  Time start;    // when the TLP was ready at the sending port
  Time arrival;  // when its last byte reached the receiving port
  Time done;     // when the hop (and its completion, if any) finished
  const std::string* link;
  const char* direction;
  TlpKind kind;
  RoutingId requester;
  std::uint64_t address;
  std::uint32_t length;
  CplStatus status;
  P2pPath p2p;
};

// How a non-posted request ended at its requester (CompletionLedger): one
// record per request, also for requests that never left their port.
struct RequestEndRecord {
  Time at;
  std::uint64_t id;  // the ledger's id
  TlpKind kind;
  RoutingId requester;
  std::uint64_t address;
  CplStatus status;  // a completion status, or kTimeout
};

class TraceSink {
 public:
  virtual ~TraceSink() = default;
  virtual void tlp(const TlpTraceRecord& r) = 0;
  virtual void request_end(const RequestEndRecord&) {}
};

TraceSink* trace_sink();
void set_trace_sink(TraceSink* sink);

}  // namespace pciesim::fabric

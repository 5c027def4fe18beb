#include "fabric/kernel/trace.h"

#include <utility>

namespace pciesim::fabric {

namespace {
TraceSink* g_sink = nullptr;

void put(EventPhase phase, Time at, Time end, std::string component, std::string track,
         std::string name, std::string args, std::uint64_t flow) {
  EventRecord e;
  e.at = at;
  e.end = end;
  e.phase = phase;
  e.component = std::move(component);
  e.track = std::move(track);
  e.name = std::move(name);
  e.args = std::move(args);
  e.flow = flow;
  g_sink->event(e);
}
}  // namespace

TraceSink* trace_sink() {
  return g_sink;
}
void set_trace_sink(TraceSink* sink) {
  g_sink = sink;
}

void trace_instant(Time at, std::string component, std::string track, std::string name,
                   std::string args, std::uint64_t flow) {
  if (g_sink)
    put(EventPhase::kInstant, at, at, std::move(component), std::move(track), std::move(name),
        std::move(args), flow);
}
void trace_slice(Time begin, Time end, std::string component, std::string track, std::string name,
                 std::string args, std::uint64_t flow) {
  if (g_sink)
    put(EventPhase::kComplete, begin, end < begin ? begin : end, std::move(component),
        std::move(track), std::move(name), std::move(args), flow);
}
void trace_begin(Time at, std::string component, std::string track, std::string name,
                 std::string args) {
  if (g_sink)
    put(EventPhase::kBegin, at, at, std::move(component), std::move(track), std::move(name),
        std::move(args), 0);
}
void trace_end(Time at, std::string component, std::string track, std::string name) {
  if (g_sink)
    put(EventPhase::kEnd, at, at, std::move(component), std::move(track), std::move(name), {}, 0);
}

}  // namespace pciesim::fabric

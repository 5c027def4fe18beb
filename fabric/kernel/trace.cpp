#include "fabric/kernel/trace.h"

namespace pciesim::fabric {

namespace {
TraceSink* g_sink = nullptr;
}

TraceSink* trace_sink() {
  return g_sink;
}
void set_trace_sink(TraceSink* sink) {
  g_sink = sink;
}

}  // namespace pciesim::fabric

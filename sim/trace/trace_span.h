// A host action as a trace slice: begins where it is constructed, ends
// where it goes out of scope (both at the kernel's time, which is the host
// software's time). Nothing is built when tracing is off.
#pragma once

#include <string>
#include <utility>

#include "fabric/kernel/trace.h"
#include "fabric/port/port.h"

namespace pciesim::sim {

class TraceSpan {
 public:
  template <typename NameFn>
  TraceSpan(const char* component, const char* track, NameFn&& name)
      : component_(component), track_(track) {
    if (!fabric::trace_sink()) return;
    on_ = true;
    std::pair<std::string, std::string> na = name();
    fabric::trace_begin(fabric::now_fs(), component_, track_, std::move(na.first),
                        std::move(na.second));
  }
  ~TraceSpan() {
    if (on_ && fabric::trace_sink()) fabric::trace_end(fabric::now_fs(), component_, track_);
  }
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

 private:
  const char* component_;
  const char* track_;
  bool on_ = false;
};

// An instant on a host track (`what` is called only when tracing).
template <typename Fn>
void trace_host_instant(const char* component, const char* track, Fn&& what) {
  if (!fabric::trace_sink()) return;
  std::pair<std::string, std::string> na = what();
  fabric::trace_instant(fabric::now_fs(), component, track, std::move(na.first),
                        std::move(na.second));
}

}  // namespace pciesim::sim

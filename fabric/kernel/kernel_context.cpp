#include "fabric/kernel/kernel_context.h"

#include <cctype>
#include <cstdlib>
#include <systemc>

#include "fabric/common/error.h"
#include "fabric/kernel/sanitizer.h"

namespace pciesim::fabric {

namespace {
KernelContext* g_current = nullptr;

// libsystemc prints its banner before sc_main() runs; the variable must be
// set by a static initializer of every program that links the fabric.
struct QuietBanner {
  QuietBanner() { setenv("SC_COPYRIGHT_MESSAGE", "DISABLE", 0); }
} g_quiet_banner;
}  // namespace

void configure_systemc_process() {
  static bool done = false;
  if (done) return;
  done = true;
  setenv("SC_COPYRIGHT_MESSAGE", "DISABLE", 0);
  // sc_start() with nothing left to do is normal for us (the host waits for
  // an interrupt that the scenario never asks for, the run ends at max time).
  sc_core::sc_report_handler::set_actions(sc_core::SC_ID_NO_SC_START_ACTIVITY_,
                                          sc_core::SC_DO_NOTHING);
  sc_core::sc_report_handler::set_actions(sc_core::SC_ID_SIMULATION_STOP_CALLED_TWICE_,
                                          sc_core::SC_DO_NOTHING);
  sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
}

std::string process_name(const std::string& text) {
  std::string out;
  for (char c : text)
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  return out.empty() ? std::string("process") : out;
}

KernelContext::KernelContext() {
  if (g_current) throw UsageError("kernel", "a simulation kernel is already active");
  configure_systemc_process();
  previous_ = sc_core::sc_curr_simcontext;
  context_ = new sc_core::sc_simcontext();
  sc_core::sc_curr_simcontext = context_;
  sc_core::sc_default_global_context = context_;
  sc_core::sc_set_time_resolution(1, sc_core::SC_FS);
  g_current = this;
}

KernelContext::~KernelContext() {
  g_current = nullptr;
  // Every module of this simulation must be destroyed before this point.
  delete context_;
  sc_core::sc_curr_simcontext = previous_;
  sc_core::sc_default_global_context = previous_;
}

KernelContext* KernelContext::current() {
  return g_current;
}

void KernelContext::guard(const std::function<void()>& body) {
  fresh_coroutine_stack();  // process bodies start on a clean stack (ASan only)
  try {
    body();
  } catch (const sc_core::sc_unwind_exception&) {
    throw;  // SystemC's own process-kill mechanism must pass through
  } catch (...) {
    fail(std::current_exception());
  }
}

void KernelContext::fail(std::exception_ptr e) {
  if (g_current && !g_current->failure_) g_current->failure_ = e;
  if (sc_core::sc_get_status() & (sc_core::SC_RUNNING | sc_core::SC_PAUSED)) sc_core::sc_stop();
}

void KernelContext::rethrow_failure() {
  if (!failure_) return;
  std::exception_ptr e = failure_;
  failure_ = nullptr;
  std::rethrow_exception(e);
}

}  // namespace pciesim::fabric

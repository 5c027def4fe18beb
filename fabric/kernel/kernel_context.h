// A fresh SystemC kernel for one simulation. SystemC allows one elaboration
// per kernel context; pciesim creates a new sc_simcontext per simulation so
// that a process (a test binary, a Python session) can run several
// simulations one after another. The context runs at 1 fs resolution.
//
// SystemC converts exceptions escaping a process into a generic sc_report;
// processes run their bodies through guard(), which keeps the original
// exception and stops the kernel, and the runner calls rethrow_failure().
#pragma once

#include <exception>
#include <functional>
#include <string>

namespace sc_core {
class sc_simcontext;
}

namespace pciesim::fabric {

class KernelContext {
 public:
  KernelContext();
  ~KernelContext();
  KernelContext(const KernelContext&) = delete;
  KernelContext& operator=(const KernelContext&) = delete;

  static KernelContext* current();

  // Runs `body` (a process body); an exception is stored and the kernel stopped.
  static void guard(const std::function<void()>& body);
  // Records a failure from inside a process and stops the kernel.
  static void fail(std::exception_ptr e);
  // Throws the first stored failure, if any (and clears it).
  void rethrow_failure();
  bool failed() const { return static_cast<bool>(failure_); }

 private:
  sc_core::sc_simcontext* context_ = nullptr;
  sc_core::sc_simcontext* previous_ = nullptr;
  std::exception_ptr failure_;
};

// Process-wide SystemC set-up (banner off, report actions); idempotent.
void configure_systemc_process();

// A valid SystemC object/process name from any text ("ep0.vf1" -> "ep0_vf1").
std::string process_name(const std::string& text);

}  // namespace pciesim::fabric

// Error signalling shared by the models (PCIe Base 6.2, FAULTS.md 2): the
// error messages a function sends upstream, and what a requester makes of
// a completion that came back damaged by a fault.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "fabric/config_space/capabilities.h"
#include "fabric/port/port.h"
#include "fabric/tlp/tlp.h"

namespace pciesim::models {

// Runs `fn` at simulated time `t` (at once if `t` is not in the future).
// A temporally decoupled model computes a detection ahead of its time;
// the error must become visible in config space, and its message leave,
// only when it happens (software reading AER registers in between must
// not see it early).
void at_time(fabric::Time t, std::function<void()> fn);

// Sends ERR_COR / ERR_NONFATAL / ERR_FATAL (`severity`) from `rid` out of
// `port` (towards the root complex), ready at time `t`.
void send_error_message(fabric::Port& port, fabric::RoutingId rid, fabric::ErrorSeverity severity,
                        fabric::Time t);

// The requester's checks on the completion of `request` (2.3.2, 2.7,
// 6.2.3.2.4): a lost or malformed completion leaves the request to time
// out (kDiscarded), poisoned data is not used (kPoisoned), an ECRC error
// is dropped when the requester checks ECRC (else the corrupted data is
// used), a second completion is Unexpected. `report` logs what the
// requester detects (kind, header, advisory). Returns the status the
// request ends with as far as the fault marks decide.
using ErrorSink = std::function<void(fabric::ErrorKind, const std::array<std::uint32_t, 4>&, bool)>;
fabric::CplStatus check_completion(fabric::ConfigSpace& requester,
                                   const tlm::tlm_generic_payload& request,
                                   fabric::TlpExtension& ext, const ErrorSink& report);

// The completer's checks on a request that reached it with fault marks:
// poisoned data or an ECRC error it checks. Returns false when the request
// must not be executed (then `ext.status` says how it ends).
bool check_request(fabric::ConfigSpace& completer, const tlm::tlm_generic_payload& gp,
                   fabric::TlpExtension& ext, const ErrorSink& report);

// What a completer fault (cpl_ur, cpl_ca, no_completion,
// unexpected_completion, bad_byte_count) does to a request reaching
// `completer`: true when the fault answered it (ext.status says how),
// false when the completer serves it (possibly marking its completion).
bool completer_fault_action(fabric::FaultKind kind, fabric::ConfigSpace& completer,
                            const tlm::tlm_generic_payload& gp, fabric::TlpExtension& ext,
                            const ErrorSink& report);

}  // namespace pciesim::models

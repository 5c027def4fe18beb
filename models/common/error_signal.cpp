#include "models/common/error_signal.h"

#include <systemc>

#include "fabric/kernel/kernel_context.h"

namespace pciesim::models {

using namespace fabric;

void at_time(Time t, std::function<void()> fn) {
  const Time now = now_fs();
  if (t <= now) {
    fn();
    return;
  }
  const sc_core::sc_time delay = to_sc(t - now);
  sc_core::sc_spawn([delay, fn = std::move(fn)] {
    KernelContext::guard([&] {
      sc_core::wait(delay);
      fn();
    });
  });
}

void send_error_message(Port& port, RoutingId rid, ErrorSeverity severity, Time t) {
  if (severity == ErrorSeverity::kNone || !port.connected()) return;
  Tlp msg;
  msg.memory(TlpKind::Msg, rid, 0, nullptr, 0);
  msg.gp().set_command(tlm::TLM_WRITE_COMMAND);
  msg.ext().kind = TlpKind::Msg;
  msg.ext().message_code = severity == ErrorSeverity::kCorrectable ? kMsgErrCor
                           : severity == ErrorSeverity::kNonFatal  ? kMsgErrNonFatal
                                                                   : kMsgErrFatal;
  const Time now = now_fs();
  sc_core::sc_time d = to_sc(t > now ? t - now : 0);
  port.transmit(msg.gp(), d);
}

CplStatus check_completion(ConfigSpace& requester, const tlm::tlm_generic_payload& request,
                           TlpExtension& ext, const ErrorSink& report) {
  const std::uint32_t m = ext.fault_marks;
  if (!(m & (kFaultCplPoisoned | kFaultCplEcrc | kFaultCplDuplicate | kFaultCplByteCount |
             kFaultCplDropped)))
    return ext.status;
  const bool data = is_read(ext.kind) && ext.status == CplStatus::kSC;
  const TlpKind ck = data ? TlpKind::CplD : TlpKind::Cpl;
  const std::uint32_t len = request.get_data_length();
  if (m & kFaultCplDropped) return CplStatus::kDiscarded;
  if (m & kFaultCplByteCount) {
    // A completion matching the request's transaction ID but not its byte
    // count: handled as Malformed TLP (2.3.2) and dropped.
    report(ErrorKind::kMalformedTlp, completion_header(request, ext, ck, ext.completer, len + 4),
           false);
    return CplStatus::kDiscarded;
  }
  CplStatus s = ext.status;
  if ((m & kFaultCplEcrc) && ecrc_check_enabled(requester)) {
    report(ErrorKind::kEcrc, completion_header(request, ext, ck, ext.completer, len), false);
    return CplStatus::kDiscarded;
  }
  if (m & kFaultCplPoisoned) {
    // Detected Parity Error: a poisoned TLP was received (7.5.1.2).
    requester.set_bits16(PCI_STATUS, PCI_STATUS_DETECTED_PARITY, true);
    TlpExtension e = ext;
    e.poisoned = true;
    report(ErrorKind::kPoisonedTlp, completion_header(request, e, ck, ext.completer, len), false);
    s = CplStatus::kPoisoned;
  }
  if (m & kFaultCplDuplicate) {
    // The request completed; the second completion matches nothing
    // outstanding (advisory non-fatal, 6.2.3.2.4.2).
    report(ErrorKind::kUnexpectedCompletion,
           completion_header(request, ext, ck, ext.completer, len), true);
  }
  return s;
}

bool check_request(ConfigSpace& completer, const tlm::tlm_generic_payload& gp, TlpExtension& ext,
                   const ErrorSink& report) {
  if ((ext.fault_marks & kFaultEcrc) && ecrc_check_enabled(completer)) {
    report(ErrorKind::kEcrc, header_log(gp, ext), false);
    ext.status = is_posted(ext.kind) ? CplStatus::kSC : CplStatus::kDiscarded;
    return false;
  }
  if (ext.poisoned &&
      (ext.kind == TlpKind::MWr || ext.kind == TlpKind::CfgWr0 || ext.kind == TlpKind::CfgWr1)) {
    // The data of a poisoned write is not used (2.7.2.2).
    completer.set_bits16(PCI_STATUS, PCI_STATUS_DETECTED_PARITY, true);
    report(ErrorKind::kPoisonedTlp, header_log(gp, ext), false);
    ext.status = is_posted(ext.kind) ? CplStatus::kSC : CplStatus::kUR;
    return false;
  }
  return true;
}

bool completer_fault_action(FaultKind kind, ConfigSpace& completer,
                            const tlm::tlm_generic_payload& gp, TlpExtension& ext,
                            const ErrorSink& report) {
  const bool np = !is_posted(ext.kind);
  switch (kind) {
    case FaultKind::kCplUr:
      // UR / CA in a completion: advisory non-fatal for the completer
      // (6.2.3.2.4.1); for a posted request it is a plain non-fatal error.
      ext.status = CplStatus::kUR;
      report(ErrorKind::kUnsupportedRequest, header_log(gp, ext), np);
      return true;
    case FaultKind::kCplCa:
      ext.status = CplStatus::kCA;
      report(ErrorKind::kCompleterAbort, header_log(gp, ext), np);
      note_signaled_ca(completer);
      return true;
    case FaultKind::kNoCompletion:
      ext.status = CplStatus::kDiscarded;
      return true;
    case FaultKind::kUnexpectedCompletion:
      ext.fault_marks |= kFaultCplDuplicate;
      return false;
    case FaultKind::kBadByteCount:
      ext.fault_marks |= kFaultCplByteCount;
      return false;
    default:
      return false;
  }
}

}  // namespace pciesim::models

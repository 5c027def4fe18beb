// The transaction: a tlm_generic_payload carrying a TlpExtension
// (DESIGN.md section 3). Byte counts and data use the payload's own fields;
// the extension carries what a TLP header carries plus transport bookkeeping.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <tlm>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/routing_id.h"

namespace pciesim::fabric {

enum class TlpKind : std::uint8_t { MRd, MWr, CfgRd0, CfgWr0, CfgRd1, CfgWr1, Msg, Cpl, CplD };

// Completion status. SC/UR/RRS/CA are the wire codes (PCIe Base spec
// 2.2.9). kDiscarded means the completer dropped a non-posted request (a
// function in FLR may do so); the requester turns it into kTimeout after its
// completion timeout. kTimeout is the requester's own verdict.
enum class CplStatus : std::uint8_t {
  kSC = 0b000,
  kUR = 0b001,
  kRRS = 0b010,
  kCA = 0b100,
  // The requester's verdict on a completion whose data came back poisoned
  // (the data is not used; PCIe Base 2.7.2).
  kPoisoned = 0xfd,
  kDiscarded = 0xfe,
  kTimeout = 0xff,
};

enum class AddressType : std::uint8_t {
  kUntranslated = 0,
  kTranslationRequest = 1,
  kTranslated = 2
};

// How a peer-to-peer request travelled (stats, tests).
enum class P2pPath : std::uint8_t { kNone, kDirect, kReflected, kBlocked };

// Fault-injection marks a fault point may set on a TLP.
enum FaultMark : std::uint32_t {
  kFaultNone = 0,
  kFaultPoisoned = 1u << 0,
  kFaultEcrc = 1u << 1,          // the TLP's ECRC does not match (data corrupted)
  kFaultCplPoisoned = 1u << 2,   // its completion came back poisoned
  kFaultCplEcrc = 1u << 3,       // its completion's ECRC does not match
  kFaultCplDuplicate = 1u << 4,  // the completer sent a second completion
  kFaultCplByteCount = 1u << 5,  // the completion's Byte Count is wrong
  kFaultCplDropped = 1u << 6,    // the completion was lost (completion timeout follows)
};

// Message codes of the error messages (PCIe Base 2.2.8.3).
constexpr std::uint8_t kMsgErrCor = 0x30;
constexpr std::uint8_t kMsgErrNonFatal = 0x31;
constexpr std::uint8_t kMsgErrFatal = 0x33;

const char* to_string(TlpKind k);
const char* to_string(CplStatus s);
const char* to_string(P2pPath p);

inline bool is_posted(TlpKind k) {
  return k == TlpKind::MWr || k == TlpKind::Msg;
}
inline bool is_config(TlpKind k) {
  return k == TlpKind::CfgRd0 || k == TlpKind::CfgWr0 || k == TlpKind::CfgRd1 ||
         k == TlpKind::CfgWr1;
}
inline bool is_read(TlpKind k) {
  return k == TlpKind::MRd || k == TlpKind::CfgRd0 || k == TlpKind::CfgRd1;
}
inline bool is_memory(TlpKind k) {
  return k == TlpKind::MRd || k == TlpKind::MWr;
}

// One TLP of a posted-write burst (see TlpExtension::burst).
struct BurstTlp {
  std::uint32_t offset = 0;  // into the payload's data
  std::uint32_t length = 0;
  // In: when the TLP is ready at the sending port. A port rewrites it to
  // when the TLP arrives at its receiver; a receiver that forwards it makes
  // it the ready time at its egress port.
  Time time = 0;
  // Set by the receiving hop: when the TLP left that hop's receive buffer.
  Time consumed = 0;
  // Set by the final target: when the write was done.
  Time done = 0;
};
constexpr unsigned kMaxBurstTlps = 64;

class TlpExtension : public tlm::tlm_extension<TlpExtension> {
 public:
  // --- TLP header fields ---
  TlpKind kind = TlpKind::MRd;
  RoutingId requester;
  RoutingId completer;
  std::uint16_t tag = 0;
  std::uint8_t traffic_class = 0;
  bool relaxed_ordering = false;
  bool no_snoop = false;
  bool id_ordering = false;
  AddressType address_type = AddressType::kUntranslated;
  bool has_pasid = false;
  std::uint32_t pasid = 0;
  bool poisoned = false;
  std::uint32_t fault_marks = kFaultNone;
  std::uint8_t message_code = 0;  // Msg: what the message says

  // --- completion ---
  CplStatus status = CplStatus::kSC;
  // Payload bytes per completion TLP the completer returns (RCB or MPS).
  std::uint16_t cpl_chunk = 64;
  // When the first of several completion TLPs is ready, as the completion
  // travels back (0 = with the last one). Each hop forwards completion TLPs
  // one by one, so a burst pipelines across hops.
  Time cpl_first = 0;

  // --- transport bookkeeping (not TLP fields) ---
  // Set by each receiving hop: when the TLP left that hop's receive buffer,
  // so the sender can return its flow-control credits.
  Time consumed_at = 0;
  // Set by the first port the TLP leaves: when it was fully on the wire.
  // Initiators pace themselves by it.
  Time first_hop_done = 0;
  // Links crossed by the request.
  std::uint8_t hops = 0;
  // A memory write may stand for several consecutive MWr TLPs (at most
  // kMaxBurstTlps, inside one 4 KiB page): each hop times, credits and
  // traces them one by one; receivers that do not handle bursts get them
  // one by one (Port::transmit). Owned by the initiator; null = one TLP.
  std::vector<BurstTlp>* burst = nullptr;
  P2pPath p2p = P2pPath::kNone;
  // Trace ids (fabric/kernel/trace.h), given by the first port the TLP
  // leaves while tracing is on: this TLP's (a burst's first, the others
  // follow), and its completions' first (given by the completer's hop).
  std::uint64_t trace_id = 0;
  std::uint64_t cpl_trace_id = 0;

  tlm::tlm_extension_base* clone() const override;
  void copy_from(const tlm::tlm_extension_base& other) override;

  // Resets every field to its default, for pooled reuse.
  void reset() { *this = TlpExtension(); }
  bool ok() const { return status == CplStatus::kSC; }
};

// The TLP's 4 DW header in wire format (PCIe Base 2.2.1-2.2.9), as an AER
// Header Log holds it: DW0 Fmt/Type/TC/TD/EP/Attr/AT/Length, DW1 requester
// ID, tag and byte enables (messages: the code), DW2-3 the address (config:
// bus/device/function/register). Unused DWs are 0.
std::array<std::uint32_t, 4> header_log(const tlm::tlm_generic_payload& gp,
                                        const TlpExtension& ext);
// The header of the completion a request got: `kind` Cpl or CplD, the
// completer, status, Byte Count and Lower Address of its first TLP.
std::array<std::uint32_t, 4> completion_header(const tlm::tlm_generic_payload& request,
                                               const TlpExtension& ext, TlpKind kind,
                                               RoutingId completer, std::uint32_t byte_count);

// The extension of a payload that must carry one (throws ModelError if not).
TlpExtension& tlp_of(tlm::tlm_generic_payload& gp);
const TlpExtension* find_tlp(const tlm::tlm_generic_payload& gp);

// A generic payload owning its TlpExtension and a small data buffer, for
// initiators that keep one per outstanding request (no allocation per TLP).
class Tlp {
 public:
  Tlp();
  ~Tlp();
  Tlp(const Tlp&) = delete;
  Tlp& operator=(const Tlp&) = delete;

  tlm::tlm_generic_payload& gp() { return gp_; }
  TlpExtension& ext() { return ext_; }

  // Prepares a memory read/write of `len` bytes at `addr` using `data`
  // (caller-owned, at least len bytes).
  void memory(TlpKind kind, RoutingId requester, std::uint64_t addr, std::uint8_t* data,
              std::uint32_t len);
  // Prepares a configuration read/write: `target` routing ID, register
  // offset, 1/2/4 bytes using the internal buffer.
  void config(TlpKind kind, RoutingId requester, RoutingId target, std::uint16_t reg, unsigned size,
              std::uint32_t value = 0);
  std::uint32_t config_value() const;  // little-endian value of the buffer
  // Prepares TLP `t` of the posted-write burst `burst` carries, as a single
  // MWr with the burst's header fields (requester, attributes, PASID...).
  void burst_piece(const tlm::tlm_generic_payload& burst, const TlpExtension& ext,
                   const BurstTlp& t);

 private:
  tlm::tlm_generic_payload gp_;
  TlpExtension ext_;
  std::uint8_t small_[8] = {};
};

// Config requests use the generic payload's address like ECAM: bus<<20 |
// devfn<<12 | register.
constexpr std::uint64_t config_address(RoutingId rid, std::uint16_t reg) {
  return (static_cast<std::uint64_t>(rid.value()) << 12) | (reg & 0xfff);
}
constexpr RoutingId config_target(std::uint64_t address) {
  return RoutingId(static_cast<std::uint16_t>((address >> 12) & 0xffff));
}
constexpr std::uint16_t config_register(std::uint64_t address) {
  return static_cast<std::uint16_t>(address & 0xfff);
}

// Sets the generic payload's response from the extension's status, the one
// mapping DESIGN.md section 3 prescribes.
void set_response_from_status(tlm::tlm_generic_payload& gp);

}  // namespace pciesim::fabric

// Header and capability builders. Each writes the registers with their reset
// values and masks into a ConfigSpace and keeps the legacy (0x34) and
// extended (0x100) capability lists and the allocation map consistent.
// Register names and bits come from <linux/pci_regs.h> (DESIGN.md section 5);
// the few that file lacks are defined below with the spec's names.
#pragma once

#include <linux/pci_regs.h>

#include <array>
#include <bitset>
#include <cstdint>

#include "fabric/config_space/config_space.h"

namespace pciesim::fabric {

// Missing from Debian 12's pci_regs.h (PCIe Base 4.0+, section 7.5.3.15/16).
constexpr std::uint32_t kDevCap2TenBitTagCompleter = 0x00010000;
constexpr std::uint32_t kDevCap2TenBitTagRequester = 0x00020000;
constexpr std::uint16_t kDevCtl2TenBitTagRequesterEnable = 0x1000;
constexpr std::uint32_t kDevCap2CompletionTimeoutRanges = 0x0000000f;  // ranges A-D
// SR-IOV Capabilities bit 1 (ARI Capable Hierarchy Preserved).
constexpr std::uint32_t kSriovCapAriPreserved = 0x00000002;

struct BarSpec {
  std::uint64_t size = 0;  // 0 = BAR not implemented; else a power of two >= 16
  bool is_64bit = true;
  bool prefetchable = false;
};
using BarSpecs = std::array<BarSpec, 6>;

// Writes one memory BAR (and its upper half for 64-bit) at `reg`.
void define_memory_bar(ConfigSpace& cs, std::uint16_t reg, const BarSpec& bar);
// Base address programmed in the BAR at `reg` (and `reg`+4 for 64-bit).
std::uint64_t bar_address(const ConfigSpace& cs, std::uint16_t reg);
bool bar_is_64bit(const ConfigSpace& cs, std::uint16_t reg);

struct Type0Header {
  std::uint16_t vendor_id = 0;
  std::uint16_t device_id = 0;
  std::uint8_t revision = 0;
  std::uint32_t class_code = 0;  // 24 bits: base, sub, prog-if
  std::uint16_t subsystem_vendor_id = 0;
  std::uint16_t subsystem_id = 0;
  bool multi_function = false;
  std::uint8_t interrupt_pin = 0;  // 0 = no INTx
};
void build_type0_header(ConfigSpace& cs, const Type0Header& h, const BarSpecs& bars);

struct Type1Header {
  std::uint16_t vendor_id = 0;
  std::uint16_t device_id = 0;
  std::uint8_t revision = 0;
  std::uint32_t class_code = 0x060400;  // PCI-to-PCI bridge, normal decode
  bool multi_function = false;
};
void build_type1_header(ConfigSpace& cs, const Type1Header& h);

struct PcieCapOptions {
  std::uint8_t port_type = PCI_EXP_TYPE_ENDPOINT;
  bool slot_implemented = false;
  std::uint16_t physical_slot = 0;
  std::uint32_t max_payload_supported = 512;  // bytes
  bool extended_tag = true;
  bool flr = false;
  bool ari_forwarding = false;     // downstream ports only
  bool rrs_sw_visibility = false;  // root ports only
  bool ten_bit_tag_completer = false;
  bool ten_bit_tag_requester = false;
  int max_link_speed = 3;  // generation 1..6
  int max_link_width = 8;
  std::uint8_t port_number = 0;
  bool vf = false;  // VF rules: most Device Control fields are RsvdP
};
std::uint16_t add_pcie_capability(ConfigSpace& cs, const PcieCapOptions& o);
// Link Status current speed/width, as link training would leave them.
void set_link_status(ConfigSpace& cs, int speed, int width, bool dll_active);
// The port's Data Link Layer Link Active bit follows its link (DL_Up/DL_Down).
// With a slot, Presence Detect State follows `present` (the adapter is there).
void set_dll_active(ConfigSpace& cs, bool active, bool present = true);

struct PmOptions {
  bool no_soft_reset = false;
};
std::uint16_t add_pm_capability(ConfigSpace& cs, const PmOptions& o);

struct MsixOptions {
  std::uint16_t table_size = 1;  // entries, 1..2048
  std::uint8_t table_bir = 0;
  std::uint32_t table_offset = 0;  // QWORD aligned
  std::uint8_t pba_bir = 0;
  std::uint32_t pba_offset = 0;
};
std::uint16_t add_msix_capability(ConfigSpace& cs, const MsixOptions& o);

struct SriovOptions {
  std::uint16_t total_vfs = 0;
  std::uint16_t first_vf_offset = 1;
  std::uint16_t vf_stride = 1;
  std::uint16_t vf_device_id = 0;
  std::uint32_t supported_page_sizes = 0x553;  // 4K 8K 64K 256K 1M 4M (SPEC.md C)
  std::uint16_t function_dependency_link = 0;
  bool ari_preserved = true;
  BarSpecs vf_bars;  // per-VF sizes
};
std::uint16_t add_sriov_capability(ConfigSpace& cs, const SriovOptions& o);

std::uint16_t add_ari_capability(ConfigSpace& cs, std::uint8_t next_function);

// ACS: `supported` is a mask of PCI_ACS_* bits; `egress_vector_bits` > 0 adds
// the Egress Control Vector (PCI_ACS_EC must be supported then).
std::uint16_t add_acs_capability(ConfigSpace& cs, std::uint16_t supported,
                                 unsigned egress_vector_bits = 0);

// AER, version 2; `root_port` adds the Root Error registers.
std::uint16_t add_aer_capability(ConfigSpace& cs, bool root_port);

// Low-level list management, used by the builders above and by tests.
class CapabilityAllocator {
 public:
  explicit CapabilityAllocator(ConfigSpace& cs);
  // Appends a legacy capability of `size` bytes to the 0x34 chain.
  std::uint16_t add(std::uint8_t id, std::uint16_t size);
  // Appends an extended capability of `size` bytes to the 0x100 chain.
  std::uint16_t add_extended(std::uint16_t id, std::uint8_t version, std::uint16_t size);

 private:
  std::uint16_t find_free(std::uint16_t from, std::uint16_t to, std::uint16_t size) const;
  void mark(std::uint16_t off, std::uint16_t size);
  void scan_existing();
  ConfigSpace& cs_;
  std::bitset<kConfigSpaceSize> used_;
};

// --- Error signalling shared by every model (PCIe Base 6.2, FAULTS.md) ---
enum class ErrorKind {
  // uncorrectable (PCI_ERR_UNC_*)
  kUnsupportedRequest,    // received a request it does not support (completer)
  kCompleterAbort,        // signalled CA (completer)
  kCompletionTimeout,     // requester
  kUnexpectedCompletion,  // a completion matching no outstanding request
  kAcsViolation,          // the port that blocked the request
  kPoisonedTlp,           // the final receiver of a TLP with EP set
  kMalformedTlp,
  kEcrc,
  kSurpriseDown,
  kInternal,
  kDataLinkProtocol,
  kFlowControlProtocol,
  kReceiverOverflow,
  // correctable (PCI_ERR_COR_*)
  kReceiverError,
  kBadTlp,
  kBadDllp,
  kReplayRollover,
  kReplayTimeout,
  kAdvisoryNonFatal,  // the ADV_NFAT bit on its own (reports, aer-inject)
};
enum class ErrorSeverity { kNone, kCorrectable, kNonFatal, kFatal };
const char* to_string(ErrorKind k);
const char* to_string(ErrorSeverity s);
bool is_correctable(ErrorKind k);
std::uint32_t aer_bit(ErrorKind k);  // its bit in the AER status register
// The error an AER status bit stands for (one bit of the correctable or the
// uncorrectable status register); false for bits the AER capability of
// pciesim's functions does not implement (reserved bits, Undefined bit 0).
bool error_kind_of_bit(bool correctable, std::uint32_t bit, ErrorKind* out);

// What logging an error decided: its severity, and the error message the
// function must send upstream (kNone: none, because masked or not enabled).
struct ErrorReport {
  ErrorSeverity severity = ErrorSeverity::kNone;
  ErrorSeverity message = ErrorSeverity::kNone;
  bool advisory = false;  // an uncorrectable error handled as correctable
};

// Logs `kind` (PCIe Base 6.2.5, figure 6-2): Device Status detected bits
// (whatever the masks), the AER status bit; for an unmasked error the
// First Error Pointer and the Header Log (the 4 DW header of the TLP in
// error, `header`, in TLP format) when no unmasked uncorrectable error is
// already logged; and the message to send given the masks, the severity
// and the reporting enables (Device Control, Command SERR#). `advisory`:
// the caller may handle a non-fatal error as Advisory Non-Fatal (6.2.3.2.4).
// `controls`: the function whose reporting enables apply (a VF's PF).
ErrorReport record_error(ConfigSpace& cs, ErrorKind kind,
                         const std::array<std::uint32_t, 4>& header, bool advisory = false,
                         const ConfigSpace* controls = nullptr);

// ECRC Check Enable in the AER capability (the receiver checks ECRC).
bool ecrc_check_enabled(const ConfigSpace& cs);

// DPC (PCIe Base 7.9.14) on a downstream port.
std::uint16_t add_dpc_capability(ConfigSpace& cs);

// The completion timeout a requester applies for a Device Control 2 value
// (Completion Timeout Value / Disable, PCIe Base 7.5.3.16): the upper end of
// the selected range; 0 when disabled.
std::uint64_t completion_timeout_fs(std::uint16_t devctl2);

// Status register bits a requester sets when it receives a UR or CA
// completion, and a completer sets when it signals CA (SPEC.md A).
void note_received_ur(ConfigSpace& cs, bool secondary = false);
void note_received_ca(ConfigSpace& cs, bool secondary = false);
void note_signaled_ca(ConfigSpace& cs);

// Decoded payload sizes.
std::uint32_t max_payload_size(const ConfigSpace& cs);  // Device Control, bytes
std::uint32_t max_read_request(const ConfigSpace& cs);  // Device Control, bytes
// The same with the PCI Express capability's offset already known (0 = none).
std::uint32_t max_payload_size(const ConfigSpace& cs, std::uint16_t exp_cap);
std::uint32_t max_read_request(const ConfigSpace& cs, std::uint16_t exp_cap);

}  // namespace pciesim::fabric

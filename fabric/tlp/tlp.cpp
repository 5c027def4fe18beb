#include "fabric/tlp/tlp.h"

#include <algorithm>
#include <cstring>

#include "fabric/common/error.h"

namespace pciesim::fabric {

const char* to_string(TlpKind k) {
  switch (k) {
    case TlpKind::MRd:
      return "MRd";
    case TlpKind::MWr:
      return "MWr";
    case TlpKind::CfgRd0:
      return "CfgRd0";
    case TlpKind::CfgWr0:
      return "CfgWr0";
    case TlpKind::CfgRd1:
      return "CfgRd1";
    case TlpKind::CfgWr1:
      return "CfgWr1";
    case TlpKind::Msg:
      return "Msg";
    case TlpKind::Cpl:
      return "Cpl";
    case TlpKind::CplD:
      return "CplD";
  }
  return "?";
}

const char* to_string(CplStatus s) {
  switch (s) {
    case CplStatus::kSC:
      return "SC";
    case CplStatus::kUR:
      return "UR";
    case CplStatus::kRRS:
      return "RRS";
    case CplStatus::kCA:
      return "CA";
    case CplStatus::kPoisoned:
      return "poisoned";
    case CplStatus::kDiscarded:
      return "discarded";
    case CplStatus::kTimeout:
      return "timeout";
  }
  return "?";
}

const char* to_string(P2pPath p) {
  switch (p) {
    case P2pPath::kNone:
      return "none";
    case P2pPath::kDirect:
      return "direct";
    case P2pPath::kReflected:
      return "reflected";
    case P2pPath::kBlocked:
      return "blocked";
  }
  return "?";
}

tlm::tlm_extension_base* TlpExtension::clone() const {
  return new TlpExtension(*this);
}

void TlpExtension::copy_from(const tlm::tlm_extension_base& other) {
  *this = static_cast<const TlpExtension&>(other);
}

namespace {
// Fmt (3 bits) and Type (5 bits) of DW0 (PCIe Base 2.2.1, table 2-3).
std::uint32_t fmt_type(TlpKind kind, bool addr64, bool with_data) {
  switch (kind) {
    case TlpKind::MRd:
      return (addr64 ? 0b001u : 0b000u) << 5;
    case TlpKind::MWr:
      return (addr64 ? 0b011u : 0b010u) << 5;
    case TlpKind::CfgRd0:
      return 0b00100u;
    case TlpKind::CfgWr0:
      return 0b010u << 5 | 0b00100u;
    case TlpKind::CfgRd1:
      return 0b00101u;
    case TlpKind::CfgWr1:
      return 0b010u << 5 | 0b00101u;
    case TlpKind::Msg:  // routed to the Root Complex (r = 000)
      return (with_data ? 0b011u : 0b001u) << 5 | 0b10000u;
    case TlpKind::Cpl:
      return 0b01010u;
    case TlpKind::CplD:
      return 0b010u << 5 | 0b01010u;
  }
  return 0;
}
std::uint32_t length_dw(std::uint64_t addr, std::uint32_t len) {
  if (len == 0) return 1;
  const std::uint64_t first = addr & ~std::uint64_t{3};
  const std::uint64_t end = (addr + len + 3) & ~std::uint64_t{3};
  return static_cast<std::uint32_t>(((end - first) / 4) & 0x3ff);  // 1024 DW encodes as 0
}
std::uint32_t dw0(TlpKind kind, bool addr64, bool with_data, const TlpExtension& ext,
                  std::uint32_t length) {
  std::uint32_t v = fmt_type(kind, addr64, with_data) << 24;
  v |= (ext.traffic_class & 7u) << 20;
  if (ext.id_ordering) v |= 1u << 18;  // Attr[2]
  if (ext.poisoned) v |= 1u << 14;
  if (ext.relaxed_ordering) v |= 1u << 13;
  if (ext.no_snoop) v |= 1u << 12;
  v |= (static_cast<std::uint32_t>(ext.address_type) & 3u) << 10;
  return v | (length & 0x3ff);
}
// First / last DW byte enables of a memory access (2.2.5).
std::uint32_t byte_enables(std::uint64_t addr, std::uint32_t len) {
  if (len == 0) return 0;
  const unsigned lead = addr & 3;
  const std::uint64_t end = addr + len;
  const unsigned tail = end & 3;
  if (length_dw(addr, len) == 1) {
    std::uint32_t first = 0;
    for (std::uint64_t b = addr; b < end; ++b)
      first |= 1u << (b & 3);
    return first;
  }
  const std::uint32_t first = (0xfu << lead) & 0xfu;
  const std::uint32_t last = tail ? (0xfu >> (4 - tail)) : 0xfu;
  return last << 4 | first;
}
}  // namespace

std::array<std::uint32_t, 4> header_log(const tlm::tlm_generic_payload& gp,
                                        const TlpExtension& ext) {
  const std::uint64_t a = gp.get_address();
  const std::uint32_t len = gp.get_data_length();
  const TlpKind k = ext.kind;
  std::array<std::uint32_t, 4> h{};
  const std::uint32_t rid = std::uint32_t{ext.requester.value()} << 16;
  const std::uint32_t tag = (ext.tag & 0xffu) << 8;
  if (is_memory(k)) {
    const bool a64 = a > 0xffffffffULL;
    h[0] = dw0(k, a64, k == TlpKind::MWr, ext, length_dw(a, len));
    h[1] = rid | tag | byte_enables(a, len);
    if (a64) {
      h[2] = static_cast<std::uint32_t>(a >> 32);
      h[3] = static_cast<std::uint32_t>(a) & ~3u;
    } else {
      h[2] = static_cast<std::uint32_t>(a) & ~3u;
    }
  } else if (is_config(k)) {
    const std::uint16_t reg = config_register(a);
    h[0] = dw0(k, false, k == TlpKind::CfgWr0 || k == TlpKind::CfgWr1, ext, 1);
    h[1] = rid | tag | byte_enables(reg, len);
    h[2] = std::uint32_t{config_target(a).value()} << 16 | (reg & 0xffcu);
  } else if (k == TlpKind::Msg) {
    h[0] = dw0(k, true, len != 0, ext, len ? length_dw(0, len) : 0);
    h[1] = rid | tag | ext.message_code;
  } else {
    return completion_header(gp, ext, k, ext.completer, len);
  }
  return h;
}

std::array<std::uint32_t, 4> completion_header(const tlm::tlm_generic_payload& request,
                                               const TlpExtension& ext, TlpKind kind,
                                               RoutingId completer, std::uint32_t byte_count) {
  std::array<std::uint32_t, 4> h{};
  const std::uint64_t a = request.get_address();
  const bool data = kind == TlpKind::CplD;
  TlpExtension e = ext;
  e.address_type = AddressType::kUntranslated;
  // The first completion TLP of the request: its payload runs to the
  // first completion boundary (ext.cpl_chunk: RCB or MPS, 2.3.1.1); its
  // Byte Count is what remains of the whole request.
  std::uint32_t first = byte_count;
  if (ext.cpl_chunk) {
    const std::uint32_t to_boundary = ext.cpl_chunk - static_cast<std::uint32_t>(a % ext.cpl_chunk);
    first = std::min(first, to_boundary);
  }
  h[0] = dw0(kind, false, data, e, data ? length_dw(a, first) : 0);
  // Status values above 3 bits (discarded, timeout) are not wire codes.
  const std::uint32_t status = static_cast<std::uint32_t>(ext.status) & 7u;
  h[1] = std::uint32_t{completer.value()} << 16 | status << 13 | (byte_count & 0xfffu);
  h[2] = std::uint32_t{ext.requester.value()} << 16 | (ext.tag & 0xffu) << 8 |
         static_cast<std::uint32_t>(a & 0x7f);
  return h;
}

TlpExtension& tlp_of(tlm::tlm_generic_payload& gp) {
  TlpExtension* ext = gp.get_extension<TlpExtension>();
  if (!ext) throw ModelError("fabric", "transaction without a TlpExtension");
  return *ext;
}

const TlpExtension* find_tlp(const tlm::tlm_generic_payload& gp) {
  return gp.get_extension<TlpExtension>();
}

Tlp::Tlp() {
  gp_.set_extension(&ext_);
  gp_.set_streaming_width(0);
  gp_.set_byte_enable_ptr(nullptr);
  gp_.set_byte_enable_length(0);
  gp_.set_dmi_allowed(false);
}

Tlp::~Tlp() {
  // The payload would otherwise free() the member extension.
  gp_.clear_extension(&ext_);
}

void Tlp::memory(TlpKind kind, RoutingId requester, std::uint64_t addr, std::uint8_t* data,
                 std::uint32_t len) {
  ext_.reset();
  ext_.kind = kind;
  ext_.requester = requester;
  gp_.set_command(kind == TlpKind::MWr ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
  gp_.set_address(addr);
  gp_.set_data_ptr(data);
  gp_.set_data_length(len);
  gp_.set_streaming_width(len);
  gp_.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
}

void Tlp::burst_piece(const tlm::tlm_generic_payload& burst, const TlpExtension& ext,
                      const BurstTlp& t) {
  memory(TlpKind::MWr, ext.requester, burst.get_address() + t.offset,
         burst.get_data_ptr() + t.offset, t.length);
  ext_.traffic_class = ext.traffic_class;
  ext_.relaxed_ordering = ext.relaxed_ordering;
  ext_.no_snoop = ext.no_snoop;
  ext_.id_ordering = ext.id_ordering;
  ext_.address_type = ext.address_type;
  ext_.has_pasid = ext.has_pasid;
  ext_.pasid = ext.pasid;
  ext_.poisoned = ext.poisoned;
  ext_.fault_marks = ext.fault_marks;
  ext_.p2p = ext.p2p;
  ext_.hops = ext.hops;
}

void Tlp::config(TlpKind kind, RoutingId requester, RoutingId target, std::uint16_t reg,
                 unsigned size, std::uint32_t value) {
  ext_.reset();
  ext_.kind = kind;
  ext_.requester = requester;
  ext_.completer = target;
  if (size != 1 && size != 2 && size != 4)
    throw UsageError("config",
                     "config access size must be 1, 2 or 4 bytes, got " + std::to_string(size));
  for (unsigned i = 0; i < sizeof small_; ++i)
    small_[i] = i < size ? static_cast<std::uint8_t>(value >> (8 * i)) : 0;
  bool write = kind == TlpKind::CfgWr0 || kind == TlpKind::CfgWr1;
  gp_.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
  gp_.set_address(config_address(target, reg));
  gp_.set_data_ptr(small_);
  gp_.set_data_length(size);
  gp_.set_streaming_width(size);
  gp_.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
}

std::uint32_t Tlp::config_value() const {
  std::uint32_t v = 0;
  for (unsigned i = 0; i < gp_.get_data_length() && i < 4; ++i)
    v |= static_cast<std::uint32_t>(small_[i]) << (8 * i);
  return v;
}

void set_response_from_status(tlm::tlm_generic_payload& gp) {
  const TlpExtension& ext = tlp_of(gp);
  switch (ext.status) {
    case CplStatus::kSC:
      gp.set_response_status(tlm::TLM_OK_RESPONSE);
      break;
    case CplStatus::kUR:
      gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
      break;
    case CplStatus::kCA:
      gp.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
      break;
    default:
      gp.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
      break;
  }
}

}  // namespace pciesim::fabric

#include "fabric/tlp/tlp.h"

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

std::array<std::uint32_t, 4> header_log(const tlm::tlm_generic_payload& gp,
                                        const TlpExtension& ext) {
  const std::uint64_t a = gp.get_address();
  return {static_cast<std::uint32_t>(ext.kind) << 24 | ((gp.get_data_length() + 3) / 4),
          static_cast<std::uint32_t>(ext.requester.value()) << 16 | ext.tag,
          static_cast<std::uint32_t>(a >> 32), static_cast<std::uint32_t>(a)};
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

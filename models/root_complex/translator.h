// What the root complex asks before an upstream DMA request touches memory
// or a peer: address translation and isolation (the IOMMU implements it).
// A platform without an IOMMU has none, and DMA addresses are physical.
#pragma once

#include <cstdint>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/routing_id.h"
#include "fabric/tlp/tlp.h"

namespace pciesim::models {

struct TranslationRequest {
  fabric::RoutingId requester;
  bool has_pasid = false;
  std::uint32_t pasid = 0;
  std::uint64_t address = 0;
  std::uint32_t length = 0;
  bool write = false;
  fabric::AddressType address_type = fabric::AddressType::kUntranslated;
  fabric::Time at = 0;  // arrival time at the translation agent
};

struct TranslationResult {
  bool ok = true;
  std::uint64_t address = 0;
  fabric::Time done = 0;  // when the translated request can proceed
  // On a fault, what the request completes with (platform option: UR or CA).
  fabric::CplStatus fault_status = fabric::CplStatus::kUR;
};

class UpstreamTranslator {
 public:
  virtual ~UpstreamTranslator() = default;
  // False while translation is off: requests pass untouched.
  virtual bool active() const { return true; }
  virtual TranslationResult translate(const TranslationRequest& req) = 0;
  // Zero-time translation for debug accesses; false if unmapped.
  virtual bool translate_dbg(fabric::RoutingId requester, std::uint64_t iova, bool write,
                             std::uint64_t* out) = 0;
};

// A block of registers the CPU reaches by MMIO through the root complex at
// a fixed address (the IOMMU's, like a VT-d remapping unit's).
class RegisterBlock {
 public:
  virtual ~RegisterBlock() = default;
  virtual std::uint64_t register_block_size() const = 0;
  // An access of 4 or 8 bytes at `offset`, arriving at time t.
  virtual fabric::CplStatus register_access(std::uint64_t offset, std::uint8_t* data,
                                            std::uint32_t len, bool write, fabric::Time t) = 0;
};

}  // namespace pciesim::models

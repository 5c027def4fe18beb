// PCIe Routing ID: bus (8 bits), device (5), function (3); with ARI the
// device and function fields form one 8-bit function number.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pciesim::fabric {

class RoutingId {
 public:
  constexpr RoutingId() = default;
  constexpr explicit RoutingId(std::uint16_t value) : value_(value) {}
  constexpr RoutingId(unsigned bus, unsigned device, unsigned function)
      : value_(static_cast<std::uint16_t>(((bus & 0xff) << 8) | ((device & 0x1f) << 3) |
                                          (function & 0x7))) {}

  constexpr std::uint16_t value() const { return value_; }
  constexpr unsigned bus() const { return value_ >> 8; }
  constexpr unsigned device() const { return (value_ >> 3) & 0x1f; }
  constexpr unsigned function() const { return value_ & 0x7; }
  constexpr unsigned devfn() const { return value_ & 0xff; }  // the ARI function number

  // "bb:dd.f", the way lspci and Linux print it.
  std::string str() const;
  // Accepts "bb:dd.f" and "dddd:bb:dd.f" (hexadecimal). The domain must be
  // 0, unless `domain` is given: then any domain is returned there.
  static std::optional<RoutingId> parse(std::string_view text, unsigned* domain = nullptr);

  friend constexpr bool operator==(RoutingId a, RoutingId b) { return a.value_ == b.value_; }
  friend constexpr bool operator!=(RoutingId a, RoutingId b) { return a.value_ != b.value_; }
  friend constexpr bool operator<(RoutingId a, RoutingId b) { return a.value_ < b.value_; }

 private:
  std::uint16_t value_ = 0;
};

}  // namespace pciesim::fabric

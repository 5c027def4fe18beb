#include "fabric/tlp/routing_id.h"

#include <cctype>
#include <cstdio>

namespace pciesim::fabric {

std::string RoutingId::str() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02x:%02x.%x", bus(), device(), function());
  return buf;
}

namespace {
bool hex_field(std::string_view s, unsigned max, unsigned* out) {
  if (s.empty() || s.size() > 4) return false;
  unsigned v = 0;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    v = v * 16 +
        static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(c))
                                  ? c - '0'
                                  : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
  }
  if (v > max) return false;
  *out = v;
  return true;
}
}  // namespace

std::optional<RoutingId> RoutingId::parse(std::string_view text, unsigned* domain_out) {
  // Optional domain prefix.
  if (domain_out) *domain_out = 0;
  size_t first = text.find(':');
  if (first == std::string_view::npos) return std::nullopt;
  size_t second = text.find(':', first + 1);
  if (second != std::string_view::npos) {
    unsigned domain;
    if (!hex_field(text.substr(0, first), 0xffff, &domain)) return std::nullopt;
    if (domain_out)
      *domain_out = domain;
    else if (domain != 0)
      return std::nullopt;
    text = text.substr(first + 1);
    first = text.find(':');
  }
  size_t dot = text.find('.', first + 1);
  if (dot == std::string_view::npos) return std::nullopt;
  unsigned bus, dev, fn;
  if (!hex_field(text.substr(0, first), 0xff, &bus)) return std::nullopt;
  if (!hex_field(text.substr(first + 1, dot - first - 1), 0x1f, &dev)) return std::nullopt;
  if (!hex_field(text.substr(dot + 1), 0x7, &fn)) return std::nullopt;
  return RoutingId(bus, dev, fn);
}

}  // namespace pciesim::fabric

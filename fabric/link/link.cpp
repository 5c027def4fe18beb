#include "fabric/link/link.h"

#include <algorithm>

namespace pciesim::fabric {

const char* to_string(LinkDir d) {
  return d == LinkDir::kDown ? "down" : "up";
}

LinkDirection::LinkDirection(const LinkSpeed& speed, std::uint32_t mps, const FcCredits& rx)
    : timing_(speed, mps),
      credits_{CreditPool(rx.posted_header, rx.posted_data),
               CreditPool(rx.nonposted_header, rx.nonposted_data),
               CreditPool(rx.completion_header, rx.completion_data)} {}

Time LinkDirection::occupy_burst(Time first_ready, Time last_ready, std::uint32_t wire_total,
                                 std::uint32_t wire_last, std::uint32_t payload, unsigned tlps,
                                 Time* end) {
  Time start = std::max(first_ready, busy_until_);
  Time ser = timing_.serialization(wire_total);
  busy_until_ = std::max(start + ser, last_ready + timing_.serialization(wire_last));
  if (busy_bins_) busy_bins_->add_span(busy_until_ - ser, busy_until_);
  stats_.tlps += tlps;
  stats_.wire_bytes += wire_total;
  stats_.payload_bytes += payload;
  stats_.busy_time += ser;
  *end = busy_until_;
  return start;
}

void LinkDirection::reset_flow_control() {
  for (CreditPool& p : credits_)
    p.reset();
}

Link::Link(std::string name, const LinkConfig& config)
    : name_(std::move(name)),
      config_(config),
      dirs_{LinkDirection(config.speed, config.initial_mps, config.downstream_rx),
            LinkDirection(config.speed, config.initial_mps, config.upstream_rx)} {}

void Link::set_up(bool up) {
  if (up_ == up) return;
  up_ = up;
  // Flow control is re-initialised when the Data Link Layer comes back.
  for (LinkDirection& d : dirs_)
    d.reset_flow_control();
}

void Link::set_mps(std::uint32_t mps) {
  for (LinkDirection& d : dirs_)
    d.timing().set_mps(mps);
}

}  // namespace pciesim::fabric

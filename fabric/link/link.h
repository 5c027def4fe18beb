// One PCIe link: two directions, each a resource with a busy-until time,
// the credits the receiving end advertises, and counters. Plain C++; the
// Ports on either end drive it.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "fabric/common/sim_time.h"
#include "fabric/common/time_bins.h"
#include "fabric/link/flow_control.h"
#include "fabric/link/link_timing.h"

namespace pciesim::fabric {

enum class LinkDir : std::uint8_t { kDown = 0, kUp = 1 };
inline LinkDir reverse(LinkDir d) {
  return d == LinkDir::kDown ? LinkDir::kUp : LinkDir::kDown;
}
const char* to_string(LinkDir d);

struct LinkDirectionStats {
  std::uint64_t tlps = 0;
  std::uint64_t wire_bytes = 0;
  std::uint64_t payload_bytes = 0;
  Time busy_time = 0;
  std::array<FcStats, 3> fc{};  // by FcClass
  // Data link layer recovery (injected faults, 3.6.2): TLPs replayed after
  // a NAK or a replay timer expiry, link retrains after REPLAY_NUM
  // rollover, and the time the affected TLPs arrived late by.
  std::uint64_t replays = 0;
  std::uint64_t replay_timeouts = 0;
  std::uint64_t retrains = 0;
  Time replay_delay = 0;
};

struct LinkConfig {
  LinkSpeed speed;
  // Signal flight time; 1 ns is ~15 cm of FR-4 trace (~6.7 ns/m).
  Time propagation = 1 * kNs;
  // Time from the receiver freeing a buffer to the transmitter seeing the
  // credit: the UpdateFC DLLP's serialization and flight are added to it.
  Time fc_update_latency = 0;
  FcCredits downstream_rx;  // credits advertised by the downstream end's receiver
  FcCredits upstream_rx;    // credits advertised by the upstream end's receiver
  std::uint32_t initial_mps = 128;
};

class LinkDirection {
 public:
  LinkDirection(const LinkSpeed& speed, std::uint32_t mps, const FcCredits& rx_credits);

  LinkTiming& timing() { return timing_; }
  const LinkTiming& timing() const { return timing_; }
  CreditPool& credits(FcClass c) { return credits_[static_cast<unsigned>(c)]; }
  const LinkDirectionStats& stats() const { return stats_; }
  LinkDirectionStats& stats() { return stats_; }
  Time busy_until() const { return busy_until_; }

  // Puts `wire` bytes on this direction no earlier than `ready`; returns the
  // start time (the direction is then busy until start + serialization).
  // A request with `pass_completions` may go ahead of completions already
  // queued on the direction (PCIe ordering permits requests to pass
  // completions) but never ahead of an earlier request; the queued
  // completions' backlog grows by its serialization time, so bandwidth is
  // conserved for everything reserved afterwards.
  Time occupy(Time ready, std::uint32_t wire, std::uint32_t payload, unsigned tlps, Time* end,
              bool pass_completions = false) {
    return occupy_for(timing_.serialization(wire), ready, wire, payload, tlps, end,
                      pass_completions);
  }
  // The same with the serialization time `ser` of `wire` already known.
  Time occupy_for(Time ser, Time ready, std::uint32_t wire, std::uint32_t payload, unsigned tlps,
                  Time* end, bool pass_completions = false) {
    Time start;
    if (pass_completions && busy_until_ > std::max(ready, requests_until_)) {
      // Jump the completion backlog: the completions after this point are
      // delayed by this TLP's time on the wire.
      start = std::max(ready, requests_until_);
      busy_until_ += ser;
    } else {
      start = std::max(ready, busy_until_);
      busy_until_ = start + ser;
    }
    requests_until_ = start + ser;
    if (busy_bins_) busy_bins_->add_span(start, start + ser);
    stats_.tlps += tlps;
    stats_.wire_bytes += wire;
    stats_.payload_bytes += payload;
    stats_.busy_time += ser;
    *end = start + ser;
    return start;
  }
  // A burst of TLPs whose first is ready at `first_ready` and last at
  // `last_ready`: they leave back to back, but the last not before it is
  // ready (plus its own serialization). Returns the start; *end is when the
  // last one is on the wire.
  Time occupy_burst(Time first_ready, Time last_ready, std::uint32_t wire_total,
                    std::uint32_t wire_last, std::uint32_t payload, unsigned tlps, Time* end);
  void reset_flow_control();
  // Wire time booked per time bin (sampling); null = off.
  void set_busy_bins(TimeBins* bins) { busy_bins_ = bins; }

 private:
  TimeBins* busy_bins_ = nullptr;
  LinkTiming timing_;
  std::array<CreditPool, 3> credits_;
  Time busy_until_ = 0;      // everything reserved on the wire
  Time requests_until_ = 0;  // the last request's end (requests keep their order)
  LinkDirectionStats stats_;
};

class Link {
 public:
  Link(std::string name, const LinkConfig& config);

  const std::string& name() const { return name_; }
  const LinkConfig& config() const { return config_; }
  LinkDirection& direction(LinkDir d) { return dirs_[static_cast<unsigned>(d)]; }
  const LinkDirection& direction(LinkDir d) const { return dirs_[static_cast<unsigned>(d)]; }
  Time propagation() const { return config_.propagation; }
  Time fc_update_latency() const { return config_.fc_update_latency; }

  // Data Link Layer up/down (link down is a fault or Link Disable).
  bool is_up() const { return up_; }
  void set_up(bool up);
  void set_mps(std::uint32_t mps);

 private:
  std::string name_;
  LinkConfig config_;
  std::array<LinkDirection, 2> dirs_;
  bool up_ = true;
};

}  // namespace pciesim::fabric

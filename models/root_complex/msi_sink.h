// The root complex's MSI/MSI-X target: memory writes to the interrupt
// address window become interrupt records (requester, address, data, time),
// and wake host software waiting for that message data.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <systemc>
#include <vector>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/routing_id.h"

namespace pciesim::models {

struct InterruptRecord {
  fabric::Time time;
  fabric::RoutingId requester;
  std::uint64_t address;
  std::uint32_t data;
};

class MsiSink {
 public:
  // Keeps the first kMaxRecords records; counts never stop.
  static constexpr std::size_t kMaxRecords = 200000;

  // A message write arriving at `arrival` (>= now).
  void deliver(fabric::Time arrival, fabric::RoutingId requester, std::uint64_t address,
               std::uint32_t data);

  // Notified when a message with `data` arrives.
  sc_core::sc_event& event_for(std::uint32_t data);
  std::uint64_t count_for(std::uint32_t data) const;
  std::uint64_t count_from(fabric::RoutingId requester) const;
  // Names the function a requester ID belongs to when the message arrives
  // (set by the system builder), so that counts stay with the function
  // when routing IDs move later (bus renumbering, ARI lost in a reset).
  void set_attribution(std::function<std::string(fabric::RoutingId)> fn) {
    attribute_ = std::move(fn);
  }
  std::uint64_t count_from_function(const std::string& name) const;
  std::uint64_t total() const { return total_; }
  const std::vector<InterruptRecord>& records() const { return records_; }

 private:
  std::map<std::uint32_t, std::unique_ptr<sc_core::sc_event>> events_;
  std::map<std::uint32_t, std::uint64_t> by_data_;
  std::map<std::uint16_t, std::uint64_t> by_requester_;
  std::map<std::string, std::uint64_t> by_function_;
  std::function<std::string(fabric::RoutingId)> attribute_;
  std::vector<InterruptRecord> records_;
  std::uint64_t total_ = 0;
};

}  // namespace pciesim::models

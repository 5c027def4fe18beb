#include "models/root_complex/msi_sink.h"

#include "fabric/port/port.h"

namespace pciesim::models {

void MsiSink::deliver(fabric::Time arrival, fabric::RoutingId requester, std::uint64_t address,
                      std::uint32_t data) {
  ++total_;
  ++by_data_[data];
  ++by_requester_[requester.value()];
  if (attribute_) {
    std::string fn = attribute_(requester);
    if (!fn.empty()) ++by_function_[fn];
  }
  if (records_.size() < kMaxRecords) records_.push_back({arrival, requester, address, data});
  fabric::Time now = fabric::now_fs();
  event_for(data).notify(fabric::to_sc(arrival > now ? arrival - now : 0));
}

sc_core::sc_event& MsiSink::event_for(std::uint32_t data) {
  auto& e = events_[data];
  if (!e) e = std::make_unique<sc_core::sc_event>();
  return *e;
}

std::uint64_t MsiSink::count_for(std::uint32_t data) const {
  auto it = by_data_.find(data);
  return it == by_data_.end() ? 0 : it->second;
}

std::uint64_t MsiSink::count_from(fabric::RoutingId requester) const {
  auto it = by_requester_.find(requester.value());
  return it == by_requester_.end() ? 0 : it->second;
}

}  // namespace pciesim::models

namespace pciesim::models {

std::uint64_t MsiSink::count_from_function(const std::string& name) const {
  auto it = by_function_.find(name);
  return it == by_function_.end() ? 0 : it->second;
}

}  // namespace pciesim::models

#include "sim/builder/system.h"

#include <algorithm>

#include "fabric/common/error.h"
#include "fabric/config_space/capabilities.h"

namespace pciesim::sim {

using namespace fabric;

RoutingId FunctionRef::rid() const {
  switch (kind_) {
    case kHostBridge:
      return RoutingId(0, 0, 0);
    case kDma:
      // A VF that does not exist (yet, or any more) is where the formula
      // with the PF's current First VF Offset and VF Stride puts it.
      return dma_->is_vf() ? device_->vf_rid(dma_->vf_number()) : dma_->rid();
    default:
      return bridge_->rid();
  }
}

bool FunctionRef::exists() const {
  return kind_ != kDma || dma_->exists();
}

ConfigSpace& FunctionRef::config() const {
  switch (kind_) {
    case kHostBridge:
      return *host_bridge_;
    case kDma:
      return dma_->config();
    default:
      return bridge_->config();
  }
}

System::System(const SystemConfig& config) : config_(config) {
  fabric::set_completion_ledger(&ledger_);
  models::HostMemoryParams mp = config_.host.memory;
  if (mp.ranges.empty()) mp.ranges = models::HostMemoryParams{}.ranges;
  config_.host.memory = mp;
  memory_ = std::make_unique<models::HostMemory>("dram", mp);
  rc_ = std::make_unique<models::RootComplex>(config_.root_complex.name.c_str(),
                                              config_.root_complex.params, mp.ranges);
  rc_->mem_socket.bind(memory_->socket);
  rc_->set_memory(memory_.get());
  rc_->msi().set_attribution([this](RoutingId rid) {
    FunctionRef* f = function_at_cached(rid);
    return f ? f->name() : std::string();
  });
  if (config_.iommu.enabled) {
    models::IommuParams ip = config_.iommu.params;
    ip.seed = config_.simulation.seed;
    models::RootComplex* rc = rc_.get();
    iommu_ = std::make_unique<models::Iommu>(
        ip, [rc](std::uint64_t addr, std::uint8_t* data, std::uint32_t len, bool write, Time t,
                 bool debug) {
          models::Iommu::MemoryResult r;
          r.ok = rc->memory_access(addr, data, len, write, t, debug, &r.done);
          return r;
        });
    rc_->set_translator(iommu_.get());
    rc_->set_register_block(iommu_.get(), ip.base);
  }

  {
    auto hb =
        std::make_unique<FunctionRef>(config_.root_complex.name + ".hb", FunctionRef::kHostBridge);
    hb->host_bridge_ = &rc_->host_bridge_config();
    add_function(std::move(hb));
    for (unsigned i = 0; i < rc_->root_port_count(); ++i) {
      auto f = std::make_unique<FunctionRef>(rc_->root_port(i).name(), FunctionRef::kRootPort);
      f->bridge_ = &rc_->root_port(i);
      add_function(std::move(f));
    }
  }
  for (const SwitchSpec& s : config_.switches) {
    switches_.push_back(std::make_unique<models::PcieSwitch>(s.name.c_str(), s.params));
    models::PcieSwitch& sw = *switches_.back();
    auto u = std::make_unique<FunctionRef>(sw.usp().name(), FunctionRef::kSwitchUpstream);
    u->bridge_ = &sw.usp();
    add_function(std::move(u));
    for (unsigned i = 0; i < sw.downstream_count(); ++i) {
      auto d = std::make_unique<FunctionRef>(sw.dsp(i).name(), FunctionRef::kSwitchDownstream);
      d->bridge_ = &sw.dsp(i);
      add_function(std::move(d));
    }
  }
  for (const EndpointSpec& e : config_.endpoints) {
    models::DmaDeviceParams p = e.params;
    p.ten_bit_tags = p.ten_bit_tags && config_.host.ten_bit_tags;
    devices_.push_back(std::make_unique<models::DmaDevice>(e.name.c_str(), p));
    models::DmaDevice& dev = *devices_.back();
    for (unsigned n = 0; n <= dev.total_vfs(); ++n) {
      models::DmaFunction& fn = n == 0 ? dev.pf() : dev.vf(n);
      auto f = std::make_unique<FunctionRef>(fn.name(), FunctionRef::kDma);
      f->dma_ = &fn;
      f->device_ = &dev;
      add_function(std::move(f));
    }
  }

  for (const LinkSpec& l : config_.links) {
    std::size_t dot = l.upstream.rfind('.');
    std::string node = l.upstream.substr(0, dot);
    unsigned index = static_cast<unsigned>(
        std::stoul(l.upstream.substr(dot + (node == config_.root_complex.name ? 3 : 4))));
    Port* upper = upstream_port_of(node, index);
    Port* lower = device_port_of(l.downstream);
    if (!upper || !lower) throw ModelError(l.label, "link ends not found");
    // Link training settles on the highest speed and width both ends and
    // the link itself support.
    int up_speed, up_width, lo_speed, lo_width;
    ConfigSpace* up_cs;
    ConfigSpace* lo_cs;
    if (node == config_.root_complex.name) {
      up_cs = &rc_->root_port(index).config();
    } else {
      up_cs = &switch_device(node)->dsp(index).config();
    }
    if (models::PcieSwitch* sw = switch_device(l.downstream))
      lo_cs = &sw->usp().config();
    else
      lo_cs = &device(l.downstream)->pf().config();
    auto caps = [](ConfigSpace* cs, int* speed, int* width) {
      std::uint16_t exp = cs->find_capability(PCI_CAP_ID_EXP);
      std::uint32_t cap = cs->get32(exp + PCI_EXP_LNKCAP);
      *speed = static_cast<int>(cap & PCI_EXP_LNKCAP_SLS);
      *width = static_cast<int>((cap & PCI_EXP_LNKCAP_MLW) >> 4);
    };
    caps(up_cs, &up_speed, &up_width);
    caps(lo_cs, &lo_speed, &lo_width);
    LinkConfig lc = l.config;
    lc.speed = train_link(lc.speed, up_speed, up_width, lo_speed, lo_width);
    std::string name = upper->name() + std::string("--") +
                       (switch_device(l.downstream) ? l.downstream + ".usp" : l.downstream);
    auto link = std::make_unique<Link>(name, lc);
    Port::connect(*upper, *lower, *link);
    set_link_status(*up_cs, lc.speed.generation, lc.speed.width, true);
    set_link_status(*lo_cs, lc.speed.generation, lc.speed.width, false);
    // Presence detect in the slot of the downstream-facing port.
    std::uint16_t exp = up_cs->find_capability(PCI_CAP_ID_EXP);
    up_cs->set_bits16(exp + PCI_EXP_SLTSTA, PCI_EXP_SLTSTA_PDS, true);
    up_cs->capture_reset_value(exp + PCI_EXP_SLTSTA, 2);
    links_.push_back({name, std::move(link), lc.speed.generation, lc.speed.width});
  }
}

System::~System() {
  if (fabric::completion_ledger() == &ledger_) fabric::set_completion_ledger(nullptr);
}

void System::note_workload_start() {
  ++workloads_running_;
  if (workloads_started_++) return;
  workloads_start_ = fabric::now_fs();
  for (LinkInfo& l : links_)
    for (LinkDir d : {LinkDir::kDown, LinkDir::kUp})
      l.busy_at_start[static_cast<int>(d)] = l.link->direction(d).stats().busy_time;
}

void System::note_workload_end() {
  if (workloads_running_) --workloads_running_;
  workloads_end_ = fabric::now_fs();
  for (LinkInfo& l : links_)
    for (LinkDir d : {LinkDir::kDown, LinkDir::kUp})
      l.busy_at_end[static_cast<int>(d)] = l.link->direction(d).stats().busy_time;
}

void System::add_function(std::unique_ptr<FunctionRef> f) {
  by_name_[f->name()] = f.get();
  functions_.push_back(std::move(f));
}

models::DmaDevice* System::device(const std::string& name) {
  for (auto& d : devices_)
    if (name == d->name()) return d.get();
  return nullptr;
}

models::PcieSwitch* System::switch_device(const std::string& name) {
  for (auto& s : switches_)
    if (name == s->name()) return s.get();
  return nullptr;
}

std::vector<models::DmaDevice*> System::devices() {
  std::vector<models::DmaDevice*> out;
  for (auto& d : devices_)
    out.push_back(d.get());
  return out;
}

Port* System::upstream_port_of(const std::string& node, unsigned port) {
  if (node == config_.root_complex.name)
    return port < rc_->root_port_count() ? &rc_->port(port) : nullptr;
  if (models::PcieSwitch* sw = switch_device(node))
    return port < sw->downstream_count() ? &sw->downstream_port(port) : nullptr;
  return nullptr;
}

Port* System::device_port_of(const std::string& node) {
  if (models::PcieSwitch* sw = switch_device(node)) return &sw->upstream_port();
  if (models::DmaDevice* d = device(node)) return &d->port();
  return nullptr;
}

FunctionRef* System::function(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

FunctionRef* System::function_at_cached(RoutingId rid) {
  // Routing IDs move rarely (enumeration, resets): check the last answer
  // for this ID before scanning every function.
  auto it = rid_cache_.find(rid.value());
  if (it != rid_cache_.end() && it->second->exists() && it->second->rid() == rid) return it->second;
  FunctionRef* f = function_at(rid);
  if (f)
    rid_cache_[rid.value()] = f;
  else
    rid_cache_.erase(rid.value());
  return f;
}

FunctionRef* System::function_at(RoutingId rid) {
  // Bus 0 belongs to the root complex.
  for (auto& f : functions_) {
    if (!f->exists()) continue;
    if (f->kind() == FunctionRef::kDma && f->dma()->rid() == RoutingId() && rid != RoutingId())
      continue;
    if (f->kind() != FunctionRef::kHostBridge && f->kind() != FunctionRef::kRootPort &&
        rid.bus() == 0)
      continue;
    if (f->rid() == rid) return f.get();
  }
  return nullptr;
}

}  // namespace pciesim::sim

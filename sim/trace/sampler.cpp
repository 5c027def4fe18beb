#include "sim/trace/sampler.h"

#include <cmath>
#include <limits>

#include "fabric/kernel/kernel_context.h"
#include "fabric/kernel/trace.h"
#include "fabric/port/port.h"
#include "models/dma_endpoint/dma_device.h"
#include "models/iommu/iommu.h"
#include "sim/builder/system.h"
#include "sim/host/host.h"
#include "sim/host/vfio/vfio_device.h"

namespace pciesim::sim {

using fabric::Time;

namespace {
// A function's state as a number (docs/observability.md): 0 absent, 1 in
// reset or not ready yet, 2 in a low-power state, 3 quiesced for
// migration, 4 idle in D0, 5 moving data.
double function_state(models::DmaFunction& f, Time t) {
  if (!f.exists()) return 0;
  if (f.in_reset(t) || !f.ready(t)) return 1;
  if (f.power_state() != models::PowerState::kD0) return 2;
  if (f.quiesced()) return 3;
  return f.idle() ? 4 : 5;
}
}  // namespace

Sampler::~Sampler() {
  for (const System::LinkInfo& l : system_.links())
    for (fabric::LinkDir d : {fabric::LinkDir::kDown, fabric::LinkDir::kUp})
      l.link->direction(d).set_busy_bins(nullptr);
  for (models::DmaDevice* dev : system_.devices())
    for (unsigned n = 0; n <= dev->total_vfs(); ++n)
      (n ? dev->vf(n) : dev->pf()).set_byte_bins(nullptr, nullptr);
}

void Sampler::start(Time interval, bool keep) {
  if (interval == 0) return;
  keep_ = keep_ || keep;
  if (running_) return;  // the first interval stays (bins are laid out on it)
  running_ = true;
  interval_ = interval;
  for (const System::LinkInfo& l : system_.links())
    for (fabric::LinkDir d : {fabric::LinkDir::kDown, fabric::LinkDir::kUp}) {
      bins_.push_back(std::make_unique<fabric::TimeBins>(interval));
      l.link->direction(d).set_busy_bins(bins_.back().get());
    }
  for (models::DmaDevice* dev : system_.devices())
    for (unsigned n = 0; n <= dev->total_vfs(); ++n) {
      bins_.push_back(std::make_unique<fabric::TimeBins>(interval));
      bins_.push_back(std::make_unique<fabric::TimeBins>(interval));
      (n ? dev->vf(n) : dev->pf()).set_byte_bins(bins_[bins_.size() - 2].get(), bins_.back().get());
    }
  sc_core::sc_spawn(
      [this] {
        fabric::KernelContext::guard([this] {
          // Samples at multiples of the interval, each about the bin that
          // just ended.
          const Time now = fabric::now_fs();
          sc_core::wait(fabric::to_sc((now / interval_ + 1) * interval_ - now));
          for (;;) {
            sample();
            sc_core::wait(fabric::to_sc(interval_));
          }
        });
      },
      "sampler");
}

std::size_t Sampler::new_slot(std::string component, std::string name, const char* unit) {
  Slot sl;
  sl.component = std::move(component);
  sl.name = std::move(name);
  sl.unit = unit;
  sl.first = times_.empty() ? 0 : times_.size() - 1;
  slots_.push_back(std::move(sl));
  return slots_.size() - 1;
}

void Sampler::put(std::size_t k, double v) {
  Slot& sl = slots_[k];
  // Traces get a value when it changes (idle stretches cost little), and
  // every value at each keyframe, so a trace that starts late (a time
  // window) or a reader that starts anywhere has them all; outputs drop
  // the repeats.
  if (fabric::TraceSink* s = fabric::trace_sink();
      s && (keyframe_ || !(sl.traced && sl.last == v))) {
    fabric::CounterRecord c;
    c.at = fabric::now_fs();
    c.component = sl.component;
    c.name = sl.name;
    c.value = v;
    c.unit = sl.unit;
    s->counter(c);
    sl.traced = true;
    sl.last = v;
  }
  if (!keep_) return;
  sl.series.resize(times_.size() - 1 - sl.first, std::numeric_limits<double>::quiet_NaN());
  sl.series.push_back(v);
}

void Sampler::sample() {
  const Time t = fabric::now_fs();
  if (keep_) times_.push_back(t);
  keyframe_ = samples_++ % kKeyframe == 0;
  const double dt = static_cast<double>(interval_);
  auto delta = [this](const std::string& key, double now) {
    auto [it, fresh] = last_.try_emplace(key, now);
    const double d = fresh ? now : now - it->second;
    it->second = now;
    return d;
  };
  const std::uint64_t bin = t / interval_ - 1;  // the bin that just ended
  std::size_t b = 0;
  for (const System::LinkInfo& l : system_.links()) {
    for (fabric::LinkDir d : {fabric::LinkDir::kDown, fabric::LinkDir::kUp}) {
      fabric::LinkDirection& dir = l.link->direction(d);
      const char* dname = fabric::to_string(d);
      auto pre_of = [dname] { return std::string(dname) + "."; };
      // Wire time booked in the bin (exact: booked at its own time).
      const double busy = bins_[b++]->take(bin);
      put(slot(&dir, 0,
               [&] {
                 return Name{l.name, pre_of() + "utilisation", "fraction"};
               }),
          std::min(1.0, busy / dt));
      static const char* const kClass[] = {"P", "NP", "Cpl"};
      for (unsigned c = 0; c < 3; ++c) {
        const fabric::CreditPool& pool = dir.credits(static_cast<fabric::FcClass>(c));
        // Credits the transmitter still has (a limit of 0 is infinite).
        if (pool.header_limit())
          put(slot(&dir, 1 + static_cast<int>(c),
                   [&] {
                     return Name{l.name, pre_of() + "credits." + kClass[c] + ".hdr", "credits"};
                   }),
              static_cast<double>(pool.header_limit()) - pool.headers_in_use(t));
        if (pool.data_limit())
          put(slot(&dir, 4 + static_cast<int>(c),
                   [&] {
                     return Name{l.name, pre_of() + "credits." + kClass[c] + ".data",
                                 "credits (16 B)"};
                   }),
              static_cast<double>(pool.data_limit()) - pool.data_in_use(t));
      }
    }
  }
  for (models::DmaDevice* dev : system_.devices()) {
    for (unsigned n = 0; n <= dev->total_vfs(); ++n) {
      models::DmaFunction& f = n ? dev->vf(n) : dev->pf();
      const double rd = bins_[b++]->take(bin), wr = bins_[b++]->take(bin);
      if (!f.exists()) continue;
      const std::string& comp = f.name();
      put(slot(&f, 0,
               [&] {
                 return Name{comp, "outstanding_tags", "tags"};
               }),
          f.tags().outstanding(t));
      // Bytes completed in the bin (reads: data arrived; writes: consumed).
      put(slot(&f, 1, [&] { return Name{comp, "read_gbps", "Gb/s"}; }), rd * 8 / (dt * 1e-6));
      put(slot(&f, 2, [&] { return Name{comp, "write_gbps", "Gb/s"}; }), wr * 8 / (dt * 1e-6));
      put(slot(&f, 3, [&] { return Name{comp, "state", "state"}; }), function_state(f, t));
    }
  }
  if (models::Iommu* mmu = system_.iommu()) {
    const auto& st = mmu->stats();
    const double h = delta("iommu/hits", static_cast<double>(st.iotlb_hits));
    const double m = delta("iommu/misses", static_cast<double>(st.iotlb_misses));
    if (h + m > 0)
      put(slot(mmu, 0, [] { return Name{"iommu", "iotlb_hit_rate", "fraction"}; }), h / (h + m));
  }
  for (const auto& [dev, v] : host_.vfio_devices())
    put(slot(v.get(), 0,
             [&] {
               return Name{v->name(), "migration_state", "vfio state"};
             }),
        static_cast<double>(v->state()));
}

nlohmann::ordered_json Sampler::series() const {
  if (!keep_) return nullptr;
  nlohmann::ordered_json j;
  j["interval_ns"] = fabric::to_ns(interval_);
  nlohmann::ordered_json ts = nlohmann::ordered_json::array();
  for (Time t : times_)
    ts.push_back(fabric::to_ns(t));
  j["t_ns"] = std::move(ts);
  // By name, each as long as t_ns (null where the signal did not exist).
  std::map<std::string, const Slot*> by_name;
  for (const Slot& sl : slots_)
    by_name.emplace(sl.component + "/" + sl.name, &sl);
  nlohmann::ordered_json sig = nlohmann::ordered_json::object();
  for (const auto& [k, sl] : by_name) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < times_.size(); ++i) {
      const std::size_t at = i - sl->first;
      if (i >= sl->first && at < sl->series.size() && !std::isnan(sl->series[at]))
        a.push_back(sl->series[at]);
      else
        a.push_back(nullptr);
    }
    sig[k] = std::move(a);
  }
  j["signals"] = std::move(sig);
  return j;
}

}  // namespace pciesim::sim

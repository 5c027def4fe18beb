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

void Sampler::put(const std::string& component, const std::string& name, double v,
                  const char* unit) {
  const Time t = fabric::now_fs();
  if (fabric::TraceSink* s = fabric::trace_sink()) {
    fabric::CounterRecord c;
    c.at = t;
    c.component = component;
    c.name = name;
    c.value = v;
    c.unit = unit;
    s->counter(c);
  }
  if (!keep_) return;
  std::vector<double>& series = signals_[component + "/" + name];
  series.resize(times_.size() - 1, std::numeric_limits<double>::quiet_NaN());
  series.push_back(v);
}

void Sampler::sample() {
  const Time t = fabric::now_fs();
  if (keep_) times_.push_back(t);
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
      const std::string& comp = l.name;
      const std::string pre = std::string(fabric::to_string(d)) + ".";
      // Wire time booked in the bin (exact: booked at its own time).
      put(comp, pre + "utilisation", std::min(1.0, bins_[b++]->take(bin) / dt), "fraction");
      static const char* const kClass[] = {"P", "NP", "Cpl"};
      for (unsigned c = 0; c < 3; ++c) {
        const fabric::CreditPool& pool = dir.credits(static_cast<fabric::FcClass>(c));
        if (!pool.header_limit()) continue;  // infinite credits
        put(comp, pre + "credits." + kClass[c] + ".hdr",
            static_cast<double>(pool.header_limit()) - pool.headers_in_use(t), "credits");
      }
    }
  }
  for (models::DmaDevice* dev : system_.devices()) {
    for (unsigned n = 0; n <= dev->total_vfs(); ++n) {
      models::DmaFunction& f = n ? dev->vf(n) : dev->pf();
      const double rd = bins_[b++]->take(bin), wr = bins_[b++]->take(bin);
      if (!f.exists()) continue;
      const std::string& comp = f.name();
      put(comp, "outstanding_tags", f.tags().outstanding(t), "tags");
      // Bytes completed in the bin (reads: data arrived; writes: consumed).
      put(comp, "read_gbps", rd * 8 / (dt * 1e-6), "Gb/s");
      put(comp, "write_gbps", wr * 8 / (dt * 1e-6), "Gb/s");
      put(comp, "state", function_state(f, t), "state");
    }
  }
  if (models::Iommu* mmu = system_.iommu()) {
    const auto& st = mmu->stats();
    const double h = delta("iommu/hits", static_cast<double>(st.iotlb_hits));
    const double m = delta("iommu/misses", static_cast<double>(st.iotlb_misses));
    put("iommu", "iotlb_hit_rate",
        h + m > 0 ? h / (h + m) : std::numeric_limits<double>::quiet_NaN(), "fraction");
  }
  for (const auto& [dev, v] : host_.vfio_devices())
    put(v->name(), "migration_state", static_cast<double>(v->state()), "vfio state");
}

nlohmann::ordered_json Sampler::series() const {
  if (!keep_) return nullptr;
  nlohmann::ordered_json j;
  j["interval_ns"] = fabric::to_ns(interval_);
  nlohmann::ordered_json ts = nlohmann::ordered_json::array();
  for (Time t : times_)
    ts.push_back(fabric::to_ns(t));
  j["t_ns"] = std::move(ts);
  nlohmann::ordered_json sig = nlohmann::ordered_json::object();
  for (const auto& [k, v] : signals_) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < times_.size(); ++i)
      if (i < v.size() && !std::isnan(v[i]))
        a.push_back(v[i]);
      else
        a.push_back(nullptr);
    sig[k] = std::move(a);
  }
  j["signals"] = std::move(sig);
  return j;
}

}  // namespace pciesim::sim

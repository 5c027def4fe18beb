// Timing calibration: simulated bandwidth and latency against the analytic
// PCIe overhead model and against first principles (tags x size / latency,
// shared links, credit starvation). Simulated quantities only.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "fabric/link/link_timing.h"
#include "sim/config/config_loader.h"
#include "sim/facade/simulation.h"

namespace pciesim::sim {
namespace {

struct Stream {
  int gen = 3;
  int width = 8;
  unsigned mps = 256;
  unsigned mrrs = 512;
  unsigned size = 256;
  bool write = true;
  unsigned tags = 256;
  bool ten_bit = false;
  unsigned engines = 1;
  std::string uplink_credits;  // YAML mapping for the root port's receiver
  std::uint64_t total = 2 << 20;
};

std::string yaml(const Stream& s) {
  std::ostringstream y;
  const std::uint64_t job = std::min<std::uint64_t>(s.total, 1 << 20);
  // The link-bound host: these tests check the PCIe model against its
  // closed form, without the host-side effects of a calibrated platform.
  y << "platform: generic\nsimulation: {quantum: 1us, max_time: 2s}\n"
    << "host: {mps: " << s.mps << ", mrrs: " << s.mrrs
    << ", ten_bit_tags: " << (s.ten_bit ? "true" : "false") << "}\n"
    << "root_complex: {max_payload_supported: 512}\n"
    << "switches: [{name: sw0, downstream_ports: 2}]\nendpoints:\n";
  for (unsigned e = 0; e < s.engines; ++e)
    y << "  - {name: ep" << e << ", max_link_speed: 6, max_link_width: 16, device_memory: 8MiB,"
      << " tags: " << s.tags << ", ten_bit_tags: " << (s.ten_bit ? "true" : "false")
      << ", staging_buffer: 256KiB}\n";
  y << "links:\n  - {upstream: rc.rp0, downstream: sw0, gen: " << s.gen << ", width: " << s.width;
  if (!s.uplink_credits.empty()) y << ", upstream_credits: " << s.uplink_credits;
  y << "}\n";
  for (unsigned e = 0; e < s.engines; ++e)
    y << "  - {upstream: sw0.dsp" << e << ", downstream: ep" << e << ", gen: " << s.gen
      << ", width: " << s.width << "}\n";
  y << "workloads:\n";
  for (unsigned e = 0; e < s.engines; ++e)
    y << "  - {name: w" << e << ", function: ep" << e << ".pf, size: " << job
      << ", count: " << s.total / job << ", queue_depth: 4, xfer_size: " << s.size
      << ", verify: false, src: " << (s.write ? "device" : "host")
      << ", dst: " << (s.write ? "host" : "device") << "}\n";
  return y.str();
}

struct Result {
  double gbps = 0;
  nlohmann::ordered_json stats;
};

Result run(const Stream& s, unsigned engine = 0) {
  Simulation sim(load_config_text(yaml(s), "timing.yaml"));
  RunResult r = sim.run();
  EXPECT_TRUE(r.completed);
  Result out;
  out.stats = sim.stats();
  out.gbps = out.stats["functions"]["ep" + std::to_string(engine) + ".pf"]["dma"]["steady_gbps"];
  return out;
}

double analytic(const Stream& s) {
  // Host buffers sit below 4 GiB: 3-DW headers. The root complex returns
  // read completions in 64-byte (RCB) pieces by default.
  fabric::AnalyticPoint p =
      fabric::analytic_bandwidth({s.gen, s.width, false}, s.mps, s.mrrs, 64, s.size, false);
  return s.write ? p.write_gbps : p.read_gbps;
}

struct Point {
  int gen, width;
  unsigned mps, mrrs;
};
void PrintTo(const Point& p, std::ostream* os) {
  *os << "Gen" << p.gen << " x" << p.width << " MPS " << p.mps << " MRRS " << p.mrrs;
}

class Saturated : public ::testing::TestWithParam<std::tuple<Point, unsigned, bool>> {};

TEST_P(Saturated, MatchesTheAnalyticModelWithin2Percent) {
  auto [p, size, write] = GetParam();
  Stream s;
  s.gen = p.gen;
  s.width = p.width;
  s.mps = p.mps;
  s.mrrs = p.mrrs;
  s.size = size;
  s.write = write;
  s.ten_bit = true;  // enough outstanding reads to saturate the link
  Result r = run(s);
  double want = analytic(s);
  EXPECT_NEAR(r.gbps, want, 0.02 * want) << (write ? "write " : "read ") << size << " B";
}

INSTANTIATE_TEST_SUITE_P(
    Calibration, Saturated,
    ::testing::Combine(::testing::Values(Point{3, 8, 256, 512}, Point{4, 16, 512, 512}),
                       ::testing::Values(64u, 256u, 1024u, 4096u), ::testing::Bool()),
    [](const auto& info) {
      const Point& p = std::get<0>(info.param);
      return "Gen" + std::to_string(p.gen) + "x" + std::to_string(p.width) + "_mps" +
             std::to_string(p.mps) + "_" + std::to_string(std::get<1>(info.param)) + "B_" +
             (std::get<2>(info.param) ? "write" : "read");
    });

TEST(Timing, ReadBandwidthIsTagsTimesSizeOverLatencyWithFewTags) {
  Stream s;
  s.write = false;
  s.size = 512;
  s.tags = 2;
  Result few = run(s);
  double latency_ns = few.stats["functions"]["ep0.pf"]["dma"]["read_latency_ns"]["mean"];
  double expected = 2 * 512 * 8 / latency_ns;  // Gb/s
  EXPECT_NEAR(few.gbps, expected, 0.05 * expected);
  EXPECT_LT(few.gbps, 0.5 * analytic(s));  // far from the link's limit
  s.tags = 256;
  Result many = run(s);
  EXPECT_NEAR(many.gbps, analytic(s), 0.02 * analytic(s));  // now the link limits
}

TEST(Timing, TwoEnginesShareTheSwitchUplink) {
  Stream s;
  s.engines = 2;
  s.size = 1024;
  Simulation sim(load_config_text(yaml(s), "timing.yaml"));
  sim.run();
  auto st = sim.stats();
  double a = st["functions"]["ep0.pf"]["dma"]["steady_gbps"];
  double b = st["functions"]["ep1.pf"]["dma"]["steady_gbps"];
  double link = analytic(s);
  EXPECT_NEAR(a, link / 2, 0.05 * link / 2);
  EXPECT_NEAR(b, link / 2, 0.05 * link / 2);
  EXPECT_NEAR(a + b, link, 0.03 * link);
  // Each engine's own link is half idle; the shared uplink is the bottleneck.
  EXPECT_GT(st["links"]["rc.rp0--sw0.usp"]["up"]["busy_ns"].get<double>(),
            1.8 * st["links"]["sw0.dsp0--ep0"]["up"]["busy_ns"].get<double>());
}

TEST(Timing, ExhaustedCreditsStallAndBoundThroughput) {
  Stream s;
  s.size = 256;
  Result plenty = run(s);
  EXPECT_EQ(plenty.stats["links"]["rc.rp0--sw0.usp"]["up"]["credit_stalls"]["posted"]["stalls"], 0);
  s.uplink_credits = "{posted_header: 2, posted_data: 32}";  // two 256-byte writes
  Result starved = run(s);
  auto stalls = starved.stats["links"]["rc.rp0--sw0.usp"]["up"]["credit_stalls"]["posted"];
  EXPECT_GT(stalls["stalls"].get<std::uint64_t>(), 1000u);
  EXPECT_GT(stalls["stall_ns"].get<double>(), 0.0);
  // Two 256-byte writes per credit round trip: serialization of a 276-byte
  // TLP at Gen3 x8, flight, the root complex's 150 ns ingress to memory,
  // then the UpdateFC DLLP's serialization and flight back.
  fabric::LinkTiming t({3, 8, false}, 256);
  double loop_ns = fabric::to_ns(t.serialization(t.wire_bytes(fabric::TlpKind::MWr, 256, false)) +
                                 t.dllp_time() + 2 * fabric::kNs) +
                   150.0;
  double bound = 2 * 256 * 8 / loop_ns;
  EXPECT_NEAR(starved.gbps, bound, 0.03 * bound);
  EXPECT_LT(starved.gbps, 0.5 * plenty.gbps);
}

TEST(Timing, SmallReadLatencyIsAFewHundredNanosecondsAndGrowsWithSize) {
  auto latency = [](unsigned size) {
    Stream s;
    s.write = false;
    s.size = size;
    s.total = size;  // a single operation
    Result r = run(s);
    return r.stats["functions"]["ep0.pf"]["dma"]["op_latency_ns"]["mean"].get<double>();
  };
  double l64 = latency(64), l512 = latency(512), l4k = latency(4096);
  EXPECT_GT(l64, 200.0);
  EXPECT_LT(l64, 1000.0);
  EXPECT_GT(l512, l64);
  EXPECT_GT(l4k, l512 + 400.0);  // 4 KiB of completions at ~57 Gb/s is ~0.7 us
}

// A 64-byte DMA read of host memory with and without the IOMMU: a cold
// IOTLB adds one 4-level walk (4 dependent DRAM reads plus the walker's
// step each), a warm one adds the hit latency, nothing else changes.
TEST(Timing, TheIommuAddsItsTranslationLatencyToADmaRead) {
  auto reads = [](bool iommu) {
    std::string y = std::string("platform: generic\nsimulation: {quantum: 0ns}\n") +
                    (iommu ? "iommu: {enabled: true}\n" : "") +
                    "endpoints: [{name: ep0}]\nlinks: [{upstream: rc.rp0, downstream: ep0}]\n";
    Simulation sim(load_config_text(y, "iommu-latency"));
    sim.boot();
    const std::uint64_t buf = 0x4000'0000;  // 1 GiB: a page nobody else uses
    if (iommu) {
      EXPECT_EQ(sim.iommu_map("ep0.pf", buf, buf, 4096, true, false), 0);
    }
    std::vector<double> out;
    for (int i = 0; i < 2; ++i) {
      std::uint32_t bytes = 0;
      auto before = sim.stats()["functions"]["ep0.pf"]["dma"]["read_latency_ns"];
      const double n0 = before["count"].get<double>(), s0 = n0 * before["mean"].get<double>();
      EXPECT_EQ(sim.dma("ep0.pf", buf + 64 * i, 0, 64, false, true, fabric::kMs, &bytes), 0);
      auto after = sim.stats()["functions"]["ep0.pf"]["dma"]["read_latency_ns"];
      out.push_back(after["count"].get<double>() * after["mean"].get<double>() - s0);
      sim.run_for(10 * fabric::kUs);  // let everything settle between the two
    }
    return std::make_pair(out, sim.config());
  };
  auto [plain, cfg] = reads(false);
  auto [translated, icfg] = reads(true);
  const auto& ip = icfg.iommu.params;
  const double walk = fabric::to_ns(4 * (icfg.host.memory.latency + ip.walk_step_latency));
  EXPECT_NEAR(translated[0] - plain[0], walk, 1e-6) << "cold: one 4-level walk";
  EXPECT_NEAR(translated[1] - plain[1], fabric::to_ns(ip.iotlb_hit_latency), 1e-6)
      << "warm: an IOTLB hit";
  EXPECT_GT(plain[0], 200.0);
  EXPECT_LT(plain[0], 1000.0);
}

// Posted-write bursts are a simulation shortcut, not a timing change: a
// write stream times every TLP on every hop exactly as single writes do.
TEST(Timing, WriteBurstsTimeEveryTlpLikeSingleWrites) {
  for (bool through_switch : {true, false}) {
    auto run_once = [&](bool bursts) {
      std::ostringstream y;
      y << "platform: generic\nsimulation: {quantum: 1us}\nhost: {mps: 256}\n";
      if (through_switch) y << "switches: [{name: sw0, downstream_ports: 1}]\n";
      y << "endpoints: [{name: ep0, device_memory: 4MiB, write_bursts: "
        << (bursts ? "true" : "false") << "}]\nlinks:\n";
      if (through_switch)
        y << "  - {upstream: rc.rp0, downstream: sw0}\n  - {upstream: sw0.dsp0, downstream: ep0}\n";
      else
        y << "  - {upstream: rc.rp0, downstream: ep0}\n";
      // One descriptor: nothing else of the device (descriptor fetches,
      // completion records) interleaves with the writes, whose granularity
      // is all that bursts change.
      y << "workloads: [{name: w, function: ep0.pf, size: 2MiB, count: 1, queue_depth: 1,"
        << " xfer_size: 4096, src: device, dst: host}]\n";
      Simulation sim(load_config_text(y.str(), "bursts"));
      RunResult r = sim.run();
      EXPECT_TRUE(r.passed());
      return sim.stats();
    };
    auto a = run_once(true), b = run_once(false);
    const auto& fa = a["functions"]["ep0.pf"]["dma"];
    const auto& fb = b["functions"]["ep0.pf"]["dma"];
    EXPECT_EQ(fa["write_requests"], fb["write_requests"]);
    EXPECT_EQ(fa["op_latency_ns"], fb["op_latency_ns"]) << "through switch: " << through_switch;
    EXPECT_EQ(fa["steady_gbps"], fb["steady_gbps"]);
    EXPECT_EQ(a["links"], b["links"]);
    EXPECT_EQ(a["workloads"]["w"]["verified_bytes"], 2 << 20);
    EXPECT_EQ(a["sim_time_ns"], b["sim_time_ns"]);
  }
}

}  // namespace
}  // namespace pciesim::sim

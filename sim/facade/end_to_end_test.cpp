// End to end through the device's programming interface, independent of
// the host driver and the workload's own checks: descriptors written into
// host memory, registers programmed by MMIO, bytes compared afterwards.
#include <gtest/gtest.h>

#include <cstring>

#include "models/dma_endpoint/dma_regs.h"
#include "sim/config/config_loader.h"
#include "sim/facade/simulation.h"

namespace pciesim::sim {
namespace {

namespace dma = models::dma;
using fabric::kUs;

const char* kOneEndpoint = R"(
switches: [{name: sw0, downstream_ports: 2}]
endpoints: [{name: ep0, driver: none}]
links:
  - {upstream: rc.rp0, downstream: sw0}
  - {upstream: sw0.dsp0, downstream: ep0}
)";

constexpr std::uint64_t kRing = 0x2000000, kCq = 0x2100000, kSrc = 0x3000000, kDst = 0x4000000;

std::vector<std::uint8_t> pattern(std::size_t n, unsigned seed) {
  std::vector<std::uint8_t> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  return v;
}

template <class T>
std::vector<std::uint8_t> bytes_of(const T& t) {
  std::vector<std::uint8_t> v(sizeof t);
  std::memcpy(v.data(), &t, sizeof t);
  return v;
}

void program(Simulation& sim, std::uint32_t descriptors) {
  auto reg = [&](std::uint32_t off, std::uint32_t v) { sim.mmio_write("ep0.pf", 0, off, 4, v); };
  reg(dma::kRingBaseLo, static_cast<std::uint32_t>(kRing));
  reg(dma::kRingBaseHi, 0);
  reg(dma::kRingSize, 16);
  reg(dma::kCqBaseLo, static_cast<std::uint32_t>(kCq));
  reg(dma::kCqBaseHi, 0);
  reg(dma::kCtrl, dma::kCtrlEnable);
  reg(dma::kRingTail, descriptors);
}

TEST(EndToEnd, CopiedBytesEqualTheSource) {
  Simulation sim(load_config_text(kOneEndpoint, "e2e.yaml"));
  sim.boot();
  sim.set_memory_space("ep0.pf", true);
  sim.set_bus_master("ep0.pf", true);
  const std::size_t n = 10000;  // not a multiple of MPS, MRRS or 4 KiB
  std::vector<std::uint8_t> src = pattern(n, 7);
  sim.memory_write(kSrc + 3, src);  // unaligned source
  dma::Descriptor d{};
  d.src = kSrc + 3;
  d.dst = kDst + 100;
  d.length = n;
  d.flags = dma::kDescReport;
  d.cookie = 0x1234;
  sim.memory_write(kRing, bytes_of(d));
  program(sim, 1);
  sim.run_for(100 * kUs);
  EXPECT_EQ(sim.memory_read(kDst + 100, n), src);
  // Bytes around the destination are untouched.
  EXPECT_EQ(sim.memory_read(kDst + 99, 1)[0], 0);
  EXPECT_EQ(sim.memory_read(kDst + 100 + n, 1)[0], 0);
  dma::Completion c;
  std::vector<std::uint8_t> rec = sim.memory_read(kCq, sizeof c);
  std::memcpy(&c, rec.data(), sizeof c);
  EXPECT_EQ(c.cookie, 0x1234u);
  EXPECT_EQ(c.status, 0u);
  EXPECT_EQ(c.bytes, n);
  EXPECT_EQ(sim.mmio_read("ep0.pf", 0, dma::kRingHead, 4), 1u);
  EXPECT_EQ(sim.mmio_read("ep0.pf", 0, dma::kCompleted, 4), 1u);
  EXPECT_EQ(sim.mmio_read("ep0.pf", 0, dma::kBytesRead, 8), n);  // data bytes
  auto st = sim.stats();
  EXPECT_EQ(st["functions"]["ep0.pf"]["dma"]["read_bytes"].get<std::uint64_t>(), n);
  EXPECT_EQ(st["functions"]["ep0.pf"]["dma"]["descriptor_fetches"].get<std::uint64_t>(), 1u);
  // 10000 bytes from offset 100: 4096-byte boundaries and MPS 256 split it.
  EXPECT_EQ(st["functions"]["ep0.pf"]["dma"]["write_bytes"].get<std::uint64_t>(), n);
}

TEST(EndToEnd, DeviceMemoryRoundTrip) {
  // Host -> device memory, then device memory -> host: two descriptors.
  Simulation sim(load_config_text(kOneEndpoint, "e2e.yaml"));
  sim.boot();
  sim.set_memory_space("ep0.pf", true);
  sim.set_bus_master("ep0.pf", true);
  std::vector<std::uint8_t> src = pattern(4096, 3);
  sim.memory_write(kSrc, src);
  dma::Descriptor in{kSrc, 0x800, 4096, dma::kDescDstLocal, 0, 1};
  dma::Descriptor out{0x800, kDst, 4096, dma::kDescSrcLocal | dma::kDescReport, 0, 2};
  std::vector<std::uint8_t> ring = bytes_of(in);
  std::vector<std::uint8_t> second = bytes_of(out);
  ring.insert(ring.end(), second.begin(), second.end());
  sim.memory_write(kRing, ring);
  program(sim, 2);
  sim.run_for(100 * kUs);
  EXPECT_EQ(sim.memory_read(kDst, 4096), src);
  // The device memory holds the data too (MMIO read of BAR2 through the fabric).
  EXPECT_EQ(sim.mmio_read("ep0.pf", 2, 0x800, 4),
            src[0] | src[1] << 8 | src[2] << 16 | static_cast<std::uint32_t>(src[3]) << 24);
}

TEST(EndToEnd, BusMasterClearIssuesNothing) {
  Simulation sim(load_config_text(kOneEndpoint, "e2e.yaml"));
  sim.boot();
  sim.set_memory_space("ep0.pf", true);  // MMIO works, DMA is not allowed
  std::vector<std::uint8_t> src = pattern(4096, 5);
  sim.memory_write(kSrc, src);
  dma::Descriptor d{kSrc, kDst, 4096, dma::kDescReport, 0, 9};
  sim.memory_write(kRing, bytes_of(d));
  auto before = sim.stats()["links"]["sw0.dsp0--ep0"]["up"]["tlps"].get<std::uint64_t>();
  program(sim, 1);
  sim.run_for(100 * kUs);
  auto st = sim.stats();
  // Not a single TLP from the device (the register writes' completions do
  // not exist: MMIO writes are posted).
  EXPECT_EQ(st["links"]["sw0.dsp0--ep0"]["up"]["tlps"].get<std::uint64_t>(), before);
  EXPECT_EQ(st["functions"]["ep0.pf"]["dma"]["descriptor_fetches"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(st["functions"]["ep0.pf"]["dma"]["read_requests"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(st["functions"]["ep0.pf"]["interrupts"]["sent"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(sim.memory_read(kDst, 4096), std::vector<std::uint8_t>(4096, 0));
  EXPECT_EQ(sim.mmio_read("ep0.pf", 0, dma::kError, 4), dma::kErrBusMasterDisabled);
  EXPECT_TRUE(sim.mmio_read("ep0.pf", 0, dma::kStatus, 4) & dma::kStatusHalted);
}

TEST(EndToEnd, TwoSimulationsInOneProcess) {
  for (int i = 0; i < 2; ++i) {
    Simulation sim(load_config_text(kOneEndpoint, "e2e.yaml"));
    sim.boot();
    EXPECT_EQ(sim.bdf("ep0.pf"), "03:00.0");
    EXPECT_GT(sim.now(), 0u);
  }
}

}  // namespace
}  // namespace pciesim::sim

namespace pciesim::sim {
namespace {

// Issue 10, item 19: checks evaluated together read one stats document.
TEST(Checker, StatChecksInABatchBuildTheStatsOnce) {
  Simulation sim(load_config_text(kOneEndpoint, "t.yaml"));
  sim.boot();
  unsigned builds = 0;
  Checker checker(sim.system(), sim.host(), [&] {
    ++builds;
    return sim.stats();
  });
  Expectation e;
  e.kind = Expectation::kStat;
  e.stat = "booted";
  e.cmp.op = Comparison::kEq;
  e.cmp.a = 1;
  Expectation with_operand = e;
  with_operand.cmp.a_stat = "booted";  // compared with another stat: still one document
  {
    Checker::Batch batch(checker);
    for (int i = 0; i < 10; ++i)
      EXPECT_TRUE(checker.evaluate(i % 2 ? e : with_operand).passed);
  }
  EXPECT_EQ(builds, 1u);
  EXPECT_TRUE(checker.evaluate(e).passed);  // a later check sees a fresh document
  EXPECT_EQ(builds, 2u);
}

}  // namespace
}  // namespace pciesim::sim

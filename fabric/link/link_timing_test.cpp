#include "fabric/link/link_timing.h"

#include <gtest/gtest.h>

#include "fabric/common/error.h"

namespace pciesim::fabric {
namespace {

// Values below are worked out by hand from the definitions in
// link_timing.h, not from the code.

TEST(LinkTiming, Gen3x8RawAndUsableRate) {
  LinkTiming t({3, 8, false}, 256);
  // 8 GT/s * 8 lanes * 128/130
  EXPECT_NEAR(t.raw_gbps(), 63.015385, 1e-5);
  // Ack + UpdateFC every 203 symbol times: 2 * 8 / (203 * 8) = 0.0098522
  EXPECT_NEAR(t.dllp_overhead(), 0.0098522, 1e-6);
  // One SKP block per 376 blocks.
  EXPECT_NEAR(t.skip_overhead(), 0.0026596, 1e-6);
  EXPECT_NEAR(t.tlp_gbps(), 63.015385 * (1 - 0.0098522 - 0.0026596), 1e-4);
}

TEST(LinkTiming, WireBytesPerTlpKind) {
  LinkTiming t({3, 8, false}, 256);
  EXPECT_EQ(t.wire_bytes(TlpKind::MWr, 256, true), 16u + 256u + 8u);
  EXPECT_EQ(t.wire_bytes(TlpKind::MWr, 256, false), 12u + 256u + 8u);
  EXPECT_EQ(t.wire_bytes(TlpKind::MRd, 0, true), 24u);
  EXPECT_EQ(t.wire_bytes(TlpKind::CplD, 64, false), 84u);
  EXPECT_EQ(t.wire_bytes(TlpKind::MWr, 1, true), 16u + 4u + 8u);  // DW padding
  LinkTiming e({3, 8, true}, 256);
  EXPECT_EQ(e.wire_bytes(TlpKind::MWr, 256, true), 284u);  // ECRC digest
  LinkTiming f({6, 16, false}, 256);
  EXPECT_EQ(f.wire_bytes(TlpKind::MWr, 256, true), 272u);  // flit mode: no per-TLP framing
}

TEST(LinkTiming, SerializationTime) {
  LinkTiming t({3, 8, false}, 256);
  // 280 bytes * 8 bits / 62.2270 Gb/s = 35.998 ns
  double ns = to_ns(t.serialization(280));
  EXPECT_NEAR(ns, 280 * 8 / (63.015385 * (1 - 0.0098522 - 0.0026596)), 1e-3);
  EXPECT_NEAR(ns, 35.998, 0.002);
  // Gen1 x1, MPS 128: 2 Gb/s after 8b/10b; DLLPs every 237 symbols.
  LinkTiming g1({1, 1, false}, 128);
  double usable = 2.0 * (1 - 16.0 / 237.0 - 4.0 / 1538.0);
  EXPECT_NEAR(to_ns(g1.serialization(100)), 800.0 / usable, 1e-3);
}

TEST(LinkTiming, GenerationsAndEncodings) {
  EXPECT_DOUBLE_EQ(LinkTiming({1, 1}, 128).raw_gbps(), 2.0);
  EXPECT_DOUBLE_EQ(LinkTiming({2, 4}, 128).raw_gbps(), 16.0);
  EXPECT_NEAR(LinkTiming({4, 16}, 512).raw_gbps(), 252.0615, 1e-3);
  EXPECT_NEAR(LinkTiming({5, 16}, 512).raw_gbps(), 504.1231, 1e-3);
  LinkTiming g6({6, 16}, 256);
  EXPECT_NEAR(g6.raw_gbps(), 64.0 * 16 * 236 / 256, 1e-9);
  EXPECT_EQ(g6.dllp_overhead(), 0.0);
}

TEST(LinkTiming, DllpIntervalFollowsTheSpecTables) {
  EXPECT_EQ(dllp_interval_symbols(1, 1, 128), 237u);
  EXPECT_EQ(dllp_interval_symbols(2, 8, 512), 137u);
  EXPECT_EQ(dllp_interval_symbols(3, 16, 512), 182u);
  EXPECT_EQ(dllp_interval_symbols(5, 12, 4096), 630u);  // x12 shares the x16 row
}

TEST(LinkTiming, RejectsImpossibleLinks) {
  EXPECT_THROW(LinkTiming({7, 8}, 128), ModelError);
  EXPECT_THROW(LinkTiming({3, 3}, 128), ModelError);
}

TEST(LinkTiming, CompletionSplitting) {
  EXPECT_EQ(completion_count(0, 512, 64), 8u);
  EXPECT_EQ(completion_count(0, 512, 256), 2u);
  EXPECT_EQ(completion_count(0, 64, 256), 1u);
  EXPECT_EQ(completion_count(32, 64, 64), 2u);        // crosses one boundary
  EXPECT_EQ(completion_count(0x3c, 8, 64), 2u);       // 4 bytes, then 4 bytes
  EXPECT_EQ(completion_count(0x40, 4096, 128), 33u);  // 64 B to the boundary, then 32 pieces
}

TEST(LinkTiming, AnalyticCurveByHand) {
  // Gen3 x8, MPS 256, 4 KiB writes, 64-bit addresses:
  // 16 TLPs of 256 B, each +16 header +8 framing = 4480 wire bytes.
  AnalyticPoint p = analytic_bandwidth({3, 8}, 256, 512, 64, 4096, true);
  double usable = 63.015385 * (1 - 0.0098522 - 0.0026596);
  EXPECT_NEAR(p.write_gbps, usable * 4096 / 4480, 1e-3);
  // Reads: 8 requests of 512 B; completions in 64 B pieces: 64 CplDs of
  // 64 + 12 + 8 = 84 bytes -> 5376 wire bytes for 4096.
  EXPECT_NEAR(p.read_gbps, usable * 4096 / 5376, 1e-3);
  // 64-byte writes: 64 + 24 = 88 wire bytes.
  EXPECT_NEAR(analytic_bandwidth({3, 8}, 256, 512, 64, 64, true).write_gbps, usable * 64 / 88,
              1e-3);
}

}  // namespace
}  // namespace pciesim::fabric

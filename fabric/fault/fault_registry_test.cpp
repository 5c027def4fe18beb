#include "fabric/fault/fault_registry.h"

#include <gtest/gtest.h>

#include "fabric/common/error.h"

namespace pciesim::fabric {
namespace {

struct Req {
  Tlp t;
  explicit Req(TlpKind k, std::uint64_t addr, RoutingId rid = RoutingId(1, 0, 0), int tag = 0) {
    static std::uint8_t buf[64];
    t.memory(k, rid, addr, buf, 64);
    t.ext().tag = static_cast<std::uint16_t>(tag);
  }
};

FaultSpec link_fault(FaultKind k, const std::string& where) {
  FaultSpec s;
  s.kind = k;
  s.where = where;
  return s;
}

TEST(FaultRegistry, FiresOnTheNthMatchAtItsPlaceOnly) {
  FaultRegistry r(7);
  FaultSpec s = link_fault(FaultKind::kLcrc, "rc.rp0--ep0:down");
  s.nth = 3;
  s.count = 2;
  unsigned id = r.add(s);
  Req q(TlpKind::MWr, 0x1000);
  const std::string link = "rc.rp0--ep0", dir = "rc.rp0--ep0:down", up = "rc.rp0--ep0:up";
  EXPECT_TRUE(r.any(FaultPoint::kLink));
  std::vector<unsigned> fired;
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(r.check(FaultPoint::kLink, up, &link, q.t.gp(), q.t.ext(), 10), 0u);
    fired.push_back(r.check(FaultPoint::kLink, dir, &link, q.t.gp(), q.t.ext(), 10));
  }
  EXPECT_EQ(fired, (std::vector<unsigned>{0, 0, id, id, 0, 0}));
  EXPECT_EQ(r.state(id).fired, 2u);
  EXPECT_TRUE(r.state(id).done);
  EXPECT_FALSE(r.any(FaultPoint::kLink));
  ASSERT_EQ(r.log_of(id).size(), 2u);
  EXPECT_NE(r.log_of(id)[0]->detail.find("MWr 0x1000"), std::string::npos);
}

TEST(FaultRegistry, MatchesKindsRequesterAddressTagAndWindow) {
  FaultRegistry r(1);
  r.resolve = [](const std::string& name, RoutingId* rid) {
    if (name != "ep0.vf1") return false;
    *rid = RoutingId(2, 0, 1);
    return true;
  };
  FaultSpec s = link_fault(FaultKind::kPoisoned, "l");
  s.match.kinds = 1u << static_cast<unsigned>(TlpKind::MWr);
  s.match.requester = "ep0.vf1";
  s.match.address_lo = 0x1000;
  s.match.address_hi = 0x2000;
  s.match.tag = 5;
  s.start = 100;
  s.end = 200;
  s.count = 0;
  unsigned id = r.add(s);
  auto hit = [&](TlpKind k, std::uint64_t a, RoutingId rid, int tag, Time t) {
    Req q(k, a, rid, tag);
    return r.check(FaultPoint::kLink, "l", nullptr, q.t.gp(), q.t.ext(), t) == id;
  };
  const RoutingId vf1(2, 0, 1), other(2, 0, 2);
  EXPECT_TRUE(hit(TlpKind::MWr, 0x1800, vf1, 5, 150));
  EXPECT_FALSE(hit(TlpKind::MRd, 0x1800, vf1, 5, 150));
  EXPECT_FALSE(hit(TlpKind::MWr, 0x2000, vf1, 5, 150));
  EXPECT_FALSE(hit(TlpKind::MWr, 0x1800, other, 5, 150));
  EXPECT_FALSE(hit(TlpKind::MWr, 0x1800, vf1, 6, 150));
  EXPECT_FALSE(hit(TlpKind::MWr, 0x1800, vf1, 5, 99));
  EXPECT_FALSE(hit(TlpKind::MWr, 0x1800, vf1, 5, 200));
  EXPECT_TRUE(hit(TlpKind::MWr, 0x1fff, vf1, 5, 199));
  EXPECT_EQ(r.state(id).fired, 2u);  // count 0: every match
}

TEST(FaultRegistry, CompletionsOnlyWhenAsked) {
  FaultRegistry r(1);
  unsigned plain = r.add(link_fault(FaultKind::kPoisoned, "l"));
  Req q(TlpKind::MRd, 0x1000);
  EXPECT_EQ(r.check_completion("l", nullptr, TlpKind::CplD, q.t.gp(), q.t.ext(), 0), 0u);
  FaultSpec s = link_fault(FaultKind::kPoisoned, "l");
  s.match.kinds = 1u << static_cast<unsigned>(TlpKind::CplD);
  unsigned cpl = r.add(s);
  EXPECT_EQ(r.check_completion("l", nullptr, TlpKind::CplD, q.t.gp(), q.t.ext(), 0), cpl);
  EXPECT_EQ(r.check(FaultPoint::kLink, "l", nullptr, q.t.gp(), q.t.ext(), 0), plain);
}

TEST(FaultRegistry, ProbabilityIsDeterministicPerSeed) {
  auto run = [](std::uint64_t seed) {
    FaultRegistry r(seed);
    FaultSpec s = link_fault(FaultKind::kLcrc, "l");
    s.count = 0;
    s.probability = 0.25;
    r.add(s);
    Req q(TlpKind::MWr, 0);
    std::vector<int> v;
    for (int i = 0; i < 400; ++i)
      v.push_back(r.check(FaultPoint::kLink, "l", nullptr, q.t.gp(), q.t.ext(), 0) != 0);
    return v;
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3), run(4));
  int n = 0;
  for (int x : run(3))
    n += x;
  EXPECT_GT(n, 60);
  EXPECT_LT(n, 140);
}

TEST(FaultRegistry, TimedFaultsComeDueInTimeOrderAndCancel) {
  FaultRegistry r(1);
  FaultSpec a = link_fault(FaultKind::kSurpriseFlr, "ep0.vf1");
  a.start = 500;
  FaultSpec b = link_fault(FaultKind::kLinkDown, "l");
  b.start = 200;
  FaultSpec c = link_fault(FaultKind::kInternalError, "ep0.pf");
  c.start = 300;
  unsigned ia = r.add(a), ib = r.add(b), ic = r.add(c);
  EXPECT_EQ(r.next_timed(), 200u);
  r.cancel(ic);
  EXPECT_TRUE(r.due(100).empty());
  EXPECT_EQ(r.due(600), (std::vector<unsigned>{ib, ia}));
  EXPECT_EQ(r.next_timed(), kTimeMax);
  EXPECT_THROW(r.cancel(9), UsageError);
  FaultSpec bad = a;
  bad.probability = 2;
  EXPECT_THROW(r.add(bad), UsageError);
}

TEST(FaultRegistry, EveryKindHasAUniqueNameAndDocs) {
  ASSERT_EQ(fault_kinds().size(), kFaultKindCount);
  for (unsigned i = 0; i < kFaultKindCount; ++i) {
    const FaultKindInfo& k = fault_kinds()[i];
    EXPECT_EQ(static_cast<unsigned>(k.kind), i);
    FaultKind back;
    ASSERT_TRUE(parse_fault_kind(k.name, &back));
    EXPECT_EQ(back, k.kind);
    EXPECT_GT(std::string(k.outcome).size(), 10u);
    EXPECT_GT(std::string(k.rule).size(), 3u);
  }
}

TEST(TlpHeader, MemoryConfigAndCompletionHeadersAreInWireFormat) {
  std::uint8_t buf[256] = {};
  Tlp t;
  t.memory(TlpKind::MRd, RoutingId(3, 0, 1), 0x123456789abcull, buf, 256);
  t.ext().tag = 0x2a;
  auto h = header_log(t.gp(), t.ext());
  EXPECT_EQ(h[0], 0x20000040u);  // Fmt 001 (4 DW, no data), MRd, 64 DW
  EXPECT_EQ(h[1], 0x03012affu);  // requester 03:00.1, tag 0x2a, BEs f/f
  EXPECT_EQ(h[2], 0x1234u);
  EXPECT_EQ(h[3], 0x56789abcu);
  t.memory(TlpKind::MWr, RoutingId(3, 0, 1), 0xfee00001, buf, 2);
  h = header_log(t.gp(), t.ext());
  EXPECT_EQ(h[0], 0x40000001u);  // Fmt 010 (3 DW, data), 1 DW
  EXPECT_EQ(h[1], 0x03010006u);  // first BE 0110, last BE 0 (one DW)
  EXPECT_EQ(h[2], 0xfee00000u);
  t.ext().poisoned = true;
  EXPECT_EQ(header_log(t.gp(), t.ext())[0], 0x40004001u);
  t.config(TlpKind::CfgRd0, RoutingId(0, 0, 0), RoutingId(5, 2, 3), 0x104, 4);
  h = header_log(t.gp(), t.ext());
  EXPECT_EQ(h[0], 0x04000001u);
  EXPECT_EQ(h[2], 0x05130104u);  // bus 5, dev 2, fn 3, register 0x104
  t.memory(TlpKind::MRd, RoutingId(3, 0, 1), 0x1040, buf, 64);
  t.ext().tag = 7;
  t.ext().status = CplStatus::kUR;
  h = completion_header(t.gp(), t.ext(), TlpKind::Cpl, RoutingId(0, 0, 0), 64);
  EXPECT_EQ(h[0], 0x0a000000u);
  EXPECT_EQ(h[1], 0x00002040u);  // completer 00:00.0, status UR, byte count 64
  EXPECT_EQ(h[2], 0x03010740u);  // requester, tag, lower address 0x40
}

}  // namespace
}  // namespace pciesim::fabric

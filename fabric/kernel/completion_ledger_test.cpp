#include "fabric/kernel/completion_ledger.h"

#include <gtest/gtest.h>

#include <vector>

#include "fabric/kernel/trace.h"

namespace pciesim::fabric {
namespace {

struct Ends : TraceSink {
  void tlp(const TlpTraceRecord&) override {}
  void request_end(const RequestEndRecord& r) override { ends.push_back(r); }
  std::vector<RequestEndRecord> ends;
};

TEST(CompletionLedger, EachRequestEndsOnceWithACompletionOrATimeout) {
  CompletionLedger l;
  Ends sink;
  set_trace_sink(&sink);
  const RoutingId rid(1, 0, 0);
  std::uint64_t a = l.open(rid, TlpKind::MRd, 0x1000), b = l.open(rid, TlpKind::CfgRd0, 0),
                c = l.open(rid, TlpKind::MRd, 0x2000), d = l.open(rid, TlpKind::MRd, 0x3000);
  EXPECT_EQ(l.outstanding(), 4u);
  l.close(a, CplStatus::kSC, 10);
  l.close(b, CplStatus::kUR, 20);
  l.close(c, CplStatus::kTimeout, 30);
  EXPECT_EQ(l.stats().violations, 0u);
  // A second ending of the same request.
  l.close(a, CplStatus::kSC, 40);
  // Dropped and never timed out by its requester.
  l.close(d, CplStatus::kDiscarded, 50);
  set_trace_sink(nullptr);
  EXPECT_EQ(l.stats().requests, 4u);
  EXPECT_EQ(l.stats().completions, 2u);
  EXPECT_EQ(l.stats().timeouts, 1u);
  EXPECT_EQ(l.stats().violations, 2u);
  ASSERT_EQ(l.stats().violation_log.size(), 2u);
  EXPECT_NE(l.stats().violation_log[0].find("ended twice"), std::string::npos);
  EXPECT_NE(l.stats().violation_log[1].find("neither a completion nor a timeout"),
            std::string::npos);
  EXPECT_EQ(l.outstanding(), 0u);
  // One trace record per ending of an issued request.
  ASSERT_EQ(sink.ends.size(), 4u);
  EXPECT_EQ(sink.ends[1].status, CplStatus::kUR);
  EXPECT_EQ(sink.ends[2].at, 30u);
}

TEST(CompletionLedger, LongOutstandingRequestsAndOutOfOrderEndings) {
  // One request stays open while many newer ones come and go (a lost TLP
  // waiting for its timeout); endings in any order are each counted once.
  CompletionLedger l;
  const std::uint64_t old = l.open(RoutingId(1, 0, 0), TlpKind::MRd, 0x1000);
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 10000; ++i) {
    ids.push_back(l.open(RoutingId(1, 0, 0), TlpKind::MRd, 0x2000 + 64u * i));
    if (i % 3 == 0) {
      l.close(ids.back(), CplStatus::kSC, 10);
      ids.pop_back();
    }
  }
  EXPECT_EQ(l.outstanding(), 1u + ids.size());
  for (auto it = ids.rbegin(); it != ids.rend(); ++it)
    l.close(*it, CplStatus::kSC, 20);
  l.close(ids.front(), CplStatus::kSC, 30);  // a second ending
  EXPECT_EQ(l.outstanding(), 1u);
  l.close(old, CplStatus::kTimeout, 50);
  l.close(old, CplStatus::kTimeout, 60);   // and again
  l.close(123456789, CplStatus::kSC, 70);  // never issued
  EXPECT_EQ(l.outstanding(), 0u);
  EXPECT_EQ(l.stats().requests, 10001u);
  EXPECT_EQ(l.stats().completions, 10000u);
  EXPECT_EQ(l.stats().timeouts, 1u);
  EXPECT_EQ(l.stats().violations, 3u);
}

}  // namespace
}  // namespace pciesim::fabric

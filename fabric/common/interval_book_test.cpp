// IntervalBook: every booking starts at the first free gap at or after its
// time, never overlaps another, and touching intervals merge; checked
// against a brute-force model of the same rule over random request streams
// (in order, out of order, with the floor advancing).
#include "fabric/common/interval_book.h"

#include <gtest/gtest.h>

#include <random>
#include <utility>
#include <vector>

namespace pciesim::fabric {
namespace {

// The rule, written the slow way: a list of booked [start, end).
struct NaiveBook {
  std::vector<std::pair<Time, Time>> busy;
  Time reserve(Time t, Time d, Time floor) {
    std::vector<std::pair<Time, Time>> keep;
    for (auto& iv : busy)
      if (iv.second > floor) keep.push_back(iv);
    busy.swap(keep);
    if (d == 0) return t;
    Time s = t;
    for (bool moved = true; moved;) {
      moved = false;
      for (auto& iv : busy)
        if (iv.first < s + d && s < iv.second) {
          s = iv.second;
          moved = true;
        }
    }
    busy.push_back({s, s + d});
    return s;
  }
};

TEST(IntervalBook, InOrderRequestsQueueBackToBack) {
  IntervalBook b;
  EXPECT_EQ(b.reserve(100, 10, 0), 100u);
  EXPECT_EQ(b.reserve(100, 10, 0), 110u);  // busy until 110
  EXPECT_EQ(b.reserve(105, 10, 0), 120u);
  EXPECT_EQ(b.size(), 1u);                // merged: [100, 130)
  EXPECT_EQ(b.reserve(200, 5, 0), 200u);  // idle gap: served on arrival
  EXPECT_EQ(b.size(), 2u);
}

TEST(IntervalBook, LateCallFillsEarlierGap) {
  IntervalBook b;
  EXPECT_EQ(b.reserve(1000, 10, 0), 1000u);  // a request delayed by a walk
  EXPECT_EQ(b.reserve(100, 10, 0), 100u);    // called later, arrives earlier
  EXPECT_EQ(b.reserve(995, 10, 0), 1010u);   // does not fit before 1000
  EXPECT_EQ(b.reserve(990, 10, 0), 990u);    // fits exactly, joins [1000, 1020)
  EXPECT_EQ(b.size(), 2u);
}

TEST(IntervalBook, FloorForgetsThePast) {
  IntervalBook b;
  for (Time t = 0; t < 1000; t += 20)
    b.reserve(t, 10, 0);
  EXPECT_EQ(b.size(), 50u);
  b.reserve(2000, 10, 995);  // every interval before 995 is over
  EXPECT_EQ(b.size(), 1u);
}

TEST(IntervalBook, MatchesTheRuleOnRandomStreams) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    IntervalBook fast;
    NaiveBook slow;
    Time floor = 0, t = 0;
    for (int i = 0; i < 3000; ++i) {
      const bool late = rng() % 4 == 0;  // out-of-order arrival
      t += rng() % 12;
      const Time at = late ? t - std::min<Time>(t - floor, rng() % 200) : t + rng() % 40;
      const Time d = rng() % 9 == 0 ? 0 : 1 + rng() % 15;
      ASSERT_EQ(fast.reserve(at, d, floor), slow.reserve(at, d, floor))
          << "seed " << seed << " request " << i;
      if (rng() % 8 == 0) floor = std::max(floor, t > 100 ? t - 100 : 0);
    }
  }
}

}  // namespace
}  // namespace pciesim::fabric

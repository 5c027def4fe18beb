// The next-step rule of SPEC.md F against an independent oracle: a
// breadth-first search over the single-step arcs each flag set has, for
// every (flags, current, requested) triple; and the multi-step paths
// Linux documents for a device with every feature (vfio_main.c).
#include "sim/host/vfio/migration_fsm.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

namespace pciesim::sim::vfio {
namespace {

using S = MigState;
const std::uint32_t kSets[] = {kFlagStopCopy, kFlagStopCopy | kFlagP2p,
                               kFlagStopCopy | kFlagPreCopy,
                               kFlagStopCopy | kFlagP2p | kFlagPreCopy};

// The arcs a device with `flags` implements (SPEC.md F).
std::set<std::pair<S, S>> arcs(std::uint32_t flags) {
  const bool p2p = flags & kFlagP2p, pre = flags & kFlagPreCopy;
  std::set<std::pair<S, S>> a = {{S::kStopCopy, S::kStop},
                                 {S::kResuming, S::kStop},
                                 {S::kStop, S::kStopCopy},
                                 {S::kStop, S::kResuming}};
  if (p2p) {
    a.insert({{S::kRunningP2p, S::kStop},
              {S::kRunningP2p, S::kRunning},
              {S::kRunning, S::kRunningP2p},
              {S::kStop, S::kRunningP2p}});
  } else {
    a.insert({{S::kRunning, S::kStop}, {S::kStop, S::kRunning}});
  }
  if (pre) {
    a.insert({{S::kPreCopy, S::kRunning}, {S::kRunning, S::kPreCopy}});
    if (p2p)
      a.insert({{S::kPreCopyP2p, S::kRunningP2p},
                {S::kRunningP2p, S::kPreCopyP2p},
                {S::kPreCopy, S::kPreCopyP2p},
                {S::kPreCopyP2p, S::kPreCopy},
                {S::kPreCopyP2p, S::kStopCopy}});
    else
      a.insert({S::kPreCopy, S::kStopCopy});
  }
  return a;
}

// Shortest path that has no saving-group state in its interior, unless it
// starts and ends in the saving group (the stream then stays open:
// PRE_COPY -> PRE_COPY_P2P -> STOP_COPY, vfio.h); STOP_COPY never goes
// back to PRE_COPY*.
std::vector<S> oracle(std::uint32_t flags, S from, S to) {
  if (from == to) return {from};
  if (from == S::kStopCopy && (to == S::kPreCopy || to == S::kPreCopyP2p)) return {};
  const bool within = saving(from) && saving(to);
  const auto a = arcs(flags);
  std::map<S, S> prev;
  std::deque<S> q{from};
  std::set<S> seen{from};
  while (!q.empty()) {
    S s = q.front();
    q.pop_front();
    if (s != from && saving(s) && !within) continue;  // may end here, never pass through
    for (const auto& [x, y] : a) {
      if (x != s || seen.count(y)) continue;
      seen.insert(y);
      prev[y] = s;
      if (y == to) {
        std::vector<S> p{to};
        while (p.back() != from)
          p.push_back(prev[p.back()]);
        return {p.rbegin(), p.rend()};
      }
      q.push_back(y);
    }
  }
  return {};
}

std::string names(const std::vector<S>& p) {
  std::string s;
  for (S x : p)
    s += std::string(s.empty() ? "" : ",") + state_name(x);
  return s;
}

TEST(MigrationFsm, EveryTripleFollowsTheRule) {
  int checked = 0;
  for (std::uint32_t flags : kSets) {
    for (unsigned c = 0; c < kNumStates; ++c) {
      for (unsigned r = 0; r < kNumStates; ++r) {
        const S cur = static_cast<S>(c), req = static_cast<S>(r);
        const std::vector<S> got = path(flags, cur, req);
        std::vector<S> want;
        if (cur != S::kError && req != S::kError && supports(flags, cur) && supports(flags, req))
          want = oracle(flags, cur, req);
        EXPECT_EQ(names(got), names(want))
            << "flags " << flags << " " << state_name(cur) << " -> " << state_name(req);
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 4 * 8 * 8);
}

TEST(MigrationFsm, LinuxDocumentedPathsWithEveryFeature) {
  const std::uint32_t all = kFlagStopCopy | kFlagP2p | kFlagPreCopy;
  const std::map<std::pair<S, S>, std::string> paths = {
      {{S::kPreCopy, S::kStopCopy}, "PRE_COPY,PRE_COPY_P2P,STOP_COPY"},
      {{S::kPreCopy, S::kStop}, "PRE_COPY,RUNNING,RUNNING_P2P,STOP"},
      {{S::kPreCopy, S::kResuming}, "PRE_COPY,RUNNING,RUNNING_P2P,STOP,RESUMING"},
      {{S::kPreCopyP2p, S::kRunning}, "PRE_COPY_P2P,RUNNING_P2P,RUNNING"},
      {{S::kResuming, S::kPreCopy}, "RESUMING,STOP,RUNNING_P2P,RUNNING,PRE_COPY"},
      {{S::kResuming, S::kPreCopyP2p}, "RESUMING,STOP,RUNNING_P2P,PRE_COPY_P2P"},
      {{S::kRunning, S::kStopCopy}, "RUNNING,RUNNING_P2P,STOP,STOP_COPY"},
      {{S::kRunningP2p, S::kPreCopy}, "RUNNING_P2P,RUNNING,PRE_COPY"},
      {{S::kStop, S::kPreCopy}, "STOP,RUNNING_P2P,RUNNING,PRE_COPY"},
      {{S::kStopCopy, S::kRunning}, "STOP_COPY,STOP,RUNNING_P2P,RUNNING"},
      {{S::kStopCopy, S::kResuming}, "STOP_COPY,STOP,RESUMING"},
  };
  for (const auto& [k, want] : paths)
    EXPECT_EQ(names(path(all, k.first, k.second)), want);
}

TEST(MigrationFsm, WithoutP2pRunningAndStopAreOneArc) {
  EXPECT_EQ(names(path(kFlagStopCopy, S::kRunning, S::kStopCopy)), "RUNNING,STOP,STOP_COPY");
  EXPECT_EQ(names(path(kFlagStopCopy | kFlagPreCopy, S::kPreCopy, S::kStopCopy)),
            "PRE_COPY,STOP_COPY");
  EXPECT_EQ(names(path(kFlagStopCopy | kFlagPreCopy, S::kPreCopy, S::kStop)),
            "PRE_COPY,RUNNING,STOP");
}

TEST(MigrationFsm, RefusedRequests) {
  const std::uint32_t all = kFlagStopCopy | kFlagP2p | kFlagPreCopy;
  EXPECT_FALSE(next_state(all, S::kStopCopy, S::kPreCopy));
  EXPECT_FALSE(next_state(all, S::kStopCopy, S::kPreCopyP2p));
  EXPECT_FALSE(next_state(all, S::kRunning, S::kError));
  EXPECT_FALSE(next_state(all, S::kError, S::kRunning));
  EXPECT_FALSE(next_state(kFlagStopCopy, S::kRunning, S::kRunningP2p));
  EXPECT_FALSE(next_state(kFlagStopCopy, S::kRunning, S::kPreCopy));
  EXPECT_FALSE(next_state(all, S::kRunning, static_cast<S>(8)));
  EXPECT_TRUE(path(all, S::kStopCopy, S::kPreCopy).empty());
  EXPECT_EQ(names(path(all, S::kStop, S::kStop)), "STOP");
}

TEST(MigrationFsm, UndefinedFlagSetsRefused) {
  for (std::uint32_t flags : {0u, unsigned{kFlagP2p}, unsigned{kFlagPreCopy},
                              unsigned{kFlagP2p | kFlagPreCopy}, 8u, kFlagStopCopy | 8u}) {
    EXPECT_FALSE(valid_flags(flags)) << flags;
    EXPECT_FALSE(next_state(flags, S::kRunning, S::kStop)) << flags;
  }
  for (std::uint32_t flags : kSets)
    EXPECT_TRUE(valid_flags(flags));
}

TEST(MigrationFsm, NamesRoundTrip) {
  for (unsigned i = 0; i < kNumStates; ++i)
    EXPECT_EQ(parse_state(state_name(static_cast<S>(i))), static_cast<S>(i));
  EXPECT_FALSE(parse_state("running"));
  EXPECT_EQ(flag_names(kFlagStopCopy | kFlagPreCopy),
            (std::vector<std::string>{"stop_copy", "pre_copy"}));
}

}  // namespace
}  // namespace pciesim::sim::vfio

// The IOMMU model against hand-built tables in a fake host memory with a
// fixed 90 ns read latency: walks, page sizes, permissions, faults and
// their records, the IOTLB and its replacement, invalidation and its
// ordering guarantee, pass-through, PASID and A/D bits.
#include "models/iommu/iommu.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

namespace pciesim::models {
namespace {

using namespace fabric;
using namespace iommu;

constexpr Time kMem = 90 * kNs;

struct FakeMemory {
  std::map<std::uint64_t, std::uint8_t> bytes;
  std::uint64_t writes = 0;
  std::uint64_t get64(std::uint64_t a) const {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
      auto it = bytes.find(a + i);
      v = (v << 8) | (it == bytes.end() ? 0 : it->second);
    }
    return v;
  }
  void set64(std::uint64_t a, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
      bytes[a + i] = static_cast<std::uint8_t>(v >> (8 * i));
  }
  Iommu::MemoryAccess accessor() {
    return [this](std::uint64_t addr, std::uint8_t* data, std::uint32_t len, bool write, Time t,
                  bool debug) {
      if (addr >= (std::uint64_t{1} << 40)) return Iommu::MemoryResult{false, t};
      for (std::uint32_t i = 0; i < len; ++i) {
        if (write)
          bytes[addr + i] = data[i];
        else {
          auto it = bytes.find(addr + i);
          data[i] = it == bytes.end() ? 0 : it->second;
        }
      }
      if (write) ++writes;
      return Iommu::MemoryResult{true, debug ? t : t + kMem};
    };
  }
};

// Builds root/context/page tables the way host software would.
struct Tables {
  FakeMemory& mem;
  std::uint64_t next = 0x100000;
  std::uint64_t root = 0x1000;
  explicit Tables(FakeMemory& m) : mem(m) {}
  std::uint64_t page() {
    std::uint64_t p = next;
    next += 4096;
    return p;
  }
  std::uint64_t context_table(unsigned bus) {
    std::uint64_t e = mem.get64(root + 16 * bus);
    if (e & 1) return e & kAddrMask12;
    std::uint64_t ct = page();
    mem.set64(root + 16 * bus, ct | 1);
    return ct;
  }
  bool ad_enable = false;  // contexts written set the A/D enable bit
  void context(RoutingId rid, std::uint16_t did, std::uint64_t pt, unsigned levels = 4,
               unsigned tt = kTtTranslate, std::uint64_t pasid_table = 0) {
    std::uint64_t ce = context_table(rid.bus()) + 32 * rid.devfn();
    mem.set64(ce, pt | (std::uint64_t{tt} << kCtxTtShift) | kCtxPresent);
    mem.set64(ce + 8, (std::uint64_t{did} << kCtxDidShift) | (levels == 3 ? 1u : 2u) |
                          (ad_enable ? kCtxAdEnable : 0));
    mem.set64(ce + 16, pasid_table ? (pasid_table | 1) : 0);
  }
  // Maps one page of 2^shift bytes.
  void map(std::uint64_t pt, unsigned levels, std::uint64_t iova, std::uint64_t hpa,
           unsigned shift = 12, bool r = true, bool w = true) {
    std::uint64_t table = pt;
    for (unsigned level = levels; level >= 1; --level) {
      const unsigned s = 12 + 9 * (level - 1);
      const std::uint64_t at = table + 8 * ((iova >> s) & 0x1ff);
      if (s == shift) {
        std::uint64_t e = hpa;
        if (r) e |= kPteRead;
        if (w) e |= kPteWrite;
        if (level > 1) e |= kPtePs;
        mem.set64(at, e);
        return;
      }
      std::uint64_t e = mem.get64(at);
      if (!(e & 3)) {
        e = page() | kPteRead | kPteWrite;
        mem.set64(at, e);
      }
      table = e & kPteAddrMask;
    }
  }
};

struct IommuTest : ::testing::Test {
  FakeMemory mem;
  Tables tables{mem};
  IommuParams params;
  std::unique_ptr<Iommu> mmu;
  const RoutingId dev{3, 0, 1};
  std::uint64_t pt = 0;

  void build() {
    mmu = std::make_unique<Iommu>(params, mem.accessor());
    pt = tables.page();
    tables.context(dev, 7, pt, params.levels);
    write64(kRtaddr, tables.root);
    write32(kGcmd, kGcmdSrtp);
    write32(kGcmd, kGcmdTe);
  }
  void write64(std::uint32_t reg, std::uint64_t v, Time t = 0) {
    std::uint8_t b[8];
    std::memcpy(b, &v, 8);
    ASSERT_EQ(mmu->register_access(reg, b, 8, true, t), CplStatus::kSC);
  }
  void write32(std::uint32_t reg, std::uint32_t v, Time t = 0) {
    std::uint8_t b[4];
    std::memcpy(b, &v, 4);
    ASSERT_EQ(mmu->register_access(reg, b, 4, true, t), CplStatus::kSC);
  }
  std::uint64_t read64(std::uint32_t reg, Time t = 0) {
    std::uint8_t b[8] = {};
    EXPECT_EQ(mmu->register_access(reg, b, 8, false, t), CplStatus::kSC);
    std::uint64_t v;
    std::memcpy(&v, b, 8);
    return v;
  }
  TranslationResult xlate(std::uint64_t iova, bool write = false, Time at = 1 * kUs,
                          RoutingId rid = RoutingId{3, 0, 1}) {
    TranslationRequest q;
    q.requester = rid;
    q.address = iova;
    q.length = 64;
    q.write = write;
    q.at = at;
    return mmu->translate(q);
  }
};

TEST_F(IommuTest, DisabledTranslationPassesAddressesThrough) {
  mmu = std::make_unique<Iommu>(params, mem.accessor());
  TranslationResult r = xlate(0x1234);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.address, 0x1234u);
  EXPECT_EQ(r.done, 1 * kUs);
  EXPECT_EQ(mmu->stats().translations, 0u);
}

TEST_F(IommuTest, FourLevelWalkIsTimedReadByReadThenHitsTheIotlb) {
  build();
  tables.map(pt, 4, 0x7000'1000, 0xabc000);
  TranslationResult r = xlate(0x7000'1234, false, 1 * kUs);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.address, 0xabc234u);
  // Root entry + 2 context qwords, then 4 levels of (read + walker step).
  EXPECT_EQ(r.done, 1 * kUs + 3 * kMem + 4 * (kMem + params.walk_step_latency));
  const IommuStats& s = mmu->stats();
  EXPECT_EQ(s.iotlb_misses, 1u);
  EXPECT_EQ(s.walks, 1u);
  EXPECT_EQ(s.walk_reads, 7u);
  // Same page again: context cache and IOTLB hits.
  r = xlate(0x7000'1ff8, true, 2 * kUs);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.address, 0xabcff8u);
  EXPECT_EQ(r.done, 2 * kUs + params.iotlb_hit_latency);
  EXPECT_EQ(s.iotlb_hits, 1u);
  EXPECT_EQ(s.context_hits, 1u);
}

TEST_F(IommuTest, LargePagesEndTheWalkEarly) {
  build();
  tables.map(pt, 4, 0x4000'0000, 0x8000'0000, 30);  // 1 GiB
  tables.map(pt, 4, 0x20'0000, 0x60'0000, 21);      // 2 MiB
  TranslationResult g = xlate(0x4123'4567);
  ASSERT_TRUE(g.ok);
  EXPECT_EQ(g.address, 0x8123'4567u);
  EXPECT_EQ(g.done, 1 * kUs + 3 * kMem + 2 * (kMem + params.walk_step_latency));
  TranslationResult m = xlate(0x3f'fff0, false, 5 * kUs);
  ASSERT_TRUE(m.ok);
  EXPECT_EQ(m.address, 0x7f'fff0u);
  EXPECT_EQ(m.done, 5 * kUs + 3 * (kMem + params.walk_step_latency));  // context cached
  // One IOTLB entry covers the whole large page.
  EXPECT_TRUE(xlate(0x7fff'0000, false, 9 * kUs).ok);
  EXPECT_EQ(mmu->stats().iotlb_hits, 1u);
}

TEST_F(IommuTest, LargePagesUnsupportedAreInvalidEntries) {
  params.large_pages = false;
  build();
  tables.map(pt, 4, 0x20'0000, 0x60'0000, 21);
  TranslationResult r = xlate(0x20'0000);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(mmu->fault_log().back().reason, FaultReason::kBadEntry);
}

TEST_F(IommuTest, PermissionsAndFaultsAreLoggedAndRecorded) {
  params.fault_status = CplStatus::kCA;
  build();
  tables.map(pt, 4, 0x5000, 0x9000, 12, true, false);  // read-only
  EXPECT_TRUE(xlate(0x5000).ok);
  TranslationResult w = xlate(0x5008, true, 3 * kUs);
  EXPECT_FALSE(w.ok);
  EXPECT_EQ(w.fault_status, CplStatus::kCA);
  TranslationResult miss = xlate(0x6000, false, 4 * kUs);
  EXPECT_FALSE(miss.ok);
  TranslationResult other = xlate(0x5000, false, 5 * kUs, RoutingId{3, 0, 2});
  EXPECT_FALSE(other.ok);
  TranslationResult wide = xlate(std::uint64_t{1} << 48, false, 6 * kUs);
  EXPECT_FALSE(wide.ok);

  const auto& log = mmu->fault_log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].reason, FaultReason::kWriteDenied);
  EXPECT_TRUE(log[0].write);
  EXPECT_EQ(log[0].address, 0x5008u);
  EXPECT_EQ(log[0].requester, dev);
  EXPECT_EQ(log[0].domain, 7u);
  EXPECT_EQ(log[0].at, w.done);
  EXPECT_EQ(log[1].reason, FaultReason::kPageNotPresent);
  EXPECT_EQ(log[2].reason, FaultReason::kContextNotPresent);
  EXPECT_EQ(log[3].reason, FaultReason::kAddressTooWide);
  EXPECT_EQ(mmu->stats().faults, 4u);

  // The first hardware fault record: page, source, reason, write, F.
  EXPECT_EQ(read64(kFaultRecords), 0x5000u);
  const std::uint64_t hi = read64(kFaultRecords + 8);
  EXPECT_EQ(hi & 0xffff, dev.value());
  EXPECT_EQ((hi >> kFrcdReasonShift) & 0xff, static_cast<unsigned>(FaultReason::kWriteDenied));
  EXPECT_EQ(hi & kFrcdRead, 0u);
  EXPECT_NE(hi & kFrcdF, 0u);
  EXPECT_NE(read64(kFsts - 4) >> 32 & kFstsPpf, 0u);
}

TEST_F(IommuTest, FaultRecordsOverflowUntilSoftwareClearsThem) {
  params.fault_records = 2;
  build();
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(xlate(0x1000 * (i + 1)).ok);
  EXPECT_EQ(mmu->stats().fault_records_dropped, 1u);
  std::uint8_t b[4];
  ASSERT_EQ(mmu->register_access(kFsts, b, 4, false, 0), CplStatus::kSC);
  std::uint32_t fsts;
  std::memcpy(&fsts, b, 4);
  EXPECT_TRUE(fsts & kFstsPfo);
  EXPECT_TRUE(fsts & kFstsPpf);
  // Clear both records' F bits and the overflow: recording resumes.
  write64(kFaultRecords + 8, kFrcdF);
  write64(kFaultRecords + 24, kFrcdF);
  write32(kFsts, kFstsPfo);
  EXPECT_FALSE(xlate(0x9000).ok);
  EXPECT_EQ(read64(kFaultRecords), 0x9000u);
  EXPECT_EQ(mmu->stats().fault_records_dropped, 1u);
  EXPECT_EQ(mmu->fault_log().size(), 4u);  // the model's log keeps them all
}

TEST_F(IommuTest, IotlbHoldsItsSizeAndReplacesLeastRecentlyUsed) {
  params.iotlb_entries = 4;
  build();
  for (std::uint64_t p = 0; p < 5; ++p)
    tables.map(pt, 4, p << 12, 0x100000 + (p << 12));
  for (std::uint64_t p = 0; p < 4; ++p)
    ASSERT_TRUE(xlate(p << 12).ok);
  ASSERT_TRUE(xlate(0).ok);  // page 0 is now the most recently used
  EXPECT_EQ(mmu->stats().iotlb_hits, 1u);
  ASSERT_TRUE(xlate(4 << 12).ok);  // evicts page 1 (least recently used)
  EXPECT_EQ(mmu->stats().iotlb_evictions, 1u);
  EXPECT_EQ(mmu->iotlb_occupancy(), 4u);
  ASSERT_TRUE(xlate(0).ok);
  EXPECT_EQ(mmu->stats().iotlb_hits, 2u);
  ASSERT_TRUE(xlate(1 << 12).ok);
  EXPECT_EQ(mmu->stats().iotlb_misses, 6u);
}

TEST_F(IommuTest, FifoReplacementIgnoresHits) {
  params.iotlb_entries = 4;
  params.replacement = IotlbReplacement::kFifo;
  build();
  for (std::uint64_t p = 0; p < 5; ++p)
    tables.map(pt, 4, p << 12, 0x100000 + (p << 12));
  for (std::uint64_t p = 0; p < 4; ++p)
    ASSERT_TRUE(xlate(p << 12).ok);
  ASSERT_TRUE(xlate(0).ok);        // a hit does not protect page 0
  ASSERT_TRUE(xlate(4 << 12).ok);  // evicts page 0, the oldest insertion
  const std::uint64_t misses = mmu->stats().iotlb_misses;
  ASSERT_TRUE(xlate(0).ok);
  EXPECT_EQ(mmu->stats().iotlb_misses, misses + 1);
}

TEST_F(IommuTest, RandomReplacementIsDeterministicForASeed) {
  auto run = [&](std::uint64_t seed) {
    params.iotlb_entries = 8;
    params.replacement = IotlbReplacement::kRandom;
    params.seed = seed;
    FakeMemory m;
    Tables t(m);
    Iommu u(params, m.accessor());
    std::uint64_t root = t.page();
    t.context(dev, 1, root);
    for (std::uint64_t p = 0; p < 32; ++p)
      t.map(root, 4, p << 12, p << 12);
    std::uint8_t b[8];
    std::uint64_t v = t.root;
    std::memcpy(b, &v, 8);
    u.register_access(kRtaddr, b, 8, true, 0);
    std::uint32_t c = kGcmdSrtp | kGcmdTe;
    std::memcpy(b, &c, 4);
    u.register_access(kGcmd, b, 4, true, 0);
    for (int i = 0; i < 200; ++i) {
      TranslationRequest q;
      q.requester = dev;
      q.address = std::uint64_t((i * 7) % 32) << 12;
      u.translate(q);
    }
    return u.stats().iotlb_hits;
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_GT(run(1), 0u);
}

TEST_F(IommuTest, NoStaleTranslationAfterAnInvalidationCompletes) {
  build();
  tables.map(pt, 4, 0x10000, 0xa000);
  ASSERT_EQ(xlate(0x10000, false, 1 * kUs).address, 0xa000u);
  // Software changes the mapping in memory without invalidating: the
  // IOTLB still holds the old translation (as real hardware would).
  tables.map(pt, 4, 0x10000, 0xb000);
  EXPECT_EQ(xlate(0x10000, false, 2 * kUs).address, 0xa000u);
  // A translation handed out for later use (a request still on its way).
  EXPECT_EQ(xlate(0x10000, false, 9 * kUs).address, 0xa000u);
  // Page-selective IOTLB invalidation at 3 us.
  write64(kIva, 0x10000);
  write64(kIotlb,
          kIotlbIvt | (std::uint64_t{kSelective} << kIotlbIirgShift) |
              (std::uint64_t{7} << kIotlbDidShift),
          3 * kUs);
  // It completes only after the fixed latency and after the 9 us use.
  const Time done =
      std::max(3 * kUs + params.invalidation_latency, 9 * kUs + params.iotlb_hit_latency);
  EXPECT_NE(read64(kIotlb, done - 1) & kIotlbIvt, 0u);
  EXPECT_EQ(read64(kIotlb, done) & kIotlbIvt, 0u);
  EXPECT_EQ(mmu->stats().last_invalidation_done, done);
  EXPECT_EQ(xlate(0x10000, false, done).address, 0xb000u);
  EXPECT_EQ(mmu->stats().iotlb_invalidations[kSelective], 1u);
}

TEST_F(IommuTest, DomainAndGlobalInvalidationsDropTheirEntriesOnly) {
  build();
  const RoutingId other{3, 0, 2};
  std::uint64_t pt2 = tables.page();
  tables.context(other, 9, pt2);
  tables.map(pt, 4, 0x1000, 0xa000);
  tables.map(pt2, 4, 0x1000, 0xb000);
  ASSERT_TRUE(xlate(0x1000).ok);
  ASSERT_TRUE(xlate(0x1000, false, 1 * kUs, other).ok);
  EXPECT_EQ(mmu->iotlb_occupancy(), 2u);
  write64(kIotlb,
          kIotlbIvt | (std::uint64_t{kDomain} << kIotlbIirgShift) |
              (std::uint64_t{9} << kIotlbDidShift),
          2 * kUs);
  EXPECT_EQ(mmu->iotlb_occupancy(), 1u);
  ASSERT_TRUE(xlate(0x1000, false, 3 * kUs).ok);
  EXPECT_EQ(mmu->stats().iotlb_hits, 1u);  // domain 7 survived
  write64(kIotlb, kIotlbIvt | (std::uint64_t{kGlobal} << kIotlbIirgShift), 4 * kUs);
  EXPECT_EQ(mmu->iotlb_occupancy(), 0u);
}

TEST_F(IommuTest, ContextCacheKeepsTheOldDomainUntilDeviceInvalidation) {
  build();
  tables.map(pt, 4, 0x1000, 0xa000);
  ASSERT_EQ(xlate(0x1000).address, 0xa000u);
  // Move the device to another domain with other tables.
  std::uint64_t pt2 = tables.page();
  tables.map(pt2, 4, 0x1000, 0xb000);
  tables.context(dev, 8, pt2);
  EXPECT_EQ(xlate(0x1000, false, 2 * kUs).address, 0xa000u);  // cached context and IOTLB
  write64(kCcmd,
          kCcmdIcc | (std::uint64_t{kSelective} << kCcmdCirgShift) |
              (std::uint64_t{dev.value()} << kCcmdSidShift),
          3 * kUs);
  EXPECT_NE(read64(kCcmd, 3 * kUs) & kCcmdIcc, 0u);
  EXPECT_EQ(read64(kCcmd, 3 * kUs + params.invalidation_latency) & kCcmdIcc, 0u);
  EXPECT_EQ(xlate(0x1000, false, 5 * kUs).address, 0xb000u);  // new domain, new tables
  EXPECT_EQ(mmu->stats().context_invalidations[kSelective], 1u);
}

TEST_F(IommuTest, PassThroughContextsAndThreeLevelTables) {
  params.levels = 4;
  build();
  const RoutingId pass{4, 0, 0}, small{5, 0, 0};
  tables.context(pass, 2, 0, 4, kTtPassThrough);
  std::uint64_t pt3 = tables.page();
  tables.context(small, 3, pt3, 3);
  tables.map(pt3, 3, 0x40'0000, 0x77'0000);
  TranslationResult p = xlate(0x1234'5678, true, 1 * kUs, pass);
  EXPECT_TRUE(p.ok);
  EXPECT_EQ(p.address, 0x1234'5678u);
  EXPECT_EQ(mmu->stats().passthrough, 1u);
  TranslationResult s = xlate(0x40'0010, false, 1 * kUs, small);
  ASSERT_TRUE(s.ok);
  EXPECT_EQ(s.address, 0x77'0010u);
  EXPECT_EQ(s.done, 1 * kUs + 3 * kMem + 3 * (kMem + params.walk_step_latency));
  EXPECT_FALSE(xlate(std::uint64_t{1} << 39, false, 2 * kUs, small).ok);  // beyond 39 bits
}

TEST_F(IommuTest, PasidSelectsItsOwnPageTables) {
  build();
  const std::uint64_t ptable = tables.page();
  const std::uint64_t pt_pasid = tables.page();
  tables.context(dev, 7, pt, 4, kTtTranslate, ptable);
  mem.set64(ptable + 16 * 5, pt_pasid | 1);
  mem.set64(ptable + 16 * 5 + 8, std::uint64_t{11} << kCtxDidShift);
  tables.map(pt, 4, 0x1000, 0xa000);
  tables.map(pt_pasid, 4, 0x1000, 0xc000);
  TranslationRequest q;
  q.requester = dev;
  q.address = 0x1000;
  q.at = 1 * kUs;
  EXPECT_EQ(mmu->translate(q).address, 0xa000u);
  q.has_pasid = true;
  q.pasid = 5;
  EXPECT_EQ(mmu->translate(q).address, 0xc000u);
  q.pasid = 6;
  EXPECT_FALSE(mmu->translate(q).ok);
  EXPECT_EQ(mmu->fault_log().back().reason, FaultReason::kPasidNotPresent);
}

TEST_F(IommuTest, AccessedAndDirtyBitsStayClearWhereTheContextDoesNotEnableThem) {
  params.access_dirty = true;
  build();
  tables.map(pt, 4, 0x3000, 0xd000);
  ASSERT_TRUE(xlate(0x3008, true).ok);
  EXPECT_EQ(mem.get64(pt) & (kPteAccessed | kPteDirty), 0u);
  EXPECT_EQ(mmu->stats().ad_updates, 0u);
}

TEST_F(IommuTest, AccessedAndDirtyBitsReachThePageTables) {
  params.access_dirty = true;
  tables.ad_enable = true;
  build();
  tables.map(pt, 4, 0x3000, 0xd000);
  const std::uint64_t l1 = [&] {
    std::uint64_t t = pt;
    for (unsigned level = 4; level > 1; --level)
      t = mem.get64(t + 8 * ((0x3000ull >> (12 + 9 * (level - 1))) & 0x1ff)) & kPteAddrMask;
    return t + 8 * 3;
  }();
  ASSERT_TRUE(xlate(0x3000).ok);
  EXPECT_NE(mem.get64(l1) & kPteAccessed, 0u);
  EXPECT_EQ(mem.get64(l1) & kPteDirty, 0u);
  EXPECT_NE(mem.get64(pt) & kPteAccessed, 0u);  // upper levels too
  // A write through the entry the read filled walks again to set D.
  const std::uint64_t walks = mmu->stats().walks;
  ASSERT_TRUE(xlate(0x3008, true, 2 * kUs).ok);
  EXPECT_EQ(mmu->stats().walks, walks + 1);
  EXPECT_NE(mem.get64(l1) & kPteDirty, 0u);
  ASSERT_TRUE(xlate(0x3010, true, 3 * kUs).ok);  // now a plain hit
  EXPECT_EQ(mmu->stats().walks, walks + 1);
}

TEST_F(IommuTest, DebugTranslationLeavesCachesAndStatsAlone) {
  build();
  tables.map(pt, 4, 0x1000, 0xa000);
  std::uint64_t out = 0;
  EXPECT_TRUE(mmu->translate_dbg(dev, 0x1008, false, &out));
  EXPECT_EQ(out, 0xa008u);
  EXPECT_FALSE(mmu->translate_dbg(dev, 0x2000, false, &out));
  EXPECT_EQ(mmu->stats().translations, 0u);
  EXPECT_EQ(mmu->stats().walk_reads, 0u);
  EXPECT_EQ(mmu->iotlb_occupancy(), 0u);
  EXPECT_TRUE(mmu->fault_log().empty());
}

TEST_F(IommuTest, RegisterAccessesOutsideTheRulesAreUnsupported) {
  build();
  std::uint8_t b[8] = {};
  EXPECT_EQ(mmu->register_access(0x3, b, 4, false, 0), CplStatus::kUR);
  EXPECT_EQ(mmu->register_access(0x10, b, 2, false, 0), CplStatus::kUR);
  EXPECT_EQ(mmu->register_access(0xffc, b, 8, false, 0), CplStatus::kUR);
  EXPECT_EQ(read64(kVersion) & 0xffffffff, kVersionValue);
  EXPECT_EQ(read64(kCap) & kCapLevelsMask, 4u);
  EXPECT_NE(read64(kGcmd) >> 32 & kGstsTes, 0u);  // GSTS is the upper half of the 0x18 slot
}

}  // namespace
}  // namespace pciesim::models

#include "fabric/config_space/config_space.h"

#include <gtest/gtest.h>

#include "fabric/config_space/capabilities.h"

namespace pciesim::fabric {
namespace {

TEST(ConfigSpace, WriteMaskKeepsReadOnlyBits) {
  ConfigSpace cs;
  cs.define(0x40, 4, 0x12345678, 0x0000ff00);
  cs.write(0x40, 4, 0xffffffff);
  EXPECT_EQ(cs.read(0x40, 4), 0x1234ff78u);
  cs.write(0x41, 1, 0x00);
  EXPECT_EQ(cs.read(0x40, 4), 0x12340078u);
}

TEST(ConfigSpace, GenerationChangesWithEveryRegisterChange) {
  // Decode caches trust a generation: every way a value can change must
  // give a new one, and looking must not.
  ConfigSpace cs;
  cs.define(0x40, 4, 0, 0xffffffff);
  std::uint64_t g = cs.generation();
  auto changed = [&] {
    const bool c = cs.generation() != g;
    g = cs.generation();
    return c;
  };
  cs.write(0x40, 4, 0x11);
  EXPECT_TRUE(changed());
  cs.set8(0x41, 1);
  EXPECT_TRUE(changed());
  cs.set16(0x42, 2);
  EXPECT_TRUE(changed());
  cs.set32(0x40, 3);
  EXPECT_TRUE(changed());
  cs.set_bits16(0x40, 0x8, true);
  EXPECT_TRUE(changed());
  cs.reset(ResetKind::kConventional);
  EXPECT_TRUE(changed());
  cs.define(0x44, 2, 7);
  EXPECT_TRUE(changed());
  (void)cs.read(0x40, 4);
  (void)cs.get32(0x40);
  (void)cs.find_capability(PCI_CAP_ID_EXP);
  EXPECT_FALSE(changed());
  // A copy carries the generation of its contents; changing either one
  // moves that one only.
  ConfigSpace copy = cs;
  EXPECT_EQ(copy.generation(), cs.generation());
  copy.write(0x40, 4, 0x22);
  EXPECT_NE(copy.generation(), cs.generation());
  EXPECT_FALSE(changed());
  cs = copy;
  EXPECT_EQ(cs.read(0x40, 4), 0x22u);
  EXPECT_TRUE(changed());
}

TEST(ConfigSpace, WriteOneToClear) {
  ConfigSpace cs;
  cs.define(0x44, 2, 0, 0, 0xff00);
  cs.set16(0x44, 0xa5a5);  // hardware sets status bits
  cs.write(0x44, 2, 0x0500);
  EXPECT_EQ(cs.read(0x44, 2), 0xa0a5u);  // only the written 1s in the W1C byte cleared
  cs.write(0x44, 2, 0x0000);
  EXPECT_EQ(cs.read(0x44, 2), 0xa0a5u);  // writing 0 changes nothing
}

TEST(ConfigSpace, StickyAndFlrKeepSurviveTheRightResets) {
  ConfigSpace cs;
  cs.define(0x50, 1, 0, 0xff, 0, 0x0f);  // low nibble sticky
  cs.define(0x51, 1, 0, 0xff);
  cs.set_flr_keep(0x51, 1, 0x01);
  cs.write(0x50, 2, 0x01ff);
  cs.reset(ResetKind::kFlr);
  EXPECT_EQ(cs.read(0x50, 1), 0x0fu);
  EXPECT_EQ(cs.read(0x51, 1), 0x01u);
  cs.write(0x50, 2, 0x01ff);
  cs.reset(ResetKind::kConventional);
  EXPECT_EQ(cs.read(0x50, 1), 0x0fu);
  EXPECT_EQ(cs.read(0x51, 1), 0x00u);  // flr-keep bits do not survive hot reset
  cs.reset(ResetKind::kFundamental);
  EXPECT_EQ(cs.read(0x50, 1), 0x00u);
}

TEST(ConfigSpace, SharedLayoutIsCopiedOnWrite) {
  ConfigSpace a;
  a.define(0x60, 2, 0x1111, 0xffff);
  ConfigSpace b = ConfigSpace::sharing_layout_of(a);
  a.write(0x60, 2, 0x2222);
  EXPECT_EQ(b.read(0x60, 2), 0x1111u);  // b starts from the reset image
  b.set_write_mask(0x60, 2, 0);         // b's rule changes, a's must not
  b.write(0x60, 2, 0x3333);
  a.write(0x60, 2, 0x4444);
  EXPECT_EQ(b.read(0x60, 2), 0x1111u);
  EXPECT_EQ(a.read(0x60, 2), 0x4444u);
}

struct Recorder : ConfigListener {
  std::vector<std::pair<int, ConfigWrite>> writes;
  int reads = 0;
  void config_written(ConfigSpace&, int id, const ConfigWrite& w) override {
    writes.push_back({id, w});
  }
  void config_before_read(ConfigSpace& cs, int) override {
    ++reads;
    cs.set8(0x70, 0x5a);
  }
};

TEST(ConfigSpace, WatchersSeeOldAndNewValues) {
  ConfigSpace cs;
  cs.define(0x04, 2, 0x0000, 0x0006);
  cs.watch_writes(0x04, 2, 7);
  cs.watch_reads(0x70, 1, 9);
  Recorder r;
  cs.set_listener(&r);
  cs.write(0x04, 4, 0xffff0006);  // dword write covering Command and Status
  ASSERT_EQ(r.writes.size(), 1u);
  EXPECT_EQ(r.writes[0].first, 7);
  EXPECT_EQ(r.writes[0].second.old_field(0x04, 2), 0u);
  EXPECT_EQ(r.writes[0].second.new_field(0x04, 2), 6u);
  EXPECT_EQ(r.writes[0].second.written_field(0x06, 2), 0xffffu);
  cs.write(0x08, 4, 1);  // outside the watched range
  EXPECT_EQ(r.writes.size(), 1u);
  EXPECT_EQ(cs.read(0x70, 1), 0x5au);  // computed on demand
  EXPECT_EQ(r.reads, 1);
}

TEST(ConfigSpace, ValidAccessRules) {
  EXPECT_TRUE(ConfigSpace::valid_access(0x10, 4));
  EXPECT_FALSE(ConfigSpace::valid_access(0x11, 2));
  EXPECT_FALSE(ConfigSpace::valid_access(0x10, 3));
  EXPECT_FALSE(ConfigSpace::valid_access(0xffe, 4));
}

TEST(Capabilities, LegacyAndExtendedChainsAreWalkable) {
  ConfigSpace cs;
  build_type0_header(cs, {0x1ded, 0x0001, 1, 0x088000, 0x1ded, 0x0001, false, 0}, {});
  std::uint16_t pm = add_pm_capability(cs, {});
  std::uint16_t exp = add_pcie_capability(cs, {});
  MsixOptions mo;
  mo.table_size = 4;
  std::uint16_t msix = add_msix_capability(cs, mo);
  std::uint16_t aer = add_aer_capability(cs, false);
  std::uint16_t ari = add_ari_capability(cs, 0);
  EXPECT_TRUE(cs.read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
  EXPECT_EQ(cs.read(PCI_CAPABILITY_LIST, 1), pm);
  EXPECT_EQ(cs.find_capability(PCI_CAP_ID_PM), pm);
  EXPECT_EQ(cs.find_capability(PCI_CAP_ID_EXP), exp);
  EXPECT_EQ(cs.find_capability(PCI_CAP_ID_MSIX), msix);
  EXPECT_EQ(cs.find_capability(PCI_CAP_ID_MSI), 0);
  EXPECT_EQ((std::vector<std::uint16_t>{pm, exp, msix}), cs.capability_offsets());
  EXPECT_EQ(aer, kExtendedCapBase);
  EXPECT_EQ(cs.find_extended_capability(PCI_EXT_CAP_ID_ARI), ari);
  EXPECT_EQ(PCI_EXT_CAP_NEXT(cs.read(aer, 4)), ari);
  EXPECT_EQ(PCI_EXT_CAP_NEXT(cs.read(ari, 4)), 0u);
  // Capabilities never overlap.
  EXPECT_GE(exp, pm + PCI_PM_SIZEOF);
  EXPECT_GE(msix, exp + 0x3c);
  EXPECT_EQ(cs.read(msix + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE, 3u);
}

TEST(Capabilities, MalformedListTerminates) {
  ConfigSpace cs;
  cs.define(PCI_STATUS, 2, PCI_STATUS_CAP_LIST);
  cs.define(PCI_CAPABILITY_LIST, 1, 0x40);
  cs.define(0x40, 2, 0x4001);  // points at itself
  EXPECT_LE(cs.capability_offsets().size(), 48u);
  cs.define(0x100, 4, 0x1000000d);  // extended cap whose next is 0x100
  EXPECT_LE(cs.extended_capability_offsets().size(), 960u);
}

TEST(Capabilities, BarSizingByWritingAllOnes) {
  ConfigSpace cs;
  BarSpecs bars{};
  bars[0] = {16 * 1024, true, false};
  bars[2] = {4096, false, false};
  bars[4] = {1 << 20, true, true};
  build_type0_header(cs, {}, bars);
  cs.write(PCI_BASE_ADDRESS_0, 4, 0xffffffff);
  cs.write(PCI_BASE_ADDRESS_1, 4, 0xffffffff);
  EXPECT_EQ(cs.read(PCI_BASE_ADDRESS_0, 4), 0xffffc004u);  // 16K, 64-bit, non-prefetchable
  EXPECT_EQ(cs.read(PCI_BASE_ADDRESS_1, 4), 0xffffffffu);
  cs.write(PCI_BASE_ADDRESS_2, 4, 0xffffffff);
  EXPECT_EQ(cs.read(PCI_BASE_ADDRESS_2, 4), 0xfffff000u);  // 4K, 32-bit
  cs.write(PCI_BASE_ADDRESS_3, 4, 0xffffffff);
  EXPECT_EQ(cs.read(PCI_BASE_ADDRESS_3, 4), 0u);  // unimplemented BAR reads 0
  cs.write(PCI_BASE_ADDRESS_4, 4, 0xffffffff);
  EXPECT_EQ(cs.read(PCI_BASE_ADDRESS_4, 4), 0xfff0000cu);  // 1M, 64-bit, prefetchable
  cs.write(PCI_BASE_ADDRESS_4, 4, 0x80000000);
  cs.write(PCI_BASE_ADDRESS_5, 4, 0x40);
  EXPECT_EQ(bar_address(cs, PCI_BASE_ADDRESS_4), 0x4080000000ull);
}

TEST(Capabilities, SriovRegisters) {
  ConfigSpace cs;
  build_type0_header(cs, {}, {});
  SriovOptions so;
  so.total_vfs = 8;
  so.first_vf_offset = 4;
  so.vf_stride = 2;
  so.vf_device_id = 0x1234;
  so.vf_bars[0] = {16384, true, false};
  std::uint16_t c = add_sriov_capability(cs, so);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_TOTAL_VF, 2), 8u);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_INITIAL_VF, 2), 8u);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_VF_OFFSET, 2), 4u);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_VF_STRIDE, 2), 2u);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_VF_DID, 2), 0x1234u);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_SUP_PGSIZE, 4), 0x553u);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_SYS_PGSIZE, 4), 1u);
  cs.write(c + PCI_SRIOV_TOTAL_VF, 2, 99);  // read-only
  EXPECT_EQ(cs.read(c + PCI_SRIOV_TOTAL_VF, 2), 8u);
  cs.write(c + PCI_SRIOV_BAR, 4, 0xffffffff);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_BAR, 4), 0xffffc004u);
  cs.write(c + PCI_SRIOV_CTRL, 2, 0xffff);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_CTRL, 2),
            unsigned(PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE | PCI_SRIOV_CTRL_ARI));
  cs.reset(ResetKind::kFlr);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_CTRL, 2), unsigned(PCI_SRIOV_CTRL_ARI));
  cs.reset(ResetKind::kConventional);
  EXPECT_EQ(cs.read(c + PCI_SRIOV_CTRL, 2), 0u);
}

TEST(Capabilities, RecordErrorLogsAerAndDeviceStatus) {
  ConfigSpace cs;
  build_type0_header(cs, {}, {});
  std::uint16_t exp = add_pcie_capability(cs, {});
  std::uint16_t aer = add_aer_capability(cs, false);
  record_error(cs, ErrorKind::kUnsupportedRequest, {0x11, 0x22, 0x33, 0x44});
  EXPECT_EQ(cs.read(aer + PCI_ERR_UNCOR_STATUS, 4), unsigned(PCI_ERR_UNC_UNSUP));
  EXPECT_EQ(cs.read(aer + PCI_ERR_CAP, 4) & 0x1f, 20u);
  EXPECT_EQ(cs.read(aer + PCI_ERR_HEADER_LOG, 4), 0x11u);
  EXPECT_EQ(cs.read(exp + PCI_EXP_DEVSTA, 2), unsigned(PCI_EXP_DEVSTA_NFED | PCI_EXP_DEVSTA_URD));
  // A second error does not overwrite the first error pointer / header log.
  record_error(cs, ErrorKind::kAcsViolation, {0x99, 0, 0, 0});
  EXPECT_EQ(cs.read(aer + PCI_ERR_CAP, 4) & 0x1f, 20u);
  EXPECT_EQ(cs.read(aer + PCI_ERR_HEADER_LOG, 4), 0x11u);
  EXPECT_TRUE(cs.read(aer + PCI_ERR_UNCOR_STATUS, 4) & PCI_ERR_UNC_ACSV);
  // Software clears with RW1C; AER status is sticky across FLR.
  cs.reset(ResetKind::kFlr);
  EXPECT_TRUE(cs.read(aer + PCI_ERR_UNCOR_STATUS, 4) & PCI_ERR_UNC_UNSUP);
  cs.write(aer + PCI_ERR_UNCOR_STATUS, 4, PCI_ERR_UNC_UNSUP);
  EXPECT_EQ(cs.read(aer + PCI_ERR_UNCOR_STATUS, 4), unsigned(PCI_ERR_UNC_ACSV));
}

TEST(Capabilities, VfDeviceControlOnlyHasFlr) {
  ConfigSpace cs;
  build_type0_header(cs, {}, {});
  PcieCapOptions o;
  o.vf = true;
  o.flr = true;
  std::uint16_t exp = add_pcie_capability(cs, o);
  cs.write(exp + PCI_EXP_DEVCTL, 2, 0xffff);
  EXPECT_EQ(cs.read(exp + PCI_EXP_DEVCTL, 2), 0u);  // FLR bit reads as zero
  EXPECT_TRUE(cs.read(exp + PCI_EXP_DEVCAP, 4) & PCI_EXP_DEVCAP_FLR);
}

}  // namespace
}  // namespace pciesim::fabric

#include "fabric/fault/aer_inject.h"

#include <linux/pci_regs.h>

#include <gtest/gtest.h>

#include "fabric/common/error.h"

namespace pciesim::fabric {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_aer_inject(text, "t.aer");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(AerInject, ReadsTheToolsExampleFormat) {
  // Two records: one with PCI_ID and keywords sharing a line, one with
  // BUS/DEV/FN in hex and decimal, repeated status keywords ORed.
  const auto r = parse_aer_inject(
      "# a comment\n"
      "aer\n"
      "PCI_ID 0000:02:00.1 UNCOR_STATUS COMP_TIME  # trailing comment\n"
      "HEADER_LOG 0x4000001 0x100000ff 0xdead0000 0\n"
      "AER BUS 0x3 DEV 0 FN 2\n"
      "COR_STATUS BAD_TLP cor rcvr\n"
      "UNCOR 0x100000\n",
      "t.aer");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].pci_id(), "02:00.1");
  EXPECT_EQ(r[0].uncor_status, PCI_ERR_UNC_COMP_TIME);
  EXPECT_EQ(r[0].cor_status, 0u);
  EXPECT_EQ(r[0].header_log[0], 0x4000001u);
  EXPECT_EQ(r[0].header_log[2], 0xdead0000u);
  EXPECT_EQ(r[0].where, "t.aer:2");
  EXPECT_EQ(r[1].pci_id(), "03:00.2");
  EXPECT_EQ(r[1].cor_status, PCI_ERR_COR_BAD_TLP | PCI_ERR_COR_RCVR);
  EXPECT_EQ(r[1].uncor_status, PCI_ERR_UNC_UNSUP);
  EXPECT_EQ(r[1].where, "t.aer:5");
}

TEST(AerInject, RefusesWhatItCannotReadWithItsLine) {
  EXPECT_NE(error_of("PCI_ID 02:00.0\n").find("t.aer:1"), std::string::npos);
  EXPECT_NE(error_of("AER\nPCI_ID 02:00.0\nUNCOR_STATUS BOGUS\n").find("t.aer:3"),
            std::string::npos);
  EXPECT_NE(error_of("AER\nPCI_ID 02:00.0\nUNCOR_STATUS BOGUS\n").find("'BOGUS'"),
            std::string::npos);
  EXPECT_NE(error_of("AER\nPCI_ID 2:0\nCOR RCVR\n").find("PCI_ID"), std::string::npos);
  EXPECT_NE(error_of("AER\nBUS 1 DEV 0\nCOR RCVR\n").find("BUS, DEV and FN"), std::string::npos);
  EXPECT_NE(error_of("AER\nBUS 1 DEV 40 FN 0\nCOR RCVR\n").find("DEV"), std::string::npos);
  EXPECT_NE(error_of("AER\nCOR RCVR\n").find("names no device"), std::string::npos);
  EXPECT_NE(error_of("AER\nID 01:00.0\n").find("injects no error"), std::string::npos);
  EXPECT_NE(error_of("AER\nID 01:00.0 COR RCVR HEADER_LOG 1 2 3\n").find("four"),
            std::string::npos);
  EXPECT_NE(error_of("AER\nID 01:00.0 COR RCVR HL 1 2 3 0x100000000\n").find("0x100000000"),
            std::string::npos);
  EXPECT_NE(error_of("AER\nID 01:00.0 COR RCVR FOO\n").find("unknown keyword 'FOO'"),
            std::string::npos);
  EXPECT_NE(error_of("").find("no AER record"), std::string::npos);
  EXPECT_NE(error_of("AER\nID 01:00.0 COR -1\n").find("'-1'"), std::string::npos);
  EXPECT_NE(error_of("AER\nID 01:00.0 COR\n").find("needs"), std::string::npos);
}

TEST(AerInject, StatusNamesMapToTheirRegisterBits) {
  std::uint32_t b = 0;
  ASSERT_TRUE(parse_aer_status(false, "surpdn", &b));
  EXPECT_EQ(b, PCI_ERR_UNC_SURPDN);
  ASSERT_TRUE(parse_aer_status(false, "MALF_TLP", &b));
  EXPECT_EQ(b, PCI_ERR_UNC_MALF_TLP);
  ASSERT_TRUE(parse_aer_status(true, "REP_TIMER", &b));
  EXPECT_EQ(b, PCI_ERR_COR_REP_TIMER);
  // A correctable name is not an uncorrectable one.
  EXPECT_FALSE(parse_aer_status(false, "BAD_TLP", &b));
  EXPECT_FALSE(parse_aer_status(true, "0", &b));
  ASSERT_TRUE(parse_aer_status(true, "0x41", &b));
  EXPECT_EQ(b, 0x41u);
}

TEST(AerInject, RandomInputEndsInRecordsOrAUsageError) {
  // Words of the language and junk, in random order: the parser returns or
  // throws UsageError, never anything else.
  const char* vocab[] = {
      "AER",     "PCI_ID",       "ID", "BUS",    "DEV",   "FN", "DOMAIN", "COR_STATUS",
      "UNCOR",   "HEADER_LOG",   "HL", "0",      "0x1f",  "7",  "-1",     "99999999999999999999",
      "02:00.1", "0000:ff:1f.7", ":",  "RCVR",   "UNSUP", "#",  "\n",     "\t",
      "\xff",    "0x",           "..", "BAD_TLP"};
  std::uint64_t seed = 12345;
  auto next = [&] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<unsigned>(seed >> 33);
  };
  unsigned parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    // Half of them start with a valid record, so that junk after it is
    // exercised as well as junk alone.
    std::string text = next() % 2 ? "AER ID 02:00.1 COR RCVR\n" : "";
    const unsigned n = next() % 24;
    for (unsigned k = 0; k < n; ++k) {
      const std::string w = vocab[next() % (sizeof vocab / sizeof vocab[0])];
      text += w + (next() % 4 ? " " : "\n");
    }
    try {
      parsed += !parse_aer_inject(text, "r").empty();
    } catch (const UsageError&) {
    }
  }
  EXPECT_GT(parsed, 0u);  // some inputs are valid
}

}  // namespace
}  // namespace pciesim::fabric

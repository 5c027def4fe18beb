// The migration image format (docs/migration.md, "Image format"): round
// trip, pre-copy chains, and every kind of bad stream refused with its own
// error and nothing applied.
#include "models/dma_endpoint/migration_image.h"

#include <gtest/gtest.h>

#include <cstring>

namespace pciesim::models::mig {
namespace {

constexpr std::uint64_t kDevmem = 64 << 10;
constexpr std::uint32_t kVectors = 2;
const ImageIdentity kId{0x5ec0, 0x0002};

FunctionState sample() {
  FunctionState s;
  s.devmem_size = kDevmem;
  s.vectors = kVectors;
  s.regs.ctrl = 5;
  s.regs.ring_base = 0x123456789000ull;
  s.regs.ring_size = 256;
  s.regs.head = 7;
  s.regs.tail = 9;
  s.regs.bytes_read = 1ull << 40;
  s.progress.fetch_index = 7;
  s.progress.in_progress = true;
  s.progress.desc_index = 7;
  s.progress.desc_done = 12288;
  s.progress.finish.push_back({6, 42, 3, 0, 4096, true});
  s.msix_table.assign(kVectors * 16, 0);
  s.msix_table[0] = 0xfe;
  s.pba.assign(1, 2);
  s.msix_resend = true;
  s.pages[0].assign(kPageBytes, 0x11);
  s.pages[4096].assign(kPageBytes, 0x22);
  s.pages[8 * 4096].assign(kPageBytes, 0x33);
  return s;
}

DecodeResult decode(const std::vector<std::uint8_t>& v) {
  return decode_stream(v.data(), v.size(), kId, kDevmem, kVectors);
}

void put32(std::vector<std::uint8_t>& v, std::size_t at, std::uint32_t x) {
  for (int i = 0; i < 4; ++i)
    v[at + i] = static_cast<std::uint8_t>(x >> (8 * i));
}
// Recomputes the header CRC after an edit of the records.
void reseal(std::vector<std::uint8_t>& v, std::size_t image_at = 0) {
  std::uint64_t len = 0;
  for (int i = 0; i < 8; ++i)
    len |= std::uint64_t{v[image_at + 16 + i]} << (8 * i);
  put32(v, image_at + 24, crc32(v.data() + image_at + kHeaderBytes, len - kHeaderBytes));
}

TEST(MigrationImage, RoundTripIsExact) {
  const FunctionState s = sample();
  std::vector<std::uint8_t> img = encode(s, kId, kImageFull | kImageFinal);
  EXPECT_EQ(img.size(), encoded_size(s));
  EXPECT_LE(img.size(), max_image_size(kDevmem, kVectors));
  DecodeResult r = decode(img);
  ASSERT_EQ(r.error, ImageError::kNone) << r.message;
  EXPECT_EQ(r.images, 1u);
  EXPECT_EQ(r.skipped_records, 1u);  // the optional creator record
  EXPECT_TRUE(r.state.regs == s.regs);
  EXPECT_TRUE(r.state.progress == s.progress);
  EXPECT_EQ(r.state.msix_table, s.msix_table);
  EXPECT_EQ(r.state.pba, s.pba);
  EXPECT_TRUE(r.state.msix_resend);
  EXPECT_EQ(r.state.pages, s.pages);
}

TEST(MigrationImage, Crc32KnownValue) {
  const char* text = "123456789";
  EXPECT_EQ(crc32(reinterpret_cast<const std::uint8_t*>(text), 9), 0xcbf43926u);
}

TEST(MigrationImage, PreCopyChainAppliesInOrder) {
  FunctionState first = sample();
  FunctionState delta = sample();
  delta.pages.clear();
  delta.pages[4096].assign(kPageBytes, 0x44);    // rewritten
  delta.pages[12 * 4096].assign(kPageBytes, 0);  // written with zeros
  delta.regs.head = 8;
  std::vector<std::uint8_t> stream = encode(first, kId, kImageFull);
  std::vector<std::uint8_t> b = encode(delta, kId, kImageFinal);
  stream.insert(stream.end(), b.begin(), b.end());
  DecodeResult r = decode(stream);
  ASSERT_EQ(r.error, ImageError::kNone) << r.message;
  EXPECT_EQ(r.images, 2u);
  EXPECT_EQ(r.state.regs.head, 8u);
  EXPECT_EQ(r.state.pages.at(0)[0], 0x11);
  EXPECT_EQ(r.state.pages.at(4096)[0], 0x44);
  EXPECT_EQ(r.state.pages.at(8 * 4096)[0], 0x33);
  EXPECT_EQ(r.state.pages.at(12 * 4096)[0], 0);
  // Without the final image the stream is incomplete.
  std::vector<std::uint8_t> only_first = encode(first, kId, kImageFull);
  EXPECT_EQ(decode(only_first).error, ImageError::kTruncated);
  // A delta first is out of order.
  EXPECT_EQ(decode(b).error, ImageError::kMalformed);
}

TEST(MigrationImage, EveryCutIsTruncated) {
  std::vector<std::uint8_t> img = encode(sample(), kId, kImageFull | kImageFinal);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{31}, std::size_t{32},
                        img.size() / 2, img.size() - 1}) {
    std::vector<std::uint8_t> cut(img.begin(), img.begin() + n);
    DecodeResult r = decode(cut);
    EXPECT_EQ(r.error, ImageError::kTruncated) << n << ": " << r.message;
  }
}

TEST(MigrationImage, EachCorruptionHasItsError) {
  const std::vector<std::uint8_t> good = encode(sample(), kId, kImageFull | kImageFinal);
  {
    auto v = good;
    v[0] ^= 0xff;
    EXPECT_EQ(decode(v).error, ImageError::kBadMagic);
  }
  {
    auto v = good;
    v[4] = 2;  // major version 2
    EXPECT_EQ(decode(v).error, ImageError::kVersion);
  }
  {
    auto v = good;
    v[10] = 0x77;  // device ID
    EXPECT_EQ(decode(v).error, ImageError::kWrongDevice);
  }
  {
    auto v = good;
    v[v.size() - 40] ^= 1;  // a byte of a page
    DecodeResult r = decode(v);
    EXPECT_EQ(r.error, ImageError::kChecksum);
    EXPECT_EQ(r.offset, 0u);
  }
  {
    // Another geometry: same IDs, more device memory.
    DecodeResult r = decode_stream(good.data(), good.size(), kId, kDevmem * 2, kVectors);
    EXPECT_EQ(r.error, ImageError::kWrongDevice);
  }
}

// Appends a record to a one-image stream and fixes length, count and CRC.
std::vector<std::uint8_t> with_record(std::uint16_t type, std::uint16_t flags,
                                      std::uint32_t declared, std::size_t actual) {
  std::vector<std::uint8_t> v = encode(sample(), kId, kImageFull | kImageFinal);
  for (int i = 0; i < 2; ++i)
    v.push_back(static_cast<std::uint8_t>(type >> (8 * i)));
  for (int i = 0; i < 2; ++i)
    v.push_back(static_cast<std::uint8_t>(flags >> (8 * i)));
  for (int i = 0; i < 4; ++i)
    v.push_back(static_cast<std::uint8_t>(declared >> (8 * i)));
  v.insert(v.end(), actual, 0xab);
  const std::uint64_t len = v.size();
  for (int i = 0; i < 8; ++i)
    v[16 + i] = static_cast<std::uint8_t>(len >> (8 * i));
  std::uint32_t count = 0;
  std::memcpy(&count, v.data() + 28, 4);
  put32(v, 28, count + 1);
  reseal(v);
  return v;
}

TEST(MigrationImage, UnknownRecords) {
  DecodeResult optional = decode(with_record(0x7777, 0, 16, 16));
  ASSERT_EQ(optional.error, ImageError::kNone) << optional.message;
  EXPECT_EQ(optional.skipped_records, 2u);
  EXPECT_EQ(decode(with_record(0x7777, kRecMandatory, 16, 16)).error,
            ImageError::kUnknownMandatory);
  EXPECT_EQ(decode(with_record(kRecDevmem, kRecMandatory, 0x7ffffff0u, 16)).error,
            ImageError::kOversize);
  EXPECT_EQ(decode(with_record(0x7777, 0, 64, 16)).error, ImageError::kMalformed);
}

TEST(MigrationImage, EngineStateOutOfRangeRefused) {
  // A correctly sealed image whose engine state the engine cannot be in.
  for (int k = 0; k < 4; ++k) {
    FunctionState s = sample();
    if (k == 0) s.regs.ring_size = 3;
    if (k == 1) s.regs.head = 256;
    if (k == 2) s.regs.prefetch = 0;
    if (k == 3) s.progress.finish.push_back({300, 0, 0, 0, 0, false});
    std::vector<std::uint8_t> v = encode(s, kId, kImageFull | kImageFinal);
    EXPECT_EQ(decode(v).error, ImageError::kMalformed) << k;
  }
}

TEST(MigrationImage, DevmemRecordOutsideMemoryRefused) {
  FunctionState s = sample();
  s.pages.clear();
  s.pages[kDevmem].assign(kPageBytes, 1);  // one page past the end
  std::vector<std::uint8_t> v = encode(s, kId, kImageFull | kImageFinal);
  EXPECT_EQ(decode(v).error, ImageError::kMalformed);
}

}  // namespace
}  // namespace pciesim::models::mig

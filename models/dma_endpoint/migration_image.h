// The migration state image of one DMA-engine function, and its encoding:
// a versioned, self-describing record stream (docs/migration.md, "Image
// format"). Plain C++, no SystemC: the PF's firmware encodes and decodes
// it, the tests drive it directly.
//
// A stream is a sequence of images. Each image is a 32-byte header (magic,
// format version, vendor and device ID, flags, total length, CRC-32 of the
// records, record count) followed by typed records (type, flags with the
// mandatory bit, length, payload). The first image of a stream is full
// (every non-zero device-memory page); pre-copy adds incremental images
// (pages written since the previous one); the last image carries the
// FINAL flag. A stream without a final image is truncated.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pciesim::models::mig {

constexpr std::uint32_t kMagic = 0x474d5350;  // "PSMG" in memory order
constexpr std::uint16_t kVersionMajor = 1;
constexpr std::uint16_t kVersionMinor = 0;
constexpr std::uint32_t kHeaderBytes = 32;
constexpr std::uint32_t kRecordHeaderBytes = 8;
constexpr std::uint32_t kPageBytes = 4096;  // dirty-tracking and image page

enum ImageFlags : std::uint32_t {
  kImageFull = 1u << 0,   // carries the whole state (device memory: all non-zero pages)
  kImageFinal = 1u << 1,  // the last image of the stream (taken with the function frozen)
};

enum RecordType : std::uint16_t {
  kRecGeometry = 1,     // device-memory size, MSI-X vectors: must match the target
  kRecEngineRegs = 2,   // the engine's register file
  kRecProgress = 3,     // fetch position, the descriptor in progress, finished descriptors
  kRecMsixTable = 4,    // MSI-X table (16 bytes per vector)
  kRecMsixPba = 5,      // pending bits, and whether a resend was due
  kRecDevmem = 6,       // a run of device-memory pages: offset + bytes
  kRecCreator = 0x100,  // optional: who wrote the image (text)
};
enum RecordFlags : std::uint16_t { kRecMandatory = 1u << 0 };

struct EngineRegsState {
  std::uint32_t ctrl = 0;
  std::uint64_t ring_base = 0;
  std::uint32_t ring_size = 0;
  std::uint32_t head = 0;
  std::uint32_t tail = 0;
  std::uint64_t cq_base = 0;
  std::uint32_t cq_tail = 0;
  std::uint32_t completed = 0;
  std::uint32_t error = 0;
  std::uint64_t error_addr = 0;
  std::uint32_t irq_vector = 0;
  std::uint32_t max_reads = 0;
  std::uint32_t prefetch = 8;
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;
  bool halted = false;
  bool operator==(const EngineRegsState&) const;
};

// A descriptor whose data is complete but whose completion record or
// interrupt had not been sent.
struct FinishState {
  std::uint32_t index = 0;
  std::uint32_t cookie = 0;
  std::uint32_t flags = 0;
  std::uint32_t status = 0;
  std::uint32_t bytes = 0;
  bool record_done = false;
  bool operator==(const FinishState&) const;
};

struct ProgressState {
  std::uint32_t fetch_index = 0;  // next descriptor to fetch on resume
  bool in_progress = false;       // a descriptor was partly done
  std::uint32_t desc_index = 0;
  std::uint32_t desc_done = 0;  // its bytes already written
  std::vector<FinishState> finish;
  bool operator==(const ProgressState&) const;
};

// What one image holds, decoded.
struct FunctionState {
  std::uint64_t devmem_size = 0;
  std::uint32_t vectors = 0;
  EngineRegsState regs;
  ProgressState progress;
  std::vector<std::uint8_t> msix_table;
  std::vector<std::uint64_t> pba;
  bool msix_resend = false;
  // Device-memory pages by offset (kPageBytes each). Full image: every
  // non-zero page (the rest are zero); incremental: the pages written.
  std::map<std::uint64_t, std::vector<std::uint8_t>> pages;
};

struct ImageIdentity {
  std::uint16_t vendor_id = 0;
  std::uint16_t device_id = 0;
};

// Serialises `s` as one image.
std::vector<std::uint8_t> encode(const FunctionState& s, const ImageIdentity& id,
                                 std::uint32_t flags);
// Bytes encode() would produce (for size queries).
std::uint64_t encoded_size(const FunctionState& s);
// The largest image a function of this geometry can have.
std::uint64_t max_image_size(std::uint64_t devmem_size, std::uint32_t vectors);

enum class ImageError : std::uint32_t {
  kNone = 0,
  kTruncated,         // the stream ends inside an image, or without a final image
  kBadMagic,          // not an image
  kVersion,           // another major format version
  kWrongDevice,       // another vendor/device ID or geometry
  kChecksum,          // CRC-32 mismatch
  kUnknownMandatory,  // a mandatory record of an unknown type
  kOversize,          // a record larger than the device can hold
  kMalformed,         // inconsistent lengths, missing records, images out of order
};
const char* image_error_name(ImageError e);

struct DecodeResult {
  ImageError error = ImageError::kNone;
  std::string message;  // what and where (byte offset in the stream)
  std::uint64_t offset = 0;
  FunctionState state;  // the stream applied in order (valid when error == kNone)
  unsigned images = 0;
  unsigned skipped_records = 0;  // optional records of unknown type
};

// Decodes and applies a whole stream for a target of geometry
// (devmem_size, vectors) and identity `id`; nothing is partially applied.
DecodeResult decode_stream(const std::uint8_t* data, std::uint64_t length, const ImageIdentity& id,
                           std::uint64_t devmem_size, std::uint32_t vectors);

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32).
std::uint32_t crc32(const std::uint8_t* data, std::uint64_t length, std::uint32_t crc = 0);

}  // namespace pciesim::models::mig

// Programming interface of the pciesim DMA copy engine (PF and every VF
// alike). The host driver in sim/host uses these definitions; docs/dma-engine.md
// describes the behaviour.
//
// BAR0 (16 KiB, 64-bit, non-prefetchable):
//   0x0000-0x0fff  registers below (32-bit accesses; 64-bit counters may be
//                  read with one 8-byte access)
//   0x2000         MSI-X table (16 bytes per vector)
//   0x3000         MSI-X PBA
//   0x0800-0x08ff  PF only, with migration support: the firmware's migration
//                  mailbox (MigReg below; docs/migration.md)
// BAR2 (64-bit, prefetchable): device memory, a DMA source/destination and
//   a peer-to-peer target.
#pragma once

#include <cstdint>

namespace pciesim::models::dma {

constexpr std::uint64_t kBar0Size = 16 * 1024;
constexpr std::uint32_t kMsixTableOffset = 0x2000;
constexpr std::uint32_t kMsixPbaOffset = 0x3000;

enum Reg : std::uint32_t {
  kId = 0x000,          // RO "DMA1"
  kVersion = 0x004,     // RO
  kCtrl = 0x008,        // RW
  kStatus = 0x00c,      // RO
  kRingBaseLo = 0x010,  // RW (while disabled)
  kRingBaseHi = 0x014,
  kRingSize = 0x018,  // RW: entries, power of two 2..65536 (while disabled)
  kRingHead = 0x01c,  // RO: next descriptor the engine will consume
  kRingTail = 0x020,  // RW: doorbell; next free slot the driver will fill
  kCqBaseLo = 0x024,  // RW: completion ring (same size as the descriptor ring)
  kCqBaseHi = 0x028,
  kCqTail = 0x02c,       // RO: next completion slot the engine will write
  kCompleted = 0x030,    // RO: descriptors completed (wraps)
  kError = 0x034,        // RW1C: error code; clearing it resumes a halted engine
  kErrorAddrLo = 0x038,  // RO: address of the failing request
  kErrorAddrHi = 0x03c,
  kIrqVector = 0x040,     // RW: MSI-X vector for completion interrupts
  kMaxReads = 0x044,      // RW: outstanding read requests (<= tags; 0 = all tags)
  kPrefetch = 0x048,      // RW: descriptors fetched per read (1..32)
  kBytesRead = 0x050,     // RO 64-bit: bytes DMA-read over PCIe
  kBytesWritten = 0x058,  // RO 64-bit: bytes DMA-written over PCIe
};

// ---- Traffic generator (every function; docs/dma-engine.md) ----
// The engine's built-in DMA benchmark, as pcie-bench's firmware drives a
// programmable NIC's DMA engines: COUNT transfers of SIZE bytes between a
// host window and device memory, with no descriptors over PCIe. Transfer
// i uses host address BASE + slot * stride + HOST_OFFSET, stride = SIZE +
// HOST_OFFSET rounded up to 64 bytes, slot = i mod (WINDOW / stride)
// (sequential) or drawn uniformly from SEED (random); the device side is
// DEV_OFFSET. At most OUTSTANDING transfers are in flight (0 = as many as
// the tags and staging buffer allow). Write-read (GEN_CTRL mode 2) writes
// SIZE bytes then reads them back from the same address, one pair at a time.
enum GenReg : std::uint32_t {
  kGenBaseLo = 0x100,       // RW: host window (DMA address)
  kGenBaseHi = 0x104,       // RW
  kGenWindow = 0x108,       // RW: window bytes
  kGenSize = 0x10c,         // RW: bytes per transfer (1..4096)
  kGenCountLo = 0x110,      // RW: transfers
  kGenCountHi = 0x114,      // RW
  kGenSeed = 0x118,         // RW: random offsets' seed
  kGenHostOffset = 0x11c,   // RW: offset within each host slot (0..63)
  kGenDevOffset = 0x120,    // RW: device-memory offset
  kGenOutstanding = 0x124,  // RW: transfers in flight at most (0 = engine limit)
  kGenCtrl = 0x128,         // RW: GenCtrl bits; write kGenStart to begin
  kGenStatus = 0x12c,       // RO: GenStatus bits
  kGenDoneLo = 0x130,       // RO: transfers completed
  kGenDoneHi = 0x134,       // RO
};
enum GenCtrl : std::uint32_t {
  kGenStart = 1u << 0,   // self-clearing
  kGenStop = 1u << 1,    // self-clearing: no new transfers
  kGenRandom = 1u << 2,  // random slots (else sequential)
  kGenModeShift = 4,     // bits 5:4: 0 read (host -> device), 1 write, 2 write-read,
                         // 3 reads and writes alternating
  kGenModeMask = 3u << 4,
};
enum GenStatus : std::uint32_t {
  kGenRunning = 1u << 0,
  kGenBadArgs = 1u << 1,  // the last start was refused (size, window or offsets out of range)
};

constexpr std::uint32_t kIdValue = 0x444d4131;  // "DMA1"
constexpr std::uint32_t kVersionValue = 0x00010000;

enum CtrlBits : std::uint32_t {
  kCtrlEnable = 1u << 0,
  kCtrlReset = 1u << 1,  // write 1: abandon everything, head = tail = 0 (self-clearing)
  kCtrlIrqEnable = 1u << 2,
};

enum StatusBits : std::uint32_t {
  kStatusBusy = 1u << 0,    // descriptors pending or in flight
  kStatusHalted = 1u << 1,  // stopped on an error until kError is cleared
};

enum ErrorCode : std::uint32_t {
  kErrNone = 0,
  kErrBusMasterDisabled = 1,  // BME found clear: nothing further was issued
  kErrDmaUr = 2,              // a DMA read completed with Unsupported Request
  kErrDmaCa = 3,              // ... with Completer Abort
  kErrDmaTimeout = 4,         // ... never completed (completion timeout)
  kErrBadDescriptor = 5,      // zero length, or local range outside device memory
  kErrBadRing = 6,            // enabled with an invalid ring size
  kErrDmaPoisoned = 7,        // a DMA read's data came back poisoned (not used)
  kErrInternal = 8,           // uncorrectable internal error: halted until reset
};

// Descriptor, 32 bytes, little endian.
struct Descriptor {
  std::uint64_t src;
  std::uint64_t dst;
  std::uint32_t length;
  std::uint32_t flags;
  std::uint32_t xfer_size;  // bytes per DMA operation; 0 = whole descriptor
  std::uint32_t cookie;
};
static_assert(sizeof(Descriptor) == 32, "descriptor layout");

enum DescFlags : std::uint32_t {
  kDescIrq = 1u << 0,       // raise the completion interrupt
  kDescReport = 1u << 1,    // write a completion record
  kDescSrcLocal = 1u << 2,  // src is an offset into this function's device memory
  kDescDstLocal = 1u << 3,  // dst is an offset into this function's device memory
};

// Completion record, 16 bytes.
struct Completion {
  std::uint32_t cookie;
  std::uint32_t status;  // ErrorCode
  std::uint32_t bytes;   // bytes transferred
  std::uint32_t index;   // descriptor ring index
};
static_assert(sizeof(Completion) == 16, "completion layout");

// ---- Migration mailbox (PF BAR0, docs/migration.md) ----
// The PF's firmware executes migration commands on behalf of a VF: the
// driver writes the arguments, then MIG_DOORBELL; when the command is done
// MIG_STATUS has DONE set (and the error code), the results are in
// MIG_RESULT*, and the MSI-X vector in MIG_IRQ (if enabled) is sent.
constexpr std::uint32_t kMigBase = 0x800;
constexpr std::uint32_t kMigSize = 0x100;

enum MigReg : std::uint32_t {  // offsets from kMigBase
  kMigCaps = 0x00,             // RO: bit 0 present, bits 15:8 image format version, bits 23:16 ops
  kMigOpcode = 0x04,           // RW: MigOp
  kMigFunction = 0x08,         // RW: VF number (1..TotalVFs)
  kMigFlags = 0x0c,            // RW: MigFlags
  kMigAddrLo = 0x10,           // RW: host buffer (DMA address as the PF sees it)
  kMigAddrHi = 0x14,
  kMigLength = 0x18,    // RW: buffer length (save) / image length (load)
  kMigDoorbell = 0x1c,  // WO: write 1 to start the command
  kMigStatus = 0x20,    // RO: MigStatusBits, error code in bits 15:8
  kMigResultLo = 0x24,  // RO: query: image bytes; save: bytes written; load: bytes read
  kMigResultHi = 0x28,
  kMigResult2 = 0x2c,   // RO: query: dirty bytes; load failure: offset of the error
  kMigIrq = 0x30,       // RW: bit 31 enable, bits 10:0 PF MSI-X vector for completions
  kMigCommands = 0x34,  // RO: commands completed (wraps)
};

enum MigOp : std::uint32_t {
  kMigOpQuery = 1,             // image size (full, incremental or maximum) and dirty bytes
  kMigOpSuspendInitiator = 2,  // quiesce: no new requests; done when outstanding ones completed
  kMigOpSuspendResponder = 3,  // freeze: inbound requests no longer change the function
  kMigOpResumeResponder = 4,
  kMigOpResumeInitiator = 5,
  kMigOpSave = 6,          // write the function's image into the host buffer
  kMigOpLoad = 7,          // read an image stream from the host buffer and install it
  kMigOpGetState = 8,      // result: MigFunctionState bits
  kMigOpStopTracking = 9,  // end dirty tracking
  // DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_*): the firmware logs the
  // pages the VF's DMA writes touch inside the given IOVA ranges.
  kMigOpLogStart = 10,   // buffer: u64 page_size, u32 count, u32 0, count x (u64 iova, u64 length);
                         // result: the page size the device chose
  kMigOpLogStop = 11,    // end the session (no error when none runs)
  kMigOpLogReport = 12,  // buffer in: u64 iova, u64 length, u64 page_size; out: the bitmap
                         // (read and clear); result: bits
};
constexpr std::uint32_t kMigOpLast = kMigOpLogReport;

enum MigFlags : std::uint32_t {
  kMigFlagIncremental = 1u << 0,  // save/query: only what changed since the last save
  kMigFlagTrack = 1u << 1,        // save: start dirty tracking from this image
  kMigFlagFinal = 1u << 2,        // save: the stream's final image (function frozen)
  kMigFlagMax = 1u << 3,          // query: the largest image of this function
  kMigFlagBoth = 1u << 4,         // suspend/resume: both levels in one command
};

enum MigStatusBits : std::uint32_t {
  kMigStatusBusy = 1u << 0,
  kMigStatusDone = 1u << 1,
};

enum MigFunctionState : std::uint32_t {
  kMigStateExists = 1u << 0,
  kMigStateQuiesced = 1u << 1,
  kMigStateFrozen = 1u << 2,
  kMigStateTracking = 1u << 3,
};

enum MigError : std::uint32_t {
  kMigOk = 0,
  kMigErrOpcode = 1,     // unknown opcode
  kMigErrFunction = 2,   // no such VF (not enabled, or destroyed since)
  kMigErrState = 3,      // not allowed in the function's current state
  kMigErrNoSpace = 4,    // the buffer is smaller than the image (RESULT: bytes needed)
  kMigErrDma = 5,        // a DMA of the image failed, or the PF cannot master
  kMigErrInternal = 6,   // firmware failure
  kMigErrTruncated = 7,  // load: the stream ends early / without its final image
  kMigErrMagic = 8,
  kMigErrVersion = 9,
  kMigErrDevice = 10,  // another vendor/device ID or geometry
  kMigErrChecksum = 11,
  kMigErrUnknownRecord = 12,  // an unknown mandatory record
  kMigErrOversize = 13,       // a record larger than the device can hold
  kMigErrMalformed = 14,
  kMigErrBusy = 15,     // a doorbell while a command was running (ignored)
  kMigErrAborted = 16,  // the function or the PF was reset during the command
  kMigErrRange = 17,    // log: no, too many, overlapping or unaligned ranges / bad page size
};

}  // namespace pciesim::models::dma

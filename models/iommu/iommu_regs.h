// The IOMMU's programming model: its register block and the formats of the
// tables it reads from host memory. Modelled on Intel VT-d (legacy mode,
// second-level tables) with a simplified register layout; docs/iommu.md
// describes every field. Host software (sim/host/iommu_driver) and the
// model both include this file.
#pragma once

#include <cstdint>

namespace pciesim::models::iommu {

constexpr std::uint64_t kRegisterBlockSize = 4096;

enum Reg : std::uint32_t {
  kVersion = 0x000,      // RO 32
  kCap = 0x008,          // RO 64: capabilities (CapBits)
  kGcmd = 0x018,         // WO 32: global command
  kGsts = 0x01c,         // RO 32: global status
  kRtaddr = 0x020,       // RW 64: root table address (4 KiB aligned)
  kCcmd = 0x028,         // RW 64: context-cache invalidation
  kFsts = 0x034,         // RW1C 32: fault status
  kIva = 0x100,          // RW 64: IOTLB invalidation address
  kIotlb = 0x108,        // RW 64: IOTLB invalidation command
  kFaultRecords = 0x200  // 16 bytes each (CapBits::kFaultRecordsShift)
};

constexpr std::uint32_t kVersionValue = 0x00010000;

enum CapBits : std::uint64_t {
  kCapLevelsMask = 0xf,         // [3:0] page-table levels: 3 (39-bit) or 4 (48-bit)
  kCap2M = 1ull << 4,           // 2 MiB leaf entries
  kCap1G = 1ull << 5,           // 1 GiB leaf entries
  kCapAccessDirty = 1ull << 6,  // A/D bits are set in page-table entries
  kCapPasid = 1ull << 7,        // PASID tables in context entries
  kCapFaultRecordsShift = 16,   // [23:16] number of fault recording registers
  kCapDomainBitsShift = 32,     // [39:32] domain-ID bits (16)
};

enum GcmdBits : std::uint32_t {
  kGcmdTe = 1u << 31,    // translation enable
  kGcmdSrtp = 1u << 30,  // set root table pointer (latch RTADDR)
};
enum GstsBits : std::uint32_t {
  kGstsTes = 1u << 31,   // translation enabled
  kGstsRtps = 1u << 30,  // root table pointer set
};

// CCMD: write with ICC set; ICC reads 1 until the invalidation completes.
constexpr std::uint64_t kCcmdIcc = 1ull << 63;
constexpr unsigned kCcmdCirgShift = 61;  // 1 global, 2 domain, 3 device
constexpr unsigned kCcmdSidShift = 16;   // [31:16] source ID (device-selective)
constexpr std::uint64_t kCcmdDidMask = 0xffff;

// IOTLB: write with IVT set; IVT reads 1 until the invalidation completes.
constexpr std::uint64_t kIotlbIvt = 1ull << 63;
constexpr unsigned kIotlbIirgShift = 60;    // 1 global, 2 domain, 3 page-selective (IVA)
constexpr unsigned kIotlbDidShift = 32;     // [47:32]
constexpr std::uint64_t kIvaAmMask = 0x3f;  // IVA [5:0]: 2^AM pages of 4 KiB

enum Granularity : unsigned { kGlobal = 1, kDomain = 2, kSelective = 3 };

enum FstsBits : std::uint32_t {
  kFstsPfo = 1u << 0,  // primary fault overflow
  kFstsPpf = 1u << 1,  // primary pending fault (a record has F set)
  kFstsFriShift = 8,   // [15:8] index of the next record to fill
};

// Fault recording register i at kFaultRecords + 16 i:
//   qword 0: [63:12] faulting page address
//   qword 1: [15:0] source ID, [39:32] reason, [62] read (1) / write (0),
//            [63] F: valid (write 1 to clear)
constexpr std::uint64_t kFrcdF = 1ull << 63;
constexpr std::uint64_t kFrcdRead = 1ull << 62;
constexpr unsigned kFrcdReasonShift = 32;

// ---- tables in host memory ----

// Root table: 256 entries of 16 bytes, indexed by bus.
//   qword 0: [0] present, [63:12] context table address
constexpr unsigned kRootEntryBytes = 16;
// Context table: 256 entries of 32 bytes, indexed by devfn.
//   qword 0: [0] present, [1] fault processing disable,
//            [3:2] translation type (0 translate, 2 pass-through),
//            [63:12] page-table root
//   qword 1: [2:0] address width (1 = 39-bit / 3 levels, 2 = 48-bit / 4),
//            [3] second-level A/D enable (pciesim's place for what VT-d
//            scalable mode calls SSADE: with the A/D capability, walks of
//            this context set Accessed/Dirty), [23:8] domain ID
//   qword 2: [0] PASID table present, [63:12] PASID table address
constexpr unsigned kContextEntryBytes = 32;
constexpr std::uint64_t kCtxPresent = 1;
constexpr std::uint64_t kCtxFpd = 2;
constexpr unsigned kCtxTtShift = 2;
enum TranslationType : unsigned { kTtTranslate = 0, kTtPassThrough = 2 };
constexpr unsigned kCtxDidShift = 8;
constexpr std::uint64_t kCtxAdEnable = 1ull << 3;  // qword 1 (and PASID entry qword 1)
// PASID table: entries of 16 bytes indexed by PASID (up to 2^20).
//   qword 0: [0] present, [63:12] page-table root;  qword 1: [3] A/D enable,
//   [23:8] domain ID
constexpr unsigned kPasidEntryBytes = 16;
constexpr std::uint32_t kMaxPasid = (1u << 20) - 1;

// Page-table entry (8 bytes, 512 per 4 KiB table), as VT-d second level:
//   [0] read, [1] write, [7] page size (leaf at level 2 = 2 MiB, level 3 =
//   1 GiB), [8] accessed, [9] dirty, [51:12] address.
enum PteBits : std::uint64_t {
  kPteRead = 1ull << 0,
  kPteWrite = 1ull << 1,
  kPtePs = 1ull << 7,
  kPteAccessed = 1ull << 8,
  kPteDirty = 1ull << 9,
};
constexpr std::uint64_t kPteAddrMask = 0x000ffffffffff000ull;
constexpr std::uint64_t kAddrMask12 = ~std::uint64_t{0xfff};

// Why a request faulted (fault record reason, stats).
enum class FaultReason : std::uint8_t {
  kRootNotPresent = 1,
  kContextNotPresent = 2,
  kPasidNotPresent = 3,
  kAddressTooWide = 4,
  kPageNotPresent = 5,
  kReadDenied = 6,
  kWriteDenied = 7,
  kBadEntry = 8,  // a large-page bit where large pages are not supported
};
const char* to_string(FaultReason r);

}  // namespace pciesim::models::iommu

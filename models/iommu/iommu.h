// The IOMMU at the root complex: every untranslated DMA request from below
// is looked up by requester ID (and PASID) in context tables, translated
// through multi-level I/O page tables in host memory walked with timed
// memory reads, cached in an IOTLB, checked for read/write permission, and
// faulted (logged, completed with UR or CA) when it may not proceed.
// Software programs it through a register block (iommu_regs.h) and keeps
// its tables in host memory; docs/iommu.md has the model and its sources.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "fabric/common/sim_time.h"
#include "models/iommu/iommu_regs.h"
#include "models/root_complex/translator.h"

namespace pciesim::models {

enum class IotlbReplacement { kLru, kFifo, kRandom };

struct IommuParams {
  // Register block address (4 KiB), in the chipset range like VT-d units.
  std::uint64_t base = 0xfed90000;
  // Page-table levels: 3 (39-bit IOVAs) or 4 (48-bit IOVAs).
  unsigned levels = 4;
  // 2 MiB and 1 GiB leaf entries (VT-d SLLPS; every server part since
  // Haswell supports both).
  bool large_pages = true;
  // Set Accessed/Dirty bits in the page-table entries it uses (VT-d
  // second-level A/D, used for dirty tracking during live migration), in
  // the contexts whose entry enables it (kCtxAdEnable).
  bool access_dirty = false;
  // IOTLB: pcie-bench (Neugebauer et al., SIGCOMM 2018) sees throughput
  // fall once a DMA working set exceeds 256 KiB of 4 KiB pages on Xeon E5,
  // i.e. about 64 entries.
  unsigned iotlb_entries = 64;
  IotlbReplacement replacement = IotlbReplacement::kLru;
  std::uint64_t seed = 1;  // for kRandom
  // Context-cache entries (requester -> domain, tables).
  unsigned context_cache_entries = 64;
  // Translation from an IOTLB hit: pipelined in the root complex, a few ns.
  fabric::Time iotlb_hit_latency = 5 * fabric::kNs;
  // Each level of a walk: one dependent 8-byte read of host memory (at
  // the memory's own latency) plus this much in the walker. A 4-level walk
  // then costs ~4 x (90 + 10) ns, close to the ~330 ns per miss pcie-bench
  // reports.
  fabric::Time walk_step_latency = 10 * fabric::kNs;
  // Page walks in flight at once (the walker's miss handling units); a
  // miss waits for a free one. 0 = unlimited. With IOTLB misses on every
  // request, DMA throughput is walkers / walk time (docs/iommu.md).
  unsigned walkers = 0;
  // Paging-structure caches (VT-d 3.0 section 6.2: non-leaf entries of
  // the second-level tables): this many entries per non-leaf level, LRU; a
  // walk starts below the deepest cached entry, so with them a miss
  // usually reads only the leaf. 0 = none: every miss walks all levels.
  // Cleared by every IOTLB and context invalidation.
  unsigned psc_entries = 0;
  // A register-based invalidation completes this long after the command,
  // and never before every translation already handed out has been used.
  // (Strict-mode unmap costs in Linux put an IOTLB invalidation at about a
  // microsecond: Peleg et al., USENIX ATC 2015.)
  fabric::Time invalidation_latency = 1 * fabric::kUs;
  // What a faulting DMA request completes with (VT-d: Unsupported Request).
  fabric::CplStatus fault_status = fabric::CplStatus::kUR;
  // Hardware fault recording registers (VT-d NFR); the model's own log
  // (stats) keeps up to fault_log_max faults.
  unsigned fault_records = 8;
  unsigned fault_log_max = 4096;
};

struct IommuFault {
  fabric::Time at = 0;
  fabric::RoutingId requester;
  bool has_pasid = false;
  std::uint32_t pasid = 0;
  std::uint64_t address = 0;
  bool write = false;
  iommu::FaultReason reason = iommu::FaultReason::kPageNotPresent;
  std::uint16_t domain = 0;
};

struct IommuStats {
  std::uint64_t translations = 0;  // requests looked up (translation enabled)
  std::uint64_t passthrough = 0;   // of which pass-through contexts
  std::uint64_t iotlb_hits = 0;
  std::uint64_t iotlb_misses = 0;
  std::uint64_t iotlb_evictions = 0;
  std::uint64_t walks = 0;
  std::uint64_t walk_reads = 0;     // table-entry reads of host memory (all kinds)
  fabric::Time walk_time = 0;       // sum over walks (waiting for a walker included)
  fabric::Time walk_wait_time = 0;  // of which waiting for a free walker
  std::uint64_t psc_hits = 0;       // walks that started below a cached non-leaf entry
  std::uint64_t context_hits = 0;
  std::uint64_t context_misses = 0;
  std::uint64_t ad_updates = 0;  // page-table entries whose A/D bits were set
  std::uint64_t faults = 0;
  std::uint64_t faults_by_reason[9] = {};
  std::uint64_t fault_records_dropped = 0;      // hardware records full (PFO)
  std::uint64_t iotlb_invalidations[4] = {};    // [granularity]: 1 global, 2 domain, 3 page
  std::uint64_t context_invalidations[4] = {};  // 1 global, 2 domain, 3 device
  std::uint64_t entries_invalidated = 0;
  fabric::Time last_invalidation_done = 0;
};

class Iommu : public UpstreamTranslator, public RegisterBlock {
 public:
  struct MemoryResult {
    bool ok = true;
    fabric::Time done = 0;
  };
  // Reads or writes host memory for table walks: timed (from time t) or,
  // with debug, in zero time. ok is false outside DRAM.
  using MemoryAccess =
      std::function<MemoryResult(std::uint64_t addr, std::uint8_t* data, std::uint32_t len,
                                 bool write, fabric::Time t, bool debug)>;

  Iommu(const IommuParams& params, MemoryAccess memory);

  const IommuParams& params() const { return params_; }
  const IommuStats& stats() const { return stats_; }
  const std::vector<IommuFault>& fault_log() const { return log_; }
  bool translation_enabled() const { return gsts_ & iommu::kGstsTes; }
  std::size_t iotlb_occupancy() const;

  bool active() const override { return translation_enabled(); }
  TranslationResult translate(const TranslationRequest& req) override;
  bool translate_dbg(fabric::RoutingId requester, std::uint64_t iova, bool write,
                     std::uint64_t* out) override;

  std::uint64_t register_block_size() const override { return iommu::kRegisterBlockSize; }
  fabric::CplStatus register_access(std::uint64_t offset, std::uint8_t* data, std::uint32_t len,
                                    bool write, fabric::Time t) override;

 private:
  struct Context {
    bool fpd = false;
    unsigned tt = iommu::kTtTranslate;
    std::uint64_t root = 0;  // page-table root
    unsigned levels = 4;
    std::uint16_t did = 0;
    bool ad = false;  // A/D enable (kCtxAdEnable)
    bool pasid_table = false;
    std::uint64_t pasid_ptr = 0;
  };
  struct TlbEntry {
    bool valid = false;
    std::uint16_t did = 0;
    std::uint32_t space = 0;  // 0: requests without PASID; PASID + 1 otherwise
    unsigned shift = 12;
    std::uint64_t vpn = 0;
    std::uint64_t hpa = 0;  // page base
    bool read = false;
    bool write = false;
    bool dirty = false;  // D was set in memory by this entry's walk (A/D mode)
    std::uint64_t stamp = 0;
  };
  struct Lookup {
    bool ok = false;
    iommu::FaultReason reason = iommu::FaultReason::kPageNotPresent;
    Context ctx;
    fabric::Time t = 0;
  };
  struct Walk {
    bool ok = false;
    iommu::FaultReason reason = iommu::FaultReason::kPageNotPresent;
    unsigned shift = 12;
    std::uint64_t hpa = 0;
    bool read = false;
    bool write = false;
    bool dirty = false;
    fabric::Time t = 0;
  };

  Lookup context_for(fabric::RoutingId rid, bool has_pasid, std::uint32_t pasid, fabric::Time t,
                     bool debug);
  Walk walk(const Context& c, std::uint64_t iova, bool write, fabric::Time t, bool debug,
            fabric::RoutingId requester = fabric::RoutingId());
  MemoryResult read64(std::uint64_t addr, std::uint64_t* v, fabric::Time t, bool debug);
  MemoryResult write64(std::uint64_t addr, std::uint64_t v, fabric::Time t, bool debug);
  TlbEntry* tlb_find(std::uint16_t did, std::uint32_t space, std::uint64_t iova);
  void tlb_insert(const TlbEntry& e);
  void tlb_erase(std::size_t index);
  std::uint64_t tlb_key(std::uint16_t did, std::uint32_t space, unsigned shift,
                        std::uint64_t vpn) const;
  void record_fault(const TranslationRequest& req, iommu::FaultReason reason, std::uint16_t did,
                    bool fpd, fabric::Time t);
  void invalidate_context(std::uint64_t cmd, fabric::Time t);
  void invalidate_iotlb(std::uint64_t cmd, fabric::Time t);
  std::uint64_t read_register(std::uint32_t reg, fabric::Time t) const;
  void write_register(std::uint32_t reg, std::uint64_t value, std::uint64_t mask, fabric::Time t);
  fabric::Time completion_time(fabric::Time t) const;

  IommuParams params_;
  MemoryAccess memory_;
  IommuStats stats_;
  std::vector<IommuFault> log_;

  // registers
  std::uint64_t rtaddr_ = 0;
  std::uint64_t root_table_ = 0;  // latched by SRTP
  std::uint32_t gsts_ = 0;
  std::uint64_t ccmd_ = 0;
  std::uint64_t iva_ = 0;
  std::uint64_t iotlb_cmd_ = 0;
  fabric::Time ccmd_done_ = 0;
  fabric::Time iotlb_done_ = 0;
  std::vector<fabric::Time> walker_free_;  // per walker: busy until
  struct PscEntry {
    std::uint64_t table;  // the next level's table
    bool read, write;     // permissions ANDed down to here
    std::uint64_t stamp;
  };
  // Key: (level, domain, table root, iova >> shift of the level's entry).
  std::map<std::tuple<unsigned, std::uint16_t, std::uint64_t, std::uint64_t>, PscEntry> psc_;
  std::uint64_t psc_stamp_ = 0;
  void psc_insert(unsigned level, std::uint16_t did, std::uint64_t root, std::uint64_t iova,
                  const PscEntry& e);
  bool fault_overflow_ = false;
  unsigned next_record_ = 0;
  std::vector<std::uint64_t> records_;  // 2 qwords per record

  // caches
  std::unordered_map<std::uint64_t, Context> contexts_;  // (rid, pasid) -> context
  std::deque<std::uint64_t> context_order_;
  std::vector<TlbEntry> tlb_;
  std::unordered_map<std::uint64_t, std::size_t> tlb_index_;
  std::size_t tlb_used_ = 0;
  std::uint64_t stamp_ = 0;
  std::uint64_t rng_ = 0;
  fabric::Time latest_use_ = 0;  // latest time a handed-out translation is used
};

}  // namespace pciesim::models

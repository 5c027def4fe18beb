#include "sim/config/platform.h"

#include "sim/config/system_config.h"

namespace pciesim::sim {

using fabric::kNs;

namespace {

// The host the pre-calibration defaults described: fixed root-complex
// latencies, 64-byte completions, no cache model and no limit on the root
// port's path into memory, so DMA is bound by the PCIe link alone (the
// closed-form overhead model in fabric/link/link_timing.cpp). The struct
// defaults of RootComplexParams / HostMemoryParams / IommuParams are this.
void apply_generic(SystemConfig&) {}

// Dual-socket Broadwell-EP server, device on socket 0: Intel Xeon E5-2630
// v4 (10 cores, 25 MiB LLC in 20 ways, 4 x DDR4-2133), calibrated on
// pcie-bench's measurements of an NFP6000 Gen3 x8 NIC in a Dell T430
// (../shared/calibration/pcie-bench, Neugebauer et al., SIGCOMM 2018).
// docs/timing.md "Platforms" gives the derivation of every value.
void apply_xeon_e5_v4(SystemConfig& c) {
  models::RootComplexParams& rc = c.root_complex.params;
  // DMA reads saturate at 55.6 Gb/s (2 KiB, Gen3 x8): above what 64- or
  // 128-byte completions can carry (47.4 / 53.9 Gb/s), so completions are
  // MPS-sized (256 B here).
  rc.completion_split = models::CompletionSplit::kMps;
  // ... but only for requests above 256 bytes: 256-byte reads saturate at
  // 47.7 Gb/s, the ceiling of 64-byte completions (47.4), while 257-byte
  // ones reach 50.0 (bw_dma_sz_sweep).
  rc.completion_combine_above = 256;
  // The root port's path into the coherent fabric: reads saturate at
  // 55.6 Gb/s and writes at 53.0 Gb/s (flat from 512 B to 2 KiB) although
  // the link could carry 57.7 / 56.9: 9.2 ns per 64-byte line read, 9.6 ns
  // per line written. Writes cost whole 128-byte units: 129..192-byte
  // writes take as long as 256-byte ones (bw_dma_sz_sweep).
  rc.read_line_time = 9200 * fabric::kPs;
  rc.write_line_time = 9650 * fabric::kPs;
  rc.write_granule = 128;
  // Root port ingress to the LLC and back to egress: with the LLC hit below,
  // a 64-byte read from a device on the root port takes the measured 547 ns
  // median (lat_dma_sizes, host-warm).
  rc.upstream_latency = 255 * kNs;
  rc.downstream_latency = 190 * kNs;
  models::HostMemoryParams& m = c.host.memory;
  // Cold (DRAM) reads are 40 ns slower than host-warm (LLC) reads
  // (lat_dma_sweep_rd_rnd_64: 600 vs 560 ns median).
  m.latency = 90 * kNs;
  m.llc_latency = 50 * kNs;
  // 25 MiB LLC; DDIO may allocate in 2 of its 20 ways (Intel DDIO primer).
  m.llc_bytes = 25ull << 20;
  m.ddio_bytes = (25ull << 20) / 10;
  // 4 channels of DDR4-2133 (17 GB/s each).
  m.bandwidth_gbps = 4 * 8 * 2.133 * 8;
  models::IommuParams& io = c.iommu.params;
  // VT-d on Broadwell: ~64 IOTLB entries for 4 KiB pages (read throughput
  // falls beyond a 256 KiB window, bw_dma_win_sweep_*_rnd_64 with sp_off),
  // a miss adds ~280 ns to a read (lat_dma_sweep_rd_rnd_64: 880 vs 600 ns)
  // and with every request missing throughput is one walk per ~50 ns.
  io.iotlb_entries = 64;
  // Every level is read (4 x (50 + 20) ns = the 280 ns a miss adds), 6
  // walks in flight: with every request missing, one walk per ~47 ns
  // (measured: 46-52). Paging-structure caches (psc_entries) are left off:
  // with them, walks would stay as cheap up to 32 MiB windows as at 1 MiB,
  // while the measured cost grows steadily beyond 1 MiB.
  io.walk_step_latency = 20 * kNs;
  io.walkers = 6;
}

const std::vector<PlatformPreset> kPresets = {
    {"xeon-e5-v4",
     "Broadwell-EP Xeon E5 v4 server, calibrated on pcie-bench (MPS-sized completions, "
     "per-line root-port path, 25 MiB LLC with DDIO, 64-entry IOTLB)",
     apply_xeon_e5_v4},
    {"generic",
     "Link-bound host: fixed root-complex latencies, 64-byte completions, no cache and no "
     "root-port path limit (the closed-form model's host)",
     apply_generic},
};

}  // namespace

const std::vector<PlatformPreset>& platform_presets() {
  return kPresets;
}

const PlatformPreset* find_platform(const std::string& name) {
  for (const PlatformPreset& p : kPresets)
    if (name == p.name) return &p;
  return nullptr;
}

}  // namespace pciesim::sim

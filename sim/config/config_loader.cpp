#include "sim/config/config_loader.h"
#include "sim/config/platform.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <regex>
#include <set>
#include <sstream>

#include "fabric/fault/aer_inject.h"
#include "fabric/link/link_timing.h"
#include "fabric/topology/topology.h"
#include "models/dma_endpoint/migration_firmware.h"
#include "sim/host/vfio/migration_fsm.h"

namespace pciesim::sim {

using fabric::kMs;
using fabric::kNs;
using fabric::kSec;
using fabric::kUs;
using fabric::Time;

namespace {

// ------------------------------------------------------------ helpers

std::uint16_t read_acs(Section& s, const std::string& key, std::uint16_t def,
                       const std::string& doc) {
  std::string names;
  for (const auto& [n, bit] :
       std::vector<std::pair<const char*, std::uint16_t>>{{"sv", PCI_ACS_SV},
                                                          {"tb", PCI_ACS_TB},
                                                          {"rr", PCI_ACS_RR},
                                                          {"cr", PCI_ACS_CR},
                                                          {"uf", PCI_ACS_UF},
                                                          {"ec", PCI_ACS_EC},
                                                          {"dt", PCI_ACS_DT}})
    if (def & bit) names += (names.empty() ? "" : ", ") + std::string(n);
  s.nested(
      key, "list of sv|tb|rr|cr|uf|ec|dt",
      doc.empty() ? doc : doc + " (default: " + (names.empty() ? "none" : "[" + names + "]") + ")");
  if (!s.has(key)) return def;
  Node n = s.child(key);
  if (!n.is_sequence()) n.fail("expected a list such as [sv, rr, cr, uf]");
  static const std::map<std::string, std::uint16_t> bits = {
      {"sv", PCI_ACS_SV}, {"tb", PCI_ACS_TB}, {"rr", PCI_ACS_RR}, {"cr", PCI_ACS_CR},
      {"uf", PCI_ACS_UF}, {"ec", PCI_ACS_EC}, {"dt", PCI_ACS_DT}};
  std::uint16_t v = 0;
  for (std::size_t i = 0; i < n.size(); ++i) {
    Node e = n.at(i);
    auto it = bits.find(e.as_string());
    if (it == bits.end())
      e.fail("expected one of sv, tb, rr, cr, uf, ec, dt, got '" + e.as_string() + "'");
    v |= it->second;
  }
  return v;
}

void read_credits(const Node& n, fabric::FcCredits* c, DocSink* docs, const std::string& section) {
  Section s(n, section, docs);
  s.field("posted_header", &c->posted_header, 0, 4095,
          "Posted header credits (one per TLP); 0 = infinite")
      .field("posted_data", &c->posted_data, 0, 65535,
             "Posted data credits (16 bytes each); 0 = infinite")
      .field("nonposted_header", &c->nonposted_header, 0, 4095,
             "Non-posted header credits; 0 = infinite")
      .field("nonposted_data", &c->nonposted_data, 0, 65535,
             "Non-posted data credits; 0 = infinite")
      .field("completion_header", &c->completion_header, 0, 4095,
             "Completion header credits; endpoints and root ports must advertise 0 = infinite")
      .field("completion_data", &c->completion_data, 0, 65535, "Completion data credits");
  s.finish();
}

// Default receive buffers, in the range of commodity root ports and
// endpoint cores (64-256 headers, 8-32 KiB of posted data).
fabric::FcCredits default_credits() {
  fabric::FcCredits c;
  c.posted_header = 128;
  c.posted_data = 2048;
  c.nonposted_header = 128;
  c.nonposted_data = 128;
  c.completion_header = 0;
  c.completion_data = 0;
  return c;
}

std::uint32_t read_mps(Section& s, const std::string& key, std::uint32_t def,
                       const std::string& doc) {
  s.nested(key, "auto | power of two 128..4096", doc);
  if (!s.has(key)) return def;
  Node n = s.child(key);
  if (n.is_scalar() && n.scalar() == "auto") return 0;
  std::uint64_t v = n.as_bytes().value;
  if (v < 128 || v > 4096 || (v & (v - 1)))
    n.fail("expected auto or a power of two in 128..4096, got " + n.scalar());
  return static_cast<std::uint32_t>(v);
}

// ------------------------------------------------------------ sections

void read_simulation(const Node& n, SimulationSpec* s, DocSink* docs) {
  Section sec(n, "simulation", docs);
  sec.field("seed", &s->seed, "Seed of every pseudo-random choice (workload data)")
      .time("quantum", &s->quantum,
            "Temporal-decoupling quantum: initiators run ahead of the kernel by at most this; "
            "0ns gives exact ordering (docs/timing.md)")
      .time("max_time", &s->max_time,
            "Simulated time after which a run stops even if the scenario has not finished", 1 * kNs,
            4 * 3600 * kSec)
      .time("sample_interval", &s->sample_interval,
            "Interval of the stats' time series (link utilisation, credits, outstanding tags, "
            "throughput, IOTLB hit rate; pciesim plot draws them); 0ns = off, else at least "
            "10ns",
            0, 1 * kSec);
  if (s->sample_interval && s->sample_interval < 10 * kNs)
    sec.child("sample_interval")
        .fail("a sample interval of " + fabric::format_time(s->sample_interval) +
              " is below 10ns (0ns turns sampling off)");
  sec.finish();
}

void read_host(const Node& n, HostSpec* h, DocSink* docs) {
  Section s(n, "host", docs);
  s.nested("memory", "list of {base, size}",
           "Host DRAM ranges (default: 2 GiB at 0 and 14 GiB at 4 GiB)");
  if (s.has("memory")) {
    Node list = s.child("memory");
    if (!list.is_sequence() || list.size() == 0)
      list.fail("expected a non-empty list of {base, size}");
    h->memory.ranges.clear();
    for (std::size_t i = 0; i < list.size(); ++i) {
      models::MemoryRange r;
      Section rs(list.at(i), "host.memory[]", docs);
      rs.required("base").required("size");
      rs.field("base", &r.base, "Physical base address");
      rs.bytes("size", &r.size, "Size in bytes", 4096);
      rs.finish();
      if (r.base % 4096) list.at(i).child("base").fail("memory ranges must be 4 KiB aligned");
      for (const auto& o : h->memory.ranges)
        if (r.base < o.base + o.size && o.base < r.base + r.size)
          list.at(i).fail("memory range overlaps another one");
      h->memory.ranges.push_back(r);
    }
  } else if (docs) {
    models::MemoryRange r;
    Section rs(Node(), "host.memory[]", docs);
    rs.required("base").required("size");
    rs.field("base", &r.base, "Physical base address");
    rs.bytes("size", &r.size, "Size in bytes", 4096);
  }
  s.time("memory_latency", &h->memory.latency,
         "DRAM load-to-use latency (Intel MLC idle: 80-90 ns)")
      .field("memory_bandwidth_gbps", &h->memory.bandwidth_gbps, 0, 1e6,
             "Sustained DRAM bandwidth for I/O in Gb/s; 0 = unlimited (8 x DDR4-3200 = 1638.4)")
      .time("interrupt_latency", &h->interrupt_latency,
            "MSI arrival to the driver's interrupt handler running")
      .bytes("llc_size", &h->memory.llc_bytes,
             "Last-level cache DMA sees (DDIO rules, docs/timing.md); 0 = no cache model", 0,
             1ull << 40)
      .bytes("ddio_size", &h->memory.ddio_bytes,
             "Share of the LLC device writes may allocate (DDIO ways)", 0, 1ull << 40)
      .time("llc_latency", &h->memory.llc_latency,
            "A DMA access whose lines are all in the LLC (misses take memory_latency)");
  if (h->memory.ddio_bytes > h->memory.llc_bytes)
    (s.has("ddio_size") ? s.child("ddio_size") : s.child("llc_size"))
        .fail("ddio_size (" + std::to_string(h->memory.ddio_bytes) + " bytes) exceeds llc_size (" +
              std::to_string(h->memory.llc_bytes) + " bytes)");
  h->mps = read_mps(s, "mps", h->mps,
                    "Max Payload Size the host programs; auto = the largest every device below a "
                    "root port supports (Linux pcie_bus_safe)");
  s.power_of_two("mrrs", &h->mrrs, 128, 4096, "Max Read Request Size programmed in every endpoint")
      .field("extended_tags", &h->extended_tags, "Enable 8-bit tags where supported")
      .field("ten_bit_tags", &h->ten_bit_tags, "Enable 10-bit tag requesters where supported")
      .field("rrs_sw_visibility", &h->rrs_sw_visibility,
             "Enable RRS Software Visibility in root ports that support it")
      .field("ari", &h->ari, "Enable ARI Forwarding where the device below has ARI")
      .field("aer", &h->aer,
             "Native PCIe error handling as Linux: AER reporting enabled at boot, the AER and "
             "DPC services recover from errors (docs/faults.md)")
      .field("ecrc", &h->ecrc,
             "Enable ECRC generation and checking where supported (Linux pci=ecrc=on)");
  s.nested("acs", "auto | list of sv|tb|rr|cr|uf|ec|dt",
           "ACS controls the host enables where supported; auto = as Linux: sv, rr, cr, uf "
           "when the IOMMU is enabled, none otherwise");
  if (s.has("acs") && !(s.child("acs").is_scalar() && s.child("acs").scalar() == "auto"))
    h->acs = read_acs(s, "acs", 0, "");
  s.finish();
}

void read_iommu(const Node& n, IommuSpec* spec, DocSink* docs) {
  Section s(n, "iommu", docs);
  models::IommuParams& p = spec->params;
  std::string fault = p.fault_status == fabric::CplStatus::kCA ? "ca" : "ur";
  s.field("enabled", &spec->enabled,
          "An IOMMU at the root complex translates and checks every DMA request (docs/iommu.md)")
      .choice("default_domain", &spec->default_domain,
              {{"dma", IommuSpec::kDma}, {"passthrough", IommuSpec::kPassThrough}},
              "Functions bound to host drivers: their own translated DMA domain (Linux default) "
              "or the shared pass-through domain (iommu=pt)")
      .field("base", &p.base, "Register block address (4 KiB)")
      .field("levels", &p.levels, 3, 4, "Page-table levels: 3 (39-bit IOVAs) or 4 (48-bit)")
      .field("large_pages", &p.large_pages, "2 MiB and 1 GiB pages supported")
      .field("host_large_pages", &spec->host_large_pages,
             "The host maps with 2 MiB / 1 GiB pages where alignment allows")
      .field("access_dirty", &p.access_dirty, "Set Accessed/Dirty bits in page-table entries")
      .field("iotlb_entries", &p.iotlb_entries, 1, 65536,
             "IOTLB entries (pcie-bench: ~64 on Xeon E5)")
      .choice("iotlb_replacement", &p.replacement,
              {{"lru", models::IotlbReplacement::kLru},
               {"fifo", models::IotlbReplacement::kFifo},
               {"random", models::IotlbReplacement::kRandom}},
              "IOTLB replacement policy (random is seeded by simulation.seed)")
      .field("context_cache_entries", &p.context_cache_entries, 1, 65536,
             "Context-cache entries (requester -> domain)")
      .time("iotlb_hit_latency", &p.iotlb_hit_latency, "Translation time on an IOTLB hit")
      .time("walk_step_latency", &p.walk_step_latency,
            "Walker time per page-table level, besides the memory read")
      .field("walkers", &p.walkers, 0, 1024,
             "Page walks in flight at once; a miss waits for a free walker (0 = unlimited)")
      .field("psc_entries", &p.psc_entries, 0, 4096,
             "Paging-structure cache entries per non-leaf level: a walk starts below the deepest "
             "cached entry (0 = none, every miss walks all levels)")
      .time("invalidation_latency", &p.invalidation_latency,
            "A context/IOTLB invalidation completes this long after its command (at the earliest)")
      .choice("fault_response", &fault, {{"ur", std::string("ur")}, {"ca", std::string("ca")}},
              "What a faulting DMA read completes with: Unsupported Request or Completer Abort")
      .field("fault_records", &p.fault_records, 1, 255, "Hardware fault recording registers");
  s.finish();
  p.fault_status = fault == "ca" ? fabric::CplStatus::kCA : fabric::CplStatus::kUR;
}

VmSpec read_vm(const Node& n, DocSink* docs) {
  VmSpec v;
  v.where = n;
  Section s(n, "vms[]", docs);
  s.required("name");
  s.name("name", &v.name, "VM name (also its IOMMU domain's name)")
      .bytes("memory", &v.memory, "Guest RAM: guest-physical 0 .. memory", 2 << 20)
      .field("host_base", &v.host_base,
             "Host physical address of guest RAM (0 = allocated by the host)")
      .nested("functions", "list", "Functions assigned to the VM at boot (ep0.vf1, ...)")
      .field("incoming", &v.incoming,
             "A destination waiting for a migration (QEMU -incoming): its functions are "
             "assigned but no guest driver probes them until `migrate` brings the guest in")
      .nested("cpu", "mapping", "The guest vCPUs' own stores into guest RAM (dirty rate)");
  {
    Section c(s.child("cpu"), "vms[].cpu", docs);
    GuestCpuSpec& g = v.cpu;
    c.field("write_gbps", &g.write_gbps, 0.0, 10000.0,
            "Rate at which the vCPUs store into guest RAM, Gb/s (0 = they write nothing)")
        .bytes("chunk", &g.chunk, "Bytes per store burst (a multiple of 8)", 8, 1u << 20)
        .choice("pattern", &g.pattern,
                {{"sequential", GuestCpuSpec::kSequential}, {"random", GuestCpuSpec::kRandom}},
                "Where the bursts go in the region: one after another (wrapping) or at random "
                "chunk-aligned offsets drawn from simulation.seed")
        .field("region_base", &g.region_base, "Guest-physical start of the written region")
        .bytes("region_size", &g.region_size,
               "Bytes of the region (0 = the upper half of guest RAM, clear of the drivers' "
               "buffers, which are allocated upward from 1 MiB)")
        .time("start", &g.start, "When the vCPUs start writing, after boot");
    c.finish();
    if (n.defined() && s.has("cpu")) {
      if (g.chunk % 8) c.child("chunk").fail("chunk must be a multiple of 8 bytes");
    }
  }
  if (s.has("functions")) {
    Node f = s.child("functions");
    if (!f.is_sequence()) f.fail("expected a list of function names");
    for (std::size_t i = 0; i < f.size(); ++i)
      v.functions.push_back(f.at(i).as_string());
  }
  s.finish();
  if (n.defined() && v.memory % (2 << 20))
    s.child("memory").fail("VM memory must be a multiple of 2 MiB");
  if (n.defined() && v.host_base % (2 << 20))
    s.child("host_base").fail("host_base must be 2 MiB aligned");
  if (n.defined() && v.cpu.region_size == 0) {
    if (s.child("cpu").child("region_base").defined())
      s.child("cpu").child("region_size").fail("region_base needs a region_size");
    v.cpu.region_base = v.memory / 2;
    v.cpu.region_size = v.memory / 2;
  }
  if (n.defined() &&
      (v.cpu.region_base >= v.memory || v.cpu.region_size > v.memory - v.cpu.region_base))
    s.child("cpu").fail("the written region must lie inside the VM's memory");
  if (n.defined() && v.cpu.chunk > v.cpu.region_size)
    s.child("cpu").child("chunk").fail("chunk is larger than the region");
  return v;
}

void read_root_complex(const Node& n, RootComplexSpec* r, DocSink* docs) {
  Section s(n, "root_complex", docs);
  models::RootComplexParams& p = r->params;
  unsigned ports = p.root_ports;
  std::uint64_t mmio32_base = p.mmio32.base, mmio32_size = p.mmio32.size;
  std::uint64_t mmio64_base = p.mmio64.base, mmio64_size = p.mmio64.size;
  std::uint64_t cca = p.completion_combine_above;
  s.name("name", &r->name, "Instance name (prefix of root ports: rc.rp0, rc.rp1, ...)")
      .field("root_ports", &ports, 1, 31, "Root ports (00:01.0 .. 00:1f.0)")
      .field("vendor_id", &p.vendor_id, "Vendor ID of the host bridge and root ports")
      .field("host_bridge_device_id", &p.host_bridge_device_id, "Device ID of 00:00.0")
      .field("root_port_device_id", &p.root_port_device_id, "Device ID of the root ports");
  p.acs_supported = read_acs(s, "acs", p.acs_supported, "ACS capabilities of the root ports");
  s.field("dpc", &p.dpc, "Downstream Port Containment on the root ports (docs/faults.md)");
  s.field("ari_forwarding", &p.ari_forwarding, "Root ports support ARI Forwarding")
      .field("rrs_sw_visibility", &p.rrs_sw_visibility,
             "Root ports support RRS Software Visibility")
      .field("max_link_speed", &p.max_link_speed, 1, 6, "Root port Link Capabilities speed (gen)")
      .field("max_link_width", &p.max_link_width, 1, 32, "Root port Link Capabilities width")
      .power_of_two("max_payload_supported", &p.max_payload_supported, 128, 4096,
                    "Root port Max_Payload_Size Supported")
      .time("cpu_latency", &p.cpu_latency, "CPU core to root complex, each way, uncached access")
      .time("config_latency", &p.config_latency, "Extra ECAM handling in the root complex")
      .time("upstream_latency", &p.upstream_latency,
            "Root port ingress to memory controller / peer routing")
      .time("downstream_latency", &p.downstream_latency, "Fabric to root port egress")
      .time("read_line_time", &p.read_line_time,
            "Root port path into the caches: time per 64-byte line a DMA read touches (reads "
            "saturate at 64 B / this; a read's lines stream back at this interval); 0ns = "
            "unlimited",
            0, 1000 * kNs)
      .time(
          "write_line_time", &p.write_line_time,
          "Root port path: time per 64-byte line a DMA write covers (writes have their own path); "
          "0ns = unlimited",
          0, 1000 * kNs)
      .power_of_two("write_granule", &p.write_granule, 64, 4096,
                    "Writes cost whole units of this many bytes on the root port path (a partial "
                    "unit is merged)")
      .field("ecam_base", &p.ecam_base, "ECAM window base (256 MiB)")
      .field("msi_base", &p.msi_base, "MSI/MSI-X address window base (1 MiB)")
      .field("mmio32_base", &mmio32_base, "32-bit MMIO window base")
      .bytes("mmio32_size", &mmio32_size, "32-bit MMIO window size", 1 << 20)
      .field("mmio64_base", &mmio64_base, "64-bit prefetchable MMIO window base")
      .bytes("mmio64_size", &mmio64_size, "64-bit MMIO window size", 1 << 20)
      .choice("completion_split", &p.completion_split,
              {{"rcb", models::CompletionSplit::kRcb}, {"mps", models::CompletionSplit::kMps}},
              "Read completions returned in RCB-sized or MPS-sized pieces")
      .field("rcb_128", &p.rcb_128, "Read Completion Boundary 128 bytes (else 64)")
      .bytes("completion_combine_above", &cca,
             "With completion_split mps: read requests of at most this many bytes still complete "
             "in RCB pieces (0 = every request gets MPS-sized completions)",
             0, 4096)
      .time("completion_timeout", &p.completion_timeout, "Completion timeout for CPU requests")
      .time("rrs_initial_backoff", &p.rrs_initial_backoff,
            "First re-issue delay for config requests completed with RRS (no SW visibility)")
      .time("rrs_max_backoff", &p.rrs_max_backoff, "Backoff cap for RRS re-issues")
      .time("rrs_timeout", &p.rrs_timeout, "Give up re-issuing after this long (CPU sees all ones)")
      .choice("p2p", &p.p2p,
              {{"forward", models::P2pPolicy::kForward}, {"block", models::P2pPolicy::kBlock}},
              "Peer-to-peer requests between root ports (or redirected up): reflect or block (UR)");
  s.finish();
  p.root_ports = ports;
  p.completion_combine_above = static_cast<std::uint32_t>(cca);
  p.mmio32 = {mmio32_base, mmio32_size};
  p.mmio64 = {mmio64_base, mmio64_size};
  if (mmio32_base + mmio32_size > 0x100000000ull)
    s.child("mmio32_size").defined()
        ? s.child("mmio32_size").fail("the 32-bit window must end below 4 GiB")
        : s.node().fail("the 32-bit window must end below 4 GiB");
}

SwitchSpec read_switch(const Node& n, DocSink* docs) {
  SwitchSpec sw;
  sw.where = n;
  Section s(n, "switches[]", docs);
  models::SwitchParams& p = sw.params;
  s.required("name");
  s.name("name", &sw.name, "Instance name (ports: <name>.usp, <name>.dsp0, ...)")
      .field("downstream_ports", &p.downstream_ports, 1, 32, "Downstream ports")
      .field("vendor_id", &p.vendor_id, "Vendor ID of the switch ports")
      .field("usp_device_id", &p.usp_device_id, "Device ID of the upstream port")
      .field("dsp_device_id", &p.dsp_device_id, "Device ID of the downstream ports")
      .time("traversal_latency", &p.traversal_latency,
            "Ingress-to-egress latency (PEX 88000 / Switchtec PFX: 105-115 ns)");
  p.acs_supported = read_acs(s, "acs", p.acs_supported, "ACS capabilities of the downstream ports");
  s.field("dpc", &p.dpc, "Downstream Port Containment on the downstream ports (docs/faults.md)");
  s.field("ari_forwarding", &p.ari_forwarding, "Downstream ports support ARI Forwarding")
      .field("max_link_speed", &p.max_link_speed, 1, 6, "Port Link Capabilities speed (gen)")
      .field("max_link_width", &p.max_link_width, 1, 32, "Port Link Capabilities width")
      .power_of_two("max_payload_supported", &p.max_payload_supported, 128, 4096,
                    "Max_Payload_Size Supported");
  s.finish();
  return sw;
}

EndpointSpec read_endpoint(const Node& n, DocSink* docs) {
  EndpointSpec ep;
  ep.where = n;
  models::DmaDeviceParams& p = ep.params;
  Section s(n, "endpoints[]", docs);
  s.required("name");
  std::uint32_t cls = p.class_code;
  unsigned rev = p.revision;
  s.name("name", &ep.name, "Instance name (functions: <name>.pf, <name>.vf1, ...)")
      .choice("model", &ep.model, {{"dma", std::string("dma")}},
              "Device model: the DMA copy engine (docs/dma-engine.md)")
      .choice("driver", &ep.driver,
              {{"dma", std::string("dma")},
               {"pf-stub", std::string("pf-stub")},
               {"none", std::string("none")}},
              "Host driver bound to the PF: dma = native driver; pf-stub = unmanaged PF (bound "
              "to a stub that only enables SR-IOV, the PF itself stays disabled); none = no "
              "driver (sriov_numvfs fails as on Linux)")
      .field("vendor_id", &p.vendor_id, "PF Vendor ID")
      .field("device_id", &p.device_id, "PF Device ID")
      .field("subsystem_vendor_id", &p.subsystem_vendor_id, "Subsystem Vendor ID")
      .field("subsystem_id", &p.subsystem_id, "Subsystem ID")
      .field("revision", &rev, 0, 255, "Revision ID")
      .field("class_code", &cls, 0, 0xffffff, "24-bit class code")
      .bytes("device_memory", &p.device_memory, "PF BAR2 device memory (power of two)", 4096,
             1ull << 30)
      .field("msix_vectors", &p.msix_vectors, "PF MSI-X vectors (1-2048)")
      .field("max_link_speed", &p.max_link_speed, 1, 6, "Link Capabilities speed (gen)")
      .field("max_link_width", &p.max_link_width, 1, 32, "Link Capabilities width")
      .power_of_two("max_payload_supported", &p.max_payload_supported, 128, 4096,
                    "Max_Payload_Size Supported")
      .field("tags", &p.tags, 1, 256, "Tags per function with 8-bit tags (outstanding reads)")
      .field("ten_bit_tags", &p.ten_bit_tags, "10-bit Tag Requester Supported (768 tags)")
      .bytes("staging_buffer", &p.staging_bytes,
             "Engine read-ahead buffer per function (reads in flight beyond writes)", 4096,
             16 << 20)
      .field("local_memory_gbps", &p.local_memory_gbps, 1, 1e6, "On-device memory bandwidth, Gb/s")
      .time("local_memory_latency", &p.local_memory_latency,
            "The engine's own device-memory accesses (storing read data, loading write data) "
            "complete this long after their bandwidth slot")
      .field("aligned_requests", &p.aligned_requests,
             "Split DMA writes at MPS-aligned and reads at MRRS-aligned addresses (else every "
             "MPS / MRRS bytes from the transfer's start)")
      .field("write_bursts", &p.write_bursts,
             "Queue the memory writes that are ready together (within one 4 KiB page, one "
             "descriptor, up to 64 TLPs) and simulate them as one burst, each TLP still timed "
             "and credited per hop; false = one write per link slot, "
             "interleaving TLP by TLP with the device's other traffic (slower to simulate)")
      .field("ari", &p.ari, "ARI capability on every function")
      .field("pf_bme_gates_vfs", &p.pf_bme_gates_vfs,
             "Device option: the PF's Bus Master Enable also gates its VFs' DMA (spec default: "
             "independent)")
      .field("no_soft_reset", &p.no_soft_reset, "PMCSR No_Soft_Reset: D3hot->D0 keeps state")
      .time("config_latency", &p.config_latency, "Config request handling")
      .time("mmio_latency", &p.mmio_latency, "Register (BAR0) access handling")
      .time("devmem_latency", &p.devmem_latency, "Device memory (BAR2) access handling")
      .time("flr_time", &p.flr_time, "FLR duration; requests are discarded meanwhile (<= 100 ms)",
            0, 100 * kMs)
      .time("flr_ready_delay", &p.flr_ready_delay, "After FLR, answer config with RRS this long", 0,
            1 * kSec)
      .time("reset_ready_time", &p.reset_ready_time,
            "After a conventional reset, answer config with RRS this long (< 1 s)", 0, 1 * kSec)
      .time("pm_transition_time", &p.pm_transition_time, "D0 <-> D3hot transition time");
  p.acs_supported = read_acs(s, "acs", p.acs_supported,
                             "ACS capability of the PF and VFs (P2P inside the device)");
  p.revision = static_cast<std::uint8_t>(rev);
  p.class_code = cls;
  s.nested("sriov", "mapping", "SR-IOV capability and what the host does with it");
  Section v(s.child("sriov"), "endpoints[].sriov", docs);
  unsigned total = p.total_vfs;
  v.field("total_vfs", &total, 0, 8192, "TotalVFs (0 = no SR-IOV capability)")
      .field("num_vfs", &ep.num_vfs, 0, 8192, "VFs the host enables at boot (sriov_numvfs)")
      .field("autoprobe", &ep.autoprobe,
             "sriov_drivers_autoprobe: bind enabled VFs to the native driver (else leave them "
             "unbound for assignment)")
      .field("first_vf_offset", &p.first_vf_offset, "First VF Offset with ARI Capable Hierarchy")
      .field("vf_stride", &p.vf_stride, "VF Stride with ARI Capable Hierarchy")
      .field("first_vf_offset_no_ari", &p.first_vf_offset_no_ari,
             "First VF Offset without ARI Capable Hierarchy")
      .field("vf_stride_no_ari", &p.vf_stride_no_ari, "VF Stride without ARI Capable Hierarchy")
      .field("vf_device_id", &p.vf_device_id, "VF Device ID")
      .bytes("vf_device_memory", &p.vf_device_memory, "Per-VF BAR2 device memory (power of two)",
             4096, 1ull << 30)
      .field("vf_msix_vectors", &p.vf_msix_vectors, "MSI-X vectors per VF")
      .time("vf_ready_time", &p.vf_ready_time, "After VF Enable, VFs answer RRS this long", 0,
            1 * kSec);
  v.finish();
  s.nested("migration", "mapping",
           "VF live migration (docs/migration.md): what the variant driver offers, the PF "
           "firmware's timing, an injected failure");
  Section m(s.child("migration"), "endpoints[].migration", docs);
  std::string style = "two_level";
  std::string fail_command, fail_mode = "error";
  std::string frozen_devmem = "drop";
  models::MigrationDeviceParams& mp = p.migration;
  m.nested("flags", "list",
           "VFIO_MIGRATION_* flags the variant driver reports: [stop_copy], [stop_copy, p2p], "
           "[stop_copy, pre_copy] or [stop_copy, p2p, pre_copy]")
      .choice("style", &style,
              {{"two_level", std::string("two_level")}, {"full", std::string("full")}},
              "Quiesce style: two_level = suspend initiator at RUNNING_P2P and responder at STOP "
              "(mlx5, pds); full = one suspend of both at RUNNING_P2P (qat, xe, virtio)")
      .choice("frozen_devmem", &frozen_devmem,
              {{"drop", std::string("drop")}, {"accept", std::string("accept")}},
              "What a frozen VF (STOP, STOP_COPY) does with an inbound write into its BAR2: drop "
              "= discarded and counted (mlx5's suspend responder); accept = it lands (ice: no "
              "way to stop incoming requests; only the P2P step of every peer keeps the saved "
              "state exact)")
      .time("command_latency", &mp.command_latency,
            "PF firmware time per mailbox command, before its DMA or drain (hisi_acc polls "
            "every 100 us)",
            0, 10 * kSec)
      .time("command_timeout", &ep.migration.command_timeout,
            "How long the variant driver waits for one command (pds_vfio: 5 s)", 1 * kUs,
            3600 * kSec)
      .bytes("max_stream", &ep.migration.max_stream,
             "Largest resume stream the VFIO device accepts (0 = 16 of the VF's largest images)", 0,
             1ull << 32)
      .field("dma_tags", &mp.dma_tags, 1, 256, "Image reads the firmware keeps outstanding")
      .field("dma_logging", &mp.dma_logging,
             "The firmware logs the VF's DMA writes for dirty tracking (VFIO DMA_LOGGING)")
      .field("log_max_ranges", &mp.log_max_ranges, 1, 256,
             "IOVA ranges one logging session tracks (the host driver merges more)")
      .bytes("log_min_page", &mp.log_min_page, "Smallest page size the log supports", 4096,
             1ull << 30)
      .bytes("log_max_page", &mp.log_max_page, "Largest page size the log supports", 4096,
             1ull << 30)
      .field("log_max_pages", &mp.log_max_pages, 1, 1ull << 28,
             "Pages one logging session may track (the device's log memory)")
      .choice("fail_command", &fail_command,
              {{"", std::string("")},
               {"query", std::string("query")},
               {"suspend_initiator", std::string("suspend_initiator")},
               {"suspend_responder", std::string("suspend_responder")},
               {"resume_responder", std::string("resume_responder")},
               {"resume_initiator", std::string("resume_initiator")},
               {"save", std::string("save")},
               {"load", std::string("load")},
               {"get_state", std::string("get_state")},
               {"stop_tracking", std::string("stop_tracking")},
               {"log_start", std::string("log_start")},
               {"log_stop", std::string("log_stop")},
               {"log_report", std::string("log_report")}},
              "Injected failure: the firmware command that fails")
      .choice("fail_mode", &fail_mode,
              {{"error", std::string("error")}, {"timeout", std::string("timeout")}},
              "error = completes with a firmware error; timeout = never completes (until a "
              "reset)")
      .field("fail_after", &mp.fail_after, 1, 1u << 30,
             "The n-th such command is the first that fails (1 = the first)")
      .field("fail_count", &mp.fail_count, 1, 1u << 30, "How many fail from there");
  for (const char* key : {"log_min_page", "log_max_page"}) {
    const std::uint64_t v = std::string(key) == "log_min_page" ? mp.log_min_page : mp.log_max_page;
    if (m.has(key) && (v & (v - 1))) m.child(key).fail("a page size is a power of two");
  }
  if (mp.log_min_page > mp.log_max_page)
    m.child(m.has("log_min_page") ? "log_min_page" : "log_max_page")
        .fail("log_min_page must not exceed log_max_page");
  if (m.has("flags")) {
    Node f = m.child("flags");
    if (!f.is_sequence()) f.fail("expected a list such as [stop_copy, p2p]");
    for (std::size_t i = 0; i < f.size(); ++i) {
      const std::string name = f.at(i).as_string();
      std::optional<std::uint32_t> bit = vfio::parse_flag(name);
      if (!bit) f.at(i).fail("unknown migration flag '" + name + "' (stop_copy, p2p, pre_copy)");
      if (ep.migration.flags & *bit) f.at(i).fail("flag '" + name + "' given twice");
      ep.migration.flags |= *bit;
    }
    if (!vfio::valid_flags(ep.migration.flags))
      f.fail(
          "undefined flag combination: stop_copy is required (SPEC.md F: stop_copy alone or "
          "with p2p and/or pre_copy)");
  }
  m.finish();
  ep.migration.style =
      style == "full" ? EndpointMigrationSpec::kFullSuspend : EndpointMigrationSpec::kTwoLevel;
  mp.frozen_devmem_accepts = frozen_devmem == "accept";
  mp.fail_timeout = fail_mode == "timeout";
  mp.fail_op = 0;
  for (std::uint32_t op = 1; op <= models::dma::kMigOpLast; ++op)
    if (fail_command == models::MigrationFirmware::op_name(op)) mp.fail_op = op;
  mp.enabled = ep.migration.flags != 0;
  if (n.defined() && m.has("flags") && total == 0)
    m.child("flags").fail("migration needs SR-IOV (sriov.total_vfs > 0): the PF migrates its VFs");
  s.finish();
  p.total_vfs = static_cast<std::uint16_t>(total);
  if (n.defined()) {
    auto pow2 = [](std::uint64_t x) { return x && !(x & (x - 1)); };
    if (!pow2(p.device_memory))
      s.child("device_memory").fail("device memory must be a power of two");
    if (!pow2(p.vf_device_memory))
      s.child("sriov").child("vf_device_memory").fail("VF device memory must be a power of two");
    if (p.msix_vectors < 1 || p.msix_vectors > 2048)
      s.child("msix_vectors").fail("expected 1..2048 MSI-X vectors");
    if (p.vf_msix_vectors < 1 || p.vf_msix_vectors > 2048)
      s.child("sriov").child("vf_msix_vectors").fail("expected 1..2048 MSI-X vectors");
    if (ep.num_vfs > total && total > 0)
      s.child("sriov").child("num_vfs").fail("num_vfs " + std::to_string(ep.num_vfs) +
                                             " exceeds total_vfs " + std::to_string(total));
    if (ep.num_vfs > 0 && total == 0)
      s.child("sriov").child("num_vfs").fail("num_vfs needs total_vfs > 0");
    if (total > 0 && (p.vf_stride == 0 || p.vf_stride_no_ari == 0) && total > 1)
      s.child("sriov").fail("VF Stride must be non-zero with more than one VF");
    if (total > 0 && (p.first_vf_offset == 0 || p.first_vf_offset_no_ari == 0))
      s.child("sriov").fail("First VF Offset must be non-zero (offset 0 is the PF itself)");
  }
  return ep;
}

LinkSpec read_link(const Node& n, std::size_t index, DocSink* docs) {
  LinkSpec l;
  l.where = n;
  l.label = "links[" + std::to_string(index) + "]";
  l.config.upstream_rx = default_credits();
  l.config.downstream_rx = default_credits();
  Section s(n, "links[]", docs);
  s.required("upstream").required("downstream");
  s.field("upstream", &l.upstream, "Downstream-facing port: <rc>.rp<N> or <switch>.dsp<N>")
      .field("downstream", &l.downstream,
             "Device whose upstream port the link reaches: a switch or endpoint name")
      .field("gen", &l.config.speed.generation, 1, 6, "PCIe generation (2.5/5/8/16/32/64 GT/s)")
      .field("width", &l.config.speed.width, 1, 32, "Lanes: 1, 2, 4, 8, 12, 16 or 32")
      .field("ecrc", &l.config.speed.ecrc, "TLPs carry an ECRC digest")
      .time("propagation", &l.config.propagation, "Signal flight time (1 ns ~ 15 cm of FR-4)")
      .time("fc_update_latency", &l.config.fc_update_latency,
            "Receiver buffer freed to UpdateFC sent (added to the DLLP's own time)");
  s.nested("upstream_credits", "mapping", "Credits the upstream end's receiver advertises");
  s.nested("downstream_credits", "mapping", "Credits the downstream end's receiver advertises");
  read_credits(s.child("upstream_credits"), &l.config.upstream_rx, docs,
               "links[].upstream_credits");
  read_credits(s.child("downstream_credits"), &l.config.downstream_rx, docs,
               "links[].downstream_credits");
  s.finish();
  if (n.defined() && !fabric::valid_width(l.config.speed.width))
    s.child("width").fail("expected a link width of 1, 2, 4, 8, 12, 16 or 32, got " +
                          std::to_string(l.config.speed.width));
  return l;
}

Placement read_placement(const Node& n) {
  Placement p;
  if (n.is_map()) {
    Section s(n, "", nullptr);
    s.required("peer");
    s.field("peer", &p.peer, "");
    s.finish();
    p.kind = Placement::kPeer;
    return p;
  }
  std::string v = n.as_string();
  if (v == "host")
    p.kind = Placement::kHost;
  else if (v == "device")
    p.kind = Placement::kDevice;
  else {
    p.kind = Placement::kPeer;
    p.peer = v;
  }
  return p;
}

// A list of function names, or a range "ep0.vf1..ep0.vf64".
std::vector<std::string> read_function_list(const Node& n) {
  std::vector<std::string> out;
  if (n.is_sequence()) {
    for (std::size_t i = 0; i < n.size(); ++i)
      out.push_back(n.at(i).as_string());
    if (out.empty()) n.fail("expected at least one function");
    return out;
  }
  std::string s = n.as_string();
  std::size_t dots = s.find("..");
  if (dots == std::string::npos) return {s};
  std::string a = s.substr(0, dots), b = s.substr(dots + 2);
  auto split = [](const std::string& x, std::string* prefix, long* num) {
    std::size_t i = x.size();
    while (i > 0 && std::isdigit(static_cast<unsigned char>(x[i - 1])))
      --i;
    if (i == x.size() || x.size() - i > 6) return false;
    *prefix = x.substr(0, i);
    *num = std::stol(x.substr(i));
    return true;
  };
  std::string pa, pb;
  long na, nb;
  if (!split(a, &pa, &na) || !split(b, &pb, &nb) || pa != pb || na > nb)
    n.fail("expected a range such as ep0.vf1..ep0.vf64, got '" + s + "'");
  for (long i = na; i <= nb; ++i)
    out.push_back(pa + std::to_string(i));
  return out;
}

WorkloadSpec read_workload(const Node& n, DocSink* docs) {
  WorkloadSpec w;
  w.where = n;
  Section s(n, "workloads[]", docs);
  s.required("name");
  std::string type = "copy";
  std::uint64_t xfer = w.xfer_size;
  std::string single;
  s.name("name", &w.name, "Workload name (stats: workloads.<name>)")
      .field("function", &single, "Function whose DMA engine runs it: ep0.pf, ep0.vf3")
      .nested("functions", "list | \"ep0.vf1..ep0.vf64\"",
              "Instead of `function`: several functions, each running the whole workload with "
              "its own buffers (stats are summed, with a per-function breakdown)")
      .choice("type", &type, {{"copy", std::string("copy")}, {"bench", std::string("bench")}},
              "copy: copy jobs through the DMA engine's descriptor ring; bench: the device's "
              "traffic generator moves data between a host window and device memory with no "
              "descriptors (pcie-bench style; docs/timing.md \"Replaying pcie-bench\")")
      .choice("direction", &w.direction,
              {{"read", WorkloadSpec::kRead},
               {"write", WorkloadSpec::kWrite},
               {"write_read", WorkloadSpec::kWriteRead},
               {"alternate", WorkloadSpec::kAlternate}},
              "bench: DMA reads of host memory, writes, a write then a read of the same bytes "
              "(one pair at a time), or reads and writes alternating")
      .bytes("window", &w.window,
             "bench: host window the transfers are spread over (slots of size + host_offset "
             "rounded up to 64 bytes)",
             64, 1ull << 36)
      .choice("pattern", &w.random, {{"sequential", false}, {"random", true}},
              "bench: slots one after another (wrapping) or drawn at random from simulation.seed")
      .field("host_offset", &w.host_offset, 0, 63, "bench: offset of each transfer in its slot")
      .field("device_offset", &w.device_offset, 0u, 0xffffffffu,
             "bench: device-memory offset of the transfers")
      .choice("cache", &w.cache,
              {{"keep", WorkloadSpec::kKeep},
               {"warm", WorkloadSpec::kWarm},
               {"cold", WorkloadSpec::kCold}},
              "bench: host cache state at the start: warm (the CPU wrote the window), cold "
              "(caches flushed), keep")
      .bytes("size", &w.size, "Bytes per job (one descriptor)", 1, 0xffffffffull)
      .field("count", &w.count, 1, 0xffffffffull,
             "Jobs in total, per function (descriptor cookies are 32 bits)")
      .field("queue_depth", &w.queue_depth, 1, 4096, "Jobs outstanding at once")
      .nested("src", "host | device | <function> | {peer: <function>}",
              "Source: host memory, this function's device memory, or a peer function's device "
              "memory (P2P)")
      .nested("dst", "host | device | <function> | {peer: <function>}", "Destination, as src")
      .bytes("xfer_size", &xfer,
             "Bytes per DMA operation inside a job (0 = the whole job); latency stats are per "
             "operation",
             0, 0xffffffffull)
      .nested("start", "time | manual",
              "When the workload starts, relative to the end of boot; manual = a scenario step "
              "starts it")
      .field("interrupts", &w.interrupts, "Completion by MSI-X interrupt (else the driver polls)")
      .field("verify", &w.verify, "Compare every destination with its source after each job");
  if (n.defined()) {
    if (s.has("function") == s.has("functions"))
      n.fail("a workload needs exactly one of 'function' or 'functions'");
    if (!single.empty()) w.functions.push_back(single);
    if (s.has("functions")) w.functions = read_function_list(s.child("functions"));
  }
  if (s.has("src")) w.src = read_placement(s.child("src"));
  if (s.has("dst")) w.dst = read_placement(s.child("dst"));
  if (s.has("start")) {
    Node st = s.child("start");
    if (st.is_scalar() && st.scalar() == "manual")
      w.manual = true;
    else
      w.start = st.as_time();
  }
  s.finish();
  w.xfer_size = static_cast<std::uint32_t>(xfer);
  w.type = type == "bench" ? WorkloadSpec::kBench : WorkloadSpec::kCopy;
  if (n.defined() && w.type == WorkloadSpec::kBench) {
    if (w.size > 4096) s.child("size").fail("a bench transfer is at most 4096 bytes");
    const std::uint64_t stride = (w.size + w.host_offset + 63) / 64 * 64;
    if (w.window < stride)
      (s.has("window") ? s.child("window") : n)
          .fail("the window (" + std::to_string(w.window) + " bytes) is smaller than one slot (" +
                std::to_string(stride) + " bytes)");
    if (w.window > 0xffffffffull) s.child("window").fail("a bench window is below 4 GiB");
    if (s.has("src") || s.has("dst") || s.has("xfer_size"))
      n.fail("a bench workload has direction and window, not src, dst or xfer_size");
  } else if (n.defined()) {
    for (const char* k :
         {"direction", "window", "pattern", "host_offset", "device_offset", "cache"})
      if (s.has(k)) s.child(k).fail(std::string(k) + " applies to type: bench only");
  }
  if (n.defined()) {
    if (w.count == 0) s.child("count").fail("count must be at least 1");
    if (w.xfer_size > w.size) s.child("xfer_size").fail("xfer_size exceeds the job size");
  }
  return w;
}

// An offset: a number, or "<capability>+<number>" resolved when used.
void read_offset(const Node& n, std::string* cap, std::uint32_t* off, std::uint32_t max) {
  std::string s = n.as_string();
  std::size_t plus = s.find('+');
  std::string name = plus == std::string::npos ? s : s.substr(0, plus);
  if (!name.empty() && std::isalpha(static_cast<unsigned char>(name[0]))) {
    if (!capability_names().count(name))
      n.fail("unknown capability '" + name + "' (pm, exp, msix, aer, acs, ari, sriov, ats, pasid)");
    *cap = name;
    *off = 0;
    if (plus != std::string::npos) {
      Node rest(YAML::Node(s.substr(plus + 1)), n.file(), n.path());
      *off = static_cast<std::uint32_t>(rest.as_u64());
    }
  } else {
    std::uint64_t v = n.as_u64();
    if (v > max) n.fail("offset " + s + " is beyond " + std::to_string(max));
    *off = static_cast<std::uint32_t>(v);
  }
}

// Comparator keys shared by expectations and checking scenario steps.
const std::vector<std::string> kComparators = {"equals",  "not_equals",   "less_than",
                                               "at_most", "greater_than", "at_least",
                                               "between", "approx",       "equals_step"};

bool looks_numeric(const std::string& s) {
  if (s == "true" || s == "false") return true;
  if (s.empty()) return false;
  char* end = nullptr;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
    std::strtoull(s.c_str(), &end, 16);
  else
    std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

double comparator_value(const Node& n) {
  if (n.is_scalar()) {
    const std::string s = n.scalar();
    if (s == "true") return 1;
    if (s == "false") return 0;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
      return static_cast<double>(n.as_u64());
  }
  return n.as_double();
}

bool read_comparison(Section& s, Comparison* c, bool required) {
  for (const std::string& k : kComparators)
    s.nested(
        k,
        k == "between"       ? "[low, high]"
        : k == "equals_step" ? "step index"
                             : "number | text (equals/not_equals, string stats) | {stat: path}",
        k == "approx" ? "Value within `tolerance` (relative, default 0.02)"
        : k == "equals_step"
            ? "Equal to the value scenario[N] recorded (a snapshot or read step): 'unchanged since'"
            : "Comparison with the observed value");
  double tol = 0.02;
  s.field("tolerance", &tol, 0, 1, "Relative tolerance of approx");
  int found = 0;
  static const std::map<std::string, Comparison::Op> ops = {
      {"equals", Comparison::kEq},       {"not_equals", Comparison::kNe},
      {"less_than", Comparison::kLt},    {"at_most", Comparison::kLe},
      {"greater_than", Comparison::kGt}, {"at_least", Comparison::kGe},
      {"between", Comparison::kBetween}, {"approx", Comparison::kApprox},
      {"equals_step", Comparison::kEq}};
  for (const auto& [key, op] : ops) {
    if (!s.has(key)) continue;
    ++found;
    Node v = s.child(key);
    c->op = op;
    if (key == "equals_step") {
      c->step = static_cast<int>(v.as_int(0, 100000));
    } else if (op == Comparison::kBetween) {
      if (!v.is_sequence() || v.size() != 2) v.fail("expected [low, high]");
      c->a = comparator_value(v.at(0));
      c->b = comparator_value(v.at(1));
    } else if (v.is_map()) {
      // Another stats value as the operand: greater_than: {stat: scenario.2.end_ns}
      Section o(v, "comparison operand", nullptr);
      o.required("stat");
      o.field("stat", &c->a_stat, "");
      o.finish();
      c->b = tol;
    } else if ((op == Comparison::kEq || op == Comparison::kNe) && v.is_scalar() &&
               !looks_numeric(v.scalar())) {
      // A text operand: for stats that are strings (a migration state,
      // a driver name).
      c->has_text = true;
      c->a_text = v.scalar();
    } else {
      c->a = comparator_value(v);
      c->b = tol;
    }
  }
  if (found > 1)
    s.node().fail(
        "give exactly one of equals, not_equals, less_than, at_most, "
        "greater_than, at_least, between, approx, equals_step");
  if (found == 0 && required && s.node().defined())
    s.node().fail(
        "missing a comparison: equals, not_equals, less_than, at_most, greater_than, "
        "at_least, between or approx");
  return found == 1;
}

std::vector<std::uint8_t> read_hex_bytes(const Node& n) {
  std::string s = n.as_string();
  std::vector<std::uint8_t> out;
  std::string digits;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c)) && c != ':') digits += c;
  if (digits.size() % 2) n.fail("expected hex byte pairs such as 'de ad be ef'");
  for (std::size_t i = 0; i < digits.size(); i += 2) {
    unsigned v;
    if (std::sscanf(digits.substr(i, 2).c_str(), "%2x", &v) != 1 ||
        !std::isxdigit(static_cast<unsigned char>(digits[i])) ||
        !std::isxdigit(static_cast<unsigned char>(digits[i + 1])))
      n.fail("expected hex byte pairs such as 'de ad be ef', got '" + s + "'");
    out.push_back(static_cast<std::uint8_t>(v));
  }
  return out;
}

void read_target_fields(Section& s, Expectation* e, const std::string& section, DocSink* docs,
                        const std::string& key) {
  Section t(s.child(key), section, docs);
  t.required("target");
  std::uint32_t off = e->offset;
  t.field("target", &e->target, "Function name (ep0.pf) or routing ID (bb:dd.f)")
      .nested("offset", "integer | <capability>+<integer>",
              "Register offset; config offsets may be relative to a capability: sriov+0x10, exp+8")
      .field("size", &e->size, 1, 8, "Access size in bytes (1, 2, 4; MMIO also 8)");
  if (t.has("offset"))
    read_offset(t.child("offset"), &e->cap, &off, key == "register" ? 4095 : 0xffffffffu);
  if (key == "mmio") t.field("bar", &e->bar, 0, 5, "BAR index (0 registers, 2 device memory)");
  t.finish();
  e->offset = static_cast<std::uint16_t>(off);
  if (s.node().defined()) {
    bool ok = e->size == 1 || e->size == 2 || e->size == 4 || (key == "mmio" && e->size == 8);
    if (!ok)
      t.child("size").fail("access size must be 1, 2 or 4" +
                           std::string(key == "mmio" ? " or 8" : ""));
    if (off % e->size) t.child("offset").fail("offset must be aligned to the access size");
    if (!e->cap.empty() && key != "register")
      t.child("offset").fail("capability-relative offsets are for config registers");
  }
}

Expectation read_expectation(const Node& n, const std::string& label, DocSink* docs,
                             const std::string& section) {
  Expectation e;
  e.where = n;
  e.label = label;
  Section s(n, section, docs);
  s.nested("stat", "path", "A value in the stats JSON, e.g. workloads.copy0.mismatches")
      .nested("register", "{target, offset, size}", "A config register (debug read)")
      .nested("mmio", "{target, bar, offset, size}",
              "A register or device-memory word (debug read)")
      .nested("memory", "{address, bytes}", "Host memory holds exactly these bytes")
      .nested("visible", "function", "The function answers config requests (expected: true/false)");
  std::uint64_t mask = e.mask;
  s.field("mask", &mask, "Bits compared (register/mmio)");
  s.field("expected", &e.visible, "For visible: whether the function should answer");
  int kinds = 0;
  if (s.has("stat")) {
    ++kinds;
    e.kind = Expectation::kStat;
    e.stat = s.child("stat").as_string();
  }
  if (s.has("register") || (docs && !n.defined())) {
    if (s.has("register")) ++kinds, e.kind = Expectation::kRegister;
    read_target_fields(s, &e, section + ".register", docs, "register");
  }
  if (s.has("mmio") || (docs && !n.defined())) {
    if (s.has("mmio")) ++kinds, e.kind = Expectation::kMmio;
    read_target_fields(s, &e, section + ".mmio", docs, "mmio");
  }
  if (s.has("memory") || (docs && !n.defined())) {
    if (s.has("memory")) ++kinds, e.kind = Expectation::kMemory;
    Section m(s.child("memory"), section + ".memory", docs);
    m.required("address").required("bytes");
    m.field("address", &e.address, "Host physical address (guest-physical with vm)");
    m.field("vm", &e.vm, "The address is a guest-physical address of this VM");
    m.nested("bytes", "hex string", "Expected bytes, e.g. 'de ad be ef'");
    if (m.has("bytes")) e.bytes = read_hex_bytes(m.child("bytes"));
    m.finish();
  }
  if (s.has("visible")) {
    ++kinds;
    e.kind = Expectation::kVisible;
    e.target = s.child("visible").as_string();
  }
  e.mask = mask;
  bool has_cmp = read_comparison(s, &e.cmp, false);
  s.finish();
  if (!n.defined()) return e;
  if (kinds != 1)
    n.fail("an expectation needs exactly one of stat, register, mmio, memory, visible");
  bool needs_cmp = e.kind == Expectation::kStat || e.kind == Expectation::kRegister ||
                   e.kind == Expectation::kMmio;
  if (needs_cmp && !has_cmp)
    n.fail(
        "missing a comparison: equals, not_equals, less_than, at_most, greater_than, "
        "at_least, between or approx");
  if (!needs_cmp && has_cmp) n.fail("memory and visible expectations take no comparison");
  return e;
}

// A fault (docs/faults.md): what, where, which TLPs, when, how often.
fabric::FaultSpec read_fault(const Node& n, const std::string& label, DocSink* docs,
                             const std::string& doc_path) {
  using fabric::FaultKind;
  fabric::FaultSpec f;
  f.label = label;
  Section s(n, doc_path, docs);
  std::string kind;
  const bool aer_file = s.has("aer_inject") || s.has("aer_inject_text");
  if (!aer_file) {
    s.required("kind");
    s.required("where");
  }
  s.field("kind", &kind, "Fault kind (pciesim faults lists them)")
      .field("where", &f.where,
             "Where: a link (rc.rp0--ep0, optionally :down / :up), a function, rc (host memory "
             "as completer), iommu, an endpoint (migration_command) or a domain (iommu_unmap)")
      .nested("match", "mapping", "Which TLPs: kinds, requester, address, tag")
      .time("at", &f.start, "When the fault is armed (timed kinds: when it fires); after boot")
      .nested("until", "time", "When the fault disarms (default: never)")
      .field("nth", &f.nth, 1, ~std::uint64_t{0} >> 1, "The first firing is on the nth match")
      .field("count", &f.count, "Firings at most (0 = every match)")
      .field("probability", &f.probability, 0.0, 1.0,
             "Chance that a match fires, drawn from simulation.seed")
      .field("repeat", &f.repeat, 1, 16, "lcrc: consecutive bad transmissions of one TLP")
      .time("duration", &f.duration, "link_down: the link comes back by itself after this")
      .field("report", &f.report, "tlp_lost: the dropping component logs an internal error")
      .field("domain", &f.domain, "iommu_unmap: the IOMMU domain (default: `where`)")
      .field("iova", &f.iova, "iommu_unmap: start of the range")
      .bytes("length", &f.length, "iommu_unmap: bytes")
      .field("command", &f.command, "migration_command: the firmware command that fails")
      .field("mode", &f.mode, "migration_command: error or timeout")
      .field("faults", &f.faults, 1, 1u << 20, "iommu_fault: translations that fault per firing")
      .nested("cor_status", "name | number | list",
              "aer_report: correctable errors the function logs (RCVR, BAD_TLP, ...)")
      .nested("uncor_status", "name | number | list",
              "aer_report: uncorrectable errors the function logs (COMP_TIME, UNSUP, ...)")
      .nested("header_log", "list of 4 integers",
              "aer_report: the TLP header logged with the first unmasked uncorrectable error")
      .nested("aer_inject", "file",
              "Instead of kind/where: a file in the aer-inject tool's format (relative to the "
              "config file); each record becomes an aer_report fault at `at`")
      .nested("aer_inject_text", "string", "The same with the file's text inline");
  if (s.has("until")) f.end = s.child("until").as_time();
  for (const bool cor : {true, false}) {
    const char* key = cor ? "cor_status" : "uncor_status";
    if (!s.has(key)) continue;
    Node v = s.child(key);
    std::uint32_t& bits = cor ? f.cor_status : f.uncor_status;
    auto one = [&](const Node& w) {
      std::uint32_t b = 0;
      if (!w.is_scalar() || !fabric::parse_aer_status(cor, w.as_string(), &b))
        w.fail(std::string("expected ") + (cor ? "a correctable" : "an uncorrectable") +
               " error name (" + fabric::aer_status_names(cor) + ") or a non-zero number");
      bits |= b;
    };
    if (v.is_sequence()) {
      if (v.size() == 0) v.fail("expected at least one error");
      for (std::size_t i = 0; i < v.size(); ++i)
        one(v.at(i));
    } else {
      one(v);
    }
  }
  if (s.has("header_log")) {
    Node h = s.child("header_log");
    if (!h.is_sequence() || h.size() != 4) h.fail("expected a list of 4 DW (the TLP header)");
    for (std::size_t i = 0; i < 4; ++i) {
      const std::uint64_t dw = h.at(i).as_u64();
      if (dw > 0xffffffffu) h.at(i).fail("a DW is 32 bits, got " + format_hex(dw));
      f.header_log[i] = static_cast<std::uint32_t>(dw);
    }
  }
  Node mn = s.child("match");
  {
    Section m(mn, doc_path + ".match", docs);
    m.nested("kinds", "list of MRd|MWr|CfgRd0|CfgWr0|CfgRd1|CfgWr1|Cpl|CplD",
             "TLP kinds (default: any request; completions only when listed)")
        .field("requester", &f.match.requester, "Requester function name")
        .field("address_lo", &f.match.address_lo, "Lowest address (inclusive)")
        .field("address_hi", &f.match.address_hi, "Highest address (exclusive)")
        .field("tag", &f.match.tag, -1, 1023, "Tag (-1 = any)");
    if (mn.defined() && m.has("kinds")) {
      Node k = m.child("kinds");
      if (!k.is_sequence()) k.fail("expected a list of TLP kinds");
      for (std::size_t i = 0; i < k.size(); ++i) {
        const std::string name = k.at(i).as_string();
        bool found = false;
        for (unsigned t = 0; t <= static_cast<unsigned>(fabric::TlpKind::CplD); ++t)
          if (name == fabric::to_string(static_cast<fabric::TlpKind>(t))) {
            f.match.kinds |= 1u << t;
            found = true;
          }
        if (!found)
          k.at(i).fail(
              "expected MRd, MWr, CfgRd0, CfgWr0, CfgRd1, CfgWr1, Msg, Cpl or CplD, got '" + name +
              "'");
      }
    }
    m.finish();
  }
  s.finish();
  if (!n.defined()) return f;
  if (aer_file) {
    // The caller (faults[] of a config) expands the file into faults.
    for (const char* k : {"kind", "where", "match", "until", "nth", "count", "probability"})
      if (s.has(k)) s.child(k).fail(std::string("an aer_inject entry takes only `at`, not ") + k);
    if (s.has("aer_inject") && s.has("aer_inject_text"))
      n.fail("give aer_inject or aer_inject_text, not both");
    f.kind = fabric::FaultKind::kAerReport;
    return f;
  }
  if (!fabric::parse_fault_kind(kind, &f.kind)) {
    std::string all;
    for (const fabric::FaultKindInfo& i : fabric::fault_kinds())
      all += (all.empty() ? "" : ", ") + std::string(i.name);
    s.child("kind").fail("unknown fault kind '" + kind + "' (" + all + ")");
  }
  // iommu_unmap's `where` is the domain; `domain` may say it again.
  if (f.kind == fabric::FaultKind::kIommuUnmap && f.domain.empty()) f.domain = f.where;
  const bool aer_fields = s.has("cor_status") || s.has("uncor_status") || s.has("header_log");
  if (f.kind == fabric::FaultKind::kAerReport && !f.cor_status && !f.uncor_status)
    n.fail("aer_report needs cor_status or uncor_status");
  if (f.kind != fabric::FaultKind::kAerReport && aer_fields)
    n.fail("cor_status, uncor_status and header_log are aer_report parameters, not " + kind + "'s");
  if (f.end <= f.start) s.child("until").fail("until must be after at");
  if (f.match.address_hi <= f.match.address_lo && mn.defined())
    mn.fail("address_hi must be above address_lo");
  return f;
}

// A faults[] entry naming an aer-inject file (or its text): one aer_report
// fault per record, all at the entry's `at`, addressed by PCI address.
std::vector<fabric::FaultSpec> expand_aer_inject(const Node& n, const fabric::FaultSpec& base) {
  std::string text, source;
  if (n.child("aer_inject").defined()) {
    Node file = n.child("aer_inject");
    std::filesystem::path p(file.as_string());
    if (p.is_relative() && !n.file().empty() && n.file().find('<') == std::string::npos)
      p = std::filesystem::path(n.file()).parent_path() / p;
    std::ifstream in(p, std::ios::binary);
    if (!in) file.fail("cannot read aer-inject file '" + p.string() + "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    source = p.string();
  } else {
    text = n.child("aer_inject_text").as_string();
    source = n.child("aer_inject_text").location();
  }
  try {
    return aer_inject_faults(text, source, base.label, base.start);
  } catch (const UsageError& e) {
    n.fail("aer-inject: " + e.where() + ": " + e.message());
  }
}

// "10Gbps", "25 Gb/s", "128MiB/s", "1.5GB/s", or a number of bytes per
// second (as QEMU's max-bandwidth): bytes per second.
double read_rate(const Node& n) {
  const std::string text = n.as_string();
  static const std::regex re(R"(^\s*([0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?)\s*([A-Za-z/]*)\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, re))
    n.fail(
        "expected a rate such as 10Gbps, 25 Gb/s, 128MiB/s or a number of bytes per second, "
        "got '" +
        text + "'");
  const double v = std::stod(m[1].str());
  static const std::map<std::string, double> units = {
      {"", 1},           {"B/s", 1},           {"Bps", 1},
      {"kbps", 1e3 / 8}, {"kb/s", 1e3 / 8},    {"Mbps", 1e6 / 8},
      {"Mb/s", 1e6 / 8}, {"Gbps", 1e9 / 8},    {"Gb/s", 1e9 / 8},
      {"kB/s", 1e3},     {"MB/s", 1e6},        {"GB/s", 1e9},
      {"KiB/s", 1024.0}, {"MiB/s", 1048576.0}, {"GiB/s", 1073741824.0}};
  auto it = units.find(m[4].str());
  if (it == units.end())
    n.fail("unknown rate unit '" + m[4].str() + "' in '" + text +
           "' (bps units: kbps, Mbps, Gbps or kb/s, Mb/s, Gb/s; bytes: B/s, kB/s, MB/s, GB/s, "
           "KiB/s, MiB/s, GiB/s)");
  const double r = v * it->second;
  if (!(r >= 1e3 && r <= 1e13))
    n.fail("bandwidth must be between 1 kB/s and 10 TB/s, got '" + text + "'");
  return r;
}

void read_migration_policy(Section& s, MigrationPolicy* p) {
  s.field("to", &p->to, "migrate: the destination VM (vms[] with incoming: true)")
      .nested("functions", "mapping",
              "migrate: source function -> destination function (default: the two VMs' "
              "functions paired in order)")
      .nested("bandwidth", "rate",
              "migrate: migration bandwidth, e.g. 10Gbps or 128MiB/s; a number is bytes/s "
              "(default 128MiB/s, QEMU's max-bandwidth)")
      .time("downtime_limit", &p->downtime_limit,
            "migrate: switch over once the rest fits in this time at the bandwidth (default "
            "300ms, QEMU's downtime-limit)",
            0, 3600 * kSec)
      .field("max_iterations", &p->max_iterations, 1, 100000,
             "migrate: pre-copy passes before switching over anyway (default 30)")
      .choice("dirty_tracking", &p->dirty_tracking,
              {{"auto", MigrationPolicy::kAuto},
               {"device", MigrationPolicy::kDevice},
               {"iommu", MigrationPolicy::kIommu},
               {"none", MigrationPolicy::kNone}},
              "migrate: how DMA writes are tracked: device logging if every device offers it, "
              "else IOMMU dirty bits, else all memory dirty (auto, as QEMU chooses)")
      .field("p2p_quiesce", &p->p2p_quiesce,
             "migrate: every device to RUNNING_P2P before any is stopped (default true); false "
             "stops them one by one, the unsafe order")
      .field("force", &p->force,
             "migrate: migrate several devices even if not all of them support P2P")
      .time("cancel_after", &p->cancel_after,
            "migrate: the user cancels this long after the start (pre-copy only)", 0)
      .name("name", &p->name, "migrate: name of the report (stats migrations.<name>)");
  if (s.has("bandwidth")) p->bandwidth = read_rate(s.child("bandwidth"));
  if (s.has("functions")) {
    Node f = s.child("functions");
    if (!f.is_map()) f.fail("expected a mapping of source function: destination function");
    for (auto it = f.yaml().begin(); it != f.yaml().end(); ++it) {
      const std::string from = it->first.as<std::string>();
      Node to = f.child(from);
      p->functions.push_back({from, to.as_string()});
    }
  }
}

ScenarioStep read_step(const Node& n, std::size_t index, DocSink* docs) {
  ScenarioStep st;
  st.where = n;
  st.label = "scenario[" + std::to_string(index) + "]";
  Section s(n, "scenario[]", docs);
  using A = ScenarioStep;
  // `- check: {...}` alone is a check step; every other step names its action.
  const bool bare_check = s.has("check") && !s.has("action");
  if (bare_check)
    st.action = A::kCheck;
  else
    s.required("action");
  s.choice("action", &st.action,
           {{"config_read", A::kConfigRead},
            {"config_write", A::kConfigWrite},
            {"mmio_read", A::kMmioRead},
            {"mmio_write", A::kMmioWrite},
            {"start_workload", A::kStartWorkload},
            {"wait_workload", A::kWaitWorkload},
            {"wait", A::kWait},
            {"check", A::kCheck},
            {"enable_vfs", A::kEnableVfs},
            {"disable_vfs", A::kDisableVfs},
            {"flr", A::kFlr},
            {"reset_function", A::kResetFunction},
            {"hot_reset", A::kHotReset},
            {"set_power_state", A::kSetPowerState},
            {"bus_master", A::kSetBusMaster},
            {"memory_space", A::kSetMemorySpace},
            {"snapshot", A::kSnapshot},
            {"write_memory", A::kWriteMemory},
            {"dma", A::kDma},
            {"iommu_map", A::kIommuMap},
            {"iommu_unmap", A::kIommuUnmap},
            {"iommu_flush", A::kIommuFlush},
            {"dirty_tracking", A::kDirtyTracking},
            {"read_dirty", A::kReadDirty},
            {"dma_logging_start", A::kDmaLoggingStart},
            {"dma_logging_report", A::kDmaLoggingReport},
            {"dma_logging_stop", A::kDmaLoggingStop},
            {"create_domain", A::kCreateDomain},
            {"attach", A::kAttach},
            {"assign", A::kAssign},
            {"migration_state", A::kMigrationState},
            {"migration_read", A::kMigrationRead},
            {"migration_write", A::kMigrationWrite},
            {"migration_reset", A::kMigrationReset},
            {"precopy_info", A::kPrecopyInfo},
            {"vfio_mmio_read", A::kVfioMmioRead},
            {"vfio_mmio_write", A::kVfioMmioWrite},
            {"inject", A::kInject},
            {"wait_fault", A::kWaitFault},
            {"lspci", A::kLspci},
            {"migrate", A::kMigrate}},
           "What the host does (docs/scenarios.md); may be left out of a step that has `check`");
  std::uint32_t off = 0;
  std::string state = "D0";
  s.nested("at", "time",
           "Not before this time after boot (steps run in order; default: right "
           "after the previous step)");
  if (s.has("at")) st.at = s.child("at").as_time();
  s.nested("status", "integer | any",
           "The status the step must return (0, -errno, or an engine error code); default 0, "
           "and a step returning another status fails the run unless an expectation looks at "
           "scenario.<i>.status; `any` records the status without judging it");
  if (s.has("status")) {
    Node sn = s.child("status");
    if (sn.is_scalar() && sn.scalar() == "any") {
      st.status_policy = A::kStatusAny;
    } else {
      st.status_policy = A::kStatusExpected;
      st.expected_status = sn.as_int(-4095, 0xffffffffll);
    }
  }
  s.field("target", &st.target, "Function name (ep0.pf, sw0.dsp1) or routing ID (bb:dd.f)")
      .nested(
          "offset", "integer | <capability>+<integer>",
          "Register offset (config or BAR); config offsets may be capability-relative: sriov+0x10")
      .field("stat", &st.stat, "snapshot: the stats path whose value the step records")
      .field("size", &st.size, 1, 8, "Access size in bytes")
      .field("value", &st.value, "Value written")
      .field("bar", &st.bar, 0, 5, "BAR of an MMIO access")
      .field("workload", &st.workload, "Workload name")
      .time("duration", &st.duration,
            "How long `wait` waits; wait_fault: how long at most (default 1 s)")
      .field("count", &st.count, 0, 8192,
             "enable_vfs: number of VFs (sriov_numvfs); wait_fault: firings to wait for "
             "(default 1)")
      .field("fault_id", &st.fault_id, 1, 1u << 20,
             "wait_fault: the fault (faults[] entries are 1..N in order, inject steps number "
             "on from there as they run; stats faults.armed[].id)")
      .choice("method", &st.method,
              {{"", std::string("")},
               {"auto", std::string("auto")},
               {"flr", std::string("flr")},
               {"pm", std::string("pm")},
               {"bus", std::string("bus")}},
              "reset_function: reset method (default auto, as Linux picks)")
      .field("restore", &st.flag,
             "flr: save/restore config around it (default false = bare FLR); hot_reset: save "
             "and restore everything below, like pci_reset_bus (default true)")
      .field("enable", &st.flag,
             "bus_master / memory_space: set (true) or clear (false); dirty_tracking: enable "
             "(default true) or disable")
      .power_of_two("page_size", &st.page_size, 4096, 1u << 30,
                    "read_dirty, dma_logging_start / dma_logging_report: page size (default 4096)")
      .field("no_clear", &st.no_clear, "read_dirty: leave the dirty bits set (before an unmap)")
      .nested("ranges", "list of [iova, length]",
              "dma_logging_start: the IOVA ranges the device logs")
      .field("flush", &st.flag,
             "iommu_unmap: invalidate the IOTLB afterwards and wait (default true)")
      .field("state", &state,
             "set_power_state: D0 or D3hot; migration_state: the VFIO migration state to reach "
             "(RUNNING, RUNNING_P2P, STOP, STOP_COPY, RESUMING, PRE_COPY, PRE_COPY_P2P)")
      .field("stream", &st.stream,
             "migration_read / migration_write: a named in-memory stream (read appends to it)")
      .field("file", &st.file,
             "migration_read / migration_write: a file instead of a stream; lspci: also write "
             "the dump there")
      .field("address", &st.address,
             "write_memory: host physical address (guest-physical with vm); iommu_map: host "
             "physical address mapped")
      .nested("bytes", "hex string", "write_memory: the bytes, e.g. 'de ad be ef'")
      .field("vm", &st.vm, "write_memory: in this VM's memory; assign: the VM")
      .field("domain", &st.domain,
             "iommu_map/unmap/flush, attach, create_domain, dirty_tracking, read_dirty: IOMMU "
             "domain name")
      .field("iova", &st.iova, "iommu_map/unmap/flush, read_dirty: I/O virtual address")
      .bytes("length", &st.length, "dma, iommu_map/unmap/flush, read_dirty: bytes")
      .nested("src", "integer | <function>.bar<N>[+offset]",
              "dma: source address as the function sees it (IOVA / GPA / device-memory offset), "
              "or a function's BAR")
      .nested("dst", "integer | <function>.bar<N>[+offset]", "dma: destination, as src")
      .field("src_local", &st.src_local, "dma: src is an offset in the function's device memory")
      .field("dst_local", &st.dst_local, "dma: dst is an offset in the function's device memory")
      .field("read", &st.read, "iommu_map: readable (default true)")
      .field("write", &st.write, "iommu_map: writable (default true)")
      .choice("kind", &st.kind,
              {{"", std::string("")},
               {"global", std::string("global")},
               {"domain", std::string("domain")},
               {"page", std::string("page")},
               {"device", std::string("device")},
               {"dma", std::string("dma")},
               {"identity", std::string("identity")},
               {"blocked", std::string("blocked")}},
              "iommu_flush: global, domain, page or device; create_domain: dma, identity or "
              "blocked");
  if (s.has("bytes")) st.bytes = read_hex_bytes(s.child("bytes"));
  if (s.has("ranges")) {
    Node r = s.child("ranges");
    if (!r.is_sequence()) r.fail("expected a list of [iova, length] pairs");
    for (std::size_t i = 0; i < r.size(); ++i) {
      Node p = r.at(i);
      if (!p.is_sequence() || p.size() != 2) p.fail("expected [iova, length]");
      st.ranges.push_back({p.at(0).as_u64(), p.at(1).as_bytes().value});
    }
  }
  for (const char* key : {"src", "dst"}) {
    if (!s.has(key)) continue;
    Node a = s.child(key);
    std::uint64_t& num = std::string(key) == "src" ? st.src : st.dst;
    std::string& ref = std::string(key) == "src" ? st.src_ref : st.dst_ref;
    const std::string text = a.is_scalar() ? a.scalar() : std::string();
    if (text.find(".bar") != std::string::npos) {
      static const std::regex re(
          R"(^([A-Za-z_][\w]*\.(pf|vf\d+))\.bar([0-5])(\+(0[xX][0-9a-fA-F]+|\d+))?$)");
      if (!std::regex_match(text, re))
        a.fail("expected an address or <function>.bar<N>[+offset] such as ep1.pf.bar2+0x100");
      ref = text;
    } else {
      num = a.as_u64();
    }
  }
  std::uint64_t mask = ~std::uint64_t{0};
  s.field("mask", &mask, "Bits compared by a read step's comparison");
  if (s.has("offset")) read_offset(s.child("offset"), &st.cap, &off, 0xffffffffu);
  s.nested("check", "expectation", "check: an expectation evaluated at this point");
  s.nested("fault", "fault", "inject: the fault (as in faults[]; times relative to the step)");
  if (s.has("fault") || (docs && !n.defined())) {
    Node fn = s.child("fault");
    if (fn.child("aer_inject").defined() || fn.child("aer_inject_text").defined())
      fn.fail("an inject step takes one fault; put aer_inject files in faults[] (at: a time)");
    st.fault = read_fault(fn, st.label + ".fault", docs, "scenario[].fault");
  }
  read_migration_policy(s, &st.migration);
  Comparison cmp;
  bool has_cmp = read_comparison(s, &cmp, false);
  if (s.has("check") || (docs && !n.defined()))
    st.check = read_expectation(s.child("check"), st.label + ".check", docs, "scenario[].check");
  s.finish();
  st.offset = static_cast<std::uint16_t>(off);
  if (!n.defined()) return st;
  if (st.action == A::kMigrationState) {
    if (!vfio::parse_state(state) || state == "ERROR")
      s.child("state").fail(
          "expected a migration state (RUNNING, RUNNING_P2P, STOP, STOP_COPY, "
          "RESUMING, PRE_COPY, PRE_COPY_P2P), got '" +
          state + "'");
    st.mig_state = state;
  } else if (state == "D0") {
    st.power_state = 0;
  } else if (state == "D3hot") {
    st.power_state = 3;
  } else {
    s.child("state").fail("expected D0 or D3hot, got '" + state + "'");
  }
  auto need = [&](const char* key) {
    if (!s.has(key)) n.fail(std::string("action needs '") + key + "'");
  };
  switch (st.action) {
    case A::kConfigRead:
    case A::kConfigWrite:
      need("target");
      need("offset");
      if (st.size != 1 && st.size != 2 && st.size != 4)
        s.child("size").fail("config accesses are 1, 2 or 4 bytes");
      if (off > 4095 || off % st.size)
        s.child("offset").fail("config offset must be below 4096 and aligned to the size");
      if (!st.cap.empty() && off + st.size > 4096) s.child("offset").fail("offset too large");
      if (st.action == A::kConfigWrite) {
        need("value");
        if (st.size < 4 && (st.value >> (8 * st.size)))
          s.child("value").fail("value " + format_hex(st.value) + " does not fit " +
                                std::to_string(st.size) + " byte(s)");
      }
      break;
    case A::kMmioRead:
    case A::kMmioWrite:
      need("target");
      need("offset");
      if (!st.cap.empty())
        s.child("offset").fail("capability-relative offsets are for config accesses");
      if (st.size != 1 && st.size != 2 && st.size != 4 && st.size != 8)
        s.child("size").fail("MMIO accesses are 1, 2, 4 or 8 bytes");
      if (st.action == A::kMmioWrite) {
        need("value");
        if (st.size < 8 && (st.value >> (8 * st.size)))
          s.child("value").fail("value " + format_hex(st.value) + " does not fit " +
                                std::to_string(st.size) + " byte(s)");
      }
      break;
    case A::kStartWorkload:
    case A::kWaitWorkload:
      need("workload");
      break;
    case A::kWait:
      need("duration");
      break;
    case A::kCheck:
      need("check");
      break;
    case A::kSnapshot:
      need("stat");
      break;
    case A::kEnableVfs:
      need("target");
      need("count");
      break;
    case A::kSetBusMaster:
    case A::kSetMemorySpace:
      need("target");
      need("enable");
      break;
    case A::kSetPowerState:
      need("target");
      need("state");
      break;
    case A::kWriteMemory:
      need("address");
      need("bytes");
      break;
    case A::kDma:
      need("target");
      need("src");
      need("dst");
      need("length");
      if (st.length == 0 || st.length > 0xffffffffull)
        s.child("length").fail("dma length must be 1 B .. 4 GiB");
      break;
    case A::kIommuMap:
      need("domain");
      need("iova");
      need("address");
      need("length");
      break;
    case A::kIommuUnmap:
    case A::kReadDirty:
      need("domain");
      need("iova");
      need("length");
      break;
    case A::kDirtyTracking:
      need("domain");
      break;
    case A::kDmaLoggingStart:
      need("target");
      need("ranges");
      break;
    case A::kDmaLoggingReport:
      need("target");
      need("iova");
      need("length");
      break;
    case A::kDmaLoggingStop:
      need("target");
      break;
    case A::kIommuFlush: {
      need("kind");
      const std::string& k = st.kind;
      if (k != "global" && k != "domain" && k != "page" && k != "device")
        s.child("kind").fail("iommu_flush kind is global, domain, page or device");
      if (k == "domain" || k == "page") need("domain");
      if (k == "page") need("length");
      if (k == "device") need("target");
      break;
    }
    case A::kCreateDomain:
      need("domain");
      if (!st.kind.empty() && st.kind != "dma" && st.kind != "identity" && st.kind != "blocked")
        s.child("kind").fail("create_domain kind is dma, identity or blocked");
      break;
    case A::kAttach:
      need("target");
      need("domain");
      break;
    case A::kAssign:
      need("target");
      need("vm");
      break;
    case A::kMigrationState:
      need("target");
      need("state");
      break;
    case A::kMigrationRead:
    case A::kMigrationWrite:
      need("target");
      if (s.has("stream") == s.has("file"))
        n.fail("a migration stream step needs either 'stream' (a name) or 'file'");
      break;
    case A::kVfioMmioRead:
    case A::kVfioMmioWrite:
      need("target");
      need("offset");
      if (st.size != 1 && st.size != 2 && st.size != 4 && st.size != 8)
        s.child("size").fail("MMIO accesses are 1, 2, 4 or 8 bytes");
      if (st.action == A::kVfioMmioWrite) need("value");
      break;
    case A::kInject:
      need("fault");
      break;
    case A::kWaitFault:
      need("fault_id");
      if (!s.has("duration")) st.duration = fabric::kSec;
      if (!s.has("count")) st.count = 1;
      if (st.count == 0) s.child("count").fail("wait_fault waits for at least 1 firing");
      break;
    case A::kLspci:
      need("target");
      break;
    case A::kMigrate:
      need("vm");
      need("to");
      st.migration.vm = st.vm;
      if (st.migration.name.empty()) st.migration.name = st.vm + "_to_" + st.migration.to;
      break;
    default:
      need("target");
      break;
  }
  if (has_cmp) {
    if (st.action != A::kConfigRead && st.action != A::kMmioRead)
      n.fail("only config_read and mmio_read steps take a comparison");
    st.check.kind = st.action == A::kConfigRead ? Expectation::kRegister : Expectation::kMmio;
    st.check.cmp = cmp;
    st.check.mask = mask;
    st.check.label = st.label;
    st.check.where = n;
  }
  if (st.action == A::kFlr && !s.has("restore")) st.flag = false;
  if (st.action == A::kHotReset && !s.has("restore")) st.flag = true;
  if (st.action == A::kIommuUnmap && !s.has("flush")) st.flag = true;
  if (st.action == A::kDirtyTracking && !s.has("enable")) st.flag = true;
  return st;
}

// ------------------------------------------------------------ whole document

bool parse_index(const std::string& s, const std::string& prefix, unsigned* out) {
  if (s.compare(0, prefix.size(), prefix) != 0 || s.size() == prefix.size()) return false;
  unsigned v = 0;
  for (std::size_t i = prefix.size(); i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
    if (v > 100000) return false;
  }
  *out = v;
  return true;
}

void check_target(const SystemConfig& c, const std::string& target, const Node& where) {
  if (target.empty() || fabric::RoutingId::parse(target)) return;
  if (!c.function_exists(target))
    where.fail("no function named '" + target +
               "' (expected e.g. ep0.pf, ep0.vf1, sw0.dsp0, rc.rp0 or a routing ID bb:dd.f)");
}

// PCIe Base 4.0, 2.6.1 Table 2-43 (minimum initial flow-control
// advertisements): a receiver advertises header credits for at least one
// TLP (0 = infinite), and posted and completion data credits for at least
// its largest Max_Payload_Size setting (Max_Payload_Size Supported / 16),
// so that every TLP the link can carry fits; non-posted data at least 1.
void check_credit_minimums(const SystemConfig& c) {
  auto mps_supported = [&](const std::string& node) -> std::uint32_t {
    if (node == c.root_complex.name) return c.root_complex.params.max_payload_supported;
    if (const SwitchSpec* s = c.switch_spec(node)) return s->params.max_payload_supported;
    if (const EndpointSpec* e = c.endpoint(node)) return e->params.max_payload_supported;
    return 128;
  };
  for (const LinkSpec& l : c.links) {
    const std::string up = l.upstream.substr(0, l.upstream.rfind('.'));
    for (int side = 0; side < 2; ++side) {
      const fabric::FcCredits& cr = side == 0 ? l.config.upstream_rx : l.config.downstream_rx;
      const std::uint32_t mps = mps_supported(side == 0 ? up : l.downstream);
      const std::uint32_t need = mps / 16;
      Node n = l.where.child(side == 0 ? "upstream_credits" : "downstream_credits");
      auto check = [&](const char* key, std::uint32_t have) {
        if (have != 0 && have < need)
          (n.child(key).defined() ? n.child(key) : n)
              .fail(std::to_string(have) + " " + key + " credits cannot carry one " +
                    std::to_string(mps) +
                    "-byte TLP (the receiver's Max_Payload_Size Supported): " + "at least " +
                    std::to_string(need) + ", or 0 = infinite (PCIe 2.6.1, Table 2-43)");
      };
      check("posted_data", cr.posted_data);
      check("completion_data", cr.completion_data);
    }
  }
}

// Warnings for links that train below what the config asks (the same rule
// the builder applies) and a host.mps above what a hierarchy supports.
void note_link_training(SystemConfig& c) {
  struct Caps {
    int speed, width;
    std::uint32_t mps;
  };
  auto caps = [&](const std::string& node) -> Caps {
    if (node == c.root_complex.name) {
      const auto& p = c.root_complex.params;
      return {p.max_link_speed, p.max_link_width, p.max_payload_supported};
    }
    if (const SwitchSpec* s = c.switch_spec(node))
      return {s->params.max_link_speed, s->params.max_link_width, s->params.max_payload_supported};
    const EndpointSpec* e = c.endpoint(node);
    return {e->params.max_link_speed, e->params.max_link_width, e->params.max_payload_supported};
  };
  std::map<std::string, std::string> parent;  // device -> node above it
  for (const LinkSpec& l : c.links) {
    const std::string up = l.upstream.substr(0, l.upstream.rfind('.'));
    parent[l.downstream] = up;
    const Caps a = caps(up), b = caps(l.downstream);
    const fabric::LinkSpeed want = l.config.speed;
    const fabric::LinkSpeed got = fabric::train_link(want, a.speed, a.width, b.speed, b.width);
    if (got.generation != want.generation || got.width != want.width)
      c.warnings.push_back(
          l.label + " (" + l.upstream + " -- " + l.downstream + "): Gen" +
          std::to_string(want.generation) + " x" + std::to_string(want.width) + " trains to Gen" +
          std::to_string(got.generation) + " x" + std::to_string(got.width) + " (" + up +
          " supports Gen" + std::to_string(a.speed) + " x" + std::to_string(a.width) + ", " +
          l.downstream + " Gen" + std::to_string(b.speed) + " x" + std::to_string(b.width) + ")");
  }
  if (!c.host.mps) return;
  // Per root port hierarchy (what the PCI core configures), the largest
  // payload every device in it supports.
  std::map<std::string, std::pair<std::uint32_t, std::string>> limit;
  for (const auto& [dev, up] : parent) {
    std::string top = dev;
    for (std::string n = dev; parent.count(n) && parent[n] != c.root_complex.name;)
      top = n = parent[n];
    const Caps k = caps(dev);
    auto& lim = limit
                    .emplace(top, std::make_pair(c.root_complex.params.max_payload_supported,
                                                 c.root_complex.name))
                    .first->second;
    if (k.mps < lim.first) lim = {k.mps, dev};
  }
  for (const auto& [top, lim] : limit)
    if (c.host.mps > lim.first)
      c.warnings.push_back("host.mps " + std::to_string(c.host.mps) +
                           " is above what the "
                           "hierarchy of " +
                           top + " supports: its devices run at MPS " + std::to_string(lim.first) +
                           " (" + lim.second + " supports up to " + std::to_string(lim.first) +
                           ")");
}

// The host's physical address map: DRAM, ECAM, the MSI window, both MMIO
// windows and the IOMMU's registers must not overlap, or accesses go to the
// wrong place and drivers fail to probe for reasons buried in the stats.
void check_address_map(const SystemConfig& c, const Node& root) {
  struct Region {
    std::string what;
    std::uint64_t base, size;
    Node where;
  };
  const auto& rc = c.root_complex.params;
  Node rcn = root.child("root_complex");
  std::vector<Region> map;
  Node mem = root.child("host").child("memory");
  for (std::size_t i = 0; i < c.host.memory.ranges.size(); ++i)
    map.push_back({"host.memory[" + std::to_string(i) + "]", c.host.memory.ranges[i].base,
                   c.host.memory.ranges[i].size, mem.at(i)});
  // The key that set a region, or an undefined node for a default.
  auto at = [&](const Node& n, const char* key) { return n.child(key); };
  // ECAM: 1 MiB per bus, buses 0-255 (PCI Firmware Spec 3.2, MCFG).
  map.push_back({"the ECAM window", rc.ecam_base, 256ull << 20, at(rcn, "ecam_base")});
  map.push_back({"the MSI window", rc.msi_base, rc.msi_size, at(rcn, "msi_base")});
  map.push_back({"the 32-bit MMIO window", rc.mmio32.base, rc.mmio32.size, at(rcn, "mmio32_base")});
  map.push_back({"the 64-bit MMIO window", rc.mmio64.base, rc.mmio64.size, at(rcn, "mmio64_base")});
  if (c.iommu.enabled)
    map.push_back(
        {"the IOMMU registers", c.iommu.params.base, 4096, at(root.child("iommu"), "base")});
  for (std::size_t i = 0; i < map.size(); ++i) {
    const Region& a = map[i];
    if (a.base + a.size < a.base)
      a.where.fail(a.what + " runs past the end of the 64-bit address space");
    for (std::size_t j = 0; j < i; ++j) {
      const Region& b = map[j];
      if (a.base < b.base + b.size && b.base < a.base + a.size)
        // Blame what the config sets over a default it runs into.
        (a.where.defined() || !b.where.defined() ? a.where : b.where)
            .fail(a.what + " [" + format_hex(a.base) + ", " + format_hex(a.base + a.size) +
                  ") overlaps " + b.what + " [" + format_hex(b.base) + ", " +
                  format_hex(b.base + b.size) + ")");
    }
  }
}

void validate(SystemConfig& c, const Node& root) {
  // Topology: names, links, tree shape, bus numbers.
  fabric::Topology topo;
  std::map<std::string, Node> where;
  topo.add_node(
      {c.root_complex.name, fabric::NodeKind::kRootComplex, c.root_complex.params.root_ports});
  where[c.root_complex.name] = root.child("root_complex");
  for (const SwitchSpec& s : c.switches) {
    topo.add_node({s.name, fabric::NodeKind::kSwitch, s.params.downstream_ports});
    where.emplace(s.name, s.where.child("name"));
  }
  for (const EndpointSpec& e : c.endpoints) {
    const auto& p = e.params;
    unsigned extra = 0;
    if (p.total_vfs) {
      std::uint32_t last = std::max<std::uint32_t>(
          p.first_vf_offset + (p.total_vfs - 1u) * p.vf_stride,
          p.first_vf_offset_no_ari + (p.total_vfs - 1u) * p.vf_stride_no_ari);
      extra = last >> 8;
    }
    topo.add_node({e.name, fabric::NodeKind::kEndpoint, 0, extra});
    if (!where.count(e.name)) where.emplace(e.name, e.where.child("name"));
  }
  std::set<std::string> all_names;
  auto claim = [&](const std::string& name, const Node& n) {
    if (!all_names.insert(name).second)
      n.fail("duplicate name '" + name +
             "': every root complex, switch and endpoint needs a unique name");
  };
  claim(c.root_complex.name, root.child("root_complex"));
  for (const SwitchSpec& s : c.switches)
    claim(s.name, s.where.child("name"));
  for (const EndpointSpec& e : c.endpoints)
    claim(e.name, e.where.child("name"));

  for (LinkSpec& l : c.links) {
    where[l.label] = l.where;
    std::size_t dot = l.upstream.rfind('.');
    if (dot == std::string::npos)
      l.where.child("upstream")
          .fail("expected <root complex>.rp<N> or <switch>.dsp<N>, got '" + l.upstream + "'");
    std::string node = l.upstream.substr(0, dot), port = l.upstream.substr(dot + 1);
    unsigned index = 0;
    bool is_rc = node == c.root_complex.name;
    bool ok = is_rc ? parse_index(port, "rp", &index)
                    : (c.switch_spec(node) && parse_index(port, "dsp", &index));
    if (!ok && (is_rc || c.switch_spec(node)))
      l.where.child("upstream")
          .fail("'" + port + "' is not a port of '" + node + "' (expected " +
                (is_rc ? "rp<N>" : "dsp<N>") + ")");
    std::string lower = l.downstream;
    std::size_t ldot = lower.rfind('.');
    if (ldot != std::string::npos) {
      std::string suffix = lower.substr(ldot + 1);
      if (suffix == "usp" || suffix == "port") lower = lower.substr(0, ldot);
    }
    l.downstream = lower;
    topo.add_link({l.label, node, index, lower});
  }
  try {
    topo.validate();
  } catch (const fabric::TopologyError& e) {
    auto it = where.find(e.subject());
    if (it != where.end()) it->second.fail(e.message());
    root.fail(e.message());
  }
  check_credit_minimums(c);
  note_link_training(c);

  // Workloads.
  std::set<std::string> wl_names;
  for (const WorkloadSpec& w : c.workloads) {
    if (!wl_names.insert(w.name).second)
      w.where.child("name").fail("duplicate workload name '" + w.name + "'");
    const std::string fkey = w.where.child("function").defined() ? "function" : "functions";
    std::uint64_t devmem = ~std::uint64_t{0};
    std::set<std::string> seen;
    for (const std::string& fn : w.functions) {
      const EndpointSpec* ep = c.endpoint_of(fn);
      if (!ep || !c.function_exists(fn))
        w.where.child(fkey).fail("no DMA function named '" + fn +
                                 "' (expected <endpoint>.pf or <endpoint>.vf<N>)");
      if (!seen.insert(fn).second) w.where.child(fkey).fail("'" + fn + "' is listed twice");
      bool vf = fn.find(".vf") != std::string::npos;
      devmem = std::min(devmem, vf ? ep->params.vf_device_memory : ep->params.device_memory);
    }
    if (w.type == WorkloadSpec::kBench) {
      if (w.device_offset + w.size > devmem)
        (w.where.child("device_offset").defined() ? w.where.child("device_offset") : w.where)
            .fail("device_offset + size = " + format_bytes(w.device_offset + w.size) +
                  " does not fit the function's device memory (" + format_bytes(devmem) + ")");
      continue;
    }
    std::uint64_t need = w.size * w.queue_depth;
    for (const char* key : {"src", "dst"}) {
      const Placement& p = std::string(key) == "src" ? w.src : w.dst;
      if (p.kind == Placement::kDevice && need > devmem)
        w.where.child(key).fail("queue_depth x size = " + format_bytes(need) +
                                " does not fit the function's device memory (" +
                                format_bytes(devmem) + ")");
      if (p.kind == Placement::kPeer) {
        const EndpointSpec* pe = c.endpoint_of(p.peer);
        if (!pe || !c.function_exists(p.peer))
          w.where.child(key).fail("no DMA function named '" + p.peer + "' for peer-to-peer");
        bool pvf = p.peer.find(".vf") != std::string::npos;
        std::uint64_t pmem = pvf ? pe->params.vf_device_memory : pe->params.device_memory;
        if (need > pmem)
          w.where.child(key).fail("queue_depth x size = " + format_bytes(need) +
                                  " does not fit the peer's device memory (" + format_bytes(pmem) +
                                  ")");
      }
    }
  }
  // Host buffers are allocated when a workload starts; refuse here what
  // cannot fit instead of failing mid-run. Each function of a workload has
  // queue_depth buffers of `size` per host side, in its VM's memory when
  // assigned, else in host DRAM.
  std::map<std::string, std::uint64_t> budget, demand;
  std::map<std::string, const Node*> first_user;
  for (const auto& r : c.host.memory.ranges)
    budget["host DRAM"] += r.size;
  std::map<std::string, std::string> vm_of;
  for (const VmSpec& v : c.vms) {
    budget["VM " + v.name] = v.memory;
    for (const std::string& fn : v.functions)
      vm_of[fn] = v.name;
  }
  for (const WorkloadSpec& w : c.workloads) {
    const unsigned sides = (w.src.kind == Placement::kHost) + (w.dst.kind == Placement::kHost);
    for (const std::string& fn : w.functions) {
      auto vm = vm_of.find(fn);
      const std::string space = vm == vm_of.end() ? "host DRAM" : "VM " + vm->second;
      // size < 2^32 and queue_depth <= 4096: no overflow.
      std::uint64_t& d = demand[space];
      d +=
          w.type == WorkloadSpec::kBench ? w.window : std::uint64_t{sides} * w.queue_depth * w.size;
      if (d > budget[space])
        w.where.child("size").fail(
            "the workloads' host buffers (queue_depth x size per host side and function) need " +
            format_bytes(d) + " of " + space + ", which has " + format_bytes(budget[space]));
    }
  }
  // IOMMU and VMs.
  std::set<std::string> vm_names, assigned;
  for (const VmSpec& v : c.vms) {
    if (!c.iommu.enabled) v.where.fail("a VM needs the IOMMU (iommu: {enabled: true})");
    if (!vm_names.insert(v.name).second)
      v.where.child("name").fail("duplicate VM name '" + v.name + "'");
    if (c.function_exists(v.name) || v.name == "identity" || v.name == "blocked")
      v.where.child("name").fail("'" + v.name + "' is reserved (a function or domain name)");
    for (std::size_t i = 0; i < v.functions.size(); ++i) {
      const std::string& fn = v.functions[i];
      if (!c.endpoint_of(fn) || !c.function_exists(fn))
        v.where.child("functions").at(i).fail("no DMA function named '" + fn + "'");
      if (!assigned.insert(fn).second)
        v.where.child("functions").at(i).fail("'" + fn + "' is assigned twice");
    }
  }
  if (c.iommu.params.base % 4096)
    root.child("iommu").child("base").fail("the register block must be 4 KiB aligned");
  check_address_map(c, root);
  // Steps whose status an expectation or check looks at are judged there.
  auto looks_at_status = [&](const Expectation& e, std::size_t i) {
    const std::string path = "scenario." + std::to_string(i) + ".status";
    return (e.kind == Expectation::kStat && e.stat == path) || e.cmp.a_stat == path;
  };
  for (std::size_t i = 0; i < c.scenario.size(); ++i) {
    ScenarioStep& st = c.scenario[i];
    if (st.status_policy != ScenarioStep::kStatusZero) continue;
    bool seen = false;
    for (const Expectation& e : c.expect)
      seen = seen || looks_at_status(e, i);
    for (const ScenarioStep& other : c.scenario)
      seen = seen || (other.action == ScenarioStep::kCheck && looks_at_status(other.check, i));
    if (seen) st.status_policy = ScenarioStep::kStatusChecked;
  }
  for (const ScenarioStep& s : c.scenario) {
    if (!s.workload.empty() && !c.workload(s.workload))
      s.where.child("workload").fail("no workload named '" + s.workload + "'");
    if (!s.vm.empty() && !c.vm(s.vm)) s.where.child("vm").fail("no VM named '" + s.vm + "'");
    for (const char* key : {"src", "dst"}) {
      const std::string& ref = std::string(key) == "src" ? s.src_ref : s.dst_ref;
      if (ref.empty()) continue;
      const std::string fn = ref.substr(0, ref.rfind(".bar"));
      if (!c.endpoint_of(fn) || !c.function_exists(fn))
        s.where.child(key).fail("no DMA function named '" + fn + "'");
    }
    const bool needs_iommu =
        s.action == ScenarioStep::kIommuMap || s.action == ScenarioStep::kIommuUnmap ||
        s.action == ScenarioStep::kIommuFlush || s.action == ScenarioStep::kCreateDomain ||
        s.action == ScenarioStep::kAttach || s.action == ScenarioStep::kAssign ||
        s.action == ScenarioStep::kDirtyTracking || s.action == ScenarioStep::kReadDirty;
    if (needs_iommu && !c.iommu.enabled)
      s.where.child("action").fail("this action needs the IOMMU (iommu: {enabled: true})");
    check_target(c, s.target, s.where.child("target"));
    if (s.action == ScenarioStep::kCheck && s.check.kind != Expectation::kStat &&
        s.check.kind != Expectation::kMemory)
      check_target(c, s.check.target, s.check.where);
  }
  auto check_step_ref = [&](const Expectation& e, std::size_t limit) {
    if (e.cmp.step < 0) return;
    if (static_cast<std::size_t>(e.cmp.step) >= limit)
      e.where.child("equals_step").defined()
          ? e.where.child("equals_step")
                .fail("scenario[" + std::to_string(e.cmp.step) +
                      "] does not come before this check")
          : e.where.fail("equals_step refers to a later or missing step");
    const ScenarioStep& ref = c.scenario[e.cmp.step];
    if (ref.action != ScenarioStep::kSnapshot && ref.action != ScenarioStep::kConfigRead &&
        ref.action != ScenarioStep::kMmioRead)
      e.where.child("equals_step")
          .fail("scenario[" + std::to_string(e.cmp.step) +
                "] records no value (use a snapshot or read step)");
  };
  for (std::size_t i = 0; i < c.scenario.size(); ++i)
    if (c.scenario[i].action == ScenarioStep::kCheck) check_step_ref(c.scenario[i].check, i);
  for (const Expectation& e : c.expect) {
    if (e.kind != Expectation::kStat && e.kind != Expectation::kMemory)
      check_target(c, e.target, e.where);
    if (!e.vm.empty() && !c.vm(e.vm)) e.where.fail("no VM named '" + e.vm + "'");
    check_step_ref(e, c.scenario.size());
  }
}

SystemConfig read_document(const Node& root, DocSink* docs) {
  SystemConfig c;
  c.source = root.file();
  Section top(root, "", docs);
  std::string platform = kDefaultPlatform;
  {
    std::vector<std::pair<std::string, std::string>> names;
    std::string doc =
        "Platform preset: host, root complex and IOMMU timing defaults (docs/timing.md "
        "\"Platforms\"); the sections below override any of them.";
    for (const PlatformPreset& p : platform_presets()) {
      names.emplace_back(p.name, p.name);
      doc += std::string(" ") + p.name + ": " + p.summary + ".";
    }
    top.choice("platform", &platform, names, doc);
  }
  top.nested("simulation", "mapping", "Run control")
      .nested("host", "mapping", "Host memory and the host software's PCI settings")
      .nested("root_complex", "mapping", "The root complex and its root ports")
      .nested("switches", "list", "PCIe switches")
      .nested("endpoints", "list", "Endpoint devices (DMA engines, optionally with SR-IOV)")
      .nested("links", "list", "Links from root ports / switch downstream ports to devices")
      .nested("iommu", "mapping", "The IOMMU at the root complex (docs/iommu.md)")
      .nested("vms", "list", "Virtual machines: guest memory, an IOMMU domain, assigned functions")
      .nested("workloads", "list", "DMA copy workloads the host drivers run")
      .nested("scenario", "list", "Timed host actions (docs/scenarios.md)")
      .nested("expect", "list", "Checks that decide the exit code of `pciesim run`")
      .nested("faults", "list", "The fault plan: faults armed at boot (docs/faults.md)");
  top.finish();
  c.platform = platform;
  find_platform(platform)->apply(c);
  read_simulation(root.child("simulation"), &c.simulation, docs);
  read_host(root.child("host"), &c.host, docs);
  read_root_complex(root.child("root_complex"), &c.root_complex, docs);
  read_iommu(root.child("iommu"), &c.iommu, docs);
  auto list = [&](const char* key, auto fn) {
    Node n = root.child(key);
    if (!n.defined()) {
      if (docs) fn(Node(), 0);
      return;
    }
    if (!n.is_sequence()) n.fail(std::string("expected a list of ") + key);
    for (std::size_t i = 0; i < n.size(); ++i)
      fn(n.at(i), i);
  };
  list("switches", [&](const Node& n, std::size_t) {
    SwitchSpec s = read_switch(n, docs);
    if (n.defined()) c.switches.push_back(s);
  });
  list("endpoints", [&](const Node& n, std::size_t) {
    EndpointSpec e = read_endpoint(n, docs);
    if (n.defined()) c.endpoints.push_back(e);
  });
  list("links", [&](const Node& n, std::size_t i) {
    LinkSpec l = read_link(n, i, docs);
    if (n.defined()) c.links.push_back(l);
  });
  list("vms", [&](const Node& n, std::size_t) {
    VmSpec v = read_vm(n, docs);
    if (n.defined()) c.vms.push_back(v);
  });
  list("workloads", [&](const Node& n, std::size_t) {
    WorkloadSpec w = read_workload(n, docs);
    if (n.defined()) c.workloads.push_back(w);
  });
  list("scenario", [&](const Node& n, std::size_t i) {
    ScenarioStep s = read_step(n, i, docs);
    if (n.defined()) c.scenario.push_back(s);
  });
  list("faults", [&](const Node& n, std::size_t i) {
    const std::string label = "faults[" + std::to_string(i) + "]";
    fabric::FaultSpec f = read_fault(n, label, docs, "faults[]");
    if (!n.defined()) return;
    if (n.child("aer_inject").defined() || n.child("aer_inject_text").defined()) {
      for (const fabric::FaultSpec& r : expand_aer_inject(n, f))
        c.faults.push_back(r);
      return;
    }
    c.faults.push_back(f);
  });
  list("expect", [&](const Node& n, std::size_t i) {
    Expectation e = read_expectation(n, "expect[" + std::to_string(i) + "]", docs, "expect[]");
    if (n.defined()) c.expect.push_back(e);
  });
  if (!docs) validate(c, root);
  return c;
}

}  // namespace

// ------------------------------------------------------------ SystemConfig

const EndpointSpec* SystemConfig::endpoint(const std::string& name) const {
  for (const EndpointSpec& e : endpoints)
    if (e.name == name) return &e;
  return nullptr;
}

const SwitchSpec* SystemConfig::switch_spec(const std::string& name) const {
  for (const SwitchSpec& s : switches)
    if (s.name == name) return &s;
  return nullptr;
}

const VmSpec* SystemConfig::vm(const std::string& name) const {
  for (const VmSpec& v : vms)
    if (v.name == name) return &v;
  return nullptr;
}

const WorkloadSpec* SystemConfig::workload(const std::string& name) const {
  for (const WorkloadSpec& w : workloads)
    if (w.name == name) return &w;
  return nullptr;
}

const EndpointSpec* SystemConfig::endpoint_of(const std::string& function) const {
  std::size_t dot = function.rfind('.');
  if (dot == std::string::npos) return nullptr;
  return endpoint(function.substr(0, dot));
}

bool SystemConfig::function_exists(const std::string& name) const {
  std::size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string node = name.substr(0, dot), fn = name.substr(dot + 1);
  unsigned i = 0;
  if (node == root_complex.name)
    return fn == "hb" || (parse_index(fn, "rp", &i) && i < root_complex.params.root_ports);
  if (const SwitchSpec* s = switch_spec(node))
    return fn == "usp" || (parse_index(fn, "dsp", &i) && i < s->params.downstream_ports);
  if (const EndpointSpec* e = endpoint(node))
    return fn == "pf" || (parse_index(fn, "vf", &i) && i >= 1 && i <= e->params.total_vfs);
  return false;
}

std::string Comparison::text() const {
  std::ostringstream o;
  auto num = [&](double v) {
    std::ostringstream s;
    if (v == std::floor(v) && std::fabs(v) < 1e18)
      s << static_cast<long long>(v);
    else
      s << std::setprecision(12) << v;
    return s.str();
  };
  if (has_text) return std::string(op == kNe ? "!= " : "== ") + "\"" + a_text + "\"";
  switch (op) {
    case kEq:
      o << "== " << num(a);
      break;
    case kNe:
      o << "!= " << num(a);
      break;
    case kLt:
      o << "< " << num(a);
      break;
    case kLe:
      o << "<= " << num(a);
      break;
    case kGt:
      o << "> " << num(a);
      break;
    case kGe:
      o << ">= " << num(a);
      break;
    case kBetween:
      o << "in [" << num(a) << ", " << num(b) << "]";
      break;
    case kApprox:
      o << "~= " << num(a) << " (+-" << b * 100 << "%)";
      break;
  }
  return o.str();
}

bool Comparison::holds(double v) const {
  switch (op) {
    case kEq:
      return v == a;
    case kNe:
      return v != a;
    case kLt:
      return v < a;
    case kLe:
      return v <= a;
    case kGt:
      return v > a;
    case kGe:
      return v >= a;
    case kBetween:
      return v >= a && v <= b;
    case kApprox:
      return std::fabs(v - a) <= std::fabs(a) * b;
  }
  return false;
}

// ------------------------------------------------------------ entry points

std::string apply_override(YAML::Node& root, const std::string& assignment) {
  std::size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("--set " + assignment, 0, 0, "",
                      "expected key=value, e.g. simulation.quantum=0ns");
  std::string path = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  // Split "a.b[2].c" into a, b, 2, c.
  std::vector<std::string> parts;
  std::string cur;
  for (char ch : path) {
    if (ch == '.' || ch == '[' || ch == ']') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  if (parts.empty()) throw ConfigError("--set " + assignment, 0, 0, path, "empty key");
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set " + assignment, 0, 0, path,
                      "cannot parse value '" + value + "': " + e.msg);
  }
  // Walk with a chain of nodes (yaml-cpp nodes are handles).
  std::vector<YAML::Node> chain{root};
  std::string walked;
  std::string canonical;  // with list items as indexes, as config paths are
  const std::string where = "--set " + assignment;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    YAML::Node here = chain.back();
    const std::string& key = parts[i];
    bool last = i + 1 == parts.size();
    walked += (walked.empty() ? "" : ".") + key;
    YAML::Node next;
    if (here.IsSequence()) {
      bool numeric = !key.empty() && std::all_of(key.begin(), key.end(), ::isdigit);
      std::size_t idx = 0;
      if (numeric) {
        if (key.size() > 9 || (idx = std::stoul(key)) >= here.size())
          throw ConfigError(
              where, 0, 0, walked,
              "index " + key + " is beyond the list's " + std::to_string(here.size()) + " items");
      } else {
        bool found = false;
        for (std::size_t j = 0; j < here.size(); ++j)
          if (here[j].IsMap() && here[j]["name"] && here[j]["name"].IsScalar() &&
              here[j]["name"].Scalar() == key) {
            idx = j;
            found = true;
            break;
          }
        if (!found) throw ConfigError(where, 0, 0, walked, "no list item named '" + key + "'");
      }
      next = here[idx];
      canonical += "[" + std::to_string(idx) + "]";
      if (last) throw ConfigError(where, 0, 0, walked, "cannot replace a whole list item");
    } else {
      if (!here.IsMap() && !here.IsNull() && here.IsDefined())
        throw ConfigError(where, 0, 0, walked, "'" + walked + "' is not a mapping");
      canonical += (canonical.empty() ? "" : ".") + key;
      if (last) {
        here[key] = parsed;
        return canonical;
      }
      next = here[key];
      if (!next.IsDefined() || next.IsNull()) {
        here[key] = YAML::Node(YAML::NodeType::Map);
        next = here[key];
      }
    }
    chain.push_back(next);
  }
  return canonical;
}

SystemConfig load_config_tree(YAML::Node root, const std::string& source,
                              const std::vector<std::string>& overrides) {
  // An empty document would run an empty machine and "pass" nothing.
  if (!root.IsDefined() || root.IsNull() || (root.IsMap() && root.size() == 0))
    throw ConfigError(source, 0, 0, "",
                      "the config is empty: a config is a mapping with keys such as endpoints, "
                      "links and workloads");
  std::vector<std::pair<std::string, std::string>> applied;
  for (const std::string& o : overrides)
    applied.emplace_back(apply_override(root, o), o);
  OverrideScope scope(std::move(applied));
  check_document(root, source);
  Node top(root, source, "");
  if (!root.IsMap())
    top.fail("a config is a mapping with keys such as links, endpoints, workloads");
  return read_document(top, nullptr);
}

std::vector<fabric::FaultSpec> aer_inject_faults(const std::string& text, const std::string& source,
                                                 const std::string& label, fabric::Time at) {
  std::vector<fabric::FaultSpec> out;
  for (const fabric::AerInjectRecord& r : fabric::parse_aer_inject(text, source)) {
    if (r.domain != 0)
      throw UsageError(r.where, "domain " + std::to_string(r.domain) +
                                    " does not exist (the simulated machine has segment 0 only)");
    fabric::FaultSpec f;
    f.kind = fabric::FaultKind::kAerReport;
    f.where = r.pci_id();
    f.start = at;
    f.cor_status = r.cor_status;
    f.uncor_status = r.uncor_status;
    f.header_log = r.header_log;
    f.label = label + " (" + r.where + ")";
    out.push_back(f);
  }
  return out;
}

namespace {
// A small YAML / JSON mapping given as text (a fault, a migration): parsed,
// checked like a config document, refused unless it is a mapping.
YAML::Node load_mapping_text(const std::string& text, const std::string& source,
                             const std::string& what, const std::string& shape) {
  if (text.size() > 65536) throw ConfigError(source, 0, 0, "", what + " is too long");
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source, e.mark.line + 1, e.mark.column + 1, "", "YAML: " + e.msg);
  }
  check_document(root, source);
  if (!root.IsMap()) Node(root, source, "").fail(shape);
  return root;
}
}  // namespace

fabric::FaultSpec load_fault_text(const std::string& text, const std::string& source) {
  YAML::Node root = load_mapping_text(text, source, "a fault description",
                                      "a fault is a mapping with kind and where");
  Node top(root, source, "");
  if (top.child("aer_inject").defined() || top.child("aer_inject_text").defined())
    top.fail(
        "aer_inject files are read in a config's faults[] (or by Simulation.aer_inject), not "
        "here");
  return read_fault(top, source, nullptr, "fault");
}

MigrationPolicy load_migration_policy_text(const std::string& text, const std::string& source) {
  YAML::Node root = load_mapping_text(text, source, "a migration policy",
                                      "a migration is a mapping with vm, to and policy keys");
  Node top(root, source, "");
  MigrationPolicy p;
  Section s(top, "migrate", nullptr);
  s.required("vm");
  s.required("to");
  s.name("vm", &p.vm, "the source VM");
  read_migration_policy(s, &p);
  s.finish();
  if (p.name.empty()) p.name = p.vm + "_to_" + p.to;
  return p;
}

SystemConfig load_config_text(const std::string& text, const std::string& source,
                              const std::vector<std::string>& overrides) {
  if (text.size() > kMaxConfigBytes)
    throw ConfigError(source, 0, 0, "",
                      "the config is " + std::to_string(text.size()) + " bytes; at most " +
                          std::to_string(kMaxConfigBytes) + " are read");
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(source, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax: " + e.msg);
  } catch (const YAML::Exception& e) {
    // yaml-cpp's own depth guard and other failures below the parser.
    throw ConfigError(source, e.mark.line + 1, e.mark.column + 1, "", "YAML: " + e.msg);
  }
  return load_config_tree(root, source, overrides);
}

SystemConfig load_config_file(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status))
    throw ConfigError(path, 0, 0, "", "no such config file");
  if (std::filesystem::is_directory(status))
    throw ConfigError(path, 0, 0, "", "is a directory, not a config file");
  if (!std::filesystem::is_regular_file(status))
    throw ConfigError(path, 0, 0, "", "is not a regular file (a device or a pipe?)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, 0, "", "cannot open the config file");
  // Read at most one byte past the limit, so a growing file cannot make
  // this read without bound.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) throw ConfigError(path, 0, 0, "", "cannot read the config file");
  return load_config_text(text, path, overrides);
}

// Capability names usable in offsets: "sriov+0x10", "exp+8", "msix".
const std::map<std::string, std::pair<bool, unsigned>>& capability_names() {
  static const std::map<std::string, std::pair<bool, unsigned>> names = {
      {"pm", {false, PCI_CAP_ID_PM}},      {"exp", {false, PCI_CAP_ID_EXP}},
      {"pcie", {false, PCI_CAP_ID_EXP}},   {"msix", {false, PCI_CAP_ID_MSIX}},
      {"aer", {true, PCI_EXT_CAP_ID_ERR}}, {"acs", {true, PCI_EXT_CAP_ID_ACS}},
      {"ari", {true, PCI_EXT_CAP_ID_ARI}}, {"sriov", {true, PCI_EXT_CAP_ID_SRIOV}},
      {"ats", {true, PCI_EXT_CAP_ID_ATS}}, {"pasid", {true, PCI_EXT_CAP_ID_PASID}},
      {"dpc", {true, PCI_EXT_CAP_ID_DPC}}};
  return names;
}

std::string config_reference_markdown() {
  DocSink docs;
  read_document(Node(YAML::Node(), "", ""), &docs);
  std::ostringstream o;
  o << docs.markdown() << "\n## Limits\n\n"
    << "What a config can make the simulator do or allocate is bounded, and "
       "checked at validation:\n\n"
    << "- a config file is a regular file of at most " << (kMaxConfigBytes >> 20)
    << " MiB; an empty document (nothing but comments, `{}` or `~`) is refused;\n"
    << "- maps and lists nest at most " << kMaxConfigDepth
    << " levels (dicts from Python too); a key appears once per mapping;\n"
    << "- a workload has at most 4294967295 jobs per function and 4096 outstanding; the "
       "host buffers of all workloads (queue_depth x size per host side and function) "
       "must fit host DRAM, or the VM's memory for an assigned function; device-side "
       "buffers must fit the function's device memory;\n"
    << "- at most 8192 VFs per endpoint, device memory up to 1 GiB.\n";
  return o.str();
}

}  // namespace pciesim::sim

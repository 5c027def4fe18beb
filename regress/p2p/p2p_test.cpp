// Peer-to-peer DMA paths: a read of a peer's BAR turned around in the
// switch versus redirected by ACS through the root complex (and the IOMMU),
// delivering the same bytes; the redirected read takes exactly as much
// longer as its extra hops cost in the model's own terms.
#include <gtest/gtest.h>

#include <linux/pci_regs.h>

#include <string>

#include "fabric/link/link_timing.h"
#include "sim/builder/system.h"
#include "sim/config/config_loader.h"
#include "sim/facade/simulation.h"
#include "sim/host/host.h"

namespace pciesim::sim {
namespace {

using fabric::Time;

std::string config(bool iommu) {
  return std::string("simulation: {quantum: 0ns}\n") +
         (iommu ? "iommu: {enabled: true}\nhost: {acs: []}\n" : "") +
         "switches: [{name: sw0, downstream_ports: 2}]\n"
         "endpoints:\n"
         "  - {name: ep0, max_link_speed: 4}\n"
         "  - {name: ep1, max_link_speed: 4}\n"
         "links:\n"
         "  - {upstream: rc.rp0, downstream: sw0, gen: 4, width: 8}\n"
         "  - {upstream: sw0.dsp0, downstream: ep0, gen: 4, width: 8}\n"
         "  - {upstream: sw0.dsp1, downstream: ep1, gen: 4, width: 8}\n";
}

struct Read {
  double latency_ns = 0;
  double extra_hops_ns = 0;  // what the redirected path should add (see below)
  int status = -1;
  std::vector<std::uint8_t> bytes;
  nlohmann::ordered_json stats;
};

// ep0 reads 64 bytes of ep1's device memory into its own, `warm` times
// first (to fill the IOTLB), then once measured in a fresh histogram.
Read p2p_read(bool redirect, bool iommu, unsigned warm = 0) {
  Simulation sim(load_config_text(config(iommu), "p2p"));
  sim.boot();
  // ACS Control of ep0's port: Request Redirect + Upstream Forwarding, or none.
  const std::uint16_t acs =
      sim.system().function("sw0.dsp0")->config().find_extended_capability(PCI_EXT_CAP_ID_ACS);
  sim.config_write("sw0.dsp0", static_cast<std::uint16_t>(acs + PCI_ACS_CTRL), 2,
                   redirect ? (PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF) : 0);
  std::vector<std::uint8_t> pattern(64);
  for (unsigned i = 0; i < 64; ++i)
    pattern[i] = static_cast<std::uint8_t>(0x40 + i);
  sim.host().system().function("ep1.pf")->dma()->devmem_debug(0x100, pattern.data(), 64, true);
  const std::uint64_t bar2 = sim.peer_address("ep0.pf", "ep1.pf", 2);
  std::uint32_t bytes = 0;
  for (unsigned i = 0; i < warm; ++i)
    sim.dma("ep0.pf", bar2 + 0x100, 0x800, 64, false, true, fabric::kMs, &bytes);
  Read r;
  const double before_n =
      sim.stats()["functions"]["ep0.pf"]["dma"]["read_latency_ns"]["count"].get<double>();
  const double before_sum =
      before_n * sim.stats()["functions"]["ep0.pf"]["dma"]["read_latency_ns"]["mean"].get<double>();
  r.status = sim.dma("ep0.pf", bar2 + 0x100, 0, 64, false, true, fabric::kMs, &bytes);
  r.stats = sim.stats();
  const auto& h = r.stats["functions"]["ep0.pf"]["dma"]["read_latency_ns"];
  // Reads of this DMA: descriptor fetches do not count; one data read.
  EXPECT_EQ(h["count"].get<double>(), before_n + 1);
  r.latency_ns = h["mean"].get<double>() * h["count"].get<double>() - before_sum;
  // The extra cost of the redirected path, from the model's parameters:
  // for the request and for its completion, one more switch traversal, the
  // root complex's upstream and downstream latencies, and one crossing of
  // the switch's uplink (as this system trained and configured it).
  const SystemConfig& cfg = sim.config();
  const fabric::LinkTiming& t =
      sim.system().links()[0].link->direction(fabric::LinkDir::kUp).timing();
  EXPECT_EQ(sim.system().links()[0].name, "rc.rp0--sw0.usp");
  const Time mrd = t.serialization(t.wire_bytes(fabric::TlpKind::MRd, 0, bar2 > 0xffffffffull));
  const Time cpld = t.serialization(t.wire_bytes(fabric::TlpKind::CplD, 64, false));
  const Time prop = cfg.links[0].config.propagation;
  const auto& rc = cfg.root_complex.params;
  Time extra = 2 * cfg.switches[0].params.traversal_latency +
               2 * (rc.upstream_latency + rc.downstream_latency) + 2 * (mrd + prop) +
               2 * (cpld + prop);
  if (iommu) extra += cfg.iommu.params.iotlb_hit_latency;
  r.extra_hops_ns = fabric::to_ns(extra);
  r.bytes.resize(64);
  sim.system().function("ep0.pf")->dma()->devmem_debug(0, r.bytes.data(), 64, false);
  return r;
}

TEST(P2p, DirectAndRedirectedDeliverTheSameBytes) {
  Read direct = p2p_read(false, false);
  Read redirected = p2p_read(true, false);
  ASSERT_EQ(direct.status, 0);
  ASSERT_EQ(redirected.status, 0);
  for (unsigned i = 0; i < 64; ++i) {
    EXPECT_EQ(direct.bytes[i], 0x40 + i);
    EXPECT_EQ(redirected.bytes[i], 0x40 + i);
  }
  EXPECT_EQ(direct.stats["switches"]["sw0"]["dsp0"]["p2p_direct"], 1);
  EXPECT_EQ(direct.stats["p2p"]["reflected"], 0);
  EXPECT_EQ(redirected.stats["switches"]["sw0"]["dsp0"]["p2p_redirected"], 1);
  EXPECT_EQ(redirected.stats["p2p"]["reflected"], 1);
  EXPECT_EQ(redirected.stats["p2p"]["direct"], 0);
}

TEST(P2p, RedirectedReadIsLongerByExactlyItsExtraHops) {
  Read direct = p2p_read(false, false);
  Read redirected = p2p_read(true, false);
  EXPECT_NEAR(redirected.latency_ns - direct.latency_ns, redirected.extra_hops_ns, 1e-6)
      << "direct " << direct.latency_ns << " ns, redirected " << redirected.latency_ns << " ns";
}

TEST(P2p, ThroughTheIommuAnIotlbHitAddsItsLatencyOnly) {
  // With the IOMMU, ep0's domain maps ep1's BAR (identity); after one warm
  // read the translation is an IOTLB hit.
  Read direct = p2p_read(false, true, 1);
  Read redirected = p2p_read(true, true, 1);
  ASSERT_EQ(redirected.status, 0);
  EXPECT_GE(redirected.stats["iommu"]["iotlb_hits"].get<int>(), 1);
  EXPECT_NEAR(redirected.latency_ns - direct.latency_ns, redirected.extra_hops_ns, 1e-6);
}

TEST(P2p, RootComplexPolicyCanBlockRedirectedPeerToPeer) {
  Simulation sim(load_config_text(config(false) + "root_complex: {p2p: block}\n", "p2p"));
  sim.boot();
  const std::uint16_t acs =
      sim.system().function("sw0.dsp0")->config().find_extended_capability(PCI_EXT_CAP_ID_ACS);
  sim.config_write("sw0.dsp0", static_cast<std::uint16_t>(acs + PCI_ACS_CTRL), 2,
                   PCI_ACS_RR | PCI_ACS_UF);
  PciDev* target = sim.host().pci().find("ep1.pf");
  std::uint32_t bytes = 0;
  int st = sim.dma("ep0.pf", sim.host().pci().bar_address(*target, 2), 0, 64, false, true,
                   fabric::kMs, &bytes);
  EXPECT_EQ(st, 2);  // DMA_UR
  auto s = sim.stats();
  EXPECT_EQ(s["p2p"]["blocked"], 1);
  EXPECT_EQ(s["p2p"]["reflected"], 0);
}

}  // namespace
}  // namespace pciesim::sim

namespace pciesim::sim {
namespace {

// ACS controls that need requests our DMA engines never make (a requester
// ID from elsewhere, ATS-translated addresses): TLPs injected at a switch
// downstream port as if they came from the device below.
struct Injected {
  fabric::CplStatus status;
  fabric::P2pPath path;
};

Injected inject(Simulation& sim, fabric::RoutingId requester, std::uint64_t addr,
                fabric::AddressType type) {
  Injected out{};
  models::PcieSwitch* sw = sim.system().switch_device("sw0");
  sim.schedule(sim.now(), [&] {
    std::uint8_t data[64] = {};
    fabric::Tlp tlp;
    tlp.memory(fabric::TlpKind::MRd, requester, addr, data, 64);
    tlp.ext().address_type = type;
    sc_core::sc_time d = sc_core::SC_ZERO_TIME;
    sw->port_receive(sw->downstream_port(0), tlp.gp(), d);
    out = {tlp.ext().status, tlp.ext().p2p};
  });
  sim.run_for(10 * fabric::kUs);
  return out;
}

TEST(Acs, SourceValidationTranslationBlockingAndDirectTranslated) {
  Simulation sim(load_config_text(config(false), "acs"));
  sim.boot();
  const std::uint16_t acs =
      sim.system().function("sw0.dsp0")->config().find_extended_capability(PCI_EXT_CAP_ID_ACS);
  const auto ctrl = static_cast<std::uint16_t>(acs + PCI_ACS_CTRL);
  const fabric::RoutingId ep0 = sim.system().function("ep0.pf")->rid();
  const fabric::RoutingId stranger{0x20, 0, 0};  // a bus not below dsp0
  PciDev* target = sim.host().pci().find("ep1.pf");
  const std::uint64_t peer = sim.host().pci().bar_address(*target, 2);
  using fabric::AddressType;
  using fabric::CplStatus;

  // Without ACS a spoofed requester and a translated request get through.
  EXPECT_EQ(inject(sim, stranger, peer, AddressType::kUntranslated).status, CplStatus::kSC);
  EXPECT_EQ(inject(sim, ep0, peer, AddressType::kTranslated).status, CplStatus::kSC);

  sim.config_write("sw0.dsp0", ctrl, 2, PCI_ACS_SV | PCI_ACS_TB);
  EXPECT_EQ(inject(sim, stranger, peer, AddressType::kUntranslated).status, CplStatus::kCA);
  EXPECT_EQ(inject(sim, ep0, peer, AddressType::kTranslated).status, CplStatus::kCA);
  EXPECT_EQ(inject(sim, ep0, peer, AddressType::kUntranslated).status, CplStatus::kSC);
  auto s = sim.stats();
  EXPECT_EQ(s["switches"]["sw0"]["dsp0"]["acs_violations"], 2);

  // Request Redirect sends peer traffic up, except translated requests
  // with Direct Translated P2P.
  sim.config_write("sw0.dsp0", ctrl, 2, PCI_ACS_RR | PCI_ACS_DT);
  EXPECT_EQ(inject(sim, ep0, peer, AddressType::kUntranslated).path, fabric::P2pPath::kReflected);
  Injected dt = inject(sim, ep0, peer, AddressType::kTranslated);
  EXPECT_EQ(dt.status, CplStatus::kSC);
  EXPECT_EQ(dt.path, fabric::P2pPath::kDirect);
}

TEST(Acs, RootPortEgressControlBlocksPeerToPeerBetweenRootPorts) {
  Simulation sim(
      load_config_text("simulation: {quantum: 0ns}\n"
                       "root_complex: {root_ports: 2}\n"
                       "endpoints: [{name: ep0}, {name: ep1}]\n"
                       "links:\n"
                       "  - {upstream: rc.rp0, downstream: ep0}\n"
                       "  - {upstream: rc.rp1, downstream: ep1}\n",
                       "rc-ec"));
  sim.boot();
  const std::uint64_t peer = sim.peer_address("ep0.pf", "ep1.pf", 2);
  std::uint32_t bytes = 0;
  EXPECT_EQ(sim.dma("ep0.pf", peer, 0, 64, false, true, fabric::kMs, &bytes), 0);
  EXPECT_EQ(sim.stats()["p2p"]["reflected"], 1);
  const std::uint16_t acs =
      sim.system().function("rc.rp0")->config().find_extended_capability(PCI_EXT_CAP_ID_ACS);
  ASSERT_NE(acs, 0);
  // rp1 has Port Number 2.
  sim.config_write("rc.rp0", static_cast<std::uint16_t>(acs + PCI_ACS_EGRESS_CTL_V), 4, 1u << 2);
  sim.config_write("rc.rp0", static_cast<std::uint16_t>(acs + PCI_ACS_CTRL), 2, PCI_ACS_EC);
  EXPECT_EQ(sim.dma("ep0.pf", peer, 0, 64, false, true, fabric::kMs, &bytes), 3);  // DMA_CA
  auto s = sim.stats();
  EXPECT_EQ(s["root_complex"]["root_ports"]["rp0"]["acs_violations"], 1);
  EXPECT_EQ(s["p2p"]["reflected"], 1);
  // Host memory is not a peer: DMA to DRAM is unaffected.
  EXPECT_EQ(sim.dma("ep0.pf", 0x20000000, 0, 64, false, true, fabric::kMs, &bytes), 0);
}

}  // namespace
}  // namespace pciesim::sim

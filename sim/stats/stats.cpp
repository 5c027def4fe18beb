#include "sim/stats/stats.h"

#include <linux/pci_regs.h>

#include <cstdio>
#include <map>

#include "fabric/common/histogram.h"
#include "fabric/port/port.h"
#include "models/dma_endpoint/migration_firmware.h"
#include "sim/builder/system.h"
#include "sim/host/host.h"
#include "sim/migration/vmm.h"
#include "sim/scenario/checker.h"
#include "sim/scenario/scenario_runner.h"

namespace pciesim::sim {

using json = nlohmann::ordered_json;
using namespace fabric;

namespace {

double ns(Time t) {
  return to_ns(t);
}

bool g_distributions = false;

json histogram(const Histogram& h) {
  json j;
  j["count"] = h.count();
  j["mean"] = h.mean();
  j["min"] = h.min();
  j["p50"] = h.percentile(50);
  j["p99"] = h.percentile(99);
  j["max"] = h.max();
  if (g_distributions && h.count()) {
    // [percentile, ns] pairs: enough to draw the distribution (pciesim plot).
    json cdf = json::array();
    for (double p : {0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 100.0})
      cdf.push_back({p, p == 0 ? h.min() : p == 100 ? h.max() : h.percentile(p)});
    j["cdf"] = std::move(cdf);
  }
  return j;
}

json direction(const LinkDirection& d, Time now) {
  const LinkDirectionStats& s = d.stats();
  json j;
  j["tlps"] = s.tlps;
  j["wire_bytes"] = s.wire_bytes;
  j["payload_bytes"] = s.payload_bytes;
  j["busy_ns"] = ns(s.busy_time);
  j["utilization"] = now ? static_cast<double>(s.busy_time) / static_cast<double>(now) : 0.0;
  json fc;
  for (unsigned c = 0; c < 3; ++c) {
    json one;
    one["stalls"] = s.fc[c].stalls;
    one["stall_ns"] = ns(s.fc[c].stall_time);
    fc[to_string(static_cast<FcClass>(c))] = one;
  }
  j["credit_stalls"] = fc;
  j["replays"] = s.replays;
  j["replay_timeouts"] = s.replay_timeouts;
  j["retrains"] = s.retrains;
  j["replay_delay_ns"] = ns(s.replay_delay);
  return j;
}

// What the VFIO layer and the variant driver did for a function opened
// through VFIO (docs/migration.md).
json vfio_migration(const VfioDevice& v) {
  const VfioStats& st = v.stats();
  json j;
  j["state"] = vfio::state_name(v.state());
  j["state_code"] = static_cast<unsigned>(v.state());  // enum vfio_device_mig_state
  j["flags"] = vfio::flag_names(v.migration_flags());
  if (!v.unavailable().empty()) j["unavailable"] = v.unavailable();
  j["style"] = v.style_name();
  j["transitions"] = st.transitions;
  j["failed_transitions"] = st.failed_transitions;
  json arcs = json::array();
  json per_arc = json::object();
  for (const ArcRecord& a : st.arcs) {
    const std::string name = std::string(vfio::state_name(a.from)) + "->" + vfio::state_name(a.to);
    json r;
    r["arc"] = name;
    r["start_ns"] = ns(a.start);
    r["ns"] = ns(a.end - a.start);
    r["status"] = a.status;
    arcs.push_back(r);
    json& t = per_arc[name];
    if (t.is_null()) {
      t["count"] = 0;
      t["total_ns"] = 0.0;
    }
    t["count"] = t["count"].get<std::uint64_t>() + 1;
    t["total_ns"] = t["total_ns"].get<double>() + ns(a.end - a.start);
  }
  j["arcs"] = arcs;
  j["arc_time_ns"] = per_arc;
  j["images_saved"] = st.images_saved;
  j["image_bytes_saved"] = st.image_bytes_saved;
  j["image_bytes_loaded"] = st.image_bytes_loaded;
  j["loads_refused"] = st.loads_refused;
  j["stream_bytes_read"] = st.stream_bytes_read;
  j["stream_bytes_written"] = st.stream_bytes_written;
  j["initial_bytes"] = st.initial_bytes;
  j["dirty_bytes"] = st.dirty_bytes;
  j["refused_mmio"] = st.refused_mmio;
  j["user_mmio"] = st.mmio;
  j["resets"] = st.resets;
  json cmds = json::object();
  for (const auto& [op, c] : st.commands) {
    json x;
    x["count"] = c.count;
    x["failures"] = c.failures;
    x["latency_ns"] = histogram(c.latency);
    cmds[op] = x;
  }
  j["commands"] = cmds;
  return j;
}

json firmware_stats(const models::MigrationFirmware& fw) {
  const models::MigrationFirmwareStats& s = fw.stats();
  json j;
  json cmds = json::object();
  for (std::uint32_t op = 1; op <= models::dma::kMigOpLast; ++op) {
    if (!s.commands[op]) continue;
    cmds[models::MigrationFirmware::op_name(op)] = {{"count", s.commands[op]},
                                                    {"errors", s.errors[op]}};
  }
  j["commands"] = cmds;
  j["busy_doorbells"] = s.busy_doorbells;
  j["aborted"] = s.aborted;
  j["injected_failures"] = s.injected;
  j["image_bytes_written"] = s.image_bytes_written;
  j["image_bytes_read"] = s.image_bytes_read;
  j["latency_ns"] = histogram(s.latency);
  return j;
}

json dma_function(models::DmaFunction& f, Host& host) {
  const models::DmaFunctionStats& s = f.stats();
  json j;
  j["rid"] = f.rid().str();
  j["kind"] = f.is_vf() ? "vf" : "pf";
  j["exists"] = f.exists();
  PciDev* pd = host.pci().find(f.name());
  j["driver"] = pd ? pd->driver : std::string();
  j["bound"] = pd && !pd->driver.empty();
  j["host_knows"] = pd != nullptr;  // the host's device list has it
  json dma;
  dma["engine_steps"] = s.engine_steps;
  dma["read_requests"] = s.read_requests;
  dma["read_bytes"] = s.read_bytes;
  dma["write_requests"] = s.write_requests;
  dma["write_bytes"] = s.write_bytes;
  dma["local_bytes"] = s.local_bytes;
  dma["descriptor_fetches"] = s.descriptor_fetches;
  dma["descriptors_completed"] = s.descriptors_completed;
  dma["operations"] = s.ops_completed;
  dma["errors"] = s.errors;
  dma["bme_aborts"] = s.bme_aborts;
  dma["unexpected_completions"] = s.unexpected_completions;
  dma["p2p_internal"] = s.p2p_internal;
  dma["tag_stalls"] = s.tag_stalls;
  dma["tag_stall_ns"] = ns(s.tag_stall_time);
  dma["error_code"] = f.error_code();
  dma["first_op_end_ns"] = ns(s.first_op_end);
  dma["last_op_end_ns"] = ns(s.last_op_end);
  dma["op_bytes"] = s.op_bytes;
  // Steady state: the bytes of every operation after the first, over the
  // time from the first operation's completion to the last's.
  dma["steady_gbps"] = s.last_op_end > s.first_op_end
                           ? static_cast<double>(s.op_bytes - s.first_op_bytes) * 8.0 /
                                 (to_sec(s.last_op_end - s.first_op_end) * 1e9)
                           : 0.0;
  dma["op_latency_ns"] = histogram(s.op_latency);
  dma["read_latency_ns"] = histogram(s.read_latency);
  if (s.gen_transfers) {
    dma["generator_transfers"] = s.gen_transfers;
    dma["generator_latency_ns"] = histogram(s.gen_latency);
    dma["generator_steady_gbps"] =
        s.gen_run_last_end > s.gen_run_first_end
            ? static_cast<double>(s.gen_run_bytes - s.gen_run_first_bytes) * 8.0 /
                  (to_sec(s.gen_run_last_end - s.gen_run_first_end) * 1e9)
            : 0.0;
  }
  j["dma"] = dma;
  json irq;
  irq["sent"] = s.msix_sent;
  irq["masked"] = s.msix_masked;
  irq["dropped"] = s.msix_dropped;
  irq["received"] = host.system().rc().msi().count_from_function(f.name());
  j["interrupts"] = irq;
  json target;
  target["config_reads"] = s.config_reads;
  target["config_writes"] = s.config_writes;
  target["mmio_reads"] = s.mmio_reads;
  target["mmio_writes"] = s.mmio_writes;
  target["rrs_returned"] = s.rrs_returned;
  target["discarded"] = s.discarded;
  target["ur_returned"] = s.ur_returned;
  target["flrs"] = s.flrs;
  target["ignored_writes"] = s.ignored_writes;
  target["frozen_drops"] = s.frozen_drops;
  target["error_messages"] = s.error_messages;
  j["target"] = target;
  j["aer"] = aer_registers(f.config());
  if (const AerDriver* a = host.aer()) j["recovery"] = a->outcome(f.name());
  json dev;
  dev["quiesced"] = f.quiesced();
  dev["frozen"] = f.frozen();
  dev["tracking"] = f.tracking();
  dev["quiesces"] = s.quiesces;
  dev["freezes"] = s.freezes;
  dev["images_saved"] = s.images_saved;
  dev["images_loaded"] = s.images_loaded;
  j["device_migration"] = dev;
  // By name: a VF disabled since it was opened is no longer in the host's
  // device list, but its VFIO device (and what it did) still is.
  for (const auto& [dev, v] : host.vfio_devices())
    if (v->name() == f.name()) j["migration"] = vfio_migration(*v);
  return j;
}

}  // namespace

namespace {
std::string hex32(std::uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}
json bit_names(std::uint32_t v, bool correctable) {
  static const std::map<std::uint32_t, const char*> unc = {
      {PCI_ERR_UNC_DLP, "DLP"},           {PCI_ERR_UNC_SURPDN, "SDES"},
      {PCI_ERR_UNC_POISON_TLP, "TLP"},    {PCI_ERR_UNC_FCP, "FCP"},
      {PCI_ERR_UNC_COMP_TIME, "CmpltTO"}, {PCI_ERR_UNC_COMP_ABORT, "CmpltAbrt"},
      {PCI_ERR_UNC_UNX_COMP, "UnxCmplt"}, {PCI_ERR_UNC_RX_OVER, "RxOF"},
      {PCI_ERR_UNC_MALF_TLP, "MalfTLP"},  {PCI_ERR_UNC_ECRC, "ECRC"},
      {PCI_ERR_UNC_UNSUP, "UnsupReq"},    {PCI_ERR_UNC_ACSV, "ACSViol"},
      {PCI_ERR_UNC_INTN, "UncorrIntErr"}};
  static const std::map<std::uint32_t, const char*> cor = {
      {PCI_ERR_COR_RCVR, "RxErr"},        {PCI_ERR_COR_BAD_TLP, "BadTLP"},
      {PCI_ERR_COR_BAD_DLLP, "BadDLLP"},  {PCI_ERR_COR_REP_ROLL, "Rollover"},
      {PCI_ERR_COR_REP_TIMER, "Timeout"}, {PCI_ERR_COR_ADV_NFAT, "AdvNonFatalErr"}};
  json out = json::array();
  for (const auto& [bit, name] : correctable ? cor : unc)
    if (v & bit) out.push_back(name);
  return out;
}
}  // namespace

json aer_registers(const fabric::ConfigSpace& cs) {
  json j;
  const std::uint16_t exp = cs.find_capability(PCI_CAP_ID_EXP);
  if (exp) {
    const std::uint16_t st = cs.get16(exp + PCI_EXP_DEVSTA);
    json d;
    d["correctable"] = (st & PCI_EXP_DEVSTA_CED) != 0;
    d["non_fatal"] = (st & PCI_EXP_DEVSTA_NFED) != 0;
    d["fatal"] = (st & PCI_EXP_DEVSTA_FED) != 0;
    d["unsupported_request"] = (st & PCI_EXP_DEVSTA_URD) != 0;
    j["device_status"] = d;
  }
  auto status_bits = [](std::uint16_t status) {
    json ps;
    ps["signaled_target_abort"] = (status & PCI_STATUS_SIG_TARGET_ABORT) != 0;
    ps["received_target_abort"] = (status & PCI_STATUS_REC_TARGET_ABORT) != 0;
    ps["received_master_abort"] = (status & PCI_STATUS_REC_MASTER_ABORT) != 0;
    ps["signaled_system_error"] = (status & PCI_STATUS_SIG_SYSTEM_ERROR) != 0;
    ps["master_data_parity_error"] = (status & PCI_STATUS_PARITY) != 0;
    ps["detected_parity_error"] = (status & PCI_STATUS_DETECTED_PARITY) != 0;
    return ps;
  };
  j["status"] = status_bits(cs.get16(PCI_STATUS));
  // A bridge's secondary side (7.5.1.3.7); bit 8 there is its Master Data
  // Parity Error, bit 14 Received System Error.
  if ((cs.get8(PCI_HEADER_TYPE) & 0x7f) == PCI_HEADER_TYPE_BRIDGE)
    j["secondary_status"] = status_bits(cs.get16(PCI_SEC_STATUS));
  const std::uint16_t aer = cs.find_extended_capability(PCI_EXT_CAP_ID_ERR);
  if (aer) {
    const std::uint32_t us = cs.get32(aer + PCI_ERR_UNCOR_STATUS);
    const std::uint32_t um = cs.get32(aer + PCI_ERR_UNCOR_MASK);
    const std::uint32_t sv = cs.get32(aer + PCI_ERR_UNCOR_SEVER);
    const std::uint32_t cst = cs.get32(aer + PCI_ERR_COR_STATUS);
    const std::uint32_t cm = cs.get32(aer + PCI_ERR_COR_MASK);
    json u;
    u["status"] = hex32(us);
    u["errors"] = bit_names(us, false);
    u["mask"] = hex32(um);
    u["severity"] = hex32(sv);
    j["uncorrectable"] = u;
    json c;
    c["status"] = hex32(cst);
    c["errors"] = bit_names(cst, true);
    c["mask"] = hex32(cm);
    j["correctable"] = c;
    const std::uint32_t cap = cs.get32(aer + PCI_ERR_CAP);
    j["first_error_pointer"] = cap & 0x1f;
    j["ecrc_check"] = (cap & PCI_ERR_CAP_ECRC_CHKE) != 0;
    json h = json::array();
    for (unsigned i = 0; i < 4; ++i)
      h.push_back(hex32(cs.get32(aer + PCI_ERR_HEADER_LOG + 4 * i)));
    j["header_log"] = h;
    if (exp &&
        ((cs.get16(exp + PCI_EXP_FLAGS) & PCI_EXP_FLAGS_TYPE) >> 4) == PCI_EXP_TYPE_ROOT_PORT) {
      json r;
      const std::uint32_t rs = cs.get32(aer + PCI_ERR_ROOT_STATUS);
      const std::uint32_t src = cs.get32(aer + PCI_ERR_ROOT_ERR_SRC);
      r["command"] = hex32(cs.get32(aer + PCI_ERR_ROOT_COMMAND));
      r["status"] = hex32(rs);
      r["cor_source"] = fabric::RoutingId(static_cast<std::uint16_t>(src & 0xffff)).str();
      r["uncor_source"] = fabric::RoutingId(static_cast<std::uint16_t>(src >> 16)).str();
      j["root"] = r;
    }
  }
  const std::uint16_t dpc = cs.find_extended_capability(PCI_EXT_CAP_ID_DPC);
  if (dpc) {
    json d;
    const std::uint16_t st = cs.get16(dpc + PCI_EXP_DPC_STATUS);
    d["control"] = hex32(cs.get16(dpc + PCI_EXP_DPC_CTL));
    d["triggered"] = (st & PCI_EXP_DPC_STATUS_TRIGGER) != 0;
    d["reason"] = (st >> 1) & 3;
    d["source"] = fabric::RoutingId(cs.get16(dpc + PCI_EXP_DPC_SOURCE_ID)).str();
    j["dpc"] = d;
  }
  return j;
}

void set_stats_distributions(bool on) {
  g_distributions = on;
}

json build_stats(System& system, Host& host, const ScenarioRunner* scenario,
                 const std::vector<CheckResult>* checks) {
  const Time now = now_fs();
  const SystemConfig& cfg = system.config();
  json root;
  root["schema_version"] = kStatsSchemaVersion;
  root["config"] = cfg.source;
  root["seed"] = cfg.simulation.seed;
  root["sim_time_ns"] = ns(now);
  root["boot_time_ns"] = ns(host.boot_end());
  root["booted"] = host.booted();
  root["warnings"] = cfg.warnings;
  {
    const fabric::CompletionLedger& l = system.completion_ledger();
    json c;
    c["requests"] = l.stats().requests;
    c["completions"] = l.stats().completions;
    c["timeouts"] = l.stats().timeouts;
    c["outstanding"] = l.outstanding();
    c["violations"] = l.stats().violations;
    c["violation_log"] = l.stats().violation_log;
    root["completions"] = c;
  }
  {
    // The fault plan and what it did (docs/faults.md).
    const fabric::FaultRegistry& r = host.faults().registry();
    json faults = json::array();
    for (unsigned id = 1; id <= r.size(); ++id) {
      const fabric::FaultState& f = r.state(id);
      json j;
      j["id"] = id;
      j["kind"] = fabric::to_string(f.spec.kind);
      j["where"] = f.spec.where;
      j["label"] = f.spec.label;
      j["matched"] = f.matched;
      j["fired"] = f.fired;
      j["cancelled"] = f.cancelled;
      faults.push_back(j);
    }
    json log = json::array();
    for (const fabric::FaultEvent& e : r.log()) {
      json j;
      j["at_ns"] = ns(e.at);
      j["id"] = e.id;
      j["kind"] = fabric::to_string(e.kind);
      j["where"] = e.where;
      j["detail"] = e.detail;
      log.push_back(j);
    }
    json fj;
    fj["armed"] = faults;
    fj["log"] = log;
    fj["log_dropped"] = r.log_dropped();
    root["faults"] = fj;
  }
  if (const AerDriver* a = host.aer()) {
    const AerStats& s = a->stats();
    json j;
    j["interrupts"] = s.interrupts;
    j["dpc_interrupts"] = s.dpc_interrupts;
    j["correctable"] = s.correctable;
    j["non_fatal"] = s.non_fatal;
    j["fatal"] = s.fatal;
    j["recoveries"] = s.recoveries;
    j["recovered"] = s.recovered;
    j["failed"] = s.failed;
    json log = json::array();
    for (const RecoveryRecord& r : s.log) {
      json e;
      e["start_ns"] = ns(r.start);
      e["end_ns"] = ns(r.end);
      e["duration_ns"] = ns(r.end - r.start);
      e["source"] = r.source;
      e["bridge"] = r.bridge;
      e["severity"] = r.severity;
      e["trigger"] = r.trigger;
      e["errors"] = r.errors;
      e["result"] = r.result;
      e["reason"] = r.reason;
      json o = json::object();
      for (const auto& [fn, out] : r.outcomes)
        o[fn] = out;
      e["outcomes"] = o;
      log.push_back(e);
    }
    j["log"] = log;
    j["messages"] = s.messages;
    root["aer"] = j;
  }
  if (!host.vms().empty()) {
    json vms = json::object();
    for (const auto& [name, vm] : host.vms()) {
      json j;
      j["stopped"] = vm->stopped();
      j["stop_reason"] = vm->stop_reason();
      j["stopped_at_ns"] = ns(vm->stopped_at());
      vms[name] = j;
    }
    root["vms"] = vms;
  }
  if (system.workloads_ran()) {
    json w;
    w["start_ns"] = ns(system.workloads_start());
    w["end_ns"] = ns(system.workloads_running() ? now : system.workloads_end());
    w["running"] = system.workloads_running();
    root["workload_window"] = w;
  }

  json links = json::object();
  for (const System::LinkInfo& l : system.links()) {
    json j;
    j["generation"] = l.generation;
    j["width"] = l.width;
    j["tlp_gbps"] = l.link->direction(LinkDir::kDown).timing().tlp_gbps();
    j["down"] = direction(l.link->direction(LinkDir::kDown), now);
    j["up"] = direction(l.link->direction(LinkDir::kUp), now);
    // While workloads ran (first start to last end, or now while one runs),
    // so that boot and idle time do not average the traffic away.
    if (system.workloads_ran()) {
      const bool running = system.workloads_running();
      const Time from = system.workloads_start(), to = running ? now : system.workloads_end();
      for (LinkDir d : {LinkDir::kDown, LinkDir::kUp}) {
        const int i = static_cast<int>(d);
        const Time busy = (running ? l.link->direction(d).stats().busy_time : l.busy_at_end[i]) -
                          l.busy_at_start[i];
        // Wire time is booked when a TLP is scheduled, which may be a little
        // ahead of now: cap at 1.
        j[to_string(d)]["workload_utilization"] =
            to > from ? std::min(1.0, static_cast<double>(busy) / static_cast<double>(to - from))
                      : 0.0;
      }
    }
    links[l.name] = j;
  }
  root["links"] = links;

  json functions = json::object();
  for (models::DmaDevice* d : system.devices()) {
    functions[d->pf().name()] = dma_function(d->pf(), host);
    if (d->firmware())
      functions[d->pf().name()]["migration_firmware"] = firmware_stats(*d->firmware());
    for (unsigned n = 1; n <= d->total_vfs(); ++n) {
      models::DmaFunction& vf = d->vf(n);
      // VFs that never existed and never did anything stay out of the way.
      if (!vf.exists() && vf.stats().config_reads == 0 && vf.stats().read_requests == 0 &&
          vf.stats().write_requests == 0 && vf.stats().discarded == 0)
        continue;
      functions[vf.name()] = dma_function(vf, host);
    }
  }
  root["functions"] = functions;

  json switches = json::object();
  for (const SwitchSpec& spec : cfg.switches) {
    models::PcieSwitch* sw = system.switch_device(spec.name);
    auto port = [](const models::SwitchPortStats& s) {
      json j;
      j["requests"] = s.requests;
      j["ur"] = s.ur;
      j["bme_blocked"] = s.bme_blocked;
      j["acs_violations"] = s.acs_violations;
      j["p2p_direct"] = s.p2p_direct;
      j["p2p_redirected"] = s.p2p_redirected;
      j["error_messages_forwarded"] = s.error_messages_forwarded;
      j["error_messages_blocked"] = s.error_messages_blocked;
      j["error_messages_sent"] = s.error_messages_sent;
      j["dpc_triggers"] = s.dpc_triggers;
      return j;
    };
    json j;
    j["usp"] = port(sw->usp_stats());
    j["usp"]["aer"] = aer_registers(sw->usp().config());
    for (unsigned i = 0; i < sw->downstream_count(); ++i) {
      j["dsp" + std::to_string(i)] = port(sw->dsp_stats(i));
      j["dsp" + std::to_string(i)]["aer"] = aer_registers(sw->dsp(i).config());
    }
    switches[spec.name] = j;
  }
  root["switches"] = switches;

  {
    const models::RootComplexStats& s = system.rc().stats();
    json rc;
    rc["config_reads"] = s.config_reads;
    rc["config_writes"] = s.config_writes;
    rc["mmio_reads"] = s.mmio_reads;
    rc["mmio_writes"] = s.mmio_writes;
    rc["cpu_ur"] = s.cpu_ur;
    rc["cpu_ca"] = s.cpu_ca;
    rc["cpu_timeouts"] = s.cpu_timeouts;
    rc["rrs_retries"] = s.rrs_retries;
    rc["rrs_visible"] = s.rrs_visible;
    rc["msi_received"] = system.rc().msi().total();
    json ports = json::object();
    for (unsigned i = 0; i < s.ports.size(); ++i) {
      const models::RootPortStats& p = s.ports[i];
      json j;
      j["upstream_requests"] = p.upstream_requests;
      j["ur"] = p.ur;
      j["ca"] = p.ca;
      j["bme_blocked"] = p.bme_blocked;
      j["acs_violations"] = p.acs_violations;
      j["p2p_reflected"] = p.p2p_reflected;
      j["p2p_blocked"] = p.p2p_blocked;
      j["translation_faults"] = p.translation_faults;
      j["msi"] = p.msi;
      j["err_cor_received"] = p.err_cor_received;
      j["err_nonfatal_received"] = p.err_nonfatal_received;
      j["err_fatal_received"] = p.err_fatal_received;
      j["error_interrupts"] = p.error_interrupts;
      j["dpc_triggers"] = p.dpc_triggers;
      j["aer"] = aer_registers(system.rc().root_port(i).config());
      ports["rp" + std::to_string(i)] = j;
    }
    rc["root_ports"] = ports;
    json mem;
    mem["bytes_read"] = system.memory().bytes_read();
    mem["bytes_written"] = system.memory().bytes_written();
    rc["memory"] = mem;
    root["root_complex"] = rc;
  }

  {
    // Peer-to-peer by path, over every switch, root port and device.
    std::uint64_t direct = 0, redirected = 0, reflected = 0, blocked = 0, internal = 0,
                  acs_violations = 0;
    for (const SwitchSpec& spec : cfg.switches) {
      models::PcieSwitch* sw = system.switch_device(spec.name);
      for (unsigned i = 0; i < sw->downstream_count(); ++i) {
        direct += sw->dsp_stats(i).p2p_direct;
        redirected += sw->dsp_stats(i).p2p_redirected;
        acs_violations += sw->dsp_stats(i).acs_violations;
      }
    }
    for (const models::RootPortStats& p : system.rc().stats().ports) {
      reflected += p.p2p_reflected;
      blocked += p.p2p_blocked;
      acs_violations += p.acs_violations;
    }
    for (models::DmaDevice* d : system.devices()) {
      internal += d->pf().stats().p2p_internal;
      for (unsigned n = 1; n <= d->total_vfs(); ++n)
        internal += d->vf(n).stats().p2p_internal;
    }
    json p2p;
    p2p["direct"] = direct;          // turned around in a switch
    p2p["redirected"] = redirected;  // sent up by ACS Request Redirect
    p2p["reflected"] = reflected;    // sent back down by the root complex
    p2p["blocked"] = blocked;        // refused by the root complex's P2P policy
    p2p["internal"] = internal;      // between functions inside one device
    p2p["acs_violations"] = acs_violations;
    root["p2p"] = p2p;
  }

  if (models::Iommu* mmu = system.iommu()) {
    const models::IommuStats& s = mmu->stats();
    json j;
    j["enabled"] = mmu->translation_enabled();
    j["translations"] = s.translations;
    j["passthrough"] = s.passthrough;
    j["iotlb_hits"] = s.iotlb_hits;
    j["iotlb_misses"] = s.iotlb_misses;
    j["iotlb_evictions"] = s.iotlb_evictions;
    j["iotlb_occupancy"] = mmu->iotlb_occupancy();
    j["walks"] = s.walks;
    j["walk_reads"] = s.walk_reads;
    j["mean_walk_ns"] = s.walks ? to_ns(s.walk_time) / static_cast<double>(s.walks) : 0.0;
    j["walk_wait_ns"] = to_ns(s.walk_wait_time);
    j["psc_hits"] = s.psc_hits;
    j["context_hits"] = s.context_hits;
    j["context_misses"] = s.context_misses;
    j["ad_updates"] = s.ad_updates;
    j["faults"] = s.faults;
    json reasons = json::object();
    for (unsigned r = 1; r < 9; ++r)
      if (s.faults_by_reason[r])
        reasons[models::iommu::to_string(static_cast<models::iommu::FaultReason>(r))] =
            s.faults_by_reason[r];
    j["faults_by_reason"] = reasons;
    j["fault_records_dropped"] = s.fault_records_dropped;
    json inv;
    inv["iotlb_global"] = s.iotlb_invalidations[1];
    inv["iotlb_domain"] = s.iotlb_invalidations[2];
    inv["iotlb_page"] = s.iotlb_invalidations[3];
    inv["context_global"] = s.context_invalidations[1];
    inv["context_domain"] = s.context_invalidations[2];
    inv["context_device"] = s.context_invalidations[3];
    inv["entries_dropped"] = s.entries_invalidated;
    j["invalidations"] = inv;
    json log = json::array();
    for (const models::IommuFault& f : mmu->fault_log()) {
      json e;
      e["t_ns"] = ns(f.at);
      e["requester"] = f.requester.str();
      if (FunctionRef* fn = system.function_at(f.requester)) e["function"] = fn->name();
      if (f.has_pasid) e["pasid"] = f.pasid;
      char a[24];
      std::snprintf(a, sizeof a, "0x%llx", static_cast<unsigned long long>(f.address));
      e["address"] = a;
      e["write"] = f.write;
      e["reason"] = models::iommu::to_string(f.reason);
      e["domain"] = f.domain;
      log.push_back(e);
    }
    j["fault_log"] = log;
    if (IommuDriver* drv = host.iommu()) {
      json domains = json::object();
      for (const auto& [name, d] : drv->domains()) {
        json dj;
        dj["id"] = d->id;
        dj["type"] = IommuDomain::type_name(d->type);
        json devs = json::array();
        for (PciDev* p : d->devices)
          devs.push_back(p->name.empty() ? p->rid.str() : p->name);
        dj["devices"] = devs;
        dj["mapped_bytes"] = d->mapped_bytes;
        domains[name] = dj;
      }
      j["domains"] = domains;
      const IommuDriverStats& ds = drv->stats();
      json h;
      h["maps"] = ds.maps;
      h["unmaps"] = ds.unmaps;
      h["pages_4k"] = ds.pages_4k;
      h["pages_2m"] = ds.pages_2m;
      h["pages_1g"] = ds.pages_1g;
      h["table_pages"] = ds.table_pages;
      h["iotlb_flushes"] = ds.iotlb_flushes;
      h["context_flushes"] = ds.context_flushes;
      h["flush_wait_ns"] = ns(ds.flush_wait);
      j["host"] = h;
    }
    json vms = json::object();
    for (const auto& [name, vm] : host.vms()) {
      json v;
      char a[24];
      std::snprintf(a, sizeof a, "0x%llx", static_cast<unsigned long long>(vm->host_base()));
      v["host_base"] = a;
      v["memory"] = vm->spec().memory;
      json fns = json::array();
      for (PciDev* p : vm->domain().devices)
        fns.push_back(p->name.empty() ? p->rid.str() : p->name);
      v["functions"] = fns;
      v["paused"] = vm->paused();
      if (vm->moved_to()) v["migrated_to"] = vm->moved_to()->name();
      if (GuestCpu* g = host.guest_cpu(name)) {
        const GuestCpuStats& gs = g->stats();
        v["cpu"] = {{"bursts", gs.bursts},
                    {"bytes_written", gs.bytes},
                    {"start_ns", ns(gs.started)},
                    {"last_ns", ns(gs.last)},
                    {"write_gbps", vm->spec().cpu.write_gbps}};
      }
      vms[name] = v;
    }
    j["vms"] = vms;
    root["iommu"] = j;
    if (host.iommu_dirty()) {
      json dev = json::object();
      for (const auto& [d, v] : host.vfio_devices()) {
        if (!v->dma_log_window().started() && v->dma_log_window().stats()["reads"] == 0) continue;
        json w = v->dma_log_window().stats();
        w["page_size"] = v->dma_log_page_size();
        dev[v->name()] = w;
      }
      root["dirty_tracking"] = {{"iommu", host.iommu_dirty()->stats()}, {"device", dev}};
    }
  }
  // Live migrations of VMs (sim/migration/vmm.h), by name.
  if (nlohmann::ordered_json m = host.vmm().stats(); !m.empty()) root["migrations"] = m;

  {
    const HostCpuStats& c = host.cpu().stats();
    const PciCoreStats& p = host.pci().stats();
    json h;
    h["config_reads"] = c.config_reads;
    h["config_writes"] = c.config_writes;
    h["mmio_reads"] = c.mmio_reads;
    h["mmio_writes"] = c.mmio_writes;
    h["failed_reads"] = c.all_ones_reads;
    h["devices"] = host.pci().devices().size();
    h["rrs_waits"] = p.rrs_waits;
    h["resets"] = p.resets;
    h["reset_failures"] = p.reset_failures;
    h["sriov_enables"] = p.sriov_enables;
    h["sriov_enable_failures"] = p.sriov_enable_failures;
    h["sriov_disables"] = p.sriov_disables;
    json vfs = json::object();
    for (PciDev* d : host.pci().devices())
      if (d->sriov) vfs[d->name.empty() ? d->rid.str() : d->name] = d->num_vfs;
    h["num_vfs"] = vfs;
    h["messages"] = host.boot_messages();
    root["host"] = h;
  }

  json workloads = json::object();
  for (const auto& w : host.workloads()) {
    const WorkloadStats& s = w->stats();
    json j;
    j["functions"] = w->spec().functions;
    j["type"] = w->spec().type == WorkloadSpec::kBench ? "bench" : "copy";
    j["started"] = s.started;
    j["finished"] = s.finished;
    j["jobs"] = s.jobs_completed;
    j["jobs_submitted"] = s.jobs_submitted;
    j["bytes"] = s.bytes;
    j["verified_bytes"] = s.verified_bytes;
    j["mismatches"] = s.mismatches;
    j["errors"] = s.errors;
    j["stalled"] = s.stalled;
    j["interrupts"] = s.interrupts;
    j["failure"] = s.failure;
    j["start_ns"] = ns(s.start);
    j["end_ns"] = ns(s.end);
    // An unfinished workload reports its progress so far (up to now).
    const Time until = s.finished ? s.end : (s.started ? now : s.start);
    Time span = until > s.start ? until - s.start : 0;
    j["throughput_gbps"] = span ? static_cast<double>(s.bytes) * 8.0 / (to_sec(span) * 1e9) : 0.0;
    j["latency_ns"] = histogram(s.latency);
    if (w->spec().functions.size() > 1) {
      json per = json::object();
      for (const auto& [fn, c] : s.per_function) {
        json p;
        p["jobs"] = c.jobs_completed;
        p["verified_bytes"] = c.verified_bytes;
        p["mismatches"] = c.mismatches;
        p["errors"] = c.errors;
        p["stalled"] = c.stalled;
        per[fn] = p;
      }
      j["per_function"] = per;
    }
    workloads[w->spec().name] = j;
  }
  root["workloads"] = workloads;

  json steps = json::array();
  if (scenario)
    for (const StepRecord& r : scenario->records()) {
      json j;
      j["label"] = r.label;
      j["action"] = r.action;
      j["start_ns"] = ns(r.start);
      j["end_ns"] = ns(r.end);
      j["duration_ns"] = ns(r.end - r.start);
      j["status"] = r.status;
      j["value"] = r.value;
      j["error"] = r.error;
      j["detail"] = r.detail;
      if (!r.output.empty()) j["output"] = r.output;
      steps.push_back(j);
    }
  root["scenario"] = steps;
  if (checks) {
    json cj = json::array();
    for (const CheckResult& c : *checks) {
      json j;
      j["label"] = c.label;
      j["passed"] = c.passed;
      j["check"] = c.description;
      j["observed"] = c.observed;
      j["at_ns"] = ns(c.at);
      cj.push_back(j);
    }
    root["checks"] = cj;
  }
  return root;
}

}  // namespace pciesim::sim

// pciesim command line (DESIGN.md section 8):
//   pciesim run CONFIG       exit 0 if every expectation holds, 1 if one
//                            fails, 2 on a bad config, 3 on a simulation error
//   pciesim validate CONFIG  check a config without simulating
//   pciesim lspci CONFIG     boot and print lspci-format output
//   pciesim topo CONFIG      Graphviz DOT of the topology
//   pciesim config-reference Markdown reference of every config key
//   pciesim faults           the fault kinds (docs/fault-kinds.md)
//   pciesim targets CONFIG   fault kinds and where they apply, as JSON
//   pciesim campaign ...     the campaign runner (docs/campaigns.md)
#include <CLI/CLI.hpp>
#include "fabric/fault/fault_registry.h"

#include <systemc>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include "fabric/common/error.h"
#include "fabric/kernel/kernel_context.h"
#include "sim/builder/system.h"

#include "sim/config/config_loader.h"
#include "sim/config/yaml_reader.h"
#include "sim/facade/simulation.h"
#include "sim/host/host.h"
#include "sim/scenario/scenario_runner.h"
#include "sim/trace/trace_output.h"

using namespace pciesim;
using namespace pciesim::sim;

namespace {

constexpr int kExitPass = 0, kExitFail = 1, kExitConfig = 2, kExitSim = 3;
// 128 + SIGINT, as a shell reports a process that Ctrl-C ended.
constexpr int kExitInterrupted = 130;

std::string si(double v, const char* unit) {
  char buf[64];
  if (v >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2f G%s", v / 1e9, unit);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2f M%s", v / 1e6, unit);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof buf, "%.2f K%s", v / 1e3, unit);
  else
    std::snprintf(buf, sizeof buf, "%.0f %s", v, unit);
  return buf;
}

void print_summary(Simulation& sim, const RunResult& r, double wall) {
  auto st = sim.stats();
  std::printf("pciesim: %s\n", sim.config().source.c_str());
  std::printf("  simulated %s (boot %s) in %.2f s wall time\n",
              fabric::format_time(sim.now()).c_str(),
              fabric::format_time(sim.host().boot_end()).c_str(), wall);
  std::printf("  host: %zu functions enumerated, %llu config and %llu MMIO accesses\n",
              sim.host().pci().devices().size(),
              static_cast<unsigned long long>(st["host"]["config_reads"].get<std::uint64_t>() +
                                              st["host"]["config_writes"].get<std::uint64_t>()),
              static_cast<unsigned long long>(st["host"]["mmio_reads"].get<std::uint64_t>() +
                                              st["host"]["mmio_writes"].get<std::uint64_t>()));
  for (const std::string& w : sim.config().warnings)
    std::printf("  warning: %s\n", w.c_str());
  for (const std::string& m : sim.host().boot_messages())
    std::printf("  note: %s\n", m.c_str());
  if (!st["workloads"].empty()) std::printf("  workloads:\n");
  for (auto it = st["workloads"].begin(); it != st["workloads"].end(); ++it) {
    const auto& w = it.value();
    if (w["type"] == "bench") {
      // The device's traffic generator: its own steady rate and latency.
      const std::string fn = w["functions"][0].get<std::string>();
      const auto& dma = st["functions"][fn]["dma"];
      const bool ran = dma.contains("generator_steady_gbps");
      std::printf(
          "    %-12s %s: bench, %llu transfers, %s, %.2f Gb/s steady, latency p50 %.0f ns%s\n",
          it.key().c_str(), fn.c_str(),
          static_cast<unsigned long long>(w["jobs"].get<std::uint64_t>()),
          si(static_cast<double>(w["bytes"].get<std::uint64_t>()), "B").c_str(),
          ran ? dma["generator_steady_gbps"].get<double>() : 0.0,
          ran ? dma["generator_latency_ns"]["p50"].get<double>() : 0.0,
          w["failure"].get<std::string>().empty()
              ? ""
              : ("  [" + w["failure"].get<std::string>() + "]").c_str());
      continue;
    }
    std::printf(
        "    %-12s %s: %llu jobs, %s, %.2f Gb/s, latency mean %.0f ns p99 %.0f ns, "
        "verified %s, %llu mismatches%s\n",
        it.key().c_str(),
        (w["functions"].size() == 1 ? w["functions"][0].get<std::string>()
                                    : std::to_string(w["functions"].size()) + " functions")
            .c_str(),
        static_cast<unsigned long long>(w["jobs"].get<std::uint64_t>()),
        si(static_cast<double>(w["bytes"].get<std::uint64_t>()), "B").c_str(),
        w["throughput_gbps"].get<double>(), w["latency_ns"]["mean"].get<double>(),
        w["latency_ns"]["p99"].get<double>(),
        si(static_cast<double>(w["verified_bytes"].get<std::uint64_t>()), "B").c_str(),
        static_cast<unsigned long long>(w["mismatches"].get<std::uint64_t>()),
        w["failure"].get<std::string>().empty()
            ? ""
            : ("  [" + w["failure"].get<std::string>() + "]").c_str());
  }
  if (st.contains("migrations")) {
    std::printf("  migrations:\n");
    for (auto it = st["migrations"].begin(); it != st["migrations"].end(); ++it) {
      const auto& m = it.value();
      if (m["status"] != "completed") {
        std::printf("    %-12s %s -> %s: %s: %s\n", it.key().c_str(),
                    m["vm"].get<std::string>().c_str(), m["to"].get<std::string>().c_str(),
                    m["status"].get<std::string>().c_str(),
                    m["error"].value("message", std::string()).c_str());
        continue;
      }
      std::printf(
          "    %-12s %s -> %s: %u passes (%s, tracking %s), %s sent, downtime %.3f ms, "
          "total %.3f ms, %llu missed dirty pages%s\n",
          it.key().c_str(), m["vm"].get<std::string>().c_str(), m["to"].get<std::string>().c_str(),
          m["iterations"].get<unsigned>(), m["stop_reason"].get<std::string>().c_str(),
          m["dirty_tracking"].get<std::string>().c_str(),
          si(static_cast<double>(m["bytes_sent"].get<std::uint64_t>()), "B").c_str(),
          m["downtime_ns"].get<double>() / 1e6, m["total_ns"].get<double>() / 1e6,
          static_cast<unsigned long long>(m["missed_dirty_pages"].get<std::uint64_t>()),
          m["diverged"].get<bool>() ? ", the destination DIVERGED" : "");
      for (const auto& r : m["race"])
        std::printf("      race: %s\n", r["message"].get<std::string>().c_str());
      for (const auto& d : m["divergence"]["devices"])
        std::printf("      %s differs on the destination\n", d.get<std::string>().c_str());
    }
  }
  const char* util = st.contains("workload_window") ? "workload_utilization" : "utilization";
  std::printf("  links (busy share %s):\n",
              st.contains("workload_window") ? "while workloads ran" : "of the run");
  for (auto it = st["links"].begin(); it != st["links"].end(); ++it) {
    const auto& l = it.value();
    std::printf(
        "    %-22s Gen%d x%-2d  down %7llu TLPs %9s (%4.1f%%)  up %7llu TLPs %9s (%4.1f%%)\n",
        it.key().c_str(), l["generation"].get<int>(), l["width"].get<int>(),
        static_cast<unsigned long long>(l["down"]["tlps"].get<std::uint64_t>()),
        si(static_cast<double>(l["down"]["wire_bytes"].get<std::uint64_t>()), "B").c_str(),
        100 * l["down"][util].get<double>(),
        static_cast<unsigned long long>(l["up"]["tlps"].get<std::uint64_t>()),
        si(static_cast<double>(l["up"]["wire_bytes"].get<std::uint64_t>()), "B").c_str(),
        100 * l["up"][util].get<double>());
  }
  // Every step that did not succeed, whether or not a check judged it.
  bool header = false;
  for (const auto& step : st["scenario"]) {
    const long long status = step["status"].get<long long>();
    const bool read = step["action"] == "config_read" || step["action"] == "mmio_read";
    if (!step["error"].get<bool>() && (read || status == 0)) continue;
    if (!header) std::printf("  steps that did not succeed:\n");
    header = true;
    std::printf("    %-18s %s: %s\n", step["label"].get<std::string>().c_str(),
                step["action"].get<std::string>().c_str(),
                step["error"].get<bool>()
                    ? ("not carried out: " + step["detail"].get<std::string>()).c_str()
                    : ("status " + ScenarioRunner::status_text(status)).c_str());
  }
  std::printf(
      "  interrupts received: %llu\n",
      static_cast<unsigned long long>(st["root_complex"]["msi_received"].get<std::uint64_t>()));
  if (!r.checks.empty()) std::printf("  checks:\n");
  int failed = 0;
  for (const CheckResult& c : r.checks) {
    if (!c.passed) ++failed;
    std::printf("    %s %-18s %s (observed %s)\n", c.passed ? "PASS" : "FAIL", c.label.c_str(),
                c.description.c_str(), c.observed.c_str());
  }
  if (r.checks.empty()) std::printf("  no expectations in the config: nothing to check\n");
  std::printf("%s: %zu of %zu checks passed\n", failed ? "FAILED" : "PASSED",
              r.checks.size() - failed, r.checks.size());
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  if (!out) throw UsageError(path, std::string("cannot write the file: ") + std::strerror(errno));
  out << text;
  out.flush();
  if (!out) throw UsageError(path, std::string("writing the file failed: ") + std::strerror(errno));
  out.close();
  if (out.fail()) throw UsageError(path, "closing the file failed");
}

}  // namespace

// The fault kinds as Markdown: the same text is docs/faults.md's
// reference section (a test compares them).
std::string faults_markdown() {
  using namespace pciesim::fabric;
  std::string out =
      "# Fault kinds\n\nGenerated by `pciesim faults` from the fault registry "
      "(fabric/fault/fault_registry.cpp). Every fault also takes `where`, `match` (kinds, "
      "requester, address_lo, address_hi, tag), `at`, `until`, `nth`, `count` and "
      "`probability` (docs/faults.md).\n";
  static const char* const kPoints[] = {"link (per TLP)", "completer (per request)", "timed",
                                        "IOMMU (per translation)"};
  for (const FaultKindInfo& k : fault_kinds()) {
    out += "\n## " + std::string(k.name) + "\n\n";
    out += "- point: " + std::string(kPoints[static_cast<unsigned>(k.point)]) + "\n";
    out += "- where: " + std::string(k.where) + "\n";
    out += "- cause: " + std::string(k.summary) + "\n";
    out += "- outcome: " + std::string(k.outcome) + "\n";
    out += "- rule: " + std::string(k.rule) + "\n";
    for (const FaultParamInfo& p : k.params)
      out += "- parameter `" + std::string(p.name) + "` (" + p.type + ", default " +
             p.default_value + "): " + p.doc + "\n";
  }
  return out;
}

// `pciesim targets CONFIG`: what a campaign needs to expand fault axes --
// every fault kind with the class of place it applies to, and the places
// of each class in this config (docs/campaigns.md).
std::string targets_json(Simulation& sim) {
  using namespace pciesim::fabric;
  const SystemConfig& cfg = sim.config();
  nlohmann::ordered_json kinds = nlohmann::ordered_json::array();
  for (const FaultKindInfo& k : fault_kinds()) {
    nlohmann::ordered_json j;
    j["name"] = k.name;
    static const char* const kPoints[] = {"link", "completer", "timed", "iommu"};
    j["point"] = kPoints[static_cast<unsigned>(k.point)];
    std::string target;
    nlohmann::ordered_json required = nlohmann::ordered_json::array();
    switch (k.point) {
      case FaultPoint::kLink:
        // A link goes down in both directions at once.
        target = k.kind == FaultKind::kLinkDown ? "link_undirected" : "link";
        break;
      case FaultPoint::kCompleter:
        target = "completer";
        break;
      case FaultPoint::kIommu:
        target = "iommu";
        break;
      case FaultPoint::kTimed:
        target = k.kind == FaultKind::kMigrationCommand  ? "migration_endpoint"
                 : k.kind == FaultKind::kIommuUnmap      ? "domain"
                 : k.kind == FaultKind::kAerReport       ? "function_or_port"
                 : k.kind == FaultKind::kTestAbort       ? "simulator"
                 : k.kind == FaultKind::kSurpriseRemoval ? "function"
                                                         : "function";
        if (k.kind == FaultKind::kIommuUnmap) required = {"length"};
        if (k.kind == FaultKind::kAerReport) required = {"uncor_status"};
        break;
    }
    j["target"] = target;
    j["required"] = required;
    j["test_only"] = k.kind == FaultKind::kTestAbort;
    nlohmann::ordered_json ps = nlohmann::ordered_json::array();
    for (const FaultParamInfo& p : k.params)
      ps.push_back(p.name);
    j["params"] = ps;
    kinds.push_back(j);
  }
  nlohmann::ordered_json t;
  nlohmann::ordered_json links = nlohmann::ordered_json::array(),
                         fns = nlohmann::ordered_json::array(),
                         ports = nlohmann::ordered_json::array(),
                         mig = nlohmann::ordered_json::array(),
                         domains = nlohmann::ordered_json::array();
  nlohmann::ordered_json undirected = nlohmann::ordered_json::array();
  for (const auto& l : sim.system().links()) {
    links.push_back(l.name + ":down");
    links.push_back(l.name + ":up");
    undirected.push_back(l.name);
  }
  for (const EndpointSpec& ep : cfg.endpoints) {
    fns.push_back(ep.name + ".pf");
    for (unsigned v = 1; v <= ep.num_vfs; ++v)
      fns.push_back(ep.name + ".vf" + std::to_string(v));
    if (ep.migration.flags) mig.push_back(ep.name);
  }
  for (const auto& f : sim.system().functions())
    if (f->kind() == FunctionRef::kRootPort || f->kind() == FunctionRef::kSwitchUpstream ||
        f->kind() == FunctionRef::kSwitchDownstream)
      ports.push_back(f->name());
  for (const VmSpec& v : cfg.vms)
    domains.push_back(v.name);
  nlohmann::ordered_json completers = fns;
  completers.push_back(cfg.root_complex.name);
  nlohmann::ordered_json both = fns;
  for (const auto& p : ports)
    both.push_back(p);
  t["link"] = links;
  t["link_undirected"] = undirected;
  t["function"] = fns;
  t["completer"] = completers;
  t["port"] = ports;
  t["function_or_port"] = both;
  t["migration_endpoint"] = mig;
  t["domain"] = domains;
  t["iommu"] = cfg.iommu.enabled ? nlohmann::ordered_json::array({"iommu"})
                                 : nlohmann::ordered_json::array();
  t["simulator"] = nlohmann::ordered_json::array({"simulator"});
  nlohmann::ordered_json out;
  out["kinds"] = kinds;
  out["targets"] = t;
  return out.dump(1) + "\n";
}

// `pciesim campaign ...` and `pciesim plot ...` are Python modules of the
// package (python/pciesim/campaign, python/pciesim/plot.py).
int exec_python_tool(int argc, char** argv, const char* module, const char* what) {
  std::string pp = std::string(PCIESIM_SOURCE_DIR) + "/python:" + PCIESIM_BINARY_DIR + "/python";
  if (const char* old = std::getenv("PYTHONPATH"); old && *old) pp += std::string(":") + old;
  setenv("PYTHONPATH", pp.c_str(), 1);
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    setenv("PCIESIM_BIN", self, 0);
  }
  std::vector<char*> args;
  static char python[] = "/usr/bin/python3", m[] = "-m";
  args.push_back(python);
  args.push_back(m);
  args.push_back(const_cast<char*>(module));
  for (int i = 2; i < argc; ++i)
    args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(python, args.data());
  std::fprintf(stderr, "pciesim %s: cannot run %s: %s\n", what, python, std::strerror(errno));
  return kExitConfig;
}

namespace {
volatile std::sig_atomic_t g_sigint = 0;
extern "C" void on_sigint(int) {
  // A second Ctrl-C while the first is being handled ends the process.
  if (g_sigint) std::_Exit(kExitInterrupted);
  g_sigint = 1;
}
void install_sigint() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

void parse_time_option(const char* name, const std::string& text, fabric::Time* out) {
  if (text.empty()) return;
  if (!fabric::parse_time(text, out))
    throw UsageError(name,
                     "expected a time with a unit (s, ms, us, ns, ps, fs), got '" + text + "'");
}

// The progress line on a terminal: simulated time, wall time, rate; and
// Ctrl-C, which stops the run.
class Progress {
 public:
  explicit Progress(bool show) : show_(show), start_(clock::now()) {}
  bool tick(fabric::Time now) {
    if (g_sigint) return true;
    const auto t = clock::now();
    if (show_ && std::chrono::duration<double>(t - shown_).count() >= 0.25) {
      shown_ = t;
      const double wall = std::chrono::duration<double>(t - start_).count();
      const double ms = fabric::to_ns(now) / 1e6;
      std::fprintf(stderr, "\r  simulated %-12s wall %7.1f s  %9.3f sim-ms/s ",
                   fabric::format_time(now).c_str(), wall, wall > 0 ? ms / wall : 0.0);
      std::fflush(stderr);
      drawn_ = true;
    }
    return false;
  }
  void clear() {
    if (drawn_) std::fprintf(stderr, "\r%72s\r", "");
    drawn_ = false;
  }

 private:
  using clock = std::chrono::steady_clock;
  bool show_;
  clock::time_point start_, shown_{};
  bool drawn_ = false;
};

}  // namespace

int sc_main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "campaign")
    return exec_python_tool(argc, argv, "pciesim.campaign", "campaign");
  if (argc > 1 && std::string(argv[1]) == "plot")
    return exec_python_tool(argc, argv, "pciesim.plot", "plot");
  fabric::configure_systemc_process();
  CLI::App app{"pciesim: a PCI Express / SR-IOV system simulator (SystemC TLM-2.0)"};
  app.require_subcommand(1);
  std::vector<std::string> overrides;
  std::string config, stats_path, trace_path, out_path;
  bool quiet = false;

  auto add_common = [&](CLI::App* sub) {
    sub->add_option("config", config, "YAML config file")->required();
    sub->add_option("--set", overrides, "Override a config value: key.path=value (repeatable)");
  };
  CLI::App* run = app.add_subcommand("run", "Simulate a config and check its expectations");
  add_common(run);
  run->add_option("--stats", stats_path, "Write the statistics JSON to this file");
  run->add_option("--trace", trace_path, "Write a JSON-lines TLP trace to this file");
  std::string perfetto_path, vcd_path, trace_from, trace_to, trace_components, trace_kinds,
      trace_max, time_unit = "ns", counter_interval = "1us";
  run->add_option("--trace-perfetto", perfetto_path,
                  "Write a Perfetto trace (open it in ui.perfetto.dev; docs/observability.md)");
  run->add_option("--vcd", vcd_path, "Write a VCD file of link, credit, tag and state signals");
  run->add_option("--trace-from", trace_from, "Traces keep records from this time on (e.g. 10us)");
  run->add_option("--trace-to", trace_to, "Traces keep records before this time");
  run->add_option("--trace-components", trace_components,
                  "Traces keep only these links/functions: comma-separated globs (e.g. "
                  "'ep0.vf*,sw0.dsp0--*')");
  run->add_option("--trace-kinds", trace_kinds,
                  "Traces keep only these TLP kinds: comma-separated (MRd,MWr,CplD,Cpl,...)");
  run->add_option("--trace-max-size", trace_max,
                  "Stop each trace file at this size (e.g. 100MiB); a message says when");
  run->add_option("--trace-time-unit", time_unit,
                  "Perfetto timestamps: ns (real times) or ps (1 ps shows as 1 ns, to see "
                  "every TLP)");
  run->add_option(
      "--counter-interval", counter_interval,
      "Sampling interval of Perfetto counter tracks and VCD signals (default 1us; 0ns: none)");
  run->add_flag("-q,--quiet", quiet, "Print only the verdict line (no progress line)");
  std::vector<std::string> aer_files;
  std::string aer_at = "0s";
  run->add_option("--aer-inject", aer_files,
                  "Inject the errors of an aer-inject file (its format: docs/faults.md); "
                  "repeatable");
  run->add_option("--aer-inject-at", aer_at,
                  "When --aer-inject's errors are logged, after boot (default 0s)");
  CLI::App* validate = app.add_subcommand("validate", "Check a config without simulating");
  add_common(validate);
  CLI::App* lspci = app.add_subcommand("lspci", "Boot and print the host's PCI devices like lspci");
  add_common(lspci);
  int verbose = 0, hex = 0;
  bool tree = false, numeric = false;
  lspci->add_flag("-v", verbose, "Verbose (only -v; decode dumps with the real lspci for more)");
  lspci->add_flag("-x", hex, "Hex dump: -x 64 bytes, -xxx 256, -xxxx 4096");
  lspci->add_flag("-t", tree, "Tree view");
  lspci->add_flag("-n", numeric, "Numeric IDs");
  CLI::App* topo = app.add_subcommand("topo", "Print the topology as Graphviz DOT");
  add_common(topo);
  topo->add_option("-o,--output", out_path, "Write to this file instead of stdout");
  app.add_subcommand("config-reference", "Print the Markdown reference of every config key");
  app.add_subcommand("faults", "List every fault kind with its parameters (docs/faults.md)");
  CLI::App* targets = app.add_subcommand(
      "targets", "Print, as JSON, every fault kind and the places of the config it applies to");
  add_common(targets);
  // Listed for --help; `pciesim campaign` is handled before parsing.
  app.add_subcommand("plot",
                     "Draw a stats JSON's time series and latency distributions to PNG: pciesim "
                     "plot STATS.json [-o OUT.png] (docs/observability.md)")
      ->allow_extras();
  app.add_subcommand("campaign",
                     "Run a fault / parameter campaign: pciesim campaign FILE [--workers N] "
                     "[--dask | --scheduler URL] [--out DIR]; pciesim campaign report DIR "
                     "(docs/campaigns.md)")
      ->allow_extras();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitConfig;
  }

  try {
    if (app.got_subcommand("faults")) {
      std::cout << faults_markdown();
      return kExitPass;
    }
    if (app.got_subcommand("config-reference")) {
      std::cout << "# pciesim configuration reference\n\nGenerated by `pciesim config-reference` "
                   "from the config readers themselves.\n"
                << config_reference_markdown();
      return kExitPass;
    }
    SystemConfig cfg = load_config_file(config, overrides);
    if (!aer_files.empty()) {
      fabric::Time at = 0;
      if (!fabric::parse_time(aer_at, &at))
        throw UsageError(
            "--aer-inject-at",
            "expected a time with a unit (s, ms, us, ns, ps, fs), got '" + aer_at + "'");
      for (const std::string& file : aer_files) {
        std::ifstream in(file, std::ios::binary);
        if (!in) throw UsageError("--aer-inject", "cannot read '" + file + "'");
        std::ostringstream text;
        text << in.rdbuf();
        for (const fabric::FaultSpec& f :
             aer_inject_faults(text.str(), file, "--aer-inject " + file, at))
          cfg.faults.push_back(f);
      }
    }
    if (app.got_subcommand("validate")) {
      std::printf(
          "%s: valid (%zu switches, %zu endpoints, %zu links, %zu workloads, %zu scenario "
          "steps, %zu expectations)\n",
          config.c_str(), cfg.switches.size(), cfg.endpoints.size(), cfg.links.size(),
          cfg.workloads.size(), cfg.scenario.size(), cfg.expect.size());
      for (const std::string& w : cfg.warnings)
        std::printf("  warning: %s\n", w.c_str());
      return kExitPass;
    }
    Simulation sim(cfg);
    if (app.got_subcommand("targets")) {
      std::cout << targets_json(sim);
      return kExitPass;
    }
    if (app.got_subcommand("topo")) {
      if (out_path.empty())
        std::cout << sim.topology_dot();
      else
        write_file(out_path, sim.topology_dot());
      return kExitPass;
    }
    if (app.got_subcommand("lspci")) {
      if (verbose > 1)
        throw UsageError("lspci",
                         "pciesim prints up to -v; for -vv decode a dump with the real "
                         "tool: pciesim lspci CONFIG -xxxx > dump && lspci -F dump -vv");
      if (hex == 2) hex = 1;  // lspci treats -xx like -x for non-root users; keep -x
      LspciOptions o;
      o.verbose = verbose;
      o.hex = hex;
      o.tree = tree;
      o.numeric = numeric;
      std::cout << sim.lspci(o);
      return kExitPass;
    }
    trace::TraceFilter filter;
    parse_time_option("--trace-from", trace_from, &filter.from);
    parse_time_option("--trace-to", trace_to, &filter.to);
    filter.components = trace::split_list(trace_components);
    filter.kinds = trace::split_list(trace_kinds);
    if (!trace_max.empty()) {
      filter.max_bytes =
          Node(YAML::Node(trace_max), "--trace-max-size", "--trace-max-size").as_bytes().value;
      if (filter.max_bytes == 0)
        throw UsageError("--trace-max-size", "a cap of 0 bytes keeps nothing");
    }
    fabric::Time counters = 0;
    parse_time_option("--counter-interval", counter_interval, &counters);
    trace::PerfettoOptions popt;
    popt.time_unit = time_unit;
    if (!trace_path.empty()) sim.add_trace("jsonl", trace_path, filter, popt, 0);
    if (!perfetto_path.empty()) sim.add_trace("perfetto", perfetto_path, filter, popt, counters);
    if (!vcd_path.empty()) sim.add_trace("vcd", vcd_path, filter, popt, counters);
    Progress progress(!quiet && isatty(STDERR_FILENO) && !std::getenv("CI"));
    install_sigint();
    sim.set_monitor([&](fabric::Time now) { return progress.tick(now); });
    auto t0 = std::chrono::steady_clock::now();
    RunResult r;
    bool stopped = false;
    try {
      r = sim.run();
    } catch (const Interrupted&) {
      stopped = true;
    }
    progress.clear();
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sim.finish_trace(stopped);
    for (const std::string& m : sim.trace_truncations())
      std::fprintf(stderr, "pciesim: warning: %s\n", m.c_str());
    if (!stats_path.empty()) write_file(stats_path, sim.stats().dump(2) + "\n");
    if (stopped) {
      std::fprintf(stderr,
                   "pciesim: interrupted at %s simulated (%.1f s wall); stats and traces are "
                   "complete up to then and marked as interrupted\n",
                   fabric::format_time(sim.now()).c_str(), wall);
      return kExitInterrupted;
    }
    if (quiet) {
      std::size_t failed = 0;
      for (const CheckResult& c : r.checks)
        failed += !c.passed;
      std::printf("%s: %zu of %zu checks passed\n", failed ? "FAILED" : "PASSED",
                  r.checks.size() - failed, r.checks.size());
    } else {
      print_summary(sim, r, wall);
    }
    return r.passed() ? kExitPass : kExitFail;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "pciesim: config error: %s\n", e.what());
    return kExitConfig;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "pciesim: error: %s\n", e.what());
    return kExitConfig;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pciesim: simulation error: %s\n", e.what());
    return kExitSim;
  }
}

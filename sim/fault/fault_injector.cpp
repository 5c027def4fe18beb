#include "sim/fault/fault_injector.h"

#include <cstdio>
#include <cstdlib>

#include "fabric/common/error.h"
#include "fabric/kernel/kernel_context.h"
#include "models/dma_endpoint/migration_firmware.h"
#include "sim/builder/system.h"
#include "sim/host/host.h"
#include "sim/trace/trace_span.h"

namespace pciesim::sim {

using namespace fabric;

namespace {
// The port at the upstream end of link `link` ("rc.rp0--sw0.usp").
Port* upstream_port(System& sys, const std::string& link) {
  const std::string up = link.substr(0, link.find("--"));
  const std::size_t dot = up.rfind('.');
  if (dot == std::string::npos) return nullptr;
  const std::string node = up.substr(0, dot), port = up.substr(dot + 1);
  auto index = [](const std::string& s, const char* prefix) {
    const std::string p(prefix);
    if (s.compare(0, p.size(), p) != 0 || s.size() == p.size()) return -1;
    for (std::size_t i = p.size(); i < s.size(); ++i)
      if (s[i] < '0' || s[i] > '9') return -1;
    return std::stoi(s.substr(p.size()));
  };
  if (node == sys.config().root_complex.name) {
    const int i = index(port, "rp");
    if (i >= 0 && static_cast<unsigned>(i) < sys.rc().root_port_count())
      return &sys.rc().port(static_cast<unsigned>(i));
  }
  if (models::PcieSwitch* sw = sys.switch_device(node)) {
    const int i = index(port, "dsp");
    if (i >= 0 && static_cast<unsigned>(i) < sw->downstream_count())
      return &sw->downstream_port(static_cast<unsigned>(i));
  }
  return nullptr;
}

std::string link_of(const std::string& where) {
  const std::size_t colon = where.rfind(':');
  if (colon == std::string::npos) return where;
  const std::string dir = where.substr(colon + 1);
  return dir == "down" || dir == "up" ? where.substr(0, colon) : where;
}
}  // namespace

FaultInjector::FaultInjector(sc_core::sc_module_name name, System& system, Host& host,
                             std::uint64_t seed)
    : sc_core::sc_module(name), system_(system), host_(host), registry_(seed) {
  registry_.resolve = [this](const std::string& fn, RoutingId* rid) {
    FunctionRef* f = system_.function(fn);
    if (!f || !f->exists()) return false;
    *rid = f->rid();
    return true;
  };
  registry_.on_fire = [this](unsigned id) {
    trace_host_instant("faults", "injected", [&] {
      const FaultState& f = registry_.state(id);
      return std::make_pair(std::string(to_string(f.spec.kind)) + " at " + f.spec.where,
                            "fault=" + std::to_string(id) + ", fired=" + std::to_string(f.fired));
    });
    fired_.notify(sc_core::SC_ZERO_TIME);
  };
  set_fault_registry(&registry_);
  SC_THREAD(thread);
}

FaultInjector::~FaultInjector() {
  if (fault_registry() == &registry_) set_fault_registry(nullptr);
}

bool FaultInjector::is_link(const std::string& where) const {
  const std::string l = link_of(where);
  for (const System::LinkInfo& li : system_.links())
    if (li.name == l) return true;
  return false;
}

void FaultInjector::validate(const FaultSpec& s) const {
  const FaultKindInfo& info = fault_info(s.kind);
  const std::string who = s.label.empty() ? std::string("fault") : s.label;
  auto fail = [&](const std::string& m) {
    throw UsageError(who, std::string(info.name) + ": " + m);
  };
  auto need_function = [&](bool dma) {
    FunctionRef* f = system_.function(s.where);
    if (!f) fail("no function named '" + s.where + "' (where: " + info.where + ")");
    if (dma && f->kind() != FunctionRef::kDma)
      fail("'" + s.where + "' is not an endpoint function");
  };
  switch (info.point) {
    case FaultPoint::kLink:
      if (!is_link(s.where))
        fail("no link '" + s.where + "' (where: " + info.where + "; links: " + [&] {
          std::string l;
          for (const System::LinkInfo& li : system_.links())
            l += (l.empty() ? "" : ", ") + li.name;
          return l;
        }() + ")");
      if (s.where != link_of(s.where) && s.where.substr(s.where.rfind(':') + 1) != "down" &&
          s.where.substr(s.where.rfind(':') + 1) != "up")
        fail("a link direction is :down or :up");
      if (s.kind == FaultKind::kLcrc && (s.repeat < 1 || s.repeat > 16))
        fail("repeat must be 1-16, got " + std::to_string(s.repeat));
      break;
    case FaultPoint::kCompleter:
      if (s.where != system_.config().root_complex.name) need_function(true);
      break;
    case FaultPoint::kIommu:
      if (!system_.iommu() || !system_.config().iommu.enabled)
        fail("the system has no enabled IOMMU");
      if (s.where != "iommu") fail("where must be 'iommu', got '" + s.where + "'");
      break;
    case FaultPoint::kTimed:
      if (s.kind == FaultKind::kMigrationCommand) {
        models::DmaDevice* dev = system_.device(s.where);
        if (!dev) fail("no endpoint named '" + s.where + "'");
        if (!dev->firmware()) fail(s.where + " has no migration support (endpoints[].migration)");
        bool known = false;
        for (std::uint32_t o = 1; o <= models::dma::kMigOpLast; ++o)
          known |= s.command == models::MigrationFirmware::op_name(o);
        if (!known) fail("no firmware command '" + s.command + "'");
        if (s.mode != "error" && s.mode != "timeout")
          fail("mode must be error or timeout, got '" + s.mode + "'");
      } else if (s.kind == FaultKind::kIommuUnmap) {
        if (!system_.iommu() || !system_.config().iommu.enabled)
          fail("the system has no enabled IOMMU");
        if (s.domain.empty()) fail("needs domain");
        if (s.length == 0) fail("needs a length");
      } else if (s.kind == FaultKind::kAerReport) {
        validate_aer_report(s, fail);
      } else if (s.kind == FaultKind::kTestAbort) {
        if (s.where != "simulator") fail("where must be 'simulator', got '" + s.where + "'");
      } else if (s.kind == FaultKind::kSurpriseRemoval) {
        if (!system_.device(s.where)) need_function(true);
      } else {
        need_function(true);
      }
      break;
  }
  if (s.end <= s.start) fail("the window ends before it starts");
}

FunctionRef* FaultInjector::report_target(const std::string& where) const {
  if (FunctionRef* f = system_.function(where)) return f;
  if (const auto rid = RoutingId::parse(where)) return system_.function_at(*rid);
  return nullptr;
}

void FaultInjector::validate_aer_report(const FaultSpec& s,
                                        const std::function<void(const std::string&)>& fail) const {
  for (const bool cor : {true, false}) {
    const std::uint32_t bits = cor ? s.cor_status : s.uncor_status;
    for (unsigned b = 0; b < 32; ++b) {
      if (!((bits >> b) & 1)) continue;
      ErrorKind k;
      if (!error_kind_of_bit(cor, 1u << b, &k))
        fail(std::string(cor ? "cor_status" : "uncor_status") + " bit " + std::to_string(b) +
             " is not implemented by the functions' AER capability (PCIe Base 7.8.4: reserved, "
             "or an optional error pciesim does not model)");
    }
  }
  if (!s.cor_status && !s.uncor_status) fail("needs cor_status or uncor_status");
  const bool address = !system_.function(s.where) && RoutingId::parse(s.where).has_value();
  // A PCI address can only be checked once enumeration has given out the
  // bus numbers; before boot it is resolved when the fault fires.
  if (address && !host_.booted()) return;
  FunctionRef* f = report_target(s.where);
  if (!f)
    fail(address ? "no function at " + s.where + " (see pciesim lspci)"
                 : "no function named '" + s.where + "'");
  if (f->kind() == FunctionRef::kHostBridge)
    fail(f->name() + " (the host bridge) has no AER capability");
}

unsigned FaultInjector::add(const FaultSpec& spec) {
  validate(spec);
  FaultSpec s = spec;
  // Times are absolute in the registry.
  const unsigned id = registry_.add(s);
  changed_.notify(sc_core::SC_ZERO_TIME);
  return id;
}

void FaultInjector::thread() {
  KernelContext::guard([this] {
    for (;;) {
      const Time next = registry_.next_timed();
      const Time now = now_fs();
      if (next == kTimeMax) {
        sc_core::wait(changed_);
        continue;
      }
      if (next > now) {
        sc_core::wait(to_sc(next - now), changed_);
        continue;
      }
      for (unsigned id : registry_.due(now))
        fire(id);
    }
  });
}

void FaultInjector::fire(unsigned id) {
  const FaultSpec& s = registry_.state(id).spec;
  const Time t = now_fs();
  FunctionRef* f = system_.function(s.where);
  switch (s.kind) {
    case FaultKind::kLinkDown: {
      Port* p = upstream_port(system_, link_of(s.where));
      if (!p) return;
      registry_.note(id, t, "link down");
      p->surprise_down(t, false);
      if (s.duration) {
        // A flaky link: it retrains by itself after `duration`.
        sc_core::sc_spawn_options o;
        sc_core::sc_spawn(
            [p, d = s.duration] {
              sc_core::wait(to_sc(d));
              p->set_link_up(true);
            },
            nullptr, &o);
      }
      return;
    }
    case FaultKind::kSurpriseRemoval: {
      models::DmaDevice* dev = system_.device(s.where);
      if (!dev && f) dev = f->device();
      if (!dev) return;
      registry_.note(id, t, "device removed");
      dev->port().surprise_down(t, true);
      return;
    }
    case FaultKind::kInternalError:
      if (f && f->dma() && f->exists()) {
        registry_.note(id, t, "uncorrectable internal error");
        f->device()->internal_error(*f->dma(), t);
      }
      return;
    case FaultKind::kSurpriseFlr:
      if (f && f->dma() && f->exists()) {
        registry_.note(id, t, "FLR");
        f->device()->surprise_flr(*f->dma(), t);
      }
      return;
    case FaultKind::kQuiesceStuck:
      if (f && f->dma()) {
        registry_.note(id, t, "outstanding reads will not drain");
        f->dma()->set_drain_stuck(true);
      }
      return;
    case FaultKind::kMigrationCommand: {
      models::DmaDevice* dev = system_.device(s.where);
      if (!dev || !dev->firmware()) return;
      std::uint32_t op = 0;
      for (std::uint32_t o = 1; o <= models::dma::kMigOpLast; ++o)
        if (s.command == models::MigrationFirmware::op_name(o)) op = o;
      registry_.note(id, t,
                     "next " + s.command + " will " + (s.mode == "timeout" ? "time out" : "fail"));
      dev->firmware()->set_failure(op, s.mode == "timeout", 1, 1);
      return;
    }
    case FaultKind::kAerReport:
      fire_aer_report(id, s, t);
      return;
    case FaultKind::kTestAbort:
      // What a simulator bug looks like from outside: the process dies.
      std::fflush(nullptr);
      std::abort();
    case FaultKind::kIommuUnmap: {
      if (!host_.iommu()) return;
      IommuDomain& d = host_.iommu_domain(s.domain);
      const int r = host_.iommu()->unmap(d, s.iova, s.length, true);
      registry_.note(id, now_fs(),
                     "unmapped " + std::to_string(s.length) + " bytes of " + s.domain + " (" +
                         std::to_string(r) + ")");
      return;
    }
    default:
      return;
  }
}

void FaultInjector::fire_aer_report(unsigned id, const FaultSpec& spec, Time t) {
  // A copy: reporting may run host code that arms more faults.
  const FaultSpec s = spec;
  const std::array<std::uint32_t, 4> hdr = s.header_log;
  if (!host_.booted() && !system_.function(s.where)) {
    // A PCI address means something only once enumeration has given out
    // bus numbers: an early report waits for the end of boot.
    registry_.note(id, t, "waiting for enumeration to resolve " + s.where);
    sc_core::sc_spawn_options o;
    sc_core::sc_spawn(
        [this, id, s] {
          KernelContext::guard([&] {
            sc_core::wait(host_.booted_event());
            fire_aer_report(id, s, now_fs());
          });
        },
        nullptr, &o);
    return;
  }
  FunctionRef* f = report_target(s.where);
  if (!f || !f->exists() || f->kind() == FunctionRef::kHostBridge) {
    registry_.note(id, t, "no function at " + s.where + ": nothing logged");
    return;
  }
  // Which model logs and signals for this function.
  std::function<void(ErrorKind)> report;
  if (f->dma()) {
    report = [f, hdr, t](ErrorKind k) { f->device()->report_error(*f->dma(), k, hdr, t); };
  } else if (f->kind() == FunctionRef::kRootPort) {
    for (unsigned i = 0; i < system_.rc().root_port_count(); ++i)
      if (&system_.rc().root_port(i) == f->bridge())
        report = [this, hdr, i, t](ErrorKind k) { system_.rc().report_error(i, k, hdr, t); };
  } else {
    for (const SwitchSpec& sw_spec : system_.config().switches) {
      models::PcieSwitch* sw = system_.switch_device(sw_spec.name);
      if (!sw) continue;
      if (&sw->usp() == f->bridge())
        report = [sw, hdr, t](ErrorKind k) { sw->report_error(-1, k, hdr, t); };
      for (unsigned i = 0; i < sw->downstream_count(); ++i)
        if (&sw->dsp(i) == f->bridge())
          report = [sw, hdr, i, t](ErrorKind k) {
            sw->report_error(static_cast<int>(i), k, hdr, t);
          };
    }
  }
  if (!report) {
    registry_.note(id, t, f->name() + " cannot log errors: nothing logged");
    return;
  }
  // Each error is detected on its own: in bit order, so that among
  // uncorrectable errors the lowest bit is the first error (the First
  // Error Pointer) as a device that found them together would log.
  std::string what;
  for (const bool cor : {true, false}) {
    const std::uint32_t bits = cor ? s.cor_status : s.uncor_status;
    for (unsigned b = 0; b < 32; ++b) {
      ErrorKind k;
      if (!((bits >> b) & 1) || !error_kind_of_bit(cor, 1u << b, &k)) continue;
      what += (what.empty() ? "" : " ") + std::string(to_string(k));
      report(k);
    }
  }
  registry_.note(id, t, f->name() + " (" + f->rid().str() + ") logs " + what);
}

}  // namespace pciesim::sim

#include "sim/scenario/checker.h"

#include <linux/pci_regs.h>
#include <cstdio>
#include <iomanip>
#include <map>
#include <sstream>

#include "fabric/common/error.h"
#include "sim/builder/system.h"
#include "sim/config/config_loader.h"
#include "sim/host/host.h"

namespace pciesim::sim {

using json = nlohmann::ordered_json;

const json* resolve_stat(const json& root, const std::string& path) {
  const json* cur = &root;
  std::string rest = path;
  while (!rest.empty()) {
    if (cur->is_array()) {
      std::size_t dot = rest.find('.');
      std::string idx = rest.substr(0, dot);
      if (idx.empty() || idx.find_first_not_of("0123456789") != std::string::npos) return nullptr;
      std::size_t i = std::stoul(idx);
      if (i >= cur->size()) return nullptr;
      cur = &(*cur)[i];
      rest = dot == std::string::npos ? "" : rest.substr(dot + 1);
      continue;
    }
    if (!cur->is_object()) return nullptr;
    // Longest key that is a prefix of rest at a dot boundary.
    const json* best = nullptr;
    std::size_t best_len = 0;
    for (auto it = cur->begin(); it != cur->end(); ++it) {
      const std::string& k = it.key();
      if (rest.compare(0, k.size(), k) == 0 && (rest.size() == k.size() || rest[k.size()] == '.') &&
          k.size() > best_len) {
        best = &it.value();
        best_len = k.size();
      }
    }
    if (!best) return nullptr;
    cur = best;
    rest = rest.size() == best_len ? "" : rest.substr(best_len + 1);
  }
  return cur;
}

Checker::Checker(System& system, Host& host, std::function<json()> stats)
    : system_(system), host_(host), stats_(std::move(stats)) {}

const json& Checker::stats_doc() {
  // Called only under a Batch (evaluate and compare open one).
  if (!batch_stats_) batch_stats_ = stats_();
  return *batch_stats_;
}

fabric::RoutingId Checker::target_rid(const std::string& target) {
  if (FunctionRef* f = system_.function(target)) return f->rid();
  if (auto rid = fabric::RoutingId::parse(target)) return *rid;
  throw UsageError("scenario", "no function named '" + target + "'");
}

std::uint16_t Checker::config_offset(const std::string& target, const std::string& cap,
                                     std::uint32_t off) {
  if (cap.empty()) return static_cast<std::uint16_t>(off);
  FunctionRef* f = system_.function(target);
  if (!f)
    if (auto rid = fabric::RoutingId::parse(target)) f = system_.function_at(*rid);
  if (!f) throw UsageError(target, "cannot find capability '" + cap + "': no such function");
  auto [ext, id] = capability_names().at(cap);
  std::uint16_t base = ext ? f->config().find_extended_capability(static_cast<std::uint16_t>(id))
                           : f->config().find_capability(static_cast<std::uint8_t>(id));
  if (!base) throw UsageError(target, target + " has no '" + cap + "' capability");
  return static_cast<std::uint16_t>(base + off);
}

namespace {
std::string hex(std::uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}
std::string number(double v) {
  std::ostringstream o;
  if (v == static_cast<double>(static_cast<long long>(v)))
    o << static_cast<long long>(v);
  else
    o << std::setprecision(12) << v;
  return o.str();
}
}  // namespace

// Resolves an operand that is a recorded step value or another stat.
bool Checker::resolve_operand(const Expectation& e, Comparison* cmp, std::string* why) {
  *cmp = e.cmp;
  if (e.cmp.step >= 0) {
    const double* v = step_value ? step_value(e.cmp.step) : nullptr;
    if (!v) {
      *why = "scenario[" + std::to_string(e.cmp.step) + "] recorded no value";
      return false;
    }
    cmp->a = *v;
  }
  if (!e.cmp.a_stat.empty()) {
    const json* v = resolve_stat(stats_doc(), e.cmp.a_stat);
    if (!v || !(v->is_number() || v->is_boolean())) {
      *why = e.cmp.a_stat + (v ? " is not a number" : ": no such stat");
      return false;
    }
    cmp->a = v->is_boolean() ? (v->get<bool>() ? 1.0 : 0.0) : v->get<double>();
  }
  return true;
}

std::string Checker::operand_note(const Expectation& e, const Comparison& cmp) const {
  if (e.cmp.step >= 0) return " (scenario[" + std::to_string(e.cmp.step) + "])";
  if (!e.cmp.a_stat.empty()) return " (" + e.cmp.a_stat + ")";
  (void)cmp;
  return "";
}

CheckResult Checker::compare(const Expectation& e, std::uint64_t raw, const std::string& what) {
  Batch batch(*this);
  CheckResult r;
  r.label = e.label;
  r.at = HostCpu::now();
  std::uint64_t v = raw & e.mask;
  Comparison cmp;
  std::string why;
  bool ok = resolve_operand(e, &cmp, &why);
  if (e.cmp.has_text) {
    ok = false;
    why = "a register holds a number, not the text \"" + e.cmp.a_text + "\"";
  }
  r.description = what + (e.mask != ~std::uint64_t{0} ? " & " + hex(e.mask) : "") + " " +
                  cmp.text() + operand_note(e, cmp);
  r.observed = ok ? hex(v) : why;
  r.passed = ok && cmp.holds(static_cast<double>(v));
  return r;
}

CheckResult Checker::evaluate(const Expectation& e) {
  Batch batch(*this);
  CheckResult r;
  r.label = e.label;
  r.at = HostCpu::now();
  models::RootComplex& rc = system_.rc();
  switch (e.kind) {
    case Expectation::kStat: {
      const json* v = resolve_stat(stats_doc(), e.stat);
      r.description = e.stat + " " + e.cmp.text();
      if (e.cmp.has_text) {
        if (!v || !v->is_string()) {
          r.observed = v ? "not text: " + v->dump() : "no such stat";
          r.passed = false;
          return r;
        }
        r.observed = v->get<std::string>();
        r.passed = (r.observed == e.cmp.a_text) == (e.cmp.op == Comparison::kEq);
        return r;
      }
      if (!v || !(v->is_number() || v->is_boolean())) {
        r.observed = v ? "not a number: " + v->dump() : "no such stat";
        r.passed = false;
        return r;
      }
      double d = v->is_boolean() ? (v->get<bool>() ? 1.0 : 0.0) : v->get<double>();
      Comparison cmp;
      std::string why;
      bool ok = resolve_operand(e, &cmp, &why);
      r.description = e.stat + " " + cmp.text() + operand_note(e, cmp);
      r.observed = ok ? number(d) : why;
      r.passed = ok && cmp.holds(d);
      return r;
    }
    case Expectation::kRegister: {
      fabric::RoutingId rid = target_rid(e.target);
      std::uint32_t v = 0;
      std::uint16_t off = config_offset(e.target, e.cap, e.offset);
      rc.config_dbg(rid, off, e.size, false, &v);
      return compare(e, v,
                     e.target + " (" + rid.str() + ") config[" +
                         (e.cap.empty() ? "" : e.cap + "+") + hex(e.offset) + "]");
    }
    case Expectation::kMmio: {
      PciDev* d = host_.pci().find(e.target);
      std::uint64_t base = d ? host_.pci().bar_address(*d, e.bar) : 0;
      if (!base) {
        r.description = e.target + " BAR" + std::to_string(e.bar);
        r.observed = "the host has no address for this BAR";
        return r;
      }
      std::uint8_t buf[8] = {};
      rc.mmio_dbg(base + e.offset, buf, e.size, false);
      std::uint64_t v = 0;
      for (unsigned i = 0; i < e.size; ++i)
        v |= static_cast<std::uint64_t>(buf[i]) << (8 * i);
      return compare(e, v, e.target + " BAR" + std::to_string(e.bar) + "[" + hex(e.offset) + "]");
    }
    case Expectation::kMemory: {
      r.description = "memory at " + hex(e.address) + " holds " + std::to_string(e.bytes.size()) +
                      " given bytes";
      std::vector<std::uint8_t> got(e.bytes.size());
      try {
        std::uint64_t a = e.address;
        if (!e.vm.empty()) {
          a = host_.vm_to_host(e.vm, e.address, got.size());
          r.description = "VM " + e.vm + " memory at " + hex(e.address) + " holds " +
                          std::to_string(e.bytes.size()) + " given bytes";
        }
        system_.memory().read(a, got.data(), got.size());
      } catch (const UsageError& err) {
        r.observed = err.message();
        return r;
      }
      r.passed = got == e.bytes;
      std::string s;
      for (std::size_t i = 0; i < got.size() && i < 32; ++i) {
        char b[4];
        std::snprintf(b, sizeof b, "%02x", got[i]);
        s += (i ? " " : "") + std::string(b);
      }
      r.observed = s;
      return r;
    }
    case Expectation::kVisible: {
      fabric::RoutingId rid = target_rid(e.target);
      std::uint32_t v = 0;
      bool answers = rc.config_dbg(rid, PCI_CLASS_REVISION, 4, false, &v);
      r.description = e.target + " (" + rid.str() + ") " +
                      (e.visible ? "answers" : "does not answer") + " config requests";
      r.observed = answers ? "answers" : "does not answer";
      r.passed = answers == e.visible;
      return r;
    }
  }
  return r;
}

}  // namespace pciesim::sim

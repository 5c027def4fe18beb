#include "fabric/fault/aer_inject.h"

#include <linux/pci_regs.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "fabric/common/error.h"
#include "fabric/tlp/routing_id.h"

namespace pciesim::fabric {

namespace {

struct StatusName {
  const char* name;
  std::uint32_t bit;
};

// aer-inject's names first (its SPEC), then the names later versions and
// <linux/pci_regs.h> use for the same or newer bits.
const std::vector<StatusName> kUncorrectable = {
    {"TRAIN", PCI_ERR_UNC_UND},
    {"UND", PCI_ERR_UNC_UND},
    {"DLP", PCI_ERR_UNC_DLP},
    {"SURPDN", PCI_ERR_UNC_SURPDN},
    {"POISON_TLP", PCI_ERR_UNC_POISON_TLP},
    {"FCP", PCI_ERR_UNC_FCP},
    {"COMP_TIME", PCI_ERR_UNC_COMP_TIME},
    {"COMP_ABORT", PCI_ERR_UNC_COMP_ABORT},
    {"UNX_COMP", PCI_ERR_UNC_UNX_COMP},
    {"RX_OVER", PCI_ERR_UNC_RX_OVER},
    {"MALF_TLP", PCI_ERR_UNC_MALF_TLP},
    {"ECRC", PCI_ERR_UNC_ECRC},
    {"UNSUP", PCI_ERR_UNC_UNSUP},
    {"ACSV", PCI_ERR_UNC_ACSV},
    {"ACSVIOL", PCI_ERR_UNC_ACSV},
    {"INTN", PCI_ERR_UNC_INTN},
    {"UNCIE", PCI_ERR_UNC_INTN},
    {"MCBTLP", PCI_ERR_UNC_MCBTLP},
    {"ATOMEG", PCI_ERR_UNC_ATOMEG},
    {"TLPPRE", PCI_ERR_UNC_TLPPRE},
};
const std::vector<StatusName> kCorrectable = {
    {"RCVR", PCI_ERR_COR_RCVR},
    {"BAD_TLP", PCI_ERR_COR_BAD_TLP},
    {"BAD_DLLP", PCI_ERR_COR_BAD_DLLP},
    {"REP_ROLL", PCI_ERR_COR_REP_ROLL},
    {"REP_TIMER", PCI_ERR_COR_REP_TIMER},
    {"ADV_NFAT", PCI_ERR_COR_ADV_NFAT},
    {"ADV_NONFATAL", PCI_ERR_COR_ADV_NFAT},
    {"INTERNAL", PCI_ERR_COR_INTERNAL},
    {"CORR_INTERNAL", PCI_ERR_COR_INTERNAL},
    {"LOG_OVER", PCI_ERR_COR_LOG_OVER},
    {"HEADER_OF", PCI_ERR_COR_LOG_OVER},
};

std::string upper(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// A number in C notation (0x.., 0.., decimal) that fits `max`.
bool parse_number(const std::string& w, std::uint64_t max, std::uint64_t* out) {
  if (w.empty() || w[0] == '-' || w[0] == '+') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(w.c_str(), &end, 0);
  if (errno || !end || *end != '\0' || v > max) return false;
  *out = v;
  return true;
}

// "[WWWW:]XX:YY.Z", hexadecimal fields (any domain: checked by the caller).
bool parse_pci_id(const std::string& w, AerInjectRecord* r) {
  unsigned domain = 0;
  const std::optional<RoutingId> rid = RoutingId::parse(w, &domain);
  if (!rid) return false;
  r->domain = domain;
  r->bus = rid->bus();
  r->device = rid->device();
  r->function = rid->function();
  return true;
}

}  // namespace

std::string AerInjectRecord::pci_id() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02x:%02x.%x", bus & 0xff, device & 0x1f, function & 7);
  return buf;
}

bool parse_aer_status(bool correctable, const std::string& word, std::uint32_t* bits) {
  const std::string w = upper(word);
  for (const StatusName& n : correctable ? kCorrectable : kUncorrectable) {
    if (w == n.name) {
      *bits = n.bit;
      return true;
    }
  }
  std::uint64_t v = 0;
  if (!parse_number(word, 0xffffffffu, &v) || v == 0) return false;
  *bits = static_cast<std::uint32_t>(v);
  return true;
}

std::string aer_status_names(bool correctable) {
  std::string s;
  for (const StatusName& n : correctable ? kCorrectable : kUncorrectable)
    s += (s.empty() ? "" : ", ") + std::string(n.name);
  return s;
}

std::vector<AerInjectRecord> parse_aer_inject(const std::string& text, const std::string& source) {
  if (text.size() > (1u << 20))
    throw UsageError(source, "an aer-inject file is limited to 1 MiB, got " +
                                 std::to_string(text.size()) + " bytes");
  // Words with their line numbers, comments removed.
  struct Word {
    std::string text;
    unsigned line;
  };
  std::vector<Word> words;
  {
    std::istringstream in(text);
    std::string line;
    unsigned n = 0;
    while (std::getline(in, line)) {
      ++n;
      const std::size_t hash = line.find('#');
      if (hash != std::string::npos) line.resize(hash);
      std::istringstream ls(line);
      std::string w;
      while (ls >> w)
        words.push_back({w, n});
    }
  }
  std::vector<AerInjectRecord> out;
  auto at = [&](unsigned line) { return source + ":" + std::to_string(line); };
  bool has_bus = false, has_dev = false, has_fn = false;
  auto finish = [&] {
    if (out.empty()) return;
    AerInjectRecord& r = out.back();
    if (!r.has_id && (has_bus || has_dev || has_fn)) {
      if (!(has_bus && has_dev && has_fn))
        throw UsageError(r.where, "BUS, DEV and FN go together (or use PCI_ID bb:dd.f)");
      r.has_id = true;
    }
    if (!r.has_id) throw UsageError(r.where, "the record names no device (PCI_ID or BUS/DEV/FN)");
    if (!r.cor_status && !r.uncor_status)
      throw UsageError(r.where, "the record injects no error (COR_STATUS or UNCOR_STATUS)");
    has_bus = has_dev = has_fn = false;
  };
  for (std::size_t i = 0; i < words.size(); ++i) {
    const Word& w = words[i];
    const std::string key = upper(w.text);
    if (key == "AER") {
      finish();
      AerInjectRecord r;
      r.where = at(w.line);
      out.push_back(r);
      continue;
    }
    if (out.empty())
      throw UsageError(at(w.line), "expected AER to start a record, got '" + w.text + "'");
    AerInjectRecord& r = out.back();
    auto value = [&](const char* what) -> const Word& {
      if (i + 1 >= words.size())
        throw UsageError(at(w.line), w.text + " needs " + what + " after it");
      return words[++i];
    };
    auto number = [&](std::uint64_t max, const char* what) {
      const Word& v = value(what);
      std::uint64_t n = 0;
      if (!parse_number(v.text, max, &n))
        throw UsageError(at(v.line), w.text + ": expected " + what + " (C notation, at most " +
                                         std::to_string(max) + "), got '" + v.text + "'");
      return n;
    };
    if (key == "PCI_ID" || key == "ID") {
      const Word& v = value("a PCI address [WWWW:]XX:YY.Z");
      if (!parse_pci_id(v.text, &r))
        throw UsageError(at(v.line),
                         "PCI_ID: expected [WWWW:]XX:YY.Z in hexadecimal, got '" + v.text + "'");
      r.has_id = true;
    } else if (key == "DOMAIN") {
      r.domain = static_cast<unsigned>(number(0xffff, "a domain number"));
    } else if (key == "BUS") {
      r.bus = static_cast<unsigned>(number(0xff, "a bus number"));
      has_bus = true;
    } else if (key == "DEV") {
      r.device = static_cast<unsigned>(number(0x1f, "a device number"));
      has_dev = true;
    } else if (key == "FN") {
      r.function = static_cast<unsigned>(number(7, "a function number"));
      has_fn = true;
    } else if (key == "COR_STATUS" || key == "COR" || key == "CORRECTABLE" ||
               key == "UNCOR_STATUS" || key == "UNCOR" || key == "UNCORRECTABLE") {
      const bool cor = key.compare(0, 3, "COR") == 0;
      const Word& v = value("an error name or number");
      std::uint32_t bits = 0;
      if (!parse_aer_status(cor, v.text, &bits))
        throw UsageError(at(v.line), w.text + ": unknown " +
                                         (cor ? "correctable" : "uncorrectable") + " error '" +
                                         v.text + "' (" + aer_status_names(cor) + " or a number)");
      (cor ? r.cor_status : r.uncor_status) |= bits;
    } else if (key == "HEADER_LOG" || key == "HL") {
      for (unsigned k = 0; k < 4; ++k)
        r.header_log[k] = static_cast<std::uint32_t>(number(0xffffffffu, "four 32-bit numbers"));
    } else {
      throw UsageError(at(w.line),
                       "unknown keyword '" + w.text +
                           "' (AER, PCI_ID, DOMAIN, BUS, DEV, FN, COR_STATUS, UNCOR_STATUS, "
                           "HEADER_LOG)");
    }
  }
  finish();
  if (out.empty()) throw UsageError(source, "no AER record in the file");
  if (out.size() > 4096)
    throw UsageError(source, "at most 4096 records per file, got " + std::to_string(out.size()));
  return out;
}

}  // namespace pciesim::fabric

#include "sim/config/yaml_reader.h"

#include <map>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace pciesim::sim {

void DocSink::add(FieldDoc d) {
  if (!seen_.insert({d.section, d.key}).second) return;
  fields_.push_back(std::move(d));
}

std::string DocSink::markdown() const {
  // One table per section, sections in order of first appearance (a
  // section's fields may be read around its nested sections).
  std::vector<std::string> order;
  for (const FieldDoc& f : fields_)
    if (std::find(order.begin(), order.end(), f.section) == order.end()) order.push_back(f.section);
  auto esc = [](const std::string& s) {
    std::string o;
    for (char c : s) {
      if (c == '|')
        o += "\\|";
      else if (c == '\n')
        o += ' ';
      else
        o += c;
    }
    return o;
  };
  std::ostringstream out;
  for (const std::string& section : order) {
    out << "\n### `" << (section.empty() ? "(top level)" : section) << "`\n\n"
        << "| key | type | default | meaning |\n|---|---|---|---|\n";
    for (const FieldDoc& f : fields_) {
      if (f.section != section) continue;
      out << "| `" << f.key << "` | " << esc(f.type) << " | "
          << (f.default_value.empty() ? "" : "`" + esc(f.default_value) + "`") << " | "
          << esc(f.doc) << " |\n";
    }
  }
  return out.str();
}

std::string format_bytes(std::uint64_t v) {
  static const char* units[] = {"GiB", "MiB", "KiB"};
  static const std::uint64_t scales[] = {1ull << 30, 1ull << 20, 1ull << 10};
  for (int i = 0; i < 3; ++i)
    if (v >= scales[i] && v % scales[i] == 0) return std::to_string(v / scales[i]) + units[i];
  return std::to_string(v);
}

std::string format_hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Node::Node(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {}

Node Node::child(const std::string& key) const {
  YAML::Node n;
  if (is_map()) {
    const YAML::Node c = node_[key];
    if (c.IsDefined()) n = c;
  }
  return Node(n, file_, path_.empty() ? key : path_ + "." + key);
}

Node Node::at(std::size_t index) const {
  YAML::Node n;
  if (is_sequence() && index < node_.size()) n = node_[index];
  return Node(n, file_, path_ + "[" + std::to_string(index) + "]");
}

namespace {
thread_local OverrideScope* t_overrides = nullptr;

void check_node(const YAML::Node& n, const std::string& file, const std::string& path,
                unsigned depth) {
  auto where = [&](const YAML::Node& at) {
    YAML::Mark m = at.Mark();
    return std::make_pair(m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0);
  };
  if (depth > kMaxConfigDepth) {
    auto [l, c] = where(n);
    throw ConfigError(file, l, c, path,
                      "nested deeper than " + std::to_string(kMaxConfigDepth) +
                          " levels (no config key needs that many)");
  }
  if (n.IsMap()) {
    std::map<std::string, YAML::Mark> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->first.IsScalar()) {
        auto [l, c] = where(it->first);
        throw ConfigError(file, l, c, path, "mapping keys must be plain names");
      }
      const std::string key = it->first.Scalar();
      const std::string sub = path.empty() ? key : path + "." + key;
      auto [pos, fresh] = seen.emplace(key, it->first.Mark());
      if (!fresh) {
        auto [l, c] = where(it->first);
        throw ConfigError(file, l, c, sub,
                          "duplicate key '" + key + "' (first at line " +
                              std::to_string(pos->second.line + 1) + ", column " +
                              std::to_string(pos->second.column + 1) + ")");
      }
      check_node(it->second, file, sub, depth + 1);
    }
  } else if (n.IsSequence()) {
    for (std::size_t i = 0; i < n.size(); ++i)
      check_node(n[i], file, path + "[" + std::to_string(i) + "]", depth + 1);
  }
}
}  // namespace

OverrideScope::OverrideScope(std::vector<std::pair<std::string, std::string>> overrides)
    : overrides_(std::move(overrides)), previous_(t_overrides) {
  t_overrides = this;
}

OverrideScope::~OverrideScope() {
  t_overrides = previous_;
}

const std::string* OverrideScope::find(const std::string& path) {
  if (!t_overrides) return nullptr;
  // The last override of a path wins, as it does in the document.
  for (auto it = t_overrides->overrides_.rbegin(); it != t_overrides->overrides_.rend(); ++it) {
    const std::string& p = it->first;
    if (path == p || (path.size() > p.size() && path.compare(0, p.size(), p) == 0 &&
                      (path[p.size()] == '.' || path[p.size()] == '[')))
      return &it->second;
  }
  return nullptr;
}

void check_document(const YAML::Node& root, const std::string& file) {
  check_node(root, file, "", 0);
}

std::string Node::location() const {
  ConfigError e(file_, 0, 0, path_, "");
  return e.where();
}

void Node::fail(const std::string& message) const {
  if (const std::string* o = OverrideScope::find(path_))
    throw ConfigError("--set " + *o, 0, 0, path_, message);
  int line = 0, col = 0;
  if (node_.IsDefined()) {
    YAML::Mark m = node_.Mark();
    if (m.line >= 0) {
      line = m.line + 1;
      col = m.column + 1;
    }
  }
  throw ConfigError(file_, line, col, path_, message);
}

namespace {
bool parse_integer(const std::string& text, std::uint64_t* out, bool* negative) {
  std::string s;
  for (char c : text)
    if (c != '_') s += c;
  *negative = false;
  if (!s.empty() && s[0] == '-') {
    *negative = true;
    s = s.substr(1);
  }
  if (s.empty()) return false;
  int base = 10;
  std::size_t start = 0;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
    base = 16, start = 2;
  else if (s.size() > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
    base = 2, start = 2;
  std::uint64_t v = 0;
  for (std::size_t i = start; i < s.size(); ++i) {
    int d;
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return false;
    if (d >= base) return false;
    if (v > (~std::uint64_t{0} - d) / base) return false;  // overflow
    v = v * base + d;
  }
  *out = v;
  return true;
}
}  // namespace

std::int64_t Node::as_int(std::int64_t min, std::int64_t max) const {
  if (!is_scalar()) fail("expected an integer");
  std::uint64_t v;
  bool neg;
  if (!parse_integer(node_.Scalar(), &v, &neg) || v > (std::uint64_t{1} << 62))
    fail("expected an integer, got '" + node_.Scalar() + "'");
  std::int64_t s = neg ? -static_cast<std::int64_t>(v) : static_cast<std::int64_t>(v);
  if (s < min || s > max)
    fail("expected an integer in " + std::to_string(min) + ".." + std::to_string(max) + ", got " +
         node_.Scalar());
  return s;
}

std::uint64_t Node::as_u64() const {
  if (!is_scalar()) fail("expected an unsigned integer");
  std::uint64_t v;
  bool neg;
  if (!parse_integer(node_.Scalar(), &v, &neg) || neg)
    fail("expected an unsigned integer (decimal or 0x hex), got '" + node_.Scalar() + "'");
  return v;
}

double Node::as_double() const {
  if (!is_scalar()) fail("expected a number");
  const std::string& s = node_.Scalar();
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) fail("expected a number, got '" + s + "'");
  return v;
}

bool Node::as_bool() const {
  if (!is_scalar()) fail("expected true or false");
  const std::string& s = node_.Scalar();
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  fail("expected true or false, got '" + s + "'");
}

std::string Node::as_string() const {
  if (!is_scalar()) fail("expected a string");
  return node_.Scalar();
}

fabric::Time Node::as_time() const {
  if (!is_scalar()) fail("expected a time such as 10us");
  fabric::Time t;
  if (!fabric::parse_time(node_.Scalar(), &t))
    fail("expected a time with a unit (s, ms, us, ns, ps, fs), got '" + node_.Scalar() + "'");
  return t;
}

Bytes Node::as_bytes() const {
  if (!is_scalar()) fail("expected a byte count such as 4KiB");
  const std::string s = node_.Scalar();
  const std::string hint =
      "expected a byte count such as 4096, 0x1000, 4KiB, 1MiB, got '" + s + "'";
  // Hex has no unit; decimal may carry a binary unit suffix.
  std::string num = s, unit;
  if (!(s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))) {
    std::size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '_'))
      ++i;
    num = s.substr(0, i);
    unit = s.substr(i);
    while (!unit.empty() && unit.front() == ' ')
      unit.erase(unit.begin());
  }
  std::uint64_t scale = 1;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "KiB" || unit == "K")
    scale = 1ull << 10;
  else if (unit == "MiB" || unit == "M")
    scale = 1ull << 20;
  else if (unit == "GiB" || unit == "G")
    scale = 1ull << 30;
  else if (unit == "TiB" || unit == "T")
    scale = 1ull << 40;
  else
    fail(hint);
  std::uint64_t v;
  bool neg;
  if (!parse_integer(num, &v, &neg) || neg) fail(hint);
  if (v > ~std::uint64_t{0} / scale) fail("byte count too large: '" + s + "'");
  return Bytes{v * scale};
}

Section::Section(const Node& node, std::string doc_section, DocSink* docs)
    : node_(node), doc_section_(std::move(doc_section)), docs_(docs) {
  if (node_.defined() && !node_.is_map()) node_.fail("expected a mapping of keys to values");
}

bool Section::has(const std::string& key) const {
  return node_.defined() && node_.yaml()[key].IsDefined();
}

Section& Section::required(const std::string& key) {
  required_.insert(key);
  return *this;
}

bool Section::begin(const std::string& key, const std::string& type, const std::string& def,
                    const std::string& doc) {
  known_.insert(key);
  bool req = required_.count(key) > 0;
  if (docs_) docs_->add({doc_section_, key, type, req ? "(required)" : def, doc});
  if (!has(key)) {
    if (req && node_.defined()) node_.fail("missing required key '" + key + "'");
    if (req && !docs_) {
      Node parent = node_;
      parent.fail("missing required key '" + key + "'");
    }
    return false;
  }
  return true;
}

Section& Section::field(const std::string& key, int* out, int min, int max,
                        const std::string& doc) {
  if (begin(key, "integer " + std::to_string(min) + ".." + std::to_string(max),
            std::to_string(*out), doc))
    *out = static_cast<int>(node_.child(key).as_int(min, max));
  return *this;
}

Section& Section::field(const std::string& key, unsigned* out, unsigned min, unsigned max,
                        const std::string& doc) {
  if (begin(key, "integer " + std::to_string(min) + ".." + std::to_string(max),
            std::to_string(*out), doc))
    *out = static_cast<unsigned>(node_.child(key).as_int(min, max));
  return *this;
}

Section& Section::field(const std::string& key, std::uint16_t* out, const std::string& doc) {
  if (begin(key, "16-bit integer", format_hex(*out), doc))
    *out = static_cast<std::uint16_t>(node_.child(key).as_int(0, 0xffff));
  return *this;
}

Section& Section::field(const std::string& key, std::uint64_t* out, const std::string& doc) {
  if (begin(key, "integer", format_hex(*out), doc)) *out = node_.child(key).as_u64();
  return *this;
}

Section& Section::field(const std::string& key, std::uint64_t* out, std::uint64_t min,
                        std::uint64_t max, const std::string& doc) {
  if (begin(key, "integer " + std::to_string(min) + ".." + std::to_string(max),
            std::to_string(*out), doc)) {
    Node n = node_.child(key);
    std::uint64_t v = n.as_u64();
    if (v < min || v > max)
      n.fail("expected an integer in " + std::to_string(min) + ".." + std::to_string(max) +
             ", got " + n.scalar());
    *out = v;
  }
  return *this;
}

Section& Section::field(const std::string& key, double* out, double min, double max,
                        const std::string& doc) {
  std::ostringstream def;
  def << *out;
  if (begin(key, "number", def.str(), doc)) {
    Node n = node_.child(key);
    double v = n.as_double();
    if (v < min || v > max) {
      std::ostringstream m;
      m << "expected a number in " << min << ".." << max << ", got " << n.scalar();
      n.fail(m.str());
    }
    *out = v;
  }
  return *this;
}

Section& Section::field(const std::string& key, bool* out, const std::string& doc) {
  if (begin(key, "bool", *out ? "true" : "false", doc)) *out = node_.child(key).as_bool();
  return *this;
}

Section& Section::field(const std::string& key, std::string* out, const std::string& doc) {
  if (begin(key, "string", *out, doc)) *out = node_.child(key).as_string();
  return *this;
}

Section& Section::name(const std::string& key, std::string* out, const std::string& doc) {
  if (begin(key, "name", *out, doc)) {
    Node n = node_.child(key);
    std::string v = n.as_string();
    // Names become SystemC instance names (no '.' or spaces), parts of
    // dotted target and stat paths ("ep0.vf3", "workloads.w.bytes") and of
    // link labels ("sw0.dsp1--ep0"), and must not read as a BDF (':').
    bool ok = !v.empty() && v.size() <= 64 &&
              (std::isalpha(static_cast<unsigned char>(v[0])) || v[0] == '_');
    for (char c : v)
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!ok)
      n.fail("'" + v +
             "' is not a valid name: use 1-64 letters, digits and '_', starting with a letter "
             "or '_' (names become instance names, stat paths and targets)");
    *out = v;
  }
  return *this;
}

Section& Section::time(const std::string& key, fabric::Time* out, const std::string& doc,
                       fabric::Time min, fabric::Time max) {
  if (begin(key, "time", fabric::format_time(*out), doc)) {
    Node n = node_.child(key);
    fabric::Time t = n.as_time();
    if (t < min || t > max)
      n.fail("expected a time in " + fabric::format_time(min) + " .. " +
             (max == fabric::kTimeMax ? std::string("5 h") : fabric::format_time(max)) + ", got " +
             n.scalar());
    *out = t;
  }
  return *this;
}

Section& Section::bytes(const std::string& key, std::uint64_t* out, const std::string& doc,
                        std::uint64_t min, std::uint64_t max) {
  if (begin(key, "bytes", format_bytes(*out), doc)) {
    Node n = node_.child(key);
    std::uint64_t v = n.as_bytes().value;
    if (v < min || v > max)
      n.fail("expected a size in " + format_bytes(min) + " .. " + format_bytes(max) + ", got " +
             n.scalar());
    *out = v;
  }
  return *this;
}

Section& Section::bytes(const std::string& key, std::uint32_t* out, const std::string& doc,
                        std::uint32_t min, std::uint32_t max) {
  std::uint64_t v = *out;
  bytes(key, &v, doc, min, max);
  *out = static_cast<std::uint32_t>(v);
  return *this;
}

Section& Section::power_of_two(const std::string& key, std::uint32_t* out, std::uint32_t min,
                               std::uint32_t max, const std::string& doc) {
  if (begin(key, "power of two " + std::to_string(min) + ".." + std::to_string(max),
            std::to_string(*out), doc)) {
    Node n = node_.child(key);
    std::uint64_t v = n.as_bytes().value;
    if (v < min || v > max || (v & (v - 1)) != 0)
      n.fail("expected a power of two in " + std::to_string(min) + ".." + std::to_string(max) +
             ", got " + n.scalar());
    *out = static_cast<std::uint32_t>(v);
  }
  return *this;
}

Section& Section::nested(const std::string& key, const std::string& type, const std::string& doc) {
  known_.insert(key);
  if (docs_) docs_->add({doc_section_, key, type, "", doc});
  return *this;
}

void Section::finish() const {
  if (!node_.defined()) return;
  for (const auto& kv : node_.yaml()) {
    std::string key = kv.first.as<std::string>();
    if (known_.count(key)) continue;
    std::string allowed;
    for (const std::string& k : known_)
      allowed += (allowed.empty() ? "" : ", ") + k;
    Node(kv.first, node_.file(), node_.path().empty() ? key : node_.path() + "." + key)
        .fail("unknown key '" + key + "'; expected one of: " + allowed);
  }
}

}  // namespace pciesim::sim

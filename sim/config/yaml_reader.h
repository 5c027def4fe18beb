// Typed, self-documenting reading of YAML config sections (in the spirit of
// gem5's typed parameters). Every field is declared once, with its type,
// default, constraints and a doc string; the same declarations validate a
// document (unknown keys, wrong types, out-of-range values, all reported
// with file:line:col and the key path) and produce the config reference
// (`pciesim config-reference`, docs/config-reference.md).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fabric/common/error.h"
#include "fabric/common/sim_time.h"

namespace pciesim::sim {

// One documented field, collected when reading in documentation mode.
struct FieldDoc {
  std::string section;  // e.g. "links[]"
  std::string key;
  std::string type;
  std::string default_value;
  std::string doc;
};

class DocSink {
 public:
  void add(FieldDoc d);
  const std::vector<FieldDoc>& fields() const { return fields_; }
  std::string markdown() const;

 private:
  std::vector<FieldDoc> fields_;
  std::set<std::pair<std::string, std::string>> seen_;
};

// Byte counts accept "4096", "0x1000", "4KiB", "1 MiB", "2GiB".
struct Bytes {
  std::uint64_t value = 0;
};

// While alive, errors about values that `--set` overrides put in the
// document name the override ("--set links[1].gen=9") instead of a file
// position that the value never had. Keys: the canonical key path
// ("endpoints[0].sriov.num_vfs"), values: the assignment as given.
class OverrideScope {
 public:
  explicit OverrideScope(std::vector<std::pair<std::string, std::string>> overrides);
  ~OverrideScope();
  OverrideScope(const OverrideScope&) = delete;
  OverrideScope& operator=(const OverrideScope&) = delete;
  // The assignment that set `path` or one of its parents, or nullptr.
  static const std::string* find(const std::string& path);

 private:
  std::vector<std::pair<std::string, std::string>> overrides_;
  OverrideScope* previous_;
};

// Limits on a config document itself (docs/config-reference.md).
constexpr std::size_t kMaxConfigBytes = 16u << 20;  // a config file or text
constexpr unsigned kMaxConfigDepth = 64;            // nesting of maps and lists

// Refuses what the typed readers cannot report well: nesting deeper than
// kMaxConfigDepth, duplicate keys in a mapping (yaml-cpp keeps both and the
// first wins) and keys that are not scalars. Errors name both places.
void check_document(const YAML::Node& root, const std::string& file);

// A YAML node with where it came from.
class Node {
 public:
  Node() = default;
  Node(YAML::Node node, std::string file, std::string path);

  const YAML::Node& yaml() const { return node_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }
  // yaml-cpp throws on type queries of the placeholder node it returns for
  // a missing key, so every query checks IsDefined() first.
  bool defined() const { return node_.IsDefined() && !node_.IsNull(); }
  bool is_map() const { return node_.IsDefined() && node_.IsMap(); }
  bool is_sequence() const { return node_.IsDefined() && node_.IsSequence(); }
  bool is_scalar() const { return node_.IsDefined() && node_.IsScalar(); }
  std::string scalar() const { return node_.Scalar(); }

  Node child(const std::string& key) const;
  Node at(std::size_t index) const;
  std::size_t size() const { return node_.size(); }

  [[noreturn]] void fail(const std::string& message) const;
  // file:line:col (path) for messages that refer to this node.
  std::string location() const;

  // Typed conversions with clear errors.
  std::int64_t as_int(std::int64_t min, std::int64_t max) const;
  std::uint64_t as_u64() const;
  double as_double() const;
  bool as_bool() const;
  std::string as_string() const;
  fabric::Time as_time() const;
  Bytes as_bytes() const;

 private:
  YAML::Node node_;
  std::string file_;
  std::string path_;
};

// Reads one mapping section field by field; finish() rejects unknown keys.
class Section {
 public:
  Section(const Node& node, std::string doc_section, DocSink* docs);

  const Node& node() const { return node_; }
  bool has(const std::string& key) const;
  Node child(const std::string& key) const { return node_.child(key); }

  // Optional fields keep the value already in *out as their default.
  Section& field(const std::string& key, int* out, int min, int max, const std::string& doc);
  Section& field(const std::string& key, unsigned* out, unsigned min, unsigned max,
                 const std::string& doc);
  Section& field(const std::string& key, std::uint16_t* out, const std::string& doc);
  Section& field(const std::string& key, std::uint64_t* out, const std::string& doc);
  Section& field(const std::string& key, std::uint64_t* out, std::uint64_t min, std::uint64_t max,
                 const std::string& doc);
  Section& field(const std::string& key, double* out, double min, double max,
                 const std::string& doc);
  Section& field(const std::string& key, bool* out, const std::string& doc);
  Section& field(const std::string& key, std::string* out, const std::string& doc);
  // An instance, workload or VM name: letters, digits and '_' (1-64).
  Section& name(const std::string& key, std::string* out, const std::string& doc);
  Section& time(const std::string& key, fabric::Time* out, const std::string& doc,
                fabric::Time min = 0, fabric::Time max = fabric::kTimeMax);
  Section& bytes(const std::string& key, std::uint64_t* out, const std::string& doc,
                 std::uint64_t min = 0, std::uint64_t max = ~std::uint64_t{0});
  Section& bytes(const std::string& key, std::uint32_t* out, const std::string& doc,
                 std::uint32_t min = 0, std::uint32_t max = 0xffffffffu);
  Section& power_of_two(const std::string& key, std::uint32_t* out, std::uint32_t min,
                        std::uint32_t max, const std::string& doc);
  template <class E>
  Section& choice(const std::string& key, E* out,
                  const std::vector<std::pair<std::string, E>>& opts, const std::string& doc);
  // A key that is read by the caller (nested section or list); documented here.
  Section& nested(const std::string& key, const std::string& type, const std::string& doc);
  Section& required(const std::string& key);

  void finish() const;

 private:
  bool begin(const std::string& key, const std::string& type, const std::string& def,
             const std::string& doc);
  Node node_;
  std::string doc_section_;
  DocSink* docs_;
  std::set<std::string> known_;
  std::set<std::string> required_;
};

template <class E>
Section& Section::choice(const std::string& key, E* out,
                         const std::vector<std::pair<std::string, E>>& opts,
                         const std::string& doc) {
  std::string names, def;
  for (const auto& [n, v] : opts) {
    names += (names.empty() ? "" : " | ") + n;
    if (v == *out) def = n;
  }
  if (!begin(key, names, def, doc)) return *this;
  Node n = node_.child(key);
  std::string s = n.as_string();
  for (const auto& [name, v] : opts)
    if (name == s) {
      *out = v;
      return *this;
    }
  n.fail("expected one of " + names + ", got '" + s + "'");
}

std::string format_bytes(std::uint64_t v);
std::string format_hex(std::uint64_t v);

}  // namespace pciesim::sim

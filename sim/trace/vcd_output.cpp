// Value Change Dump (IEEE 1364-2005 clause 18) for GTKWave: per link
// direction a `busy` wire (a TLP on the wire) and the sampled counters
// (credits, outstanding tags, utilisation, function state) as reals,
// over simulated time in picoseconds. Signals appear as the run meets
// them, so the body goes to an anonymous temporary file and the header
// (which must declare every signal first) is written in front of it at
// the end.
#include <cstdio>
#include <map>
#include <vector>

#include "sim/trace/file_output.h"

namespace pciesim::sim::trace {

namespace {

class VcdOutput : public FileOutput {
 public:
  VcdOutput(const std::string& path, TraceFilter f)
      : FileOutput(path, "VCD", f.max_bytes, std::ios::out | std::ios::binary),
        from_(f.from),
        to_(f.to),
        body_(std::tmpfile()) {
    if (!body_)
      throw pciesim::UsageError(
          "trace", std::string("cannot create the VCD's temporary file: ") + std::strerror(errno));
  }
  ~VcdOutput() override {
    if (body_) std::fclose(body_);
  }
  VcdOutput(const VcdOutput&) = delete;
  VcdOutput& operator=(const VcdOutput&) = delete;

  void tlp(const TlpTraceRecord& r) override {
    const int s = signal(*r.link, std::string(r.direction) + ".busy", true);
    changes_.push(r.wire_start, {s, 1, 0});
    changes_.push(r.wire_end, {s, -1, 0});
  }
  void counter(const CounterRecord& c) override {
    const int s = signal(c.component, c.name, false);
    changes_.push(c.at, {s, 0, c.value});
  }
  void advance(Time horizon) override { pump(horizon); }
  std::uint64_t late() const override { return changes_.late(); }

  std::string finish(Time end, bool interrupted) override {
    pump(fabric::kTimeMax);
    changes_.drain([](const Change&) {});  // keys of kTimeMax: past the end
    flush();
    write_header(interrupted);
    // The body, then the end time.
    std::rewind(body_);
    char buf[1 << 16];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, body_)) > 0)
      put_always(buf, n);
    if (std::ferror(body_)) fail("reading the VCD's temporary file failed");
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "#%llu\n",
                  static_cast<unsigned long long>(std::min(end, to_) / 1000));
    put_always(stamp);
    return close();
  }

 private:
  struct Change {
    int signal;
    int delta;  // busy wires: +1 / -1
    double value;
  };
  struct Signal {
    std::vector<std::string> scope;  // component, then sub-scopes
    std::string name, id;
    bool wire;
    int count = 0;
    double last = -1;  // never written
    double pending = 0;
    bool dirty = false;
    bool seen = false;
    double first = 0;  // the first value (reals), for $dumpvars
  };

  // `name` may have scopes of its own ("down.busy": scope down, wire busy).
  int signal(const std::string& component, const std::string& name, bool wire) {
    const std::string key = component + "\n" + name;
    auto [it, fresh] = index_.try_emplace(key, static_cast<int>(signals_.size()));
    if (fresh) {
      Signal s;
      s.scope = {component};
      std::string rest = name;
      for (std::size_t dot; (dot = rest.find('.')) != std::string::npos && dot + 1 < rest.size();) {
        // credits.P.hdr stays one name below its direction
        if (s.scope.size() >= 2) break;
        s.scope.push_back(rest.substr(0, dot));
        rest = rest.substr(dot + 1);
      }
      s.name = rest;
      s.wire = wire;
      // Identifier codes: printable ASCII 33..126, base 94.
      for (int n = it->second;; n /= 94) {
        s.id += static_cast<char>(33 + n % 94);
        if (n < 94) break;
      }
      signals_.push_back(s);
    }
    return it->second;
  }

  void pump(Time horizon) {
    changes_.release(horizon, [this](const Change& c) {
      const Time t = changes_.current();
      if (t != at_) flush();
      at_ = t;
      Signal& s = signals_[static_cast<std::size_t>(c.signal)];
      if (s.wire) {
        s.count += c.delta;
        s.pending = s.count > 0 ? 1 : 0;
      } else {
        s.pending = c.value;
      }
      if (!s.seen) {
        s.seen = true;
        s.first = s.pending;
      }
      if (!s.dirty) {
        s.dirty = true;
        dirty_.push_back(c.signal);
      }
    });
  }

  // Writes the signals whose value changed at time at_.
  void flush() {
    std::string out;
    for (int i : dirty_) {
      Signal& s = signals_[static_cast<std::size_t>(i)];
      s.dirty = false;
      if (s.pending == s.last) continue;
      s.last = s.pending;
      char b[64];
      if (s.wire)
        std::snprintf(b, sizeof b, "%d%s\n", s.pending > 0 ? 1 : 0, s.id.c_str());
      else
        std::snprintf(b, sizeof b, "r%.9g %s\n", s.pending, s.id.c_str());
      out += b;
    }
    dirty_.clear();
    if (out.empty()) return;
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "#%llu\n", static_cast<unsigned long long>(at_ / 1000));
    const std::string chunk = stamp + out;
    if (!reserve(chunk.size(), at_)) return;
    if (std::fwrite(chunk.data(), 1, chunk.size(), body_) != chunk.size())
      fail(std::string("writing the VCD's temporary file failed: ") + std::strerror(errno));
  }

  void write_header(bool interrupted) {
    std::string h = "$date simulated $end\n$version pciesim";
    h += interrupted ? " (interrupted)" : "";
    h += " $end\n$timescale 1ps $end\n";
    // Scopes by component and sub-scope; signals under them.
    std::map<std::vector<std::string>, std::vector<const Signal*>> scopes;
    for (const Signal& s : signals_)
      scopes[s.scope].push_back(&s);
    std::vector<std::string> open;
    for (const auto& [scope, sigs] : scopes) {
      std::size_t common = 0;
      while (common < open.size() && common < scope.size() && open[common] == scope[common])
        ++common;
      for (std::size_t k = open.size(); k > common; --k)
        h += "$upscope $end\n";
      open.resize(common);
      for (std::size_t k = common; k < scope.size(); ++k) {
        h += "$scope module " + vcd_name(scope[k]) + " $end\n";
        open.push_back(scope[k]);
      }
      for (const Signal* s : sigs)
        h += std::string("$var ") + (s->wire ? "wire 1 " : "real 64 ") + s->id + " " +
             vcd_name(s->name) + " $end\n";
    }
    for (std::size_t k = open.size(); k > 0; --k)
      h += "$upscope $end\n";
    h += "$enddefinitions $end\n";
    // Every signal has a value from the start: wires idle, reals their
    // first sample.
    h += "#" + std::to_string(from_ / 1000) + "\n$dumpvars\n";
    for (const Signal& s : signals_) {
      char b[64];
      if (s.wire)
        std::snprintf(b, sizeof b, "0%s\n", s.id.c_str());
      else
        std::snprintf(b, sizeof b, "r%.9g %s\n", s.first, s.id.c_str());
      h += b;
    }
    h += "$end\n";
    put_always(h);
  }

  static std::string vcd_name(const std::string& s) {
    std::string o;
    for (char c : s)
      o += (c == ' ' || c == '\t' || c == '.') ? '_' : c;
    return o;
  }

  Time from_, to_;
  std::FILE* body_;
  Reorder<Change> changes_;
  std::map<std::string, int> index_;
  std::vector<Signal> signals_;
  std::vector<int> dirty_;
  Time at_ = 0;
};

}  // namespace

std::unique_ptr<TraceOutput> make_vcd_output(const std::string& path, TraceFilter filter) {
  return std::make_unique<VcdOutput>(path, std::move(filter));
}

}  // namespace pciesim::sim::trace

// The JSON-lines TLP trace: one object per TLP hop (requests and their
// completions) and one per request's end, in time order ("t_ns").
#include <cstdio>
#include <variant>

#include "sim/trace/file_output.h"

namespace pciesim::sim::trace {

using fabric::to_ns;
using fabric::to_string;

namespace {

class JsonlOutput : public FileOutput {
 public:
  JsonlOutput(const std::string& path, TraceFilter f) : FileOutput(path, "trace", f.max_bytes) {}
  void tlp(const TlpTraceRecord& r) override { buf_.push(r.start, r); }
  void request_end(const RequestEndRecord& r) override { buf_.push(r.at, r); }
  void advance(Time horizon) override {
    buf_.release(horizon, [this](const Rec& r) { write(r); });
  }
  std::string finish(Time end, bool interrupted) override {
    buf_.drain([this](const Rec& r) { write(r); });
    // Markers a reader can tell a cut-short trace by.
    for (const char* what :
         {capped() ? "truncated" : nullptr, interrupted ? "interrupted" : nullptr}) {
      if (!what) continue;
      char b[160];
      std::snprintf(b, sizeof b, "{\"t_ns\":%.3f,\"kind\":\"%s\"}\n", to_ns(end), what);
      put_always(b);
    }
    return close();
  }
  std::uint64_t late() const override { return buf_.late(); }

 private:
  using Rec = std::variant<TlpTraceRecord, RequestEndRecord>;
  void write(const Rec& rec) {
    char buf[640];
    int n;
    Time t;
    if (const auto* r = std::get_if<TlpTraceRecord>(&rec)) {
      t = r->start;
      const bool cpl =
          r->request != 0 || r->kind == fabric::TlpKind::Cpl || r->kind == fabric::TlpKind::CplD;
      char extra[96] = "";
      if (cpl)
        std::snprintf(extra, sizeof extra, ",\"request\":%llu,\"completer\":\"%s\"",
                      static_cast<unsigned long long>(r->request), r->completer.str().c_str());
      n = std::snprintf(
          buf, sizeof buf,
          "{\"t_ns\":%.3f,\"wire_ns\":%.3f,\"wire_end_ns\":%.3f,\"arrive_ns\":%.3f,\"done_ns\":%."
          "3f,\"link\":\"%s\",\"dir\":\"%s\",\"kind\":\"%s\",\"id\":%llu%s,\"requester\":\"%s\","
          "\"tag\":%u,\"address\":\"0x%llx\",\"length\":%u,\"status\":\"%s\",\"p2p\":\"%s\"}\n",
          to_ns(r->start), to_ns(r->wire_start), to_ns(r->wire_end), to_ns(r->arrival),
          to_ns(r->done), r->link->c_str(), r->direction, to_string(r->kind),
          static_cast<unsigned long long>(r->id), extra, r->requester.str().c_str(), r->tag,
          static_cast<unsigned long long>(r->address), r->length, to_string(r->status),
          to_string(r->p2p));
    } else {
      const auto& e = std::get<RequestEndRecord>(rec);
      t = e.at;
      n = std::snprintf(
          buf, sizeof buf,
          "{\"t_ns\":%.3f,\"arrive_ns\":%.3f,\"done_ns\":%.3f,\"link\":\"\",\"dir\":\"end\","
          "\"kind\":\"end\",\"request\":\"%s\",\"id\":%llu,\"tlp\":%llu,\"issued_ns\":%.3f,"
          "\"requester\":\"%s\",\"tag\":%u,\"address\":\"0x%llx\",\"length\":0,\"status\":\"%"
          "s\",\"p2p\":\"none\"}\n",
          to_ns(e.at), to_ns(e.at), to_ns(e.at), to_string(e.kind),
          static_cast<unsigned long long>(e.id), static_cast<unsigned long long>(e.tlp),
          to_ns(e.issued), e.requester.str().c_str(), e.tag,
          static_cast<unsigned long long>(e.address), to_string(e.status));
    }
    if (n > 0) put(buf, static_cast<std::size_t>(std::min<int>(n, sizeof buf - 1)), t);
  }
  Reorder<Rec> buf_;
};

}  // namespace

std::unique_ptr<TraceOutput> make_jsonl_output(const std::string& path, TraceFilter filter) {
  return std::make_unique<JsonlOutput>(path, std::move(filter));
}

}  // namespace pciesim::sim::trace

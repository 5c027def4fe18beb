// Perfetto's native trace format: a Trace message, i.e. a sequence of
// TracePacket messages (field 1), each a TrackDescriptor or a TrackEvent
// (docs: perfetto.dev "Writing TrackEvent Protos Synthetically"). Written
// with our own encoder (proto_writer.h); read back by pciesim.perfetto.
//
// Layout: one process-like group per component (a link, a function, the
// host, the IOMMU); under it one track per activity ("down"/"up" for a
// link, "descriptors", "reads", "interrupts", "scenario", ...). Slices that
// overlap on one activity (outstanding reads, a request that passed queued
// completions) go to extra lanes "<activity> #2", so every track nests.
// Packets are written in timestamp order; at equal times ends come first.
#include <cmath>
#include <map>
#include <variant>

#include "sim/trace/file_output.h"
#include "sim/trace/proto_writer.h"

namespace pciesim::sim::trace {

using fabric::EventPhase;
using fabric::TlpKind;

namespace {

// Field numbers (protos/perfetto/trace/...).
namespace f {
constexpr std::uint32_t kTracePacket = 1;
// TracePacket
constexpr std::uint32_t kTimestamp = 8;
constexpr std::uint32_t kSequenceId = 10;
constexpr std::uint32_t kTrackEvent = 11;
constexpr std::uint32_t kInternedData = 12;
constexpr std::uint32_t kSequenceFlags = 13;
constexpr std::uint32_t kTrackDescriptor = 60;
// TrackDescriptor
constexpr std::uint32_t kUuid = 1;
constexpr std::uint32_t kName = 2;
constexpr std::uint32_t kProcess = 3;
constexpr std::uint32_t kParentUuid = 5;
constexpr std::uint32_t kCounter = 8;
// ProcessDescriptor
constexpr std::uint32_t kPid = 1;
constexpr std::uint32_t kProcessName = 6;
// CounterDescriptor
constexpr std::uint32_t kUnitName = 6;
// TrackEvent
constexpr std::uint32_t kDebugAnnotations = 4;
constexpr std::uint32_t kType = 9;
constexpr std::uint32_t kNameIid = 10;
constexpr std::uint32_t kTrackUuid = 11;
constexpr std::uint32_t kCategories = 22;
constexpr std::uint32_t kDoubleCounterValue = 44;
constexpr std::uint32_t kFlowIds = 47;
// DebugAnnotation
constexpr std::uint32_t kAnnNameIid = 1;
constexpr std::uint32_t kAnnUint = 3;
constexpr std::uint32_t kAnnString = 6;
// InternedData
constexpr std::uint32_t kEventNames = 2;
constexpr std::uint32_t kAnnotationNames = 3;
// EventName / DebugAnnotationName
constexpr std::uint32_t kIid = 1;
constexpr std::uint32_t kInternedName = 2;
}  // namespace f

// TrackEvent.Type
constexpr std::uint64_t kSliceBegin = 1, kSliceEnd = 2, kInstant = 3, kCounterEvent = 4;
// TracePacket.SequenceFlags
constexpr std::uint64_t kStateCleared = 1, kNeedsState = 2;
constexpr std::uint64_t kSequence = 1;

class PerfettoOutput : public FileOutput {
 public:
  PerfettoOutput(const std::string& path, TraceFilter filter, PerfettoOptions o)
      : FileOutput(path, "Perfetto trace", filter.max_bytes, std::ios::out | std::ios::binary) {
    if (o.time_unit == "ns")
      divisor_ = 1000000;
    else if (o.time_unit == "ps")
      divisor_ = 1000;
    else
      throw pciesim::UsageError("trace",
                                "Perfetto time unit '" + o.time_unit + "' is not ns or ps");
  }

  void tlp(const TlpTraceRecord& r) override { main_.push(r.wire_start, Rec{r}); }
  void event(const EventRecord& e) override { main_.push(e.at, Rec{e}); }
  void counter(const CounterRecord& c) override { main_.push(c.at, Rec{c}); }
  void advance(Time horizon) override { pump(horizon); }
  std::uint64_t late() const override { return main_.late(); }

  std::string finish(Time end, bool interrupted) override {
    pump(fabric::kTimeMax);
    // Anything left has key kTimeMax (never in practice): in order.
    main_.drain([this](const Rec& r) { write(r); });
    ends_.drain([this](const std::pair<std::uint64_t, Time>& e) { write_end(e.first, e.second); });
    // Slices still open (a step cut short) end where the trace ends.
    for (auto& [key, t] : tracks_)
      for (std::size_t k = 0; k < t.lanes.size(); ++k)
        if (t.lanes[k].busy_until == fabric::kTimeMax) write_end(lane_uuid(t, k), end);
    finishing_ = true;
    for (const char* what : {capped() ? "trace truncated (size cap)" : nullptr,
                             interrupted ? "interrupted" : nullptr}) {
      if (!what) continue;
      const std::uint64_t uuid = track_uuid("pciesim", "run", 0);
      ProtoWriter ev;
      ev.varint(f::kType, kInstant);
      ev.varint(f::kTrackUuid, uuid);
      name(ev, what);
      packet(end, ev, true);
    }
    return close();
  }

 private:
  struct Lane {
    Time busy_until = 0;  // kTimeMax while a begin/end slice is open
    std::uint64_t uuid = 0;
  };
  struct Track {
    std::string component, name;
    std::uint64_t group = 0;
    std::vector<Lane> lanes;
  };
  using Rec = std::variant<TlpTraceRecord, EventRecord, CounterRecord>;
  struct End {
    std::uint64_t uuid;
  };

  std::uint64_t ts(Time t) const { return t / divisor_; }

  // Writes what is due up to `horizon`: ends and begins merged in time
  // order, ends first at equal times.
  void pump(Time horizon) {
    // Main records one at a time, and before each the ends due at or
    // before its time.
    main_.release(horizon, [this](const Rec& r) {
      const Time t = std::visit([](const auto& x) { return key_of(x); }, r);
      ends_.release(
          t + 1, [this](const std::pair<std::uint64_t, Time>& e) { write_end(e.first, e.second); });
      write(r);
    });
    ends_.release(
        horizon, [this](const std::pair<std::uint64_t, Time>& e) { write_end(e.first, e.second); });
  }
  static Time key_of(const TlpTraceRecord& r) { return r.wire_start; }
  static Time key_of(const EventRecord& e) { return e.at; }
  static Time key_of(const CounterRecord& c) { return c.at; }

  void write(const Rec& r) {
    if (const auto* t = std::get_if<TlpTraceRecord>(&r))
      write_tlp(*t);
    else if (const auto* e = std::get_if<EventRecord>(&r))
      write_event(*e);
    else
      write_counter(std::get<CounterRecord>(r));
  }

  void write_tlp(const TlpTraceRecord& r) {
    Track& t = track(*r.link, r.direction);
    const std::size_t lane = place(t, r.wire_start, r.wire_end);
    const std::uint64_t uuid = lane_uuid(t, lane);
    ProtoWriter ev;
    ev.varint(f::kType, kSliceBegin);
    ev.varint(f::kTrackUuid, uuid);
    name(ev, fabric::to_string(r.kind));
    ev.bytes(f::kCategories, "tlp");
    annotate(ev, "id", r.id);
    if (r.request) annotate(ev, "request", r.request);
    annotate(ev, "requester", r.requester.str());
    if (r.request) annotate(ev, "completer", r.completer.str());
    annotate(ev, "tag", r.tag);
    annotate(ev, "address", hex(r.address));
    annotate(ev, "length", r.length);
    annotate(ev, "status", fabric::to_string(r.status));
    if (r.p2p != fabric::P2pPath::kNone) annotate(ev, "p2p", fabric::to_string(r.p2p));
    const std::uint64_t flow = r.request ? r.request : r.id;
    if (flow) ev.fixed64(f::kFlowIds, flow);
    if (!packet(r.wire_start, ev, false)) {
      t.lanes[lane].busy_until = 0;  // not written: nothing to end
      return;
    }
    ends_.push(r.wire_end, {uuid, r.wire_end});
  }

  void write_event(const EventRecord& e) {
    Track& t = track(e.component, e.track);
    if (e.phase == EventPhase::kEnd) {
      // The latest open slice of this activity, or the open one of the
      // same name.
      for (std::size_t k = t.lanes.size(); k-- > 0;) {
        Lane& l = t.lanes[k];
        if (l.busy_until != fabric::kTimeMax) continue;
        auto it = open_.find(l.uuid);
        if (it == open_.end() || (!e.name.empty() && it->second != e.name)) continue;
        l.busy_until = e.at;
        open_.erase(it);
        write_end(l.uuid, e.at);
        return;
      }
      return;  // its begin was filtered out or dropped by the cap
    }
    const bool instant = e.phase == EventPhase::kInstant;
    const Time end = e.phase == EventPhase::kComplete ? e.end : fabric::kTimeMax;
    const std::size_t lane = instant ? 0 : place(t, e.at, end);
    const std::uint64_t uuid = instant ? lane_uuid(t, 0) : lane_uuid(t, lane);
    ProtoWriter ev;
    ev.varint(f::kType, instant ? kInstant : kSliceBegin);
    ev.varint(f::kTrackUuid, uuid);
    name(ev, e.name);
    ev.bytes(f::kCategories, e.track);
    if (!e.args.empty()) annotate(ev, "args", e.args);
    if (e.flow) ev.fixed64(f::kFlowIds, e.flow);
    const bool written = packet(e.at, ev, false);
    if (instant) return;
    if (!written) {
      t.lanes[lane].busy_until = 0;
      return;
    }
    if (e.phase == EventPhase::kComplete)
      ends_.push(e.end, {uuid, e.end});
    else
      open_[uuid] = e.name;  // kBegin: its kEnd carries the same name
  }

  void write_counter(const CounterRecord& c) {
    auto [it, fresh] = counters_.try_emplace(c.component + "\n" + c.name, Counter{});
    if (!fresh && it->second.last == c.value) return;  // a keyframe's repeat
    it->second.last = c.value;
    if (fresh) {
      it->second.uuid = next_uuid_++;
      ProtoWriter cd, td;
      cd.bytes(f::kUnitName, c.unit);
      td.varint(f::kUuid, it->second.uuid);
      td.varint(f::kParentUuid, group(c.component));
      td.bytes(f::kName, c.name);
      td.message(f::kCounter, cd);
      descriptor(td);
    }
    ProtoWriter ev;
    ev.varint(f::kType, kCounterEvent);
    ev.varint(f::kTrackUuid, it->second.uuid);
    ev.real(f::kDoubleCounterValue, c.value);
    packet(c.at, ev, false);
  }

  // An end belongs to a begin already in the file: written past the cap.
  void write_end(std::uint64_t uuid, Time at) {
    ProtoWriter ev;
    ev.varint(f::kType, kSliceEnd);
    ev.varint(f::kTrackUuid, uuid);
    packet(at, ev, true);
  }

  // The first lane free at `begin` (a new one if none is); it is busy
  // until `end` (kTimeMax: until its end record).
  std::size_t place(Track& t, Time begin, Time end) {
    std::size_t k = 0;
    while (k < t.lanes.size() && t.lanes[k].busy_until > begin)
      ++k;
    if (k == t.lanes.size()) t.lanes.push_back({});
    lane_uuid(t, k);
    t.lanes[k].busy_until = end;
    return k;
  }

  std::uint64_t lane_uuid(Track& t, std::size_t k) {
    if (t.lanes.size() <= k) t.lanes.resize(k + 1);
    Lane& l = t.lanes[k];
    if (!l.uuid) {
      l.uuid = next_uuid_++;
      ProtoWriter td;
      td.varint(f::kUuid, l.uuid);
      td.varint(f::kParentUuid, t.group);
      td.bytes(f::kName, k == 0 ? t.name : t.name + " #" + std::to_string(k + 1));
      descriptor(td);
    }
    return l.uuid;
  }

  std::uint64_t track_uuid(const std::string& component, const std::string& name, std::size_t k) {
    return lane_uuid(track(component, name), k);
  }

  // "reads/tag 5": the track "tag 5" under a track "reads" of the group.
  Track& track(const std::string& component, const std::string& name) {
    auto [it, fresh] = tracks_.try_emplace(component + "\n" + name);
    if (fresh) {
      it->second.component = component;
      const std::size_t slash = name.rfind('/');
      if (slash == std::string::npos) {
        it->second.name = name;
        it->second.group = group(component);
      } else {
        it->second.name = name.substr(slash + 1);
        it->second.group = lane_uuid(track(component, name.substr(0, slash)), 0);
      }
    }
    return it->second;
  }

  std::uint64_t group(const std::string& component) {
    auto [it, fresh] = groups_.try_emplace(component, 0);
    if (fresh) {
      it->second = next_uuid_++;
      ProtoWriter pd, td;
      pd.varint(f::kPid, groups_.size());
      pd.bytes(f::kProcessName, component);
      td.varint(f::kUuid, it->second);
      td.message(f::kProcess, pd);
      descriptor(td);
    }
    return it->second;
  }

  void descriptor(const ProtoWriter& td) {
    // Past the cap nothing new is written, so no new track is needed
    // (except the one of the closing instant).
    if (capped() && !finishing_) return;
    ProtoWriter p;
    p.varint(f::kSequenceId, kSequence);
    p.message(f::kTrackDescriptor, td);
    frame(p, true);
  }

  void name(ProtoWriter& ev, const std::string& n) {
    ev.varint(f::kNameIid, intern(names_, n, pending_names_));
  }
  void annotate(ProtoWriter& ev, const char* key, std::uint64_t v) {
    ProtoWriter a;
    a.varint(f::kAnnNameIid, intern(ann_names_, key, pending_ann_));
    a.varint(f::kAnnUint, v);
    ev.message(f::kDebugAnnotations, a);
  }
  void annotate(ProtoWriter& ev, const char* key, const std::string& v) {
    ProtoWriter a;
    a.varint(f::kAnnNameIid, intern(ann_names_, key, pending_ann_));
    a.bytes(f::kAnnString, v);
    ev.message(f::kDebugAnnotations, a);
  }
  static std::uint64_t intern(std::map<std::string, std::uint64_t>& table, const std::string& s,
                              std::vector<std::pair<std::uint64_t, std::string>>& pending) {
    auto [it, fresh] = table.try_emplace(s, table.size() + 1);
    if (fresh) pending.emplace_back(it->second, s);
    return it->second;
  }

  // One TrackEvent packet at time `t`, with the interned strings it
  // introduced. False when the cap stopped it.
  bool packet(Time t, const ProtoWriter& ev, bool always) {
    ProtoWriter p;
    p.varint(f::kTimestamp, ts(t));
    p.varint(f::kSequenceId, kSequence);
    if (!pending_names_.empty() || !pending_ann_.empty()) {
      ProtoWriter in;
      for (const auto& [iid, s] : pending_names_) {
        ProtoWriter n;
        n.varint(f::kIid, iid);
        n.bytes(f::kInternedName, s);
        in.message(f::kEventNames, n);
      }
      for (const auto& [iid, s] : pending_ann_) {
        ProtoWriter n;
        n.varint(f::kIid, iid);
        n.bytes(f::kInternedName, s);
        in.message(f::kAnnotationNames, n);
      }
      p.message(f::kInternedData, in);
    }
    p.varint(f::kSequenceFlags, first_ ? kStateCleared | kNeedsState : kNeedsState);
    p.message(f::kTrackEvent, ev);
    const bool ok = frame(p, always, t);
    if (ok) {
      // The strings are in the file now; if not, they stay pending.
      pending_names_.clear();
      pending_ann_.clear();
      first_ = false;
    }
    return ok;
  }

  bool frame(const ProtoWriter& p, bool always, Time t = 0) {
    ProtoWriter outer;
    outer.message(f::kTracePacket, p);
    if (always) {
      put_always(outer.data());
      return error().empty();
    }
    return put(outer.data(), t);
  }

  static std::string hex(std::uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
  }

  Time divisor_ = 1000000;
  Reorder<Rec> main_;
  Reorder<std::pair<std::uint64_t, Time>> ends_;
  std::map<std::string, Track> tracks_;
  std::map<std::string, std::uint64_t> groups_;
  struct Counter {
    std::uint64_t uuid = 0;
    double last = 0;
  };
  std::map<std::string, Counter> counters_;
  std::map<std::uint64_t, std::string> open_;  // lane uuid -> open begin/end slice
  std::map<std::string, std::uint64_t> names_, ann_names_;
  std::vector<std::pair<std::uint64_t, std::string>> pending_names_, pending_ann_;
  std::uint64_t next_uuid_ = 1;
  bool first_ = true;
  bool finishing_ = false;
};

}  // namespace

std::unique_ptr<TraceOutput> make_perfetto_output(const std::string& path, TraceFilter filter,
                                                  PerfettoOptions options) {
  return std::make_unique<PerfettoOutput>(path, std::move(filter), std::move(options));
}

}  // namespace pciesim::sim::trace

"""Read a Perfetto trace that pciesim wrote (``--trace-perfetto``) back into
Python objects, without the Perfetto SDK: a small protocol-buffers decoder
for the TracePacket fields pciesim uses (TrackDescriptor, TrackEvent with
interned names, debug annotations, flows and counters).

    >>> t = pciesim.perfetto.load("q.pftrace")
    >>> [tr.name for tr in t.tracks.values() if tr.group == "sw0.dsp0--ep0"]
    >>> t.slices[0].name, t.slices[0].args["requester"]

Times are the trace's timestamps (ns, or ps with ``--trace-time-unit ps``).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional

__all__ = ["Track", "Slice", "Instant", "CounterValue", "Trace", "load", "decode", "TraceError"]


class TraceError(ValueError):
    """The file is not a Perfetto trace this reader understands."""


@dataclass
class Track:
    uuid: int
    name: str = ""
    parent: int = 0
    group: str = ""        # the process-like group (component) it belongs to
    is_group: bool = False
    counter_unit: Optional[str] = None  # set for counter tracks


@dataclass
class Slice:
    track: int
    name: str
    start: int
    end: int
    category: str = ""
    args: Dict[str, object] = field(default_factory=dict)
    flows: List[int] = field(default_factory=list)


@dataclass
class Instant:
    track: int
    name: str
    ts: int
    category: str = ""
    args: Dict[str, object] = field(default_factory=dict)
    flows: List[int] = field(default_factory=list)


@dataclass
class CounterValue:
    track: int
    ts: int
    value: float


@dataclass
class Trace:
    tracks: Dict[int, Track]
    slices: List[Slice]
    instants: List[Instant]
    counters: List[CounterValue]
    # Slices begun and never ended, or ends without a begin (0 in a valid file).
    unmatched: int = 0

    def track_named(self, group: str, name: str) -> Optional[Track]:
        for t in self.tracks.values():
            if t.group == group and t.name == name:
                return t
        return None

    def flows(self) -> Dict[int, List[object]]:
        """Flow id -> the slices and instants it links, in time order."""
        out: Dict[int, List[object]] = {}
        for ev in sorted(self.slices + self.instants,
                         key=lambda e: e.start if isinstance(e, Slice) else e.ts):
            for f in ev.flows:
                out.setdefault(f, []).append(ev)
        return out


def _varint(buf: bytes, i: int):
    shift = result = 0
    while True:
        if i >= len(buf):
            raise TraceError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise TraceError("varint too long")


def _fields(buf: bytes):
    """(field, wire type, value) of one message; value is int or bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            if i + 8 > len(buf):
                raise TraceError("truncated fixed64")
            v = buf[i:i + 8]
            i += 8
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise TraceError("truncated length-delimited field")
            v = buf[i:i + n]
            i += n
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise TraceError(f"unsupported wire type {wt} (field {num})")
        yield num, wt, v


def decode(data: bytes) -> List[dict]:
    """The packets of a trace as dicts (timestamp, track_descriptor,
    track_event, interned_data) with the fields pciesim writes."""
    packets = []
    for num, wt, v in _fields(data):
        if num != 1 or wt != 2:
            raise TraceError(f"not a Trace message (field {num})")
        p: dict = {}
        for n, w, x in _fields(v):
            if n == 8:
                p["timestamp"] = x
            elif n == 10:
                p["sequence"] = x
            elif n == 13:
                p["flags"] = x
            elif n == 60:
                p["track_descriptor"] = _descriptor(x)
            elif n == 11:
                p["track_event"] = _event(x)
            elif n == 12:
                p["interned_data"] = _interned(x)
        packets.append(p)
    return packets


def _descriptor(buf):
    d = {}
    for n, w, x in _fields(buf):
        if n == 1:
            d["uuid"] = x
        elif n == 2:
            d["name"] = x.decode()
        elif n == 5:
            d["parent_uuid"] = x
        elif n == 3:
            for pn, pw, px in _fields(x):
                if pn == 6:
                    d["process_name"] = px.decode()
                elif pn == 1:
                    d["pid"] = px
        elif n == 8:
            d["counter_unit"] = ""
            for cn, cw, cx in _fields(x):
                if cn == 6:
                    d["counter_unit"] = cx.decode()
    return d


def _event(buf):
    e = {"annotations": [], "flow_ids": [], "categories": []}
    for n, w, x in _fields(buf):
        if n == 9:
            e["type"] = x
        elif n == 11:
            e["track_uuid"] = x
        elif n == 10:
            e["name_iid"] = x
        elif n == 23:
            e["name"] = x.decode()
        elif n == 22:
            e["categories"].append(x.decode())
        elif n == 44:
            e["value"] = struct.unpack("<d", x)[0]
        elif n == 30:
            e["value"] = x
        elif n == 47:
            e["flow_ids"].append(struct.unpack("<Q", x)[0])
        elif n == 4:
            a = {}
            for an, aw, ax in _fields(x):
                if an == 1:
                    a["name_iid"] = ax
                elif an == 10:
                    a["name"] = ax.decode()
                elif an == 3 or an == 4:
                    a["value"] = ax
                elif an == 6:
                    a["value"] = ax.decode()
                elif an == 5:
                    a["value"] = struct.unpack("<d", ax)[0]
            e["annotations"].append(a)
    return e


def _interned(buf):
    d = {"event_names": {}, "annotation_names": {}}
    for n, w, x in _fields(buf):
        if n in (2, 3):
            iid, name = 0, ""
            for fn, fw, fx in _fields(x):
                if fn == 1:
                    iid = fx
                elif fn == 2:
                    name = fx.decode()
            d["event_names" if n == 2 else "annotation_names"][iid] = name
    return d


def load(path) -> Trace:
    """Reads a pciesim Perfetto trace: tracks, slices (begin/end paired per
    track, as Perfetto nests them), instants and counter values."""
    with open(path, "rb") as f:
        packets = decode(f.read())
    tracks: Dict[int, Track] = {}
    names: Dict[int, str] = {}
    ann: Dict[int, str] = {}
    stacks: Dict[int, List[Slice]] = {}
    slices, instants, counters = [], [], []
    unmatched = 0
    for p in packets:
        if "interned_data" in p:
            names.update(p["interned_data"]["event_names"])
            ann.update(p["interned_data"]["annotation_names"])
        if "track_descriptor" in p:
            d = p["track_descriptor"]
            t = Track(uuid=d["uuid"], name=d.get("name", d.get("process_name", "")),
                      parent=d.get("parent_uuid", 0), is_group="process_name" in d,
                      counter_unit=d.get("counter_unit"))
            tracks[t.uuid] = t
        if "track_event" not in p:
            continue
        e = p["track_event"]
        ts = p.get("timestamp", 0)
        uuid = e.get("track_uuid", 0)
        name = e.get("name") or names.get(e.get("name_iid", 0), "")
        args = {(a.get("name") or ann.get(a.get("name_iid", 0), "")): a.get("value")
                for a in e["annotations"]}
        cat = ",".join(e["categories"])
        typ = e.get("type", 0)
        if typ == 1:
            s = Slice(uuid, name, ts, ts, cat, args, e["flow_ids"])
            stacks.setdefault(uuid, []).append(s)
        elif typ == 2:
            st = stacks.get(uuid)
            if not st:
                unmatched += 1
                continue
            s = st.pop()
            s.end = ts
            slices.append(s)
        elif typ == 3:
            instants.append(Instant(uuid, name, ts, cat, args, e["flow_ids"]))
        elif typ == 4:
            counters.append(CounterValue(uuid, ts, e.get("value", 0.0)))
    unmatched += sum(len(v) for v in stacks.values())
    for t in tracks.values():
        g = t
        while g.parent and g.parent in tracks and not g.is_group:
            g = tracks[g.parent]
        t.group = g.name if g.is_group else ""
    slices.sort(key=lambda s: (s.start, s.track))
    return Trace(tracks, slices, instants, counters, unmatched)

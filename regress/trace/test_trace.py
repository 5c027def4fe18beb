"""Traces and what people look at (docs/observability.md): the JSONL trace's
order and ids, the Perfetto file read back by our decoder, the VCD file, the
stats' time series and plots, Ctrl-C. Each test asserts what a reader of the
file would rely on."""
import collections
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
from pciesim import perfetto  # noqa: E402  (pure Python, no native module)

QUICK = ROOT / "configs" / "quickstart.yaml"


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """The quickstart traced to JSONL, Perfetto (ps timestamps) and VCD at once."""
    d = tmp_path_factory.mktemp("q")
    from conftest import Cli  # regress/conftest.py
    cli = Cli(d)
    cli("run", QUICK, "--trace", d / "q.jsonl", "--trace-perfetto", d / "q.pftrace",
        "--trace-time-unit", "ps", "--vcd", d / "q.vcd", "--stats", d / "s.json", "-q", check=0)
    return d


def test_jsonl_records_are_in_time_order(traced):
    recs = jsonl(traced / "q.jsonl")
    ts = [r["t_ns"] for r in recs]
    assert len(ts) > 10000
    assert all(a <= b for a, b in zip(ts, ts[1:])), "records out of time order"


def test_a_tlp_keeps_its_id_on_every_hop_and_completions_name_their_request(traced):
    recs = [r for r in jsonl(traced / "q.jsonl") if r["kind"] != "end"]
    by_id = collections.defaultdict(list)
    for r in recs:
        by_id[r["id"]].append(r)
    requests = {i: hops for i, hops in by_id.items() if "request" not in hops[0]}
    # A device's read crosses its link and the switch's uplink: one id on both.
    reads = [h for h in requests.values() if h[0]["kind"] == "MRd" and h[0]["requester"] != "00:00.0"]
    assert reads and all(len({(x["link"], x["dir"]) for x in h}) == 2 for h in reads)
    for hops in requests.values():
        assert len({(x["requester"], x["address"], x["tag"], x["kind"][:3]) for x in hops}) == 1
        # hop by hop the TLP moves forward in time
        assert [x["t_ns"] for x in hops] == sorted(x["t_ns"] for x in hops)
    # Every completion names a request that is in the trace, comes back on the
    # hops the request took, in the reverse direction, with the request's tag.
    cpl_bytes = collections.Counter()
    for r in recs:
        if "request" not in r:
            continue
        req = requests[r["request"]]
        hop = [h for h in req if h["link"] == r["link"]]
        assert hop and hop[0]["dir"] != r["dir"] and hop[0]["tag"] == r["tag"]
        assert r["t_ns"] >= hop[0]["t_ns"]
        cpl_bytes[(r["request"], r["link"])] += r["length"]
    # A read's completions carry exactly the bytes it asked for, on every hop.
    for i, hops in reads and [(i, h) for i, h in requests.items() if h[0]["kind"] == "MRd"]:
        for h in hops:
            if h["status"] == "SC":
                assert cpl_bytes[(i, h["link"])] == h["length"], (i, h)
    # A request's end record points at the request TLP.
    ends = [r for r in jsonl(traced / "q.jsonl") if r["kind"] == "end" and r["tlp"]]
    assert ends and all(e["tlp"] in requests for e in ends)


def test_perfetto_reads_back_as_the_same_tlps(traced):
    t = perfetto.load(traced / "q.pftrace")
    assert t.unmatched == 0
    hops = [r for r in jsonl(traced / "q.jsonl") if r["kind"] != "end"]
    slices = {}
    for s in t.slices:
        tr = t.tracks[s.track]
        if "tlp" in s.category:
            d = tr.name.split(" #")[0]
            slices[(s.args["id"], tr.group, d)] = s
    assert len(slices) == len(hops)
    for r in hops:
        s = slices[(r["id"], r["link"], r["dir"])]
        # ps timestamps (floored) against the JSONL's ns with 3 decimals (rounded)
        assert abs(s.start - r["wire_ns"] * 1000) < 1.01 and abs(s.end - r["wire_end_ns"] * 1000) < 1.01
        assert s.name == r["kind"] and s.args["requester"] == r["requester"]
        assert s.args["length"] == r["length"] and s.args["status"] == r["status"]
        assert int(s.args["address"], 16) == int(r["address"], 16)


def test_perfetto_has_a_track_per_link_direction_and_function_flows_and_counters(traced):
    t = perfetto.load(traced / "q.pftrace")
    groups = collections.defaultdict(set)
    for tr in t.tracks.values():
        groups[tr.group].add(tr.name.split(" #")[0])
    for link in ("rc.rp0--sw0.usp", "sw0.dsp0--ep0", "sw0.dsp1--ep1"):
        assert {"down", "up", "down.utilisation", "up.utilisation"} <= groups[link], groups[link]
    for fn in ("ep0.pf", "ep1.pf"):
        assert {"descriptors", "operations", "reads", "interrupts", "driver",
                "outstanding_tags"} <= groups[fn]
    # A device read: its slice on the function's tag track, then its hops, then
    # the completions back, linked by one flow.
    flows = t.flows()
    chain = next(c for c in flows.values()
                 if any(e.category.startswith("reads/tag") for e in c) and len(c) >= 4)
    kinds = [e.name for e in chain if not e.category.startswith("reads")]
    assert kinds[:2] == ["MRd", "MRd"] and set(kinds[2:]) == {"CplD"}
    read = next(e for e in chain if e.category.startswith("reads"))
    assert all(read.start <= e.start and e.end <= read.end for e in chain)
    # Counters: link utilisation stays a fraction and is non-zero somewhere.
    util = [c.value for c in t.counters if t.tracks[c.track].name.endswith("utilisation")]
    assert util and max(util) > 0.2 and all(0 <= u <= 1 for u in util)


def test_perfetto_slices_nest_on_every_track(traced):
    t = perfetto.load(traced / "q.pftrace")
    by_track = collections.defaultdict(list)
    for s in t.slices:
        by_track[s.track].append(s)
    for track, ss in by_track.items():
        ss.sort(key=lambda s: (s.start, -s.end))
        stack = []
        for s in ss:
            while stack and stack[-1].end <= s.start:
                stack.pop()
            assert not stack or s.end <= stack[-1].end, (
                f"slices overlap without nesting on {t.tracks[track].group}/"
                f"{t.tracks[track].name}: {stack[-1]} and {s}")
            stack.append(s)


def parse_vcd(path):
    """Declared signals and the value changes, checked as a VCD reader would."""
    text = path.read_text()
    head, body = text.split("$enddefinitions $end\n")
    assert "$timescale 1ps $end" in head
    ids, scopes, depth = {}, [], 0
    for line in head.splitlines():
        w = line.split()
        if w[:2] == ["$scope", "module"]:
            scopes.append(w[2])
        elif w[:1] == ["$upscope"]:
            scopes.pop()
        elif w[:1] == ["$var"]:
            ids[w[3]] = (".".join(scopes), w[4], w[1])
    assert not scopes
    changes, t, last = [], -1, -1
    for line in body.splitlines():
        if line in ("$dumpvars", "$end"):
            continue
        if line.startswith("#"):
            t = int(line[1:])
            assert t >= last
            last = t
        elif line.startswith("r"):
            v, i = line[1:].split()
            assert ids[i][2] == "real"
            changes.append((t, ids[i], float(v)))
        else:
            assert line[0] in "01" and ids[line[1:]][2] == "wire", line
            changes.append((t, ids[line[1:]], int(line[0])))
    return ids, changes


def test_vcd_parses_with_link_busy_and_counters(traced):
    ids, changes = parse_vcd(traced / "q.vcd")
    names = {(s, n) for s, n, _ in ids.values()}
    assert ("sw0_dsp0--ep0.up", "busy") in names and ("ep0_pf", "outstanding_tags") in names
    # $dumpvars gives every signal a value at the start
    first = {sig for t, sig, _ in changes if t == 0}
    assert first == set(ids.values())
    busy = [v for _, sig, v in changes if sig[1] == "busy"]
    assert busy.count(1) > 10 and busy.count(0) > 10
    tags = [v for _, sig, v in changes if sig[1] == "outstanding_tags"]
    assert max(tags) > 0 and min(tags) == 0


def test_filters_keep_only_what_was_asked(cli):
    cli("run", QUICK, "--trace", cli.tmp / "t.jsonl", "--trace-perfetto", cli.tmp / "t.pftrace",
        "--trace-kinds", "MRd,CplD", "--trace-components", "sw0.dsp1--*",
        "--trace-from", "420us", "--trace-to", "440us", "-q", check=0)
    recs = jsonl(cli.tmp / "t.jsonl")
    assert recs and {r["kind"] for r in recs} <= {"MRd", "CplD", "end"}
    hops = [r for r in recs if r["kind"] != "end"]
    assert {r["link"] for r in hops} == {"sw0.dsp1--ep1"}
    assert all(420000 <= r["t_ns"] < 440000 for r in recs)
    t = perfetto.load(cli.tmp / "t.pftrace")
    tl = [s for s in t.slices if "tlp" in s.category]
    assert tl and {t.tracks[s.track].group for s in tl} == {"sw0.dsp1--ep1"}
    assert {s.name for s in tl} <= {"MRd", "CplD"}


def test_a_size_cap_keeps_the_file_valid_and_says_so(cli):
    p = cli("run", QUICK, "--trace-perfetto", cli.tmp / "t.pftrace", "--trace", cli.tmp / "t.jsonl",
            "--trace-max-size", "200KiB", "-q", check=0)
    assert "reached its size cap of 204800 bytes" in p.stderr
    assert (cli.tmp / "t.pftrace").stat().st_size < 230 * 1024
    t = perfetto.load(cli.tmp / "t.pftrace")
    assert t.unmatched == 0 and t.slices
    assert any(i.name.startswith("trace truncated") for i in t.instants)
    assert jsonl(cli.tmp / "t.jsonl")[-1]["kind"] == "truncated"


@pytest.mark.parametrize("args,message", [
    (["--trace-kinds", "MRd,Bogus"], "no TLP kind 'Bogus'"),
    (["--trace-from", "10"], "expected a time with a unit"),
    (["--trace-from", "2us", "--trace-to", "1us"], "the trace window is empty"),
    (["--trace-time-unit", "us"], "Perfetto time unit 'us'"),
    (["--counter-interval", "1ns"], "below 10ns"),
    (["--trace-max-size", "lots"], "expected a byte count"),
    (["--trace-perfetto", "/nonexistent/dir/t.pftrace"], "cannot write the Perfetto trace"),
    (["--vcd", "/nonexistent/dir/t.vcd"], "cannot write the VCD"),
])
def test_bad_trace_options_are_named(cli, args, message):
    extra = [] if any(a in ("--trace-perfetto", "--vcd") for a in args) else [
        "--trace-perfetto", cli.tmp / "x.pftrace"]
    p = cli("run", QUICK, *args, *extra, "-q", check=2)
    assert message in p.stderr, p.stderr


def test_ctrl_c_stops_with_valid_stats_and_marked_traces(cli, tmp_path):
    stats, trace = tmp_path / "s.json", tmp_path / "t.jsonl"
    p = subprocess.Popen(
        [cli.bin, "run", QUICK, "--set", "workloads[0].count=5000000", "--set",
         "simulation.max_time=100s", "--stats", stats, "--trace", trace,
         "--trace-max-size", "4MiB", "--trace-perfetto", tmp_path / "t.pftrace"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SC_COPYRIGHT_MESSAGE": "DISABLE"})
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, err)
    assert "interrupted at" in err
    s = json.loads(stats.read_text())
    assert s["interrupted"] is True and s["sim_time_ns"] > 0
    assert not s["workloads"]["copy0"]["finished"] and s["workloads"]["copy0"]["jobs"] < 5000000
    recs = jsonl(trace)
    assert recs[-1]["kind"] == "interrupted"
    t = perfetto.load(tmp_path / "t.pftrace")
    assert t.unmatched == 0 and any(i.name == "interrupted" for i in t.instants)


def test_stats_series_and_plot(cli):
    stats = cli.run_stats(QUICK, "--set", "simulation.sample_interval=1us")
    s = stats["series"]
    n = len(s["t_ns"])
    assert s["interval_ns"] == 1000 and n > 300
    assert all(b - a == 1000 for a, b in zip(s["t_ns"], s["t_ns"][1:]))
    sig = s["signals"]
    assert all(len(v) == n for v in sig.values())
    util = [u for u in sig["sw0.dsp1--ep1/down.utilisation"] if u is not None]
    assert max(util) > 0.5 and all(0 <= u <= 1 for u in util)
    # Bytes by completion time: the series integrate to what the run moved.
    moved = sum(x or 0 for x in sig["ep1.pf/read_gbps"]) * 1e9 * 1e-6 / 8  # Gb/s x 1 us
    assert moved == pytest.approx(stats["functions"]["ep1.pf"]["dma"]["read_bytes"], rel=0.02)
    (cli.tmp / "s.json").write_text(json.dumps(stats))
    p = cli("plot", cli.tmp / "s.json", "-o", cli.tmp / "s.png", check=0)
    assert (cli.tmp / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_series_says_how_to_get_them(cli):
    cli.run_stats(QUICK)
    p = cli("plot", cli.tmp / "stats.json", check=2)
    assert "simulation.sample_interval" in p.stderr


@pytest.mark.parametrize("config", ["quickstart.yaml", "migration.yaml", "sriov_64vfs.yaml"])
def test_tracing_and_sampling_do_not_change_results(cli, config):
    """Observers only read: with every trace output and 1 us sampling on, the
    stats (beyond the series themselves) are those of an untraced run."""
    plain = cli.run_stats(ROOT / "configs" / config, check=None)
    traced = cli.run_stats(ROOT / "configs" / config, "--trace", cli.tmp / "t.jsonl",
                           "--trace-perfetto", cli.tmp / "t.pftrace", "--vcd", cli.tmp / "t.vcd",
                           "--set", "simulation.sample_interval=1us", check=None)
    assert traced.pop("series")["t_ns"]

    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k != "cdf"}
        if isinstance(d, list):
            return [strip(x) for x in d]
        return d
    assert strip(traced) == strip(plain)


def test_a_component_filter_keeps_a_functions_own_tlps(cli):
    cli("run", QUICK, "--trace", cli.tmp / "t.jsonl", "--trace-components", "ep1.pf", "-q",
        check=0)
    hops = [r for r in jsonl(cli.tmp / "t.jsonl") if r["kind"] != "end"]
    # ep1's requests and the completions that answer them, on every link they take
    assert {r["requester"] for r in hops} == {hops[0]["requester"]} != {"00:00.0"}
    assert {r["link"] for r in hops} == {"rc.rp0--sw0.usp", "sw0.dsp1--ep1"}
    assert {r["kind"] for r in hops} >= {"MRd", "CplD", "MWr"}


@pytest.mark.parametrize("option,what", [("--trace", "trace file"),
                                         ("--trace-perfetto", "Perfetto trace file"),
                                         ("--vcd", "VCD file")])
def test_a_full_disk_is_an_error_naming_the_file(cli, option, what):
    p = cli("run", QUICK, option, "/dev/full", "-q", check=2)
    assert f"writing the {what} '/dev/full' failed: No space left on device" in p.stderr


@pytest.mark.parametrize("value,message", [("5ns", "is below 10ns"), ("2s", "1 s"),
                                           ("fast", "expected a time")])
def test_a_bad_sample_interval_is_named(cli, value, message):
    p = cli("validate", QUICK, "--set", f"simulation.sample_interval={value}", check=2)
    assert "sample_interval" in p.stderr and message in p.stderr, p.stderr

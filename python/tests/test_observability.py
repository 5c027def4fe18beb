"""Tracing from Python (docs/observability.md): host actions, resets, SR-IOV
and migration arcs on their Perfetto tracks; VCD; Ctrl-C during run()."""
import os
import signal
import threading

import pytest

import pciesim
from pciesim import perfetto


def sriov_config():
    return {
        "simulation": {"seed": 3},
        "iommu": {"enabled": True},
        "vms": [{"name": "vm0", "memory": "16MiB", "functions": []}],
        "endpoints": [{"name": "ep0", "sriov": {"total_vfs": 4, "num_vfs": 2, "autoprobe": False},
                       "migration": {"flags": ["stop_copy", "p2p"]}}],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0"}],
        "workloads": [{"name": "w", "function": "ep0.pf", "size": "4KiB", "count": 4,
                       "start": "manual"}],
    }


def test_host_actions_show_on_host_and_function_tracks(tmp_path):
    path = tmp_path / "h.pftrace"
    with pciesim.from_dict(sriov_config()) as sim:
        sim.boot()
        sim.trace_perfetto(path)
        assert sim.enable_vfs("ep0.pf", 0) == 0
        assert sim.enable_vfs("ep0.pf", 3) == 0
        assert sim.flr("ep0.vf1") == 0
        sim.assign("ep0.vf2", "vm0")
        v = sim.vfio("ep0.vf2")
        v.set_state("STOP")
        v.set_state("RUNNING")
        sim.start_workload("w")
        sim.wait_workload("w")
        sent = sim.stat("functions.ep0.pf.interrupts")["sent"]
        assert sim.finish_traces() == []
    t = perfetto.load(path)
    assert t.unmatched == 0

    def on(group, track):
        return [s for s in t.slices if t.tracks[s.track].group == group
                and t.tracks[s.track].name.split(" #")[0] == track]
    pci = [s.name for s in on("host", "pci")]
    assert pci[:3] == ["SR-IOV disable ep0.pf", "SR-IOV enable ep0.pf", "FLR ep0.vf1"]
    # An FLR waits 100 ms (pcie_flr) before the function is polled again.
    flr = on("host", "pci")[2]
    assert flr.end - flr.start >= 100_000_000
    arcs = [s.name for s in on("ep0.vf2", "migration")]
    assert arcs == ["RUNNING -> RUNNING_P2P", "RUNNING_P2P -> STOP", "STOP -> RUNNING_P2P",
                    "RUNNING_P2P -> RUNNING"]
    # The workload's descriptors and interrupts, after the host's config cycles.
    assert len(on("ep0.pf", "descriptors")) == 4
    irq = [i for i in t.instants if t.tracks[i.track].group == "ep0.pf"
           and t.tracks[i.track].name == "interrupts"]
    assert sent >= 4 and len(irq) == sent and all(i.name.startswith("MSI-X ") for i in irq)
    assert min(s.start for s in on("ep0.pf", "descriptors")) > flr.end
    # The driver posted the four descriptors and reaped four completions.
    drv = [i.name for i in t.instants if t.tracks[i.track].group == "ep0.pf"
           and t.tracks[i.track].name == "driver"]
    assert drv.count("post") == 4 and drv.count("reap") == 4


def test_trace_arguments_are_checked():
    with pciesim.from_dict(sriov_config()) as sim:
        with pytest.raises(pciesim.UsageError, match="path must be a file path"):
            sim.trace_perfetto(42)
        with pytest.raises(pciesim.UsageError, match="no TLP kind 'Read'"):
            sim.trace_perfetto("/tmp/x.pftrace", kinds=["Read"])
        with pytest.raises(pciesim.UsageError, match="components must be strings"):
            sim.trace_perfetto("/tmp/x.pftrace", components=[1])
        with pytest.raises(pciesim.UsageError, match="max_bytes"):
            sim.trace_perfetto("/tmp/x.pftrace", max_bytes=0)
        with pytest.raises(TypeError, match="has no unit"):
            sim.trace_vcd("/tmp/x.vcd", start=5)
        with pytest.raises(pciesim.UsageError, match="below 10ns"):
            sim.trace_vcd("/tmp/x.vcd", counter_interval="1ns")


def test_ctrl_c_during_run_raises_keyboard_interrupt_and_keeps_stats(quickstart):
    with pciesim.load(quickstart, overrides={"workloads[0].count": 5_000_000,
                                             "simulation.max_time": "100s"}) as sim:
        timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                sim.run()
        finally:
            timer.cancel()
        s = sim.stats()
        assert s["interrupted"] is True
        assert 0 < s["workloads"]["copy0"]["jobs"] < 5_000_000


def test_a_second_trace_continues_the_ids_of_the_first(tmp_path):
    with pciesim.from_dict(sriov_config()) as sim:
        sim.boot()
        sim.trace(tmp_path / "a.jsonl")
        sim.start_workload("w")
        sim.run("2us")
        sim.trace(tmp_path / "b.jsonl")   # replaces a.jsonl, complete up to now
        sim.wait_workload("w")
        sim.finish_traces()
        sim.trace_perfetto(tmp_path / "c.pftrace")
        assert sim.config_read("ep0.pf", 0, 2) == 0x5ec0
        sim.finish_traces()
    import json
    a = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    ida = {r["id"] for r in a if r["kind"] != "end"}
    idb = {r["id"] for r in b if r["kind"] != "end" and "request" not in r}
    assert ida and idb and max(ida) < min(idb)
    c = perfetto.load(tmp_path / "c.pftrace")
    idc = {s.args["id"] for s in c.slices if "tlp" in s.category}
    assert idc and min(idc) > max(idb)

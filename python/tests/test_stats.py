"""Stats attribute to functions, not to routing IDs (issue 10, item 19c)."""
import pciesim

CFG = {
    # With ARI VF1 is at devfn 4; without (after a hot reset drops ARI
    # Forwarding and nothing restores it) VF4 is.
    "endpoints": [{"name": "ep0", "sriov": {"total_vfs": 4, "num_vfs": 4, "first_vf_offset": 4,
                                            "first_vf_offset_no_ari": 1}}],
    "links": [{"upstream": "rc.rp0", "downstream": "ep0"}],
    "workloads": [{"name": "w", "function": "ep0.vf1", "size": "4KiB", "count": 8,
                   "interrupts": True, "start": "manual"}],
}


def test_interrupts_stay_with_the_function_that_sent_them():
    with pciesim.from_dict(CFG) as sim:
        sim.boot()
        sim.wait_workload("w")
        assert sim.bdf("ep0.vf1") == "01:00.4"
        assert sim.hot_reset("rc.rp0", restore=False) == 0
        assert sim.enable_vfs("ep0.pf", 0) == 0 and sim.enable_vfs("ep0.pf", 4) == 0
        assert sim.bdf("ep0.vf4") == "01:00.4"  # VF1's old routing ID
        irq1 = sim.stat("functions.ep0.vf1.interrupts")
        irq4 = sim.stat("functions.ep0.vf4.interrupts")
        assert irq1["sent"] == irq1["received"] == 8
        assert irq4["sent"] == irq4["received"] == 0


def test_results_stay_physical_at_any_quantum(quickstart):
    # Two copies share the uplink's completion direction: Gen3 x8 with the
    # default platform's 256-byte completions (512-byte reads), and the root
    # port's path of one line per 9.2 ns, whichever is lower (docs/timing.md).
    ceiling = min(pciesim._native.analytic_bandwidth(3, 8, 256, 512, 256, 4096)[1], 64 * 8 / 9.2)
    for quantum in ("0ns", "1us", "1ms", "100ms"):
        with pciesim.load(quickstart,
                          overrides={"simulation.quantum": quantum}) as sim:
            r = sim.run()
            assert r.passed, (quantum, r.failures)
            w = sim.stats()["workloads"]
            total = w["copy0"]["throughput_gbps"] + w["copy1"]["throughput_gbps"]
            assert 0.7 * ceiling < total <= ceiling, (quantum, total)


def test_every_request_ends_once_and_leaves_an_end_record(tmp_path, quickstart):
    import json
    trace = tmp_path / "t.jsonl"
    with pciesim.load(quickstart) as sim:
        sim.trace(trace)
        assert sim.run().passed
        # Nobody answers 77:00.0: the root complex completes it with UR itself,
        # without a hop on any link; it still has its end record.
        assert sim.config_read("77:00.0", 0) == 0xFFFFFFFF
        c = sim.stats()["completions"]
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    ends = [r for r in records if r["kind"] == "end"]
    assert c["violations"] == 0 and c["outstanding"] == 0
    assert len(ends) == c["requests"] == c["completions"] + c["timeouts"]
    assert len({r["id"] for r in ends}) == len(ends)  # exactly one ending each
    local = [r for r in ends if r["address"] == hex(0xE0000000 + (0x77 << 20))]
    assert len(local) == 1 and local[0]["status"] == "UR" and local[0]["request"] == "CfgRd0"
    # Hops carry config requests as routing ID << 12 | offset.
    hops = [r for r in records if r["kind"].startswith("CfgRd") and r["address"] == hex(0x7700 << 12)]
    assert hops == []

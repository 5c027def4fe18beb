"""The pciesim Python API: every call, its errors, and several simulations."""
import json
import subprocess
import sys
import threading

import pytest

import pciesim
from pciesim import dma


def test_load_file_boot_and_timed_accesses(quickstart):
    with pciesim.load(quickstart) as sim:
        assert sim.now == 0 and not sim.booted
        sim.boot()
        assert sim.booted and sim.now > pciesim.us(100)
        t0 = sim.now
        assert sim.config_read("ep0.pf", 0x00, size=2) == 0x5EC0
        assert sim.config_read("03:00.0", 0x02, size=2) == 0x0001  # by routing ID
        assert sim.now > t0  # a config read takes simulated time
        assert sim.bdf("ep1.pf") == "04:00.0"
        assert "ep0.pf" in sim.functions() and "sw0.dsp3" in sim.functions()


def test_run_to_completion_returns_checks(quickstart):
    with pciesim.load(quickstart) as sim:
        r = sim.run()
        assert r.completed and not r.time_limit and r.passed
        assert len(r.checks) == 6 and r.failures == []
        assert sim.stat("workloads.copy0.verified_bytes") == 64 * 4096
        assert sim.stat("functions.ep0.pf.dma.descriptors_completed") == 64
        assert [c["passed"] for c in sim.check()] == [True] * 6


def test_from_dict_and_overrides(small):
    with pciesim.from_dict(small, overrides={"links[1].gen": 4}) as sim:
        sim.boot()
        assert sim.stats()["links"]["sw0.dsp0--ep0"]["generation"] == 3  # device caps at gen3
    small["endpoints"][0]["max_link_speed"] = 5
    with pciesim.from_dict(small, overrides=["links[1].gen=4"]) as sim:
        sim.boot()
        assert sim.stats()["links"]["sw0.dsp0--ep0"]["generation"] == 4


def test_config_errors_carry_location(tmp_path, small):
    bad = tmp_path / "bad.yaml"
    bad.write_text("links:\n  - {upstream: rc.rp0, downstream: ep0, width: 3}\n")
    with pytest.raises(pciesim.ConfigError) as e:
        pciesim.load(str(bad))
    assert (e.value.file, e.value.line, e.value.path) == (str(bad), 2, "links[0].width")
    assert "link width" in e.value.message
    small["links"][1]["gen"] = 9
    with pytest.raises(pciesim.ConfigError) as e:
        pciesim.from_dict(small)
    assert e.value.path == "links[1].gen" and e.value.file == "<dict>"
    small["links"][1]["gen"] = 3
    small["bogus"] = 1
    with pytest.raises(pciesim.ConfigError, match="unknown key 'bogus'"):
        pciesim.validate(small)
    with pytest.raises(pciesim.ConfigError, match="keys must be strings"):
        pciesim.from_dict({1: 2})
    with pytest.raises(pciesim.UsageError, match="no config file"):
        pciesim.load("does-not-exist.yaml")


def test_bad_targets_and_accesses(small):
    with pciesim.from_dict(small) as sim:
        sim.boot()
        with pytest.raises(pciesim.UsageError, match="no function named 'ep9.pf'"):
            sim.config_read("ep9.pf", 0)
        with pytest.raises(pciesim.UsageError, match="no function named"):
            sim.config_read("99:00.0x", 0)
        with pytest.raises(pciesim.UsageError, match="aligned"):
            sim.config_read("ep0.pf", 0x3, size=2)
        with pytest.raises(pciesim.UsageError, match="outside BAR0"):
            sim.mmio_read("ep0.pf", 0x4000, bar=0)
        with pytest.raises(pciesim.UsageError, match="not implemented or has no address"):
            sim.mmio_read("ep0.pf", 0, bar=1)
        with pytest.raises(pciesim.UsageError, match="BAR index"):
            sim.mmio_read("ep0.pf", 0, bar=7)
        with pytest.raises(pciesim.UsageError, match="not host memory"):
            sim.read_memory(0x9000_0000, 16)  # the MMIO hole
        with pytest.raises(TypeError, match="has no unit"):
            sim.run(10)
        with pytest.raises(pciesim.UsageError, match="power state"):
            sim.set_power_state("ep0.pf", "D2")
        with pytest.raises(pciesim.UsageError, match="reset method"):
            sim.reset_function("ep0.pf", "magic")
        # A routing ID nobody answers reads as all ones, like real hardware.
        assert sim.config_read("77:00.0", 0) == 0xFFFFFFFF


def test_mmio_and_memory_between_runs(small):
    with pciesim.from_dict(small) as sim:
        sim.boot()
        assert sim.mmio_read("ep0.pf", dma.ID) == dma.ID_VALUE
        sim.mmio_write("ep0.pf", 0x100, 0xDEADBEEF, bar=2)  # device memory
        assert sim.mmio_read("ep0.pf", 0x100, bar=2) == 0xDEADBEEF
        sim.write_memory(0x5000_0000, b"hello")
        assert sim.read_memory(0x5000_0000, 5) == b"hello"


def test_workload_start_and_act_between_runs(small):
    with pciesim.from_dict(small) as sim:
        sim.boot()
        sim.start_workload("w")
        sim.run("20us")
        done = sim.stat("workloads.w.jobs")
        assert 0 < done < 50
        sim.bus_master("ep0.pf", False)  # pull the plug mid-run
        sim.run("150ms")  # the driver's watchdog: 50 ms after the device's 50 ms completion timeout
        st = sim.stats()
        assert st["workloads"]["w"]["stalled"] and st["workloads"]["w"]["finished"]
        assert st["functions"]["ep0.pf"]["dma"]["bme_aborts"] == 1
        assert st["workloads"]["w"]["mismatches"] == 0


def test_scheduled_callback_fires_at_its_time(small):
    seen = []
    with pciesim.from_dict(small) as sim:
        sim.boot()
        target = sim.now + pciesim.us(37)

        @sim.at(target)
        def cb():
            seen.append(sim.now)
            # Host operations inside a callback run at that point of time.
            seen.append(sim.config_read("ep0.pf", 0, size=2))
            seen.append(sim.now)

        sim.run("100us")
    assert seen[0] == target
    assert seen[1] == 0x5EC0
    assert seen[2] > target


def test_callback_exception_propagates(small):
    with pciesim.from_dict(small) as sim:
        sim.boot()
        t0 = sim.now
        sim.after("5us", lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            sim.run("10us")
        # The run stopped at the callback's time; the simulation goes on.
        assert sim.now == t0 + pciesim.us(5)
        assert sim.config_read("ep0.pf", 0, size=2) == 0x5EC0
        sim.run("1us")


def test_two_simulations_in_a_row_and_replacement(small):
    for _ in range(2):
        with pciesim.from_dict(small) as sim:
            assert sim.boot().bdf("ep1.pf") == "04:00.0"
    first = pciesim.from_dict(small)
    second = pciesim.from_dict(small)  # closes the first one
    assert first.closed and not second.closed
    with pytest.raises(pciesim.UsageError, match="newer Simulation"):
        first.boot()
    second.boot()
    second.close()


def test_run_releases_the_gil(quickstart):
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.0005)

    with pciesim.load(quickstart, overrides=["workloads[0].count=2000"]) as sim:
        t = threading.Thread(target=ticker)
        t.start()
        sim.run()
        stop.set()
        t.join()
    assert len(ticks) > 1


def test_lspci_topology_and_time_helpers(quickstart):
    with pciesim.load(quickstart) as sim:
        assert sim.lspci().startswith("00:00.0 Host bridge")
        assert "-[0000:00]-" in sim.lspci("-t")
        assert sim.lspci("-xxxx").count("\nff0: ") == 10
        with pytest.raises(pciesim.UsageError):
            sim.lspci("-vv")
        assert sim.topology().startswith("digraph")
    assert pciesim.parse("1.5us") == pciesim.ns(1500)
    assert str(pciesim.us(2)) == "2 us" and pciesim.ms(1).us == 1000.0
    assert pciesim.us(1) + "500ns" == pciesim.ns(1500)
    with pytest.raises(pciesim.UsageError):
        pciesim.parse("10 parsecs")


def test_stats_are_json_and_deterministic(small):
    runs = []
    for _ in range(2):
        with pciesim.from_dict(small) as sim:
            sim.boot()
            sim.wait_workload("w")
            runs.append(json.dumps(sim.stats(), sort_keys=True))
    assert runs[0] == runs[1]
    s = json.loads(runs[0])
    assert s["schema_version"] == 1 and s["workloads"]["w"]["verified_bytes"] == 50 * 8192


def test_sriov_and_reset_operations():
    cfg = {
        "endpoints": [{"name": "ep0", "sriov": {"total_vfs": 4}}],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0"}],
    }
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        assert sim.enable_vfs("ep0.pf", 5) == -34  # -ERANGE
        assert sim.enable_vfs("ep0.pf", 2) == 0
        assert sim.enable_vfs("ep0.pf", 3) == -16  # -EBUSY
        assert sim.bdf("ep0.vf2") == "01:00.2"
        assert sim.config_read("ep0.vf2", 0x08) >> 8 == 0x088000  # class code of the PF
        assert sim.flr("ep0.vf1") == 0
        assert sim.reset_function("ep0.pf", "flr") == 0
        sim.set_power_state("ep0.pf", "D3hot")
        sim.set_power_state("ep0.pf", "D0")
        assert sim.hot_reset("rc.rp0") == 0
        assert sim.disable_vfs("ep0.pf") == 0
        sim.memory_space("ep0.pf", False)
        assert sim.config_read("ep0.pf", 0x04, size=2) & 0x2 == 0


def test_example_script_runs(tmp_path):
    import pathlib
    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "flip_bus_master.py"
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "before clearing BME" in p.stdout and "after clearing BME" in p.stdout


def test_trace_records_every_hop_and_nothing_after_bus_master_clear(small, tmp_path):
    small["simulation"] = {"quantum": "0ns"}
    trace = tmp_path / "t.jsonl"
    with pciesim.from_dict(small) as sim:
        sim.boot()
        sim.trace(trace)
        sim.start_workload("w")
        sim.run("15us")
        cleared_from = sim.now
        sim.bus_master("ep0.pf", False)
        sim.run("1ms")
        pf = sim.bdf("ep0.pf")
        st = sim.stats()
    hops = [json.loads(line) for line in trace.read_text().splitlines()]
    assert {"t_ns", "arrive_ns", "done_ns", "link", "dir", "kind", "requester"} <= set(hops[0])
    assert all(h["t_ns"] <= h["arrive_ns"] <= h["done_ns"] for h in hops)
    # The Command write that cleared BME, on the link into ep0.
    rid = int(pf[:2], 16) << 8 | int(pf[3:5], 16) << 3 | int(pf[6])
    writes = [h for h in hops if h["kind"] == "CfgWr0" and int(h["address"], 16) == (rid << 12 | 4)
              and h["t_ns"] >= cleared_from.ns]
    assert len(writes) == 1
    cleared = writes[0]["arrive_ns"]
    mine = [h for h in hops if h["requester"] == pf and h["dir"] == "up"]
    assert any(h["t_ns"] < cleared for h in mine)
    assert [h for h in mine if h["t_ns"] > cleared] == []
    # Every TLP the device sent is in the trace, on both links it crossed.
    dma = st["functions"]["ep0.pf"]["dma"]
    ep_link = [h for h in mine if h["link"] == "sw0.dsp0--ep0"]
    msi = st["functions"]["ep0.pf"]["interrupts"]["sent"]
    assert len(ep_link) == dma["read_requests"] + dma["write_requests"] + dma["descriptor_fetches"] + msi

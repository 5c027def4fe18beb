"""Live migration of a whole VM by the VMM (sim.migrate, docs/migration.md
"Migrating a VM"): the report responds to bandwidth and dirty rate as the
physics says, a guest workload survives the move with every byte right,
each tracker keeps the ground truth at zero missed pages, and bad requests
are refused with their place and value."""
import pathlib

import pytest

import pciesim

MiB = 1 << 20


def machine(*, cpu=None, memory="8MiB", flags=("stop_copy", "p2p", "pre_copy"), workload=None,
            seed=2, vfs=4, extra_vm_functions=(), extra_dest_functions=()):
    cfg = {
        "simulation": {"seed": seed, "max_time": "2s"},
        "iommu": {"enabled": True, "access_dirty": True},
        "endpoints": [{"name": "ep0",
                       "sriov": {"total_vfs": vfs, "num_vfs": vfs, "autoprobe": False},
                       "migration": {"flags": list(flags)}}],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0", "gen": 4, "width": 8}],
        "vms": [{"name": "vmA", "memory": memory, "functions": ["ep0.vf1", *extra_vm_functions]},
                {"name": "vmB", "memory": memory, "incoming": True,
                 "functions": ["ep0.vf2", *extra_dest_functions]}],
        "workloads": [workload] if workload else [],
    }
    if cpu:
        cfg["vms"][0]["cpu"] = cpu
    sim = pciesim.from_dict(cfg)
    sim.boot()
    return sim


def migrate(sim, **policy):
    r = sim.migrate("vmA", to="vmB", **policy)
    assert isinstance(r, pciesim.MigrationReport)
    return r


@pytest.mark.parametrize("tracking", ["device", "iommu", "none"])
def test_a_guest_copy_continues_on_the_destination_with_every_byte_right(tracking):
    sim = machine(workload={"name": "copy", "function": "ep0.vf1", "size": "64KiB",
                            "count": 600, "queue_depth": 4, "start": "manual"})
    sim.start_workload("copy")
    sim.run("50us")
    r = migrate(sim, bandwidth="100Gbps", downtime_limit="1ms", dirty_tracking=tracking,
                max_iterations=3)
    assert r["status"] == "completed" and r.ok, r.get("error")
    assert r["dirty_tracking"] == tracking
    assert r["missed_dirty_pages"] == 0 and r["tracker_missed_pages"] == 0
    sim.wait_workload("copy")
    w = sim.stat("workloads.copy")
    assert w["verified_bytes"] == 600 * 64 * 1024 and w["mismatches"] == 0
    assert sim.stat("functions.ep0.vf2.dma.write_bytes") > 0    # it ran on vmB's VF
    assert sim.stat("functions.ep0.vf1.migration.state") == "STOP"
    assert sim.stat("iommu.vms.vmA.migrated_to") == "vmB"
    assert sim.stat("migrations.vmA_to_vmB.downtime_ns") == r["downtime_ns"]
    assert r.downtime > 0 and r.total_time > r.downtime
    sim.close()


def test_more_bandwidth_shortens_the_migration_and_the_downtime():
    """Same guest (vCPUs dirtying 2 Gb/s), three migration networks: the
    total time and the downtime fall as the bandwidth rises; pass 0 takes
    RAM / bandwidth."""
    totals, downs = [], []
    for gbps in (10, 25, 100):
        sim = machine(cpu={"write_gbps": 2, "pattern": "random", "chunk": 4096})
        r = migrate(sim, bandwidth=f"{gbps}Gbps", downtime_limit="300us", max_iterations=10)
        assert r.ok, r
        p0 = r["iteration_log"][0]
        ram_time_ns = 8 * MiB * 8 / gbps    # bits / (Gb/s) = ns
        assert p0["ram_ns"] == pytest.approx(ram_time_ns, rel=0.01)
        totals.append(r["total_ns"])
        downs.append(r["downtime_ns"])
        sim.close()
    assert totals[0] > totals[1] > totals[2]
    assert downs[0] > downs[1] > downs[2]


def test_a_higher_dirty_rate_needs_more_passes_until_it_cannot_converge():
    passes, reasons, downs = [], [], []
    for rate in (0.5, 4, 40):
        sim = machine(cpu={"write_gbps": rate, "pattern": "sequential", "chunk": 4096})
        r = migrate(sim, bandwidth="25Gbps", downtime_limit="200us", max_iterations=8)
        assert r["status"] == "completed" and r["missed_dirty_pages"] == 0
        passes.append(r["iterations"])
        reasons.append(r["stop_reason"])
        downs.append(r["downtime_ns"])
        sim.close()
    assert passes[0] <= passes[1] <= passes[2] == 8
    assert reasons[0] == "converged" and reasons[2] == "max_iterations"
    assert downs[0] < downs[2]


def test_without_dirty_tracking_every_pass_resends_everything():
    sim = machine()
    r = migrate(sim, bandwidth="100Gbps", dirty_tracking="none", max_iterations=3,
                downtime_limit="10us")
    assert r["iterations"] == 3 and not r["converged"]
    sent = [it["pages_sent"] for it in r["iteration_log"]]
    assert sent == [2048, 2048, 2048, 2048]     # three passes and the final one
    assert r["pages_resent"] == 3 * 2048 and r["missed_dirty_pages"] == 0
    sim.close()


def test_auto_falls_back_to_the_iommu_when_a_device_cannot_log():
    """QEMU's choice: device DMA logging if every device offers it, else the
    IOMMU's dirty bits; asking for device logging then is refused."""
    sim = machine()
    assert migrate(sim, bandwidth="100Gbps")["dirty_tracking"] == "device"
    sim.close()
    cfg = {
        "simulation": {"seed": 3, "max_time": "1s"},
        "iommu": {"enabled": True, "access_dirty": True},
        "endpoints": [{"name": "ep0", "sriov": {"total_vfs": 2, "num_vfs": 2, "autoprobe": False},
                       "migration": {"flags": ["stop_copy", "p2p"], "dma_logging": False}}],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0", "gen": 4, "width": 8}],
        "vms": [{"name": "vmA", "memory": "8MiB", "functions": ["ep0.vf1"]},
                {"name": "vmB", "memory": "8MiB", "incoming": True, "functions": ["ep0.vf2"]}],
    }
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        r = sim.migrate("vmA", to="vmB", bandwidth="100Gbps", dirty_tracking="device",
                        name="device")
        assert r["status"] == "refused" and "DMA logging" in r["error"]["message"]
        r = sim.migrate("vmA", to="vmB", bandwidth="100Gbps")
        assert r["dirty_tracking"] == "iommu" and r.ok


def test_cancel_returns_the_source_to_running_and_nothing_is_lost():
    sim = machine(memory="32MiB", workload={"name": "copy", "function": "ep0.vf1",
                                            "size": "64KiB", "count": 300, "queue_depth": 4,
                                            "start": "manual"})
    sim.start_workload("copy")
    r = migrate(sim, bandwidth="10Gbps", cancel_after="2ms")
    assert r["status"] == "cancelled" and r["code"] == -125
    assert sim.vfio("ep0.vf1").state == "RUNNING"
    assert sim.vfio("ep0.vf2").state == "RUNNING"
    assert sim.stat("iommu.vms.vmA.paused") is False
    sim.wait_workload("copy")
    assert sim.stat("workloads.copy.verified_bytes") == 300 * 64 * 1024
    # The migration can be tried again, under another name.
    again = migrate(sim, bandwidth="100Gbps", name="retry")
    assert again.ok
    sim.close()


def test_two_devices_without_p2p_are_refused_unless_forced():
    sim = machine(flags=("stop_copy",), extra_vm_functions=("ep0.vf3",),
                  extra_dest_functions=("ep0.vf4",))
    r = sim.migrate("vmA", to="vmB", functions={"ep0.vf1": "ep0.vf2", "ep0.vf3": "ep0.vf4"},
                    bandwidth="100Gbps")
    assert r["status"] == "refused" and r["code"] == -95
    assert "P2P" in r["error"]["message"] and r["bytes_sent"] == 0
    assert sim.vfio("ep0.vf1").state == "RUNNING"
    forced = sim.migrate("vmA", to="vmB", force=True, name="forced",
                         functions={"ep0.vf1": "ep0.vf2", "ep0.vf3": "ep0.vf4"},
                         bandwidth="100Gbps")
    assert forced.ok
    # No P2P state exists: each device went RUNNING -> STOP directly.
    assert sim.stat("functions.ep0.vf1.migration.state") == "STOP"
    assert sim.stat("functions.ep0.vf4.migration.state") == "RUNNING"
    sim.close()


def test_bad_requests_name_the_place_and_the_value():
    sim = machine()
    with pytest.raises(pciesim.ConfigError, match="bandwidth.*12 parsecs"):
        sim.migrate("vmA", to="vmB", bandwidth="12 parsecs")
    with pytest.raises(pciesim.ConfigError, match="dirty_tracking.*'magic'"):
        sim.migrate("vmA", to="vmB", dirty_tracking="magic")
    with pytest.raises(pciesim.UsageError, match="no VM named 'vmZ'"):
        sim.migrate("vmZ", to="vmB")
    with pytest.raises(pciesim.UsageError, match="is not waiting for a migration"):
        sim.migrate("vmB", to="vmA")
    with pytest.raises(pciesim.UsageError, match="ep0.vf3 is not assigned to VM vmA"):
        sim.migrate("vmA", to="vmB", functions={"ep0.vf3": "ep0.vf2"})
    with pytest.raises(TypeError, match="functions must be a dict"):
        sim.migrate("vmA", to="vmB", functions=["ep0.vf1"])
    with pytest.raises(TypeError, match="p2p_quiesce must be a bool"):
        sim.migrate("vmA", to="vmB", p2p_quiesce="no")
    with pytest.raises(pciesim.UsageError, match="max_iterations"):
        sim.migrate("vmA", to="vmB", max_iterations=0)
    # Nothing moved: the real migration still works.
    r = migrate(sim, bandwidth="100Gbps")
    assert r.ok
    with pytest.raises(pciesim.UsageError, match="already migrated"):
        sim.migrate("vmA", to="vmB", name="again")
    sim.close()


def test_the_same_seed_gives_the_same_report():
    def run():
        sim = machine(cpu={"write_gbps": 3, "pattern": "random", "chunk": 4096})
        r = migrate(sim, bandwidth="25Gbps", downtime_limit="500us")
        sim.close()
        return r
    assert run() == run()


def test_the_live_migration_example_runs_and_plots(tmp_path):
    import subprocess
    import sys
    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "live_migration.py"
    out = tmp_path / "lm.png"
    p = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("0 missed dirty pages, diverged False") == 3, p.stdout
    assert p.stdout.count(", 0 mismatches") == 3
    assert "none  : completed, 6 passes (max_iterations)" in p.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

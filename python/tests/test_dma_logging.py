"""Device DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_*; MIGRATION.md 4):
the PF firmware logs a VF's DMA writes; reports are checked against the
simulator's record of that function's writes (missed pages must be 0)."""
import pytest

import pciesim

MiB = 1 << 20


def machine(migration=True, **log):
    ep = {"name": "ep0", "sriov": {"total_vfs": 2, "num_vfs": 2, "autoprobe": False}}
    if migration:
        ep["migration"] = {"flags": ["stop_copy", "p2p", "pre_copy"], **log}
    cfg = {
        "simulation": {"seed": 4, "max_time": "1s"},
        "iommu": {"enabled": True, "host_large_pages": False},
        "endpoints": [ep],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0", "gen": 4, "width": 8}],
        "vms": [{"name": "vmA", "memory": "64MiB", "host_base": 0x100000000,
                 "functions": ["ep0.vf1", "ep0.vf2"]}],
        "workloads": [{"name": f"c{n}", "function": f"ep0.vf{n}", "size": "64KiB", "count": 40,
                       "queue_depth": 4, "start": "manual"} for n in (1, 2)],
    }
    sim = pciesim.from_dict(cfg)
    sim.boot()
    return sim


def bits(r):
    return {i * 64 + b for i, w in enumerate(r["bitmap"]) for b in range(64) if w >> b & 1}


def test_the_log_reports_exactly_this_functions_writes():
    """Both VFs of the VM copy; vf1's log holds vf1's writes only, none
    missed, read-and-clear between reports."""
    sim = machine()
    dev = sim.vfio("ep0.vf1")
    r = dev.dma_logging_start([(0, 64 * MiB)])
    assert r == {"status": 0, "page_size": 4096, "ranges": [[0, 64 * MiB]]}
    sim.start_workload("c1")
    sim.start_workload("c2")
    written = 0
    for _ in range(4):
        sim.run("100us")
        rep = dev.dma_logging_report(0, 64 * MiB)
        assert rep["status"] == 0 and rep["missed_pages"] == 0, rep["missed"]
        assert rep["dirty_units"] >= rep["written_pages"] > 0
        written += rep["written_pages"]
    sim.run("2ms")  # both workloads finish
    last = dev.dma_logging_report(0, 64 * MiB)
    again = dev.dma_logging_report(0, 64 * MiB)
    assert last["missed_pages"] == 0 and again["dirty_units"] == 0  # cleared
    s = sim.stats()["dirty_tracking"]["device"]["ep0.vf1"]
    assert s["missed_pages"] == 0 and s["reads"] == 6
    assert "ep0.vf2" not in sim.stats()["dirty_tracking"]["device"]
    assert dev.dma_logging_stop() == 0
    assert dev.dma_logging_report(0, MiB)["status"] == -22  # no session
    sim.close()


def test_more_ranges_than_the_device_tracks_are_merged_and_only_over_report():
    sim = machine(log_max_ranges=2)
    dev = sim.vfio("ep0.vf1")
    # Three ranges; the copy's buffers (from 1 MiB up) sit in the gap
    # between the first two, which is smaller than the one before the third.
    r = dev.dma_logging_start([(0, MiB), (8 * MiB, MiB), (48 * MiB, MiB)])
    assert r["status"] == 0 and r["ranges"] == [[0, 9 * MiB], [48 * MiB, MiB]]
    sim.start_workload("c1")
    sim.run("2ms")
    rep = dev.dma_logging_report(0, 64 * MiB)
    # Pages outside what was asked for are reported (allowed), none missed.
    assert rep["missed_pages"] == 0 and rep["dirty_units"] > 0
    assert all(MiB // 4096 <= u < 8 * MiB // 4096 for u in bits(rep))
    sim.close()


def test_the_device_picks_its_page_size_and_reports_at_any_power_of_two():
    sim = machine(log_min_page="8KiB", log_max_page="2MiB")
    dev = sim.vfio("ep0.vf1")
    assert dev.dma_logging_start([(0, 64 * MiB)], page_size=4096)["page_size"] == 8192
    sim.start_workload("c1")
    sim.run("2ms")
    fine = dev.dma_logging_report(0, 64 * MiB, page_size=4096)
    assert fine["missed_pages"] == 0
    # An 8 KiB log page sets both 4 KiB units it covers.
    assert all((u ^ 1) in bits(fine) for u in bits(fine))
    dev.dma_logging_stop()
    assert dev.dma_logging_start([(0, 64 * MiB)], page_size=4 * MiB)["page_size"] == 2 * MiB
    sim.close()


def test_report_at_a_coarser_page_size():
    sim = machine()
    dev = sim.vfio("ep0.vf1")
    dev.dma_logging_start([(0, 64 * MiB)])
    sim.start_workload("c1")
    sim.run("2ms")
    coarse = dev.dma_logging_report(0, 64 * MiB, page_size=2 * MiB)
    assert coarse["units"] == 32 and coarse["missed_pages"] == 0 and coarse["dirty_units"] >= 1
    sim.close()


def test_errors_as_linux_returns_them():
    sim = machine()
    dev = sim.vfio("ep0.vf1")
    assert dev.dma_logging_report(0, MiB)["status"] == -22            # REPORT without START
    assert dev.dma_logging_start([])["status"] == -22                 # no range
    assert dev.dma_logging_start([(i * 8192, 4096) for i in range(257)])["status"] == -7
    assert dev.dma_logging_start([(100, 4096)])["status"] == -22      # unaligned
    assert dev.dma_logging_start([(0, 0)])["status"] == -22           # empty
    assert dev.dma_logging_start([(0, 8192), (4096, 8192)])["status"] == -22  # overlap
    assert dev.dma_logging_start([(0, MiB)], page_size=3000)["status"] == -22
    assert dev.dma_logging_start([(0, MiB)])["status"] == 0
    assert dev.dma_logging_start([(0, MiB)])["status"] == -22         # a second session
    assert dev.dma_logging_report(0, MiB, page_size=2048)["status"] == -22
    assert dev.dma_logging_report(4096, 8192, page_size=8192)["status"] == -22
    with pytest.raises(TypeError):
        dev.dma_logging_start("0-1MiB")
    with pytest.raises(TypeError):
        dev.dma_logging_start([(0, 1, 2)])
    sim.close()
    plain = machine(migration=False)
    assert plain.vfio("ep0.vf1").dma_logging_start([(0, MiB)])["status"] == -25  # ENOTTY
    plain.close()


def test_a_reset_ends_the_session():
    sim = machine()
    dev = sim.vfio("ep0.vf1")
    assert dev.dma_logging_start([(0, MiB)])["status"] == 0
    dev.reset()
    assert dev.dma_logging_report(0, MiB)["status"] == -22
    assert dev.dma_logging_start([(0, MiB)])["status"] == 0  # a new one may start
    sim.close()


def test_huge_reads_are_refused_not_walked():
    sim = machine()
    dev = sim.vfio("ep0.vf1")
    assert dev.dma_logging_start([(0, 64 * MiB)])["status"] == 0
    assert dev.dma_logging_report(0, 1 << 40)["status"] == -22
    assert dev.dma_logging_report(0, (1 << 64) - 4096)["status"] == -22
    assert dev.dma_logging_report(4096, (1 << 64) - 4096)["status"] == -75  # EOVERFLOW
    sim.close()

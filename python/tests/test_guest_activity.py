"""A VM's own CPU activity (vms[].cpu) and the hypervisor's log of it (the
KVM-like CPU dirty log): memory dirties at the configured rate and
pattern, deterministically, and each tracker sees only its own writers."""
import pytest

import pciesim

MiB = 1 << 20


def machine(cpu, seed=4, workload=True):
    cfg = {
        "simulation": {"seed": seed, "max_time": "1s"},
        "iommu": {"enabled": True, "access_dirty": True, "host_large_pages": False},
        "endpoints": [{"name": "ep0", "sriov": {"total_vfs": 2, "num_vfs": 2, "autoprobe": False}}],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0", "gen": 4, "width": 8}],
        "vms": [{"name": "vmA", "memory": "64MiB", "host_base": 0x100000000,
                 "functions": ["ep0.vf1"], "cpu": cpu}],
        "workloads": [{"name": "copy", "function": "ep0.vf1", "size": "64KiB", "count": 20,
                       "queue_depth": 4, "start": "manual"}] if workload else [],
    }
    sim = pciesim.from_dict(cfg)
    sim.boot()
    return sim


def pages(r):
    return [i * 64 + b for i, w in enumerate(r["bitmap"]) for b in range(64) if w >> b & 1]


def test_the_vcpus_write_at_the_configured_rate_sequentially():
    # 8 Gb/s in 4 KiB bursts: one page every 4.096 us, from the region's
    # start, beginning 10 us after boot (the log is on by then).
    sim = machine({"write_gbps": 8, "chunk": "4KiB", "region_base": 32 * MiB,
                   "region_size": 16 * MiB, "start": "10us"})
    sim.cpu_dirty_log("vmA")
    sim.run("419.6us")
    r = sim.read_cpu_dirty_log("vmA")
    got = pages(r)
    assert r["status"] == 0 and 100 <= r["dirty_pages"] <= 101
    assert got == list(range(32 * MiB // 4096, 32 * MiB // 4096 + len(got)))
    assert sim.read_cpu_dirty_log("vmA")["dirty_pages"] == 0  # cleared, no time passed
    cpu = sim.stats()["iommu"]["vms"]["vmA"]["cpu"]
    assert cpu["bytes_written"] == cpu["bursts"] * 4096
    sim.close()


def test_random_pattern_is_deterministic_for_a_seed():
    def run(seed):
        sim = machine({"write_gbps": 4, "pattern": "random"}, seed=seed, workload=False)
        sim.cpu_dirty_log("vmA")
        sim.run("200us")
        got = pages(sim.read_cpu_dirty_log("vmA"))
        sim.close()
        return got
    a, b, c = run(4), run(4), run(5)
    assert a == b and a != c
    # The default region is the upper half of guest RAM.
    assert all(32 * MiB // 4096 <= p < 64 * MiB // 4096 for p in a)


def test_each_tracker_sees_only_its_writers():
    """The IOMMU's dirty bits see the VF's DMA, never the vCPUs' stores; the
    CPU log sees the stores (and the guest driver's), never the DMA."""
    sim = machine({"write_gbps": 8, "chunk": "4KiB", "region_base": 32 * MiB,
                   "region_size": 16 * MiB})
    assert sim.iommu_dirty_tracking("vmA") == 0
    sim.cpu_dirty_log("vmA")
    sim.start_workload("copy")
    sim.run("2ms")
    dma = sim.iommu_read_dirty("vmA", 0, 64 * MiB)
    cpu = sim.read_cpu_dirty_log("vmA")
    assert dma["missed_pages"] == 0 and dma["written_pages"] > 0
    dma_pages = set(pages(dma))
    cpu_pages = set(pages(cpu))
    assert all(p < 32 * MiB // 4096 for p in dma_pages)       # the VF's buffers
    assert any(p >= 32 * MiB // 4096 for p in cpu_pages)      # the vCPUs' region
    assert not dma_pages & {p for p in cpu_pages if p >= 32 * MiB // 4096}
    sim.close()


def test_a_paused_vm_stores_nothing_until_resumed():
    sim = machine({"write_gbps": 8, "chunk": "4KiB"}, workload=False)
    sim.cpu_dirty_log("vmA")
    sim.run("40us")
    sim.pause_vm("vmA")
    sim.read_cpu_dirty_log("vmA")
    before = sim.stats()["iommu"]["vms"]["vmA"]["cpu"]["bursts"]
    sim.run("100us")
    assert sim.read_cpu_dirty_log("vmA")["dirty_pages"] == 0
    assert sim.stats()["iommu"]["vms"]["vmA"]["cpu"]["bursts"] == before
    assert sim.stats()["iommu"]["vms"]["vmA"]["paused"] is True
    sim.resume_vm("vmA")
    sim.run("100us")
    assert sim.read_cpu_dirty_log("vmA")["dirty_pages"] > 0
    sim.close()


def test_bad_cpu_settings_are_refused_with_their_place():
    with pytest.raises(pciesim.ConfigError, match=r"vms\[0\].cpu.chunk"):
        machine({"write_gbps": 1, "chunk": 12})
    with pytest.raises(pciesim.ConfigError, match="inside the VM's memory"):
        machine({"write_gbps": 1, "region_base": 60 * MiB, "region_size": 8 * MiB})
    with pytest.raises(pciesim.ConfigError, match="region_base needs a region_size"):
        machine({"write_gbps": 1, "region_base": MiB})
    with pytest.raises(pciesim.ConfigError, match="write_gbps"):
        machine({"write_gbps": -1})
    with pytest.raises(pciesim.ConfigError, match="pattern"):
        machine({"pattern": "zigzag"})
    sim = machine({})
    assert sim.read_cpu_dirty_log("vmA")["status"] == -22  # not started
    with pytest.raises(pciesim.UsageError, match="vmZ"):
        sim.cpu_dirty_log("vmZ")
    sim.close()

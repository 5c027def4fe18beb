"""IOMMU, VMs and peer-to-peer through the Python API."""
import pytest

import pciesim
from pciesim import dma


def vm_config(**iommu):
    return {
        "simulation": {"seed": 3},
        "iommu": {"enabled": True, **iommu},
        "switches": [{"name": "sw0", "downstream_ports": 2}],
        "endpoints": [
            {"name": "ep0", "sriov": {"total_vfs": 2, "num_vfs": 2, "autoprobe": False}},
            {"name": "ep1"},
        ],
        "links": [
            {"upstream": "rc.rp0", "downstream": "sw0", "gen": 4, "width": 16},
            {"upstream": "sw0.dsp0", "downstream": "ep0"},
            {"upstream": "sw0.dsp1", "downstream": "ep1"},
        ],
        "vms": [
            {"name": "vmA", "memory": "64MiB", "functions": ["ep0.vf1"]},
            {"name": "vmB", "memory": "64MiB", "functions": ["ep0.vf2"]},
        ],
    }


def test_vm_isolation_faults_and_leaves_the_other_vm_alone():
    with pciesim.from_dict(vm_config()) as sim:
        sim.boot()
        b = sim.vm_address("vmB", 0x200000)
        sim.write_memory(b, b"\xbb" * 8)
        sim.write_memory(sim.vm_address("vmA", 0x300000), b"\xaa" * 8)
        assert sim.dma("ep0.vf1", 0x300000, 0x310000, 8) == 0
        assert sim.read_memory(sim.vm_address("vmA", 0x310000), 8) == b"\xaa" * 8
        assert sim.dma("ep0.vf1", b, 0x310000, 8) == dma.ERR_DMA_UR  # read vmB: fault
        assert sim.dma("ep0.vf1", 0x300000, b, 8) == 0                # posted write: dropped
        assert sim.read_memory(b, 8) == b"\xbb" * 8
        faults = sim.iommu_faults()
        assert [f["write"] for f in faults] == [False, True]
        assert all(f["function"] == "ep0.vf1" and f["reason"] == "page not present"
                   and int(f["address"], 16) == b for f in faults)
        assert faults[0]["t_ns"] < faults[1]["t_ns"]
        st = sim.stats()
        assert st["functions"]["ep0.vf1"]["driver"] == "vfio-pci"
        assert st["iommu"]["vms"]["vmA"]["functions"] == ["ep0.vf1"]
        assert st["iommu"]["domains"]["vmB"]["mapped_bytes"] == 64 << 20
        assert st["iommu"]["host"]["pages_2m"] == 64  # 2 x 64 MiB in 2 MiB pages


def test_map_unmap_lookup_and_their_errors():
    with pciesim.from_dict(vm_config()) as sim:
        sim.boot()
        hpa = sim.vm_address("vmB", 0x400000)
        assert sim.iommu_map("vmA", 0x1000_0000, hpa, 8192) == 0
        assert sim.iommu_lookup("vmA", 0x1000_1008) == hpa + 0x1008
        assert sim.iommu_map("vmA", 0x1000_1000, hpa, 4096) == -17   # EEXIST
        assert sim.iommu_map("vmA", 0x1000_0800, hpa, 4096) == -22   # EINVAL: alignment
        assert sim.iommu_unmap("vmA", 0x2000_0000, 4096) == -2       # ENOENT
        assert sim.iommu_unmap("vmA", 0x1000_0000, 8192) == 0
        assert sim.iommu_lookup("vmA", 0x1000_0000) is None
        # Unmapping part of a 2 MiB page is refused rather than splitting it.
        assert sim.iommu_unmap("vmA", 0x1000, 4096) == -22
        with pytest.raises(pciesim.UsageError, match="no IOMMU domain named 'vmC'.*vmA"):
            sim.iommu_map("vmC", 0, 0, 4096)
        with pytest.raises(pciesim.UsageError, match="dma, identity or blocked"):
            sim.create_domain("x", "weird")
        sim.create_domain("quarantine", "blocked")
        with pytest.raises(pciesim.UsageError, match="exists"):
            sim.create_domain("quarantine")
        # A function attached to a blocked domain faults on everything.
        sim.attach("ep0.vf1", "quarantine")
        assert sim.dma("ep0.vf1", 0x300000, 0x310000, 8) != 0
        assert sim.iommu_faults()[-1]["reason"] == "context entry not present"


def test_stale_translation_until_the_invalidation():
    with pciesim.from_dict(vm_config()) as sim:
        sim.boot()
        x, y = sim.vm_address("vmB", 0x500000), sim.vm_address("vmB", 0x501000)
        sim.write_memory(x, b"X" * 8)
        sim.write_memory(y, b"Y" * 8)
        out = sim.vm_address("vmA", 0x310000)
        assert sim.iommu_map("vmA", 0x2000_0000, x, 4096) == 0
        assert sim.dma("ep0.vf1", 0x2000_0000, 0x310000, 8) == 0
        assert sim.read_memory(out, 8) == b"X" * 8
        assert sim.iommu_unmap("vmA", 0x2000_0000, 4096, flush=False) == 0
        assert sim.iommu_map("vmA", 0x2000_0000, y, 4096) == 0
        assert sim.dma("ep0.vf1", 0x2000_0000, 0x310000, 8) == 0
        assert sim.read_memory(out, 8) == b"X" * 8  # the IOTLB's stale entry
        t0 = sim.now
        sim.iommu_flush("page", domain="vmA", iova=0x2000_0000, length=4096)
        assert sim.now - t0 >= pciesim.us(1)  # waited for the invalidation (1 us default)
        assert sim.dma("ep0.vf1", 0x2000_0000, 0x310000, 8) == 0
        assert sim.read_memory(out, 8) == b"Y" * 8


def test_peer_to_peer_through_the_api():
    cfg = vm_config()
    cfg["vms"] = []
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        sim.mmio_write("ep1.pf", 0x40, 0x12345678, bar=2)  # ep1's device memory
        peer = sim.peer_address("ep0.pf", "ep1.pf", 2)
        assert sim.dma("ep0.pf", peer + 0x40, 0x0, 4, dst_local=True) == 0
        assert sim.mmio_read("ep0.pf", 0x0, bar=2) == 0x12345678
        st = sim.stats()
        # Linux-like ACS (Request Redirect) with the IOMMU on: via the root complex.
        assert st["p2p"]["redirected"] == 1 and st["p2p"]["reflected"] == 1
        assert st["iommu"]["translations"] > 0


def test_iommu_calls_without_an_iommu_are_refused():
    cfg = vm_config()
    del cfg["iommu"]
    cfg["vms"] = []
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        with pytest.raises(pciesim.UsageError, match="no IOMMU"):
            sim.iommu_map("ep0.pf", 0, 0, 4096)
        with pytest.raises(pciesim.UsageError, match="no IOMMU"):
            sim.create_domain("d")
        assert "iommu" not in sim.stats()


def test_vms_need_the_iommu_in_the_config():
    cfg = vm_config()
    del cfg["iommu"]
    with pytest.raises(pciesim.ConfigError, match=r"vms\[0\].*needs the IOMMU"):
        pciesim.from_dict(cfg)


def test_bad_arguments_raise_usage_errors_not_type_errors():
    with pciesim.from_dict(vm_config()) as sim:
        sim.boot()
        with pytest.raises(pciesim.UsageError, match="length must be in 1"):
            sim.dma("ep0.vf1", 0, 0, 1 << 33)
        with pytest.raises(pciesim.UsageError, match="src must be in"):
            sim.dma("ep0.vf1", -1, 0, 8)
        with pytest.raises(pciesim.UsageError, match="iova must be an integer"):
            sim.iommu_map("vmA", "0x1000", 0, 4096)
        with pytest.raises(pciesim.UsageError, match="no function named 'ep9.pf'"):
            sim.dma("ep9.pf", 0, 0, 8)
        with pytest.raises(pciesim.UsageError, match="not bound to a DMA driver"):
            sim.dma("sw0.dsp0", 0, 0, 8)  # a bridge: no DMA driver


def test_paging_structure_caches_shorten_walks_and_go_with_invalidations():
    with pciesim.from_dict(vm_config(psc_entries=4, iotlb_entries=1)) as sim:
        sim.boot()
        x, y = sim.vm_address("vmB", 0x500000), sim.vm_address("vmB", 0x501000)
        sim.write_memory(x, b"X" * 8)
        sim.write_memory(y, b"Y" * 8)
        out = sim.vm_address("vmA", 0x310000)
        for iova in (0x2000_0000, 0x2000_1000):
            assert sim.iommu_map("vmA", iova, x if iova == 0x2000_0000 else y, 4096) == 0
        before = sim.stat("iommu.walk_reads")
        # One IOTLB entry: every DMA below misses; after the first walk the
        # upper levels come from the paging-structure caches.
        for iova in (0x2000_0000, 0x2000_1000, 0x2000_0000, 0x2000_1000):
            assert sim.dma("ep0.vf1", iova, 0x310000, 8) == 0
        assert sim.stat("iommu.psc_hits") >= 3
        # vmA's destination and source walks; far fewer reads than 4 per walk.
        assert sim.stat("iommu.walk_reads") - before < 4 * sim.stat("iommu.walks")
        assert sim.read_memory(out, 8) == b"Y" * 8
        # Unmapped and flushed: the cached table pointers go too; the next
        # walk reads the tables again and faults.
        assert sim.iommu_unmap("vmA", 0x2000_0000, 4096) == 0
        faults = sim.stat("iommu.faults")
        assert sim.dma("ep0.vf1", 0x2000_0000, 0x310000, 8) != 0
        assert sim.stat("iommu.faults") == faults + 1

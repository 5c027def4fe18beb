#!/usr/bin/env python3
"""Track the dirty pages of a VM the three ways a VMM does during pre-copy,
and check each against the simulator's own record of every write
(docs/migration.md, "Dirty tracking").

vmA has two VFs copying into its memory and vCPUs storing at 4 Gb/s:
  - the IOMMU's dirty bits see every device's DMA,
  - ep0.vf1's own DMA log sees only vf1's writes,
  - the CPU dirty log (KVM-like) sees the vCPUs' and the guest drivers' stores.
Each "read" below is one pre-copy round; "missed" must stay 0. Then an IOMMU
erratum (the dirty_lost fault) makes the check catch a broken tracker.

Run: /usr/bin/python3 python/examples/dirty_tracking.py
"""
import pciesim

MiB = 1 << 20
config = {
    "simulation": {"seed": 7, "max_time": "1s"},
    "iommu": {"enabled": True, "access_dirty": True, "host_large_pages": False},
    "endpoints": [{"name": "ep0", "sriov": {"total_vfs": 2, "num_vfs": 2, "autoprobe": False},
                   "migration": {"flags": ["stop_copy", "p2p", "pre_copy"]}}],
    "links": [{"upstream": "rc.rp0", "downstream": "ep0", "gen": 4, "width": 8}],
    "vms": [{"name": "vmA", "memory": "64MiB", "host_base": 0x100000000,
             "functions": ["ep0.vf1", "ep0.vf2"],
             "cpu": {"write_gbps": 4, "chunk": "4KiB", "pattern": "random"}}],
    "workloads": [{"name": f"copy{n}", "function": f"ep0.vf{n}", "size": "64KiB",
                   "count": 1000, "queue_depth": 4, "start": "manual"} for n in (1, 2)],
}


def line(name, r):
    return (f"   {name:<12} {r['dirty_units']:5} pages reported, {r['written_pages']:5} written "
            f"since last read, {r['missed_pages']} missed, {r['over_reported_units']} over")


with pciesim.from_dict(config) as sim:
    sim.boot()
    vf1 = sim.vfio("ep0.vf1")
    assert sim.iommu_dirty_tracking("vmA") == 0
    started = vf1.dma_logging_start([(0, 64 * MiB)])
    print(f"device log: page size {started['page_size']}, ranges {started['ranges']}")
    sim.cpu_dirty_log("vmA")
    sim.start_workload("copy1")
    sim.start_workload("copy2")
    for rnd in range(1, 4):
        sim.run("150us")
        print(f"\nround {rnd} (at {sim.now})")
        print(line("IOMMU", sim.iommu_read_dirty("vmA", 0, 64 * MiB)))
        print(line("vf1 DMA log", vf1.dma_logging_report(0, 64 * MiB)))
        cpu = sim.read_cpu_dirty_log("vmA")
        print(f"   {'CPU log':<12} {cpu['dirty_pages']:5} pages stored into by the vCPUs and drivers")
    s = sim.stats()["dirty_tracking"]
    print(f"\ntotals: IOMMU missed {s['iommu']['vmA']['missed_pages']}, "
          f"vf1 log missed {s['device']['ep0.vf1']['missed_pages']}")

    # An IOMMU that loses Dirty updates from now on (after a clearing read):
    # the ground truth catches it.
    sim.iommu_read_dirty("vmA", 0, 64 * MiB)
    sim.inject("dirty_lost", where="iommu", count=0)
    sim.run("150us")
    broken = sim.iommu_read_dirty("vmA", 0, 64 * MiB)
    first = f", the first at IOVA {broken['missed'][0]:#x}" if broken["missed"] else ""
    print(f"\nwith dirty_lost: {broken['written_pages']} pages written, "
          f"{broken['dirty_units']} reported, {broken['missed_pages']} missed{first}")

#!/usr/bin/env python3
"""Stop-copy downtime of a VF against its device-memory size.

For each size the VF's device memory is filled (every page non-zero), then
the VF goes RUNNING -> STOP_COPY (quiesce, freeze, save by DMA through the
fabric), its image is read and loaded into another VF of the same PF
(RESUMING -> RUNNING). Prints, per size: image bytes, the simulated time of
each phase, the effective image bandwidth, and the wall-clock time of the
whole run. Figures only, nothing asserted.

    /usr/bin/python3 bench/migration_downtime.py [--sizes 64KiB,1MiB,16MiB]
"""
import argparse
import time

import pciesim

UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def size(text):
    for u, m in UNITS.items():
        if text.endswith(u):
            return int(text[:-len(u)]) * m
    return int(text, 0)


def config(devmem, gen, width):
    return {
        "simulation": {"seed": 1, "max_time": "100s"},
        "iommu": {"enabled": True},
        "endpoints": [{"name": "ep0", "max_link_speed": gen, "max_link_width": width,
                       "sriov": {"total_vfs": 2, "num_vfs": 2, "autoprobe": False,
                                 "vf_device_memory": devmem},
                       "migration": {"flags": ["stop_copy", "p2p"]}}],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0", "gen": gen, "width": width}],
        "vms": [{"name": "vmA", "memory": max(64 << 20, 2 * devmem),
                 "functions": ["ep0.vf1", "ep0.vf2"]}],
    }


def one(devmem, gen, width):
    wall = time.perf_counter()
    with pciesim.from_dict(config(devmem, gen, width)) as sim:
        sim.boot()
        gpa = 16 << 20
        pattern = bytes((i * 7 + 1) & 0xFF or 1 for i in range(4096))
        for off in range(0, devmem, 1 << 20):
            n = min(1 << 20, devmem - off)
            sim.write_memory(sim.vm_address("vmA", gpa + off, n), (pattern * (n // 4096 + 1))[:n])
        assert sim.dma("ep0.vf1", gpa, 0, devmem, dst_local=True, timeout="10s") == 0
        src, dst = sim.vfio("ep0.vf1"), sim.vfio("ep0.vf2")
        t0 = sim.now.ns
        src.set_state("RUNNING_P2P")
        t1 = sim.now.ns
        src.set_state("STOP")
        t2 = sim.now.ns
        src.set_state("STOP_COPY")
        t3 = sim.now.ns
        image = src.read_all()
        dst.set_state("RESUMING")
        dst.write(image)
        t4 = sim.now.ns
        dst.set_state("RUNNING")
        t5 = sim.now.ns
        assert sim.mmio_read("ep0.vf2", devmem - 8, bar=2, size=8) == \
            sim.mmio_read("ep0.vf1", devmem - 8, bar=2, size=8)
    return {
        "devmem": devmem, "image": len(image), "quiesce_us": (t1 - t0) / 1e3,
        "freeze_us": (t2 - t1) / 1e3, "save_us": (t3 - t2) / 1e3, "load_resume_us": (t5 - t4) / 1e3,
        "save_gbps": len(image) * 8 / ((t3 - t2) * 1e-9) / 1e9,
        "wall_s": time.perf_counter() - wall,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64KiB,1MiB,16MiB,64MiB")
    ap.add_argument("--gen", type=int, default=4)
    ap.add_argument("--width", type=int, default=8)
    a = ap.parse_args()
    print(f"VF stop-copy on Gen{a.gen} x{a.width} (command latency 100 us)")
    print(f"{'devmem':>10} {'image B':>10} {'quiesce us':>11} {'freeze us':>10} "
          f"{'save us':>9} {'save Gb/s':>10} {'load+resume us':>15} {'wall s':>7}")
    for s in a.sizes.split(","):
        r = one(size(s), a.gen, a.width)
        print(f"{s:>10} {r['image']:>10} {r['quiesce_us']:>11.1f} {r['freeze_us']:>10.1f} "
              f"{r['save_us']:>9.1f} {r['save_gbps']:>10.2f} {r['load_resume_us']:>15.1f} "
              f"{r['wall_s']:>7.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Whole-VM live migration: downtime, total time and passes against the
migration bandwidth and the guest's dirty rate, and what a run costs in
wall time.

The machine: one PF with two VFs; VM vmA (RAM given by --memory) with
ep0.vf1, its vCPUs storing --rates Gb/s into random 4 KiB pages of the
upper half of its RAM, its driver copying 64 KiB buffers on the VF; vmB
waits for it with ep0.vf2. For every (bandwidth, rate) pair the VMM
migrates vmA with the given downtime limit (device DMA logging). Prints one
row per pair: passes and why it stopped, bytes sent, downtime, total time,
missed dirty pages (must be 0), wall time. Figures only, nothing asserted.

    /usr/bin/python3 bench/vm_migration.py [--memory 64MiB] [--bandwidths 10,25,100]
        [--rates 0,2,8,32] [--downtime-limit 1ms] [--max-iterations 30]
"""
import argparse
import time

import pciesim


def config(memory, rate):
    vm = {"name": "vmA", "memory": memory, "functions": ["ep0.vf1"]}
    if rate > 0:
        vm["cpu"] = {"write_gbps": rate, "pattern": "random", "chunk": 4096}
    return {
        "simulation": {"seed": 1, "max_time": "100s"},
        "iommu": {"enabled": True, "access_dirty": True},
        "endpoints": [{"name": "ep0", "max_link_speed": 4,
                       "sriov": {"total_vfs": 2, "num_vfs": 2, "autoprobe": False},
                       "migration": {"flags": ["stop_copy", "p2p", "pre_copy"]}}],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0", "gen": 4, "width": 8}],
        "vms": [vm, {"name": "vmB", "memory": memory, "incoming": True,
                     "functions": ["ep0.vf2"]}],
        "workloads": [{"name": "copy", "function": "ep0.vf1", "size": "64KiB",
                       "count": 1_000_000, "queue_depth": 4, "start": "manual"}],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory", default="64MiB")
    ap.add_argument("--bandwidths", default="10,25,100", help="Gb/s, comma separated")
    ap.add_argument("--rates", default="0,2,8,32", help="guest dirty rates, Gb/s")
    ap.add_argument("--downtime-limit", default="1ms")
    ap.add_argument("--max-iterations", type=int, default=30)
    a = ap.parse_args()
    print(f"VM {a.memory}, downtime limit {a.downtime_limit}, max {a.max_iterations} passes")
    print("| bandwidth | dirty rate | passes | stop | sent | downtime | total | missed | wall |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for bw in [float(x) for x in a.bandwidths.split(",")]:
        for rate in [float(x) for x in a.rates.split(",")]:
            t0 = time.perf_counter()
            with pciesim.from_dict(config(a.memory, rate)) as sim:
                sim.boot()
                sim.start_workload("copy")
                sim.run("50us")
                r = sim.migrate("vmA", to="vmB", bandwidth=f"{bw}Gbps",
                                downtime_limit=a.downtime_limit,
                                max_iterations=a.max_iterations)
            wall = time.perf_counter() - t0
            if r["status"] != "completed":
                print(f"| {bw:g} Gb/s | {rate:g} Gb/s | {r['status']}: {r.get('error')} |")
                continue
            print(f"| {bw:g} Gb/s | {rate:g} Gb/s | {r['iterations']} | {r['stop_reason']} | "
                  f"{r['bytes_sent'] / 1e6:.1f} MB | {r['downtime_ns'] / 1e6:.3f} ms | "
                  f"{r['total_ns'] / 1e6:.2f} ms | {r['missed_dirty_pages']} | {wall:.2f} s |")


if __name__ == "__main__":
    main()

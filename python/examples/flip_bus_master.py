#!/usr/bin/env python3
"""Build a system from a dict, run a copy workload, clear Bus Master Enable
in the middle of it, and print what changed.

Run: /usr/bin/python3 python/examples/flip_bus_master.py
"""
import pciesim

config = {
    "switches": [{"name": "sw0", "downstream_ports": 2}],
    "endpoints": [{"name": "ep0"}],
    "links": [
        {"upstream": "rc.rp0", "downstream": "sw0", "gen": 3, "width": 8},
        {"upstream": "sw0.dsp0", "downstream": "ep0", "gen": 3, "width": 8},
    ],
    "workloads": [{"name": "copy", "function": "ep0.pf", "size": "64KiB", "count": 100,
                   "queue_depth": 4, "start": "manual"}],
}


def snapshot(sim):
    s = sim.stats()
    f = s["functions"]["ep0.pf"]
    return {
        "time": str(sim.now),
        "jobs done": s["workloads"]["copy"]["jobs"],
        "bytes written by DMA": f["dma"]["write_bytes"],
        "TLPs from ep0": s["links"]["sw0.dsp0--ep0"]["up"]["tlps"],
        "interrupts": f["interrupts"]["received"],
        "engine error": f["dma"]["error_code"],
    }


with pciesim.from_dict(config) as sim:
    sim.boot()
    print(f"booted at {sim.now}; ep0.pf is {sim.bdf('ep0.pf')}")
    sim.start_workload("copy")
    sim.run("50us")
    before = snapshot(sim)
    print("before clearing BME:", before)
    sim.bus_master("ep0.pf", False)  # a config write from the host CPU
    sim.run("60ms")
    after = snapshot(sim)
    print("after clearing BME: ", after)
    print("changed:")
    for k in before:
        if before[k] != after[k]:
            print(f"  {k}: {before[k]} -> {after[k]}")
    w = sim.stats()["workloads"]["copy"]
    print(f"workload: {w['jobs']} of 100 jobs, stalled={w['stalled']} ({w['failure']}), "
          f"mismatches={w['mismatches']}")

#!/usr/bin/env python3
"""Inject faults into a running copy and print what the hardware logged and
what the host's AER service did about it (docs/faults.md).

Three faults while ep0 copies through a switch:
  1. an LCRC storm on ep0's link (the link layer replays: costs time only),
  2. a poisoned completion for one of ep0's reads, armed from a callback
     while DMA runs (non-fatal: the host recovers without a reset),
  3. ep0's link going down (fatal: Surprise Down, the host resets the link).

Run: /usr/bin/python3 python/examples/inject_faults.py
"""
import pciesim

LINK = "sw0.dsp0--ep0"
config = {
    "simulation": {"seed": 5, "max_time": "2s"},
    "switches": [{"name": "sw0", "downstream_ports": 2}],
    "endpoints": [{"name": "ep0"}],
    "links": [
        {"upstream": "rc.rp0", "downstream": "sw0", "gen": 3, "width": 8},
        {"upstream": "sw0.dsp0", "downstream": "ep0", "gen": 3, "width": 8},
    ],
    "workloads": [{"name": "copy", "function": "ep0.pf", "size": "4KiB", "count": 400,
                   "queue_depth": 4, "start": "manual"}],
}


def show(title, sim, seen):
    s = sim.stats()
    print(f"\n== {title} (at {sim.now})")
    w = s["workloads"]["copy"]
    print(f"   copy: {w['jobs']} jobs done, {w['errors']} failed, {w['mismatches']} mismatches")
    up = s["links"][LINK]["up"]
    print(f"   {LINK} up: {up['replays']} replays, {up['retrains']} retrains, "
          f"{up['replay_delay_ns']:.0f} ns lost to them")
    rp = s["root_complex"]["root_ports"]["rp0"]
    print(f"   root port received: ERR_COR {rp['err_cor_received']}, "
          f"ERR_NONFATAL {rp['err_nonfatal_received']}, ERR_FATAL {rp['err_fatal_received']}")
    for line in s["aer"]["messages"][seen:]:
        print(f"   host: {line}")
    return len(s["aer"]["messages"])


with pciesim.from_dict(config) as sim:
    sim.boot()
    sim.start_workload("copy")
    seen = 0

    storm = sim.inject("lcrc", where=LINK + ":up", count=30, repeat=2)
    sim.run("40us")
    print(f"lcrc storm: fired {storm.fired} times")
    seen = show("after an LCRC storm", sim, seen)

    poisoned = []
    sim.after("5us", lambda: poisoned.append(
        # A data read of the copy (the driver's rings sit below 0x1003000).
        sim.inject("poisoned", where=LINK + ":down",
                   match={"kinds": ["CplD"], "address_lo": 0x1003000})))
    sim.run("100us")
    print(f"poisoned completion: {poisoned[0].log[0]['detail']}")
    a = sim.aer("ep0.pf")
    print(f"   ep0.pf header log (the CplD, EP set): {' '.join(a['header_log'])}")
    seen = show("after a poisoned completion", sim, seen)

    sim.inject("link_down", where=LINK, at=sim.now)
    sim.run("300ms")
    seen = show("after the link went down", sim, seen)
    for rec in sim.stats()["aer"]["log"]:
        print(f"   recovery from {rec['source']}: {rec['severity']}, {rec['result']} in "
              f"{rec['duration_ns'] / 1e6:.3f} ms, outcomes {rec['outcomes']}")
    print(f"\nevery request ended once: {sim.stats()['completions']['violations'] == 0}")

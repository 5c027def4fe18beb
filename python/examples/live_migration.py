#!/usr/bin/env python3
"""Live-migrate a VM while it copies, and plot how it went (docs/migration.md
"Migrating a VM").

The machine of configs/live_migration.yaml: VM vmA (32 MiB, ep0.vf1 and
ep1.vf1) copies guest memory while its vCPUs dirty 2 Gb/s of random pages;
it migrates to vmB over a 25 Gb/s network. The script runs the migration
once per dirty-tracking mode with a tight downtime limit, prints each
report, checks the guest's copies finished with every byte right on vmB,
and draws (matplotlib, PNG):
  left:  pages sent per pre-copy pass and pages found dirty after it;
  right: the downtime of each run, phase by phase.

    /usr/bin/python3 python/examples/live_migration.py [OUT.png]
"""
import pathlib
import sys

import matplotlib
import yaml

import pciesim

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CONFIG = pathlib.Path(__file__).resolve().parents[2] / "configs" / "live_migration.yaml"
OUT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "live_migration.png")
PHASES = ["quiesce_p2p", "stop_copy", "device_state", "final_ram", "stop_tracking",
          "destination", "resume"]

config = yaml.safe_load(CONFIG.read_text())
del config["scenario"], config["expect"]

reports = {}
for tracking in ("device", "iommu", "none"):
    with pciesim.from_dict(config) as sim:
        sim.boot()
        sim.start_workload("copyA")
        sim.start_workload("copyB")
        sim.run("100us")
        r = sim.migrate("vmA", to="vmB", bandwidth="25Gbps", downtime_limit="500us",
                        max_iterations=6, dirty_tracking=tracking)
        sim.wait_workload("copyA")
        sim.wait_workload("copyB")
        a, b = sim.stat("workloads.copyA"), sim.stat("workloads.copyB")
        reports[tracking] = r
        print(f"{tracking:6s}: {r['status']}, {r['iterations']} passes ({r['stop_reason']}), "
              f"{r['bytes_sent'] / 1e6:.1f} MB sent, downtime {r['downtime_ns'] / 1e6:.3f} ms, "
              f"total {r['total_ns'] / 1e6:.3f} ms, {r['missed_dirty_pages']} missed dirty pages, "
              f"diverged {r['diverged']}")
        print(f"        copies: {a['verified_bytes'] + b['verified_bytes']} bytes verified, "
              f"{a['mismatches'] + b['mismatches']} mismatches")
        assert r.ok and a["mismatches"] == 0 and b["mismatches"] == 0

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
for tracking, r in reports.items():
    passes = [it for it in r["iteration_log"] if it["index"] != "final"]
    xs = [it["index"] for it in passes]
    left.plot(xs, [it["pages_sent"] for it in passes], marker="o", label=f"{tracking}: sent")
    left.plot(xs, [it["dirty_pages"] for it in passes], marker="x", linestyle="--",
              label=f"{tracking}: dirty after")
left.set_xlabel("pre-copy pass")
left.set_ylabel("4 KiB pages")
left.set_title("Pre-copy: pages sent and left dirty per pass")
left.legend(fontsize=8)
bottom = [0.0] * len(reports)
names = list(reports)
for ph in PHASES:
    vals = [reports[n]["phases"].get(ph + "_ns", 0) / 1e6 for n in names]
    right.bar(names, vals, bottom=bottom, label=ph)
    bottom = [b + v for b, v in zip(bottom, vals)]
right.set_ylabel("ms")
right.set_title("Downtime by phase (vCPUs paused to resumed)")
right.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT, dpi=110)
print(f"plot: {OUT}")

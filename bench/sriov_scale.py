#!/usr/bin/env python3
"""SR-IOV scale: what a PF with many VFs costs to build, to hold and to run.

For each VF count N (default 0, 64, 256, 1024, 4096, 8192), in a fresh
process of its own so resident memory is that system's alone:

  elaboration  wall time to build the system (root complex, switch, a PF
               with TotalVFs = N: every VF's config space, BARs, MSI-X and
               engine allocated up front) and the resident set after it;
               then the boot (SystemC's end of elaboration and the host's
               enumeration of the PF) on its own;
  enable       the host's sriov_numvfs = N: VF Enable, the 100 ms settle,
               and Linux-like enumeration of every VF (config reads of each
               one); wall time and resident set after it;
  idle cost    the same PF copy workload run with those N VFs enabled and
               idle, started at the same simulated time for every N: wall
               time, simulated time, the PF engine's scheduler activations
               and those of all VFs together (`engine_steps`).

    /usr/bin/python3 bench/sriov_scale.py            # ~5 s
    /usr/bin/python3 bench/sriov_scale.py --vfs 256 --jobs 4000

Writes a CSV (default bench/sriov_scale.csv) and prints a table.
"""
import argparse
import csv
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

COLUMNS = ["vfs", "elab_s", "rss_elab_mb", "boot_wall_s", "enable_wall_s", "enable_sim_ms", "rss_enabled_mb",
           "workload_wall_s", "workload_sim_us", "pf_engine_steps", "vf_engine_steps",
           "rss_final_mb"]

CHILD = r"""
import json, resource, sys, time
sys.path[:0] = sys.argv[3:5]
import pciesim
n, jobs = int(sys.argv[1]), int(sys.argv[2])
def rss_mb():
    # Linux: ru_maxrss in KiB (the peak so far, which only grows).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cfg = {
    "simulation": {"seed": 1},
    "switches": [{"name": "sw0", "downstream_ports": 1}],
    "endpoints": [{"name": "ep0", "sriov": {"total_vfs": n, "num_vfs": 0, "autoprobe": False}}],
    "links": [{"upstream": "rc.rp0", "downstream": "sw0", "gen": 4, "width": 16},
              {"upstream": "sw0.dsp0", "downstream": "ep0", "gen": 4, "width": 16}],
    "workloads": [{"name": "pf", "function": "ep0.pf", "size": "4KiB", "count": jobs,
                   "queue_depth": 8, "start": "manual"}],
}
out = {"vfs": n}
t = time.perf_counter()
sim = pciesim.from_dict(cfg)
out["elab_s"] = time.perf_counter() - t
out["rss_elab_mb"] = rss_mb()
t = time.perf_counter()
sim.boot()  # SystemC's end of elaboration, then the host's enumeration
out["boot_wall_s"] = time.perf_counter() - t
t, s0 = time.perf_counter(), sim.now
if n:
    assert sim.enable_vfs("ep0.pf", n) == 0
out["enable_wall_s"] = time.perf_counter() - t
out["enable_sim_ms"] = (sim.now - s0).ns / 1e6
out["rss_enabled_mb"] = rss_mb()
# Start the PF workload at the same simulated time at every N, so runs with
# and without VFs can be compared number for number.
sim.run_until(s0 + pciesim.ms(300))
t, s0 = time.perf_counter(), sim.now
sim.wait_workload("pf")
out["workload_wall_s"] = time.perf_counter() - t
out["workload_sim_us"] = (sim.now - s0).ns / 1e3
st = sim.stats()
assert st["workloads"]["pf"]["mismatches"] == 0 and st["workloads"]["pf"]["jobs"] == jobs
f = st["functions"]
out["pf_engine_steps"] = f["ep0.pf"]["dma"]["engine_steps"]
out["vf_engine_steps"] = sum(v["dma"]["engine_steps"] for k, v in f.items() if ".vf" in k)
assert sum(1 for k, v in f.items() if ".vf" in k and v["exists"]) == n
out["rss_final_mb"] = rss_mb()
print(json.dumps(out))
"""


def measure(n, jobs):
    p = subprocess.run([sys.executable, "-c", CHILD, str(n), str(jobs), str(ROOT / "python"),
                        str(ROOT / "build" / "python")], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"VFs={n}: {p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vfs", default="0,64,256,1024,4096,8192", help="VF counts (default %(default)s)")
    ap.add_argument("--jobs", type=int, default=2000, help="4 KiB PF copy jobs per point")
    ap.add_argument("--out", default=str(HERE / "sriov_scale.csv"), help="CSV output")
    a = ap.parse_args(argv)
    rows = [measure(int(n), a.jobs) for n in a.vfs.split(",") if n]
    with open(a.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    print(f"{'VFs':>5} {'elab ms':>8} {'RSS MB':>7} {'boot ms':>8} {'enable s':>9} {'RSS MB':>7} "
          f"{'PF run s':>9} {'sim us':>9} {'PF steps':>9} {'VF steps':>9}")
    for r in rows:
        print(f"{r['vfs']:>5} {r['elab_s'] * 1e3:>8.2f} {r['rss_elab_mb']:>7.1f} {r['boot_wall_s'] * 1e3:>8.2f} {r['enable_wall_s']:>9.3f} "
              f"{r['rss_enabled_mb']:>7.1f} {r['workload_wall_s']:>9.3f} {r['workload_sim_us']:>9.1f} "
              f"{r['pf_engine_steps']:>9} {r['vf_engine_steps']:>9}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Campaign throughput: runs per second of the shipped isolation campaign
(or another) with 1 and 2 workers, on the local pool and on a Dask
LocalCluster, and the scaling factor from 1 to 2 workers. Each
measurement starts from an empty results directory. Figures only.

    /usr/bin/python3 bench/campaign_throughput.py [--campaign FILE] [--sample N]
"""
import argparse
import pathlib
import tempfile
import time

from pciesim import campaign

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaign", default=str(ROOT / "configs/campaigns/isolation.yaml"))
    ap.add_argument("--sample", type=int, default=None, help="run this many of its runs")
    a = ap.parse_args()
    c = campaign.load_campaign(a.campaign)
    if a.sample:
        c.sample = a.sample
    print(f"campaign {c.name} ({a.campaign})")
    print("| executor | workers | runs | wall | runs/s | scaling |")
    print("|---|---:|---:|---:|---:|---:|")
    for executor in ("local", "dask"):
        base = None
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                s = campaign.run_campaign(c, d, workers=workers, dask=executor == "dask",
                                          progress=False)
                wall = time.perf_counter() - t0
            rate = s["ran"] / wall
            base = base or rate
            print(f"| {executor} | {workers} | {s['ran']} | {wall:.1f} s | {rate:.1f} | "
                  f"{rate / base:.2f} |")


if __name__ == "__main__":
    main()

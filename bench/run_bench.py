#!/usr/bin/env python3
"""Bandwidth / latency / speed sweep of pciesim's DMA path.

Each point simulates a saturated stream of DMA operations of one size (the
device writes host memory, or reads it) on a root complex -> switch ->
endpoint system with both links at the same generation and width, and
reports the steady-state effective bandwidth next to the analytic PCIe
overhead model, the per-operation latency, and how fast the simulator ran:
simulated/wall time and device TLPs per wall-second, compared with a bare
TLM b_transport loop measured in the same run.

    ./build.sh bench                         # default sweep (~20 seconds)
    ./build.sh bench --links 3x8 --sizes 64,4096 --directions write
    ./build.sh bench --help

Output: CSV (default bench/results.csv) and a PNG plot (bench/bandwidth.png).
"""
import argparse
import csv
import math
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "python"), str(ROOT / "build" / "python")]

import pciesim  # noqa: E402
import _pciesim  # noqa: E402

COLUMNS = ["gen", "lanes", "mps", "mrrs", "direction", "size_bytes", "effective_gbps",
           "analytic_gbps", "error_pct", "mean_latency_ns", "p99_latency_ns", "idle_latency_ns", "sim_time_us",
           "wall_s", "sim_per_wall", "wall_ms_per_sim_ms", "tlps", "tlps_per_wall_s", "bare_tlm_tx_per_s", "speed_ratio"]


def csv_ints(text):
    return [int(x) for x in text.split(",") if x]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--links", default="3x8,4x16,5x16", help="gen x lanes list (default %(default)s)")
    p.add_argument("--mps", default="128,256,512", help="MPS values (default %(default)s)")
    p.add_argument("--mrrs", default="512,4096",
                   help="MRRS values for reads; writes use the first (default %(default)s)")
    p.add_argument("--sizes", default=",".join(str(64 << i) for i in range(11)),
                   help="transfer sizes in bytes (default 64..65536)")
    p.add_argument("--directions", default="write,read", help="write, read or both")
    p.add_argument("--bytes", type=int, default=32 << 20, help="bytes streamed per point (default 32 MiB)")
    p.add_argument("--completion-split", default="rcb", choices=["rcb", "mps"],
                   help="root complex read completions in RCB (64 B) or MPS pieces")
    p.add_argument("--out", default=str(HERE / "results.csv"), help="CSV output")
    p.add_argument("--plot", default=str(HERE / "bandwidth.png"), help="PNG output ('' = none)")
    p.add_argument("--reference-tx", type=int, default=20_000_000,
                   help="transactions of the bare TLM reference loop")
    return p.parse_args(argv)


def bare_tlm_rate(n):
    exe = ROOT / "build" / "bench" / "tlm_reference"
    out = subprocess.run([str(exe), str(n)], capture_output=True, text=True, check=True,
                         env={**os.environ, "SC_COPYRIGHT_MESSAGE": "DISABLE"}).stdout
    return float(out.split()[-1])


def config(gen, lanes, mps, mrrs, size, direction, total, split):
    job = min(total, 1 << 20)
    write = direction == "write"
    return {
        # The link-bound host: the sweep checks the PCIe model against its
        # closed form (pcie_bench_replay.py compares a calibrated platform
        # with measurements).
        "platform": "generic",
        "simulation": {"quantum": "1us", "max_time": "10s"},
        "host": {"mps": mps, "mrrs": mrrs, "ten_bit_tags": True},
        "root_complex": {"max_payload_supported": 512, "completion_split": split},
        "switches": [{"name": "sw0", "downstream_ports": 2}],
        "endpoints": [{"name": "ep0", "max_link_speed": 6, "max_link_width": 32,
                       "device_memory": "8MiB", "ten_bit_tags": True, "staging_buffer": "256KiB"}],
        "links": [{"upstream": "rc.rp0", "downstream": "sw0", "gen": gen, "width": lanes},
                  {"upstream": "sw0.dsp0", "downstream": "ep0", "gen": gen, "width": lanes}],
        "workloads": [{"name": "stream", "function": "ep0.pf", "size": job,
                       "count": max(1, total // job), "queue_depth": 4, "xfer_size": size,
                       "verify": False, "start": "manual",
                       "src": "device" if write else "host", "dst": "host" if write else "device"}],
    }


def idle_latency(gen, lanes, mps, mrrs, size, direction, split):
    """One operation alone in the system: the unloaded latency."""
    cfg = config(gen, lanes, mps, mrrs, size, direction, size, split)
    cfg["workloads"][0].update(size=size, count=1, queue_depth=1, xfer_size=0)
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        sim.wait_workload("stream")
        return sim.stat("functions.ep0.pf.dma.op_latency_ns.mean")


def run_point(gen, lanes, mps, mrrs, size, direction, args, bare):
    cfg = config(gen, lanes, mps, mrrs, size, direction, max(args.bytes, 64 * size), args.completion_split)
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        t0_sim = sim.now
        t0 = time.perf_counter()
        sim.wait_workload("stream")
        wall = time.perf_counter() - t0
        sim_us = (sim.now - t0_sim).us
        dma = sim.stat("functions.ep0.pf.dma")
    tlps = dma["read_requests"] + dma["write_requests"]
    chunk = 64 if args.completion_split == "rcb" else mps
    w, r = _pciesim.analytic_bandwidth(gen, lanes, mps, mrrs, chunk, size, False)
    analytic = w if direction == "write" else r
    eff = dma["steady_gbps"]
    return {
        "gen": gen, "lanes": lanes, "mps": mps, "mrrs": mrrs, "direction": direction,
        "size_bytes": size, "effective_gbps": round(eff, 3), "analytic_gbps": round(analytic, 3),
        "error_pct": round(100 * (eff - analytic) / analytic, 3),
        "mean_latency_ns": round(dma["op_latency_ns"]["mean"], 1),
        "p99_latency_ns": round(dma["op_latency_ns"]["p99"], 1),
        "idle_latency_ns": round(idle_latency(gen, lanes, mps, mrrs, size, direction,
                                              args.completion_split), 1),
        "sim_time_us": round(sim_us, 3), "wall_s": round(wall, 4),
        "sim_per_wall": round(sim_us * 1e-6 / wall, 6) if wall else 0,
        # The slowdown: wall-clock milliseconds per simulated millisecond.
        "wall_ms_per_sim_ms": round(wall / (sim_us * 1e-6), 2) if sim_us else 0,
        "tlps": tlps, "tlps_per_wall_s": round(tlps / wall) if wall else 0,
        "bare_tlm_tx_per_s": round(bare), "speed_ratio": round(tlps / wall / bare, 4) if wall else 0,
    }


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    links = sorted({(r["gen"], r["lanes"]) for r in rows})
    fig, axes = plt.subplots(1, len(links), figsize=(6 * len(links), 4.6), squeeze=False)
    for ax, (gen, lanes) in zip(axes[0], links):
        series = {}
        for r in rows:
            if (r["gen"], r["lanes"]) != (gen, lanes):
                continue
            key = (r["direction"], r["mps"], r["mrrs"] if r["direction"] == "read" else None)
            series.setdefault(key, []).append(r)
        for (direction, mps, mrrs), pts in sorted(series.items(), key=lambda kv: str(kv[0])):
            pts.sort(key=lambda r: r["size_bytes"])
            x = [r["size_bytes"] for r in pts]
            label = f"{direction} MPS {mps}" + (f" MRRS {mrrs}" if mrrs else "")
            line, = ax.plot(x, [r["effective_gbps"] for r in pts], marker="o", ms=3, label=label)
            ax.plot(x, [r["analytic_gbps"] for r in pts], ls=":", color=line.get_color(), lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("transfer size (bytes)")
        ax.set_ylabel("effective bandwidth (Gb/s)")
        ax.set_title(f"Gen{gen} x{lanes} (dotted: analytic model)")
        ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    links = [tuple(int(v) for v in l.split("x")) for l in args.links.split(",") if l]
    dirs = [d for d in args.directions.split(",") if d]
    for d in dirs:
        if d not in ("write", "read"):
            sys.exit(f"run_bench: unknown direction '{d}' (write, read)")
    # The machine's speed drifts (shared cores): the median of three runs.
    bare = sorted(bare_tlm_rate(args.reference_tx) for _ in range(3))[1]
    print(f"bare TLM b_transport loop: {bare / 1e6:.1f} M transactions per wall-second", flush=True)
    rows = []
    mrrs_list = csv_ints(args.mrrs)
    with open(args.out, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=COLUMNS)
        out.writeheader()
        for gen, lanes in links:
            for mps in csv_ints(args.mps):
                for direction in dirs:
                    for mrrs in (mrrs_list if direction == "read" else mrrs_list[:1]):
                        for size in csv_ints(args.sizes):
                            row = run_point(gen, lanes, mps, mrrs, size, direction, args, bare)
                            rows.append(row)
                            out.writerow(row)
                            f.flush()
                            print(f"Gen{gen} x{lanes:<2} MPS {mps:4} MRRS {mrrs:4} {direction:5} "
                                  f"{size:6} B: {row['effective_gbps']:8.2f} Gb/s "
                                  f"(analytic {row['analytic_gbps']:8.2f}, {row['error_pct']:+.2f}%) "
                                  f"lat {row['mean_latency_ns']:9.1f}/{row['p99_latency_ns']:9.1f} ns "
                                  f"(idle {row['idle_latency_ns']:7.1f})  "
                                  f"{row['tlps_per_wall_s'] / 1e6:5.2f} M TLP/s "
                                  f"({row['speed_ratio']:.3f} of bare TLM)", flush=True)
    worst = max(rows, key=lambda r: abs(r["error_pct"]))
    def speed(pick):
        v = sorted(r["speed_ratio"] for r in rows if pick(r))
        return f"median {v[len(v) // 2]:.3f}, best {v[-1]:.3f}" if v else "-"
    print(f"\nspeed vs bare TLM: writes {speed(lambda r: r['direction'] == 'write')} "
          f"(>= 4 KiB: {speed(lambda r: r['direction'] == 'write' and r['size_bytes'] >= 4096)}); "
          f"reads {speed(lambda r: r['direction'] == 'read')}")
    # Ratio to the bare TLM loop per direction and size (median over the
    # links and MPS values of the sweep), and the slowdown of the widest link.
    print("speed per direction and size (TLPs/s over the bare loop's transactions/s; "
          "wall ms per simulated ms on the widest link):")
    widest = max((r["gen"], r["lanes"]) for r in rows)
    for d in dirs:
        for size in csv_ints(args.sizes):
            pts = [r for r in rows if r["direction"] == d and r["size_bytes"] == size]
            if not pts:
                continue
            ratios = sorted(r["speed_ratio"] for r in pts)
            slow = sorted(r["wall_ms_per_sim_ms"] for r in pts if (r["gen"], r["lanes"]) == widest)
            print(f"  {d:5} {size:6} B: {ratios[len(ratios) // 2]:.3f} of bare TLM"
                  + (f", Gen{widest[0]} x{widest[1]} {slow[len(slow) // 2]:.1f} ms/ms" if slow else ""))
    print(f"{len(rows)} points -> {args.out}; worst bandwidth error {worst['error_pct']:+.2f}% "
          f"(Gen{worst['gen']} x{worst['lanes']} {worst['direction']} {worst['size_bytes']} B)")
    if args.plot:
        plot(rows, args.plot)
        print(f"plot -> {args.plot}")


if __name__ == "__main__":
    main()

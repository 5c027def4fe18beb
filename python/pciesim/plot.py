"""Plots of a stats JSON (``pciesim run --stats``) with time series
(``simulation.sample_interval``): per-link utilisation over time, per-function
DMA throughput over time and latency distributions, to one PNG.

    pciesim plot STATS.json [-o OUT.png] [--links GLOB] [--functions GLOB]
    /usr/bin/python3 -m pciesim.plot STATS.json -o OUT.png

or from Python: ``pciesim.plot.plot_stats(stats_dict, "out.png")``.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from typing import Optional

__all__ = ["plot_stats", "main"]


class PlotError(ValueError):
    pass


def _series(stats: dict):
    s = stats.get("series")
    if not s:
        raise PlotError(
            "these stats have no time series: run with simulation.sample_interval set, e.g. "
            "pciesim run CONFIG --set simulation.sample_interval=1us --stats STATS.json")
    t_us = [t / 1000.0 for t in s["t_ns"]]
    by = {}
    for key, values in s["signals"].items():
        comp, _, name = key.partition("/")
        by.setdefault(comp, {})[name] = values
    return t_us, by


def plot_stats(stats: dict, out: str, links: str = "*", functions: str = "*") -> str:
    """Draws the figure to `out` (PNG); returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t_us, by = _series(stats)
    link_names = sorted(c for c, v in by.items()
                        if any(k.endswith(".utilisation") for k in v) and fnmatch.fnmatch(c, links))
    fn_names = sorted(c for c, v in by.items() if "read_gbps" in v and fnmatch.fnmatch(c, functions))
    fig, axes = plt.subplots(3, 1, figsize=(11, 11))
    ax = axes[0]
    for c in link_names:
        for d in ("down", "up"):
            v = by[c].get(d + ".utilisation")
            if v and any(x for x in v if x):
                ax.plot(t_us, [x if x is not None else float("nan") for x in v],
                        label=f"{c} {d}", lw=1)
    ax.set_title("Link utilisation per direction")
    ax.set_ylabel("fraction of the wire busy")
    ax.set_xlabel("simulated time (us)")
    ax.set_ylim(0, 1.05)
    if ax.lines:
        ax.legend(fontsize=7, ncol=2)
    ax = axes[1]
    for c in fn_names:
        rd, wr = by[c].get("read_gbps"), by[c].get("write_gbps")
        tot = [(a or 0) + (b or 0) for a, b in zip(rd, wr)]
        if any(tot):
            ax.plot(t_us, tot, label=c, lw=1)
    ax.set_title("DMA throughput per function (reads + writes)")
    ax.set_ylabel("Gb/s")
    ax.set_xlabel("simulated time (us)")
    if ax.lines:
        ax.legend(fontsize=7, ncol=2)
    ax = axes[2]
    for name, f in sorted(stats.get("functions", {}).items()):
        if not fnmatch.fnmatch(name, functions):
            continue
        for key, label in (("op_latency_ns", "operation"), ("read_latency_ns", "read")):
            h = f.get("dma", {}).get(key, {})
            cdf = h.get("cdf")
            if cdf:
                ax.plot([v for _, v in cdf], [p / 100 for p, _ in cdf], marker=".",
                        label=f"{name} {label}", lw=1)
    ax.set_xscale("log")
    ax.set_title("Latency distributions (cumulative)")
    ax.set_xlabel("latency (ns)")
    ax.set_ylabel("fraction of requests")
    if ax.lines:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="pciesim plot", description=__doc__.split("\n\n")[0])
    p.add_argument("stats", help="stats JSON written by pciesim run --stats")
    p.add_argument("-o", "--output", help="PNG to write (default: STATS with .png)")
    p.add_argument("--links", default="*", help="glob over link names")
    p.add_argument("--functions", default="*", help="glob over function names")
    a = p.parse_args(argv)
    try:
        with open(a.stats) as f:
            stats = json.load(f)
    except (OSError, ValueError) as e:
        print(f"pciesim plot: cannot read {a.stats}: {e}", file=sys.stderr)
        return 2
    out = a.output or (a.stats[:-5] if a.stats.endswith(".json") else a.stats) + ".png"
    try:
        plot_stats(stats, out, a.links, a.functions)
    except PlotError as e:
        print(f"pciesim plot: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"pciesim plot: cannot write {out}: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

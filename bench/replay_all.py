#!/usr/bin/env python3
"""Replay every pcie-bench CSV of a calibration directory and summarise.

    ./build.sh bench replay [DIR ...]     # default: ../shared/calibration/pcie-bench/*/

For every machine directory (one per pcie-bench run: CSVs plus sys-*.txt)
this runs bench/pcie_bench_replay.py on each CSV, writing SIM CSVs and plots
into bench/replay/<run>/, then prints and writes (bench/replay/summary.md)
the error per experiment class next to the acceptance bounds of
docs/timing.md ("Calibration"):

- bandwidth, aligned transfers of 256 B and more (SZ and HO multiples of
  64, DO 0): +-3 %
- bandwidth, unaligned and small transfers: +-10 %
- idle DMA read latency, 8 B .. 2 KiB: +-10 %
- IOTLB window sweep (IOMMU on without super pages, bw_dma_win_sweep_*):
  +-15 %
Rows marked with a note (device-side offsets, failures) are listed apart.
"""
import argparse
import csv
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT = ROOT.parent / "shared" / "calibration" / "pcie-bench"

CLASSES = [
    ("bandwidth, aligned >= 256 B", 3.0),
    ("bandwidth, unaligned or < 256 B", 10.0),
    ("read latency 8 B .. 2 KiB", 10.0),
    ("IOTLB window sweep (no super pages)", 15.0),
    ("write-read latency (not an acceptance item)", None),
    ("reads and writes at once (not an acceptance item)", None),
]


def classify(name, row, iommu_nosp):
    test = row["Test"]
    if test == "LAT_DMA_WRRD":
        return 4
    if test == "BW_DMA_RW":
        return 5
    if test == "LAT_DMA_RD":
        return 2 if 8 <= int(row["SZ"]) <= 2048 else None
    if "win_sweep" in name and iommu_nosp:
        return 3
    size, ho = int(row["SZ"]), int(row.get("HO", 0) or 0)
    return 0 if size >= 256 and size % 64 == 0 and ho % 64 == 0 else 1


def error_figure(errs, path):
    """Error against transfer size (bandwidth: aligned / unaligned; read
    latency) and against the window (IOTLB sweep), with the bounds."""
    import re
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def pts(i, key):
        xs, ys = [], []
        for _, e, label in errs[i]:
            m = re.search(rf"{key} (\d+(?:\.\d+)?)", label)
            if m:
                xs.append(float(m.group(1)))
                ys.append(e)
        return xs, ys
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, (i, key, title, xl) in zip(axes, [
            ((0, 1), "sz", "bandwidth error per size", "transfer size (bytes)"),
            ((2,), "sz", "idle read latency error per size", "transfer size (bytes)"),
            ((3,), "win", "IOTLB window sweep error", "window (bytes)")]):
        for c in i:
            x, y = pts(c, key)
            ax.scatter(x, y, s=8, alpha=0.6, label=CLASSES[c][0])
            b = CLASSES[c][1]
            ax.axhline(b, color="grey", lw=0.6, ls="--")
            ax.axhline(-b, color="grey", lw=0.6, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_title(title)
        ax.set_xlabel(xl)
        ax.set_ylabel("pciesim vs measured (%)")
        ax.set_ylim(-60, 60)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="*", help="pcie-bench run directories (default: every one under %s)" % DEFAULT)
    p.add_argument("--out", default=str(HERE / "replay"), help="output directory (default %(default)s)")
    p.add_argument("--platform", default=None, help="platform preset to replay on (default: the default)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    dirs = [pathlib.Path(d) for d in args.dirs] or sorted(d for d in DEFAULT.glob("*") if d.is_dir())
    if not dirs:
        sys.exit(f"replay_all: no pcie-bench runs under {DEFAULT}")
    out = pathlib.Path(args.out)
    errs = {i: [] for i in range(len(CLASSES))}
    noted = []
    for d in dirs:
        csvs = sorted(d.glob("*.csv"))
        if not csvs:
            print(f"{d}: no CSV files, skipped", file=sys.stderr)
            continue
        run_out = out / d.name
        run_out.mkdir(parents=True, exist_ok=True)
        cmdline = (d / "sys-kernel-cmdline.txt").read_text() if (d / "sys-kernel-cmdline.txt").exists() else ""
        nosp = "intel_iommu=on" in cmdline and "sp_off" in cmdline
        for f in csvs:
            sim_csv, png = run_out / f"sim_{f.name}", run_out / f"{f.stem}.png"
            cmd = [sys.executable, str(HERE / "pcie_bench_replay.py"), str(f), "--quiet",
                   "--out", str(sim_csv), "--plot", str(png)]
            if args.platform:
                cmd += ["--platform", args.platform]
            r = subprocess.run(cmd, capture_output=True, text=True)
            print(r.stdout.strip().splitlines()[0] if r.stdout.strip() else f"{f}: {r.stderr.strip()}", flush=True)
            if r.returncode != 0:
                noted.append(f"{f}: replay failed: {r.stderr.strip()[-300:]}")
                continue
            for row in csv.DictReader(open(sim_csv)):
                c = classify(f.name, row, nosp)
                if c is None:
                    continue
                if row["note"] or row["error_pct"] == "":
                    noted.append(f"{d.name}/{f.name}: {row['Test']} {row['Cache']} HO {row.get('HO')} "
                                 f"DO {row.get('DO')} win {row['WinSZ']} sz {row['SZ']}: {row['note']}")
                    continue
                errs[c].append((abs(float(row["error_pct"])), float(row["error_pct"]),
                                f"{d.name}/{f.name} {row['Test']} {row['PAT']} {row['Cache']} HO {row.get('HO')} "
                                f"win {row['WinSZ']} sz {row['SZ']}"))
    lines = ["| experiments | rows | median abs error | worst | within bound | bound |", "|---|---:|---:|---|---:|---:|"]
    for i, (name, bound) in enumerate(CLASSES):
        e = sorted(errs[i])
        if not e:
            continue
        inside = sum(1 for a, _, _ in e if bound is None or a <= bound)
        worst = e[-1]
        lines.append(f"| {name} | {len(e)} | {e[len(e) // 2][0]:.1f} % | {worst[1]:+.1f} % ({worst[2]}) | "
                     f"{inside}/{len(e)} | {'+-%g %%' % bound if bound else '-'} |")
    text = "\n".join(lines)
    error_figure(errs, out / "errors.png")
    print("\n" + text)
    if noted:
        print(f"\n{len(noted)} rows not compared (device-side offsets, failures); first: {noted[0]}")
    text = text.replace(DEFAULT.name + "/", "")
    for d in dirs:
        text = text.replace(d.name + "/", ("IOMMU-nosp " if "nosp" in d.name else "") + "")
    (out / "summary.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""What tracing costs: wall time and file size of one config run untraced,
with each trace output, and with all of them (docs/observability.md).

    ./build.sh bench trace [--config configs/sriov_64vfs.yaml] [--repeat 3]

Reports the median wall time of `--repeat` runs per mode and the ratio to
the untraced run, measured in this run (no hard-coded reference)."""
import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "quickstart.yaml"))
    p.add_argument("--bin", default=os.environ.get("PCIESIM_BIN", str(ROOT / "build" / "pciesim")))
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    if a.repeat < 1:
        p.error("--repeat must be at least 1")
    with tempfile.TemporaryDirectory() as d:
        d = pathlib.Path(d)
        modes = [
            ("none", []),
            ("jsonl", ["--trace", d / "t.jsonl"]),
            ("perfetto", ["--trace-perfetto", d / "t.pftrace"]),
            ("vcd", ["--vcd", d / "t.vcd"]),
            ("series 1us", ["--set", "simulation.sample_interval=1us", "--stats", d / "s.json"]),
            ("all", ["--trace", d / "t.jsonl", "--trace-perfetto", d / "t.pftrace",
                     "--vcd", d / "t.vcd", "--set", "simulation.sample_interval=1us",
                     "--stats", d / "s.json"]),
        ]
        base = None
        print(f"config: {a.config}")
        print(f"{'mode':<12} {'wall_s':>8} {'x untraced':>10}  files")
        for name, extra in modes:
            walls = []
            for _ in range(a.repeat):
                for f in d.iterdir():
                    f.unlink()
                t0 = time.monotonic()
                r = subprocess.run([a.bin, "run", a.config, "-q", *map(str, extra)],
                                   capture_output=True, text=True,
                                   env={**os.environ, "SC_COPYRIGHT_MESSAGE": "DISABLE"})
                walls.append(time.monotonic() - t0)
                if r.returncode not in (0, 1):
                    sys.exit(f"{name}: exit {r.returncode}: {r.stderr.strip()}")
            wall = statistics.median(walls)
            base = base or wall
            sizes = ", ".join(f"{f.name} {f.stat().st_size / 1e6:.1f} MB"
                              for f in sorted(d.iterdir()))
            print(f"{name:<12} {wall:8.2f} {wall / base:10.2f}  {sizes}")


if __name__ == "__main__":
    main()

"""pciesim campaign FILE [--workers N] [--dask | --scheduler tcp://host:port] [--out DIR]
pciesim campaign report RESULTS [--plots DIR]

(also: /usr/bin/python3 -m pciesim.campaign ...)"""
from __future__ import annotations

import argparse
import sys

from .execute import run_campaign
from .report import report
from .spec import CampaignError


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        ap = argparse.ArgumentParser(prog="pciesim campaign report",
                                     description="Summarise a campaign's results")
        ap.add_argument("results", help="the campaign's output directory or results.sqlite")
        ap.add_argument("--plots", help="where the PNG plots go (default: next to the results)")
        a = ap.parse_args(argv[1:])
        try:
            print(report(a.results, a.plots), end="")
        except FileNotFoundError as e:
            print(f"pciesim campaign report: {e}", file=sys.stderr)
            return 2
        return 0
    ap = argparse.ArgumentParser(prog="pciesim campaign",
                                 description="Run a fault / parameter campaign (docs/campaigns.md)")
    ap.add_argument("file", help="the campaign (YAML)")
    ap.add_argument("--workers", type=int, default=1, help="simulations at a time (default 1)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--dask", action="store_true", help="run on a Dask LocalCluster")
    g.add_argument("--scheduler", help="run on the Dask scheduler at tcp://host:port")
    ap.add_argument("--out", default=None, help="results directory (default: <name>-results)")
    ap.add_argument("--limit", type=int, default=None, help="run at most this many new runs")
    ap.add_argument("--trace", action="store_true", help="keep each run's TLP trace")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no table")
    a = ap.parse_args(argv)
    if a.workers < 1:
        ap.error(f"--workers must be at least 1, got {a.workers}")
    try:
        from .spec import load_campaign
        c = load_campaign(a.file)
        out = a.out or f"{c.name}-results"
        s = run_campaign(c, out, workers=a.workers, dask=a.dask, scheduler=a.scheduler,
                         progress=None if not a.quiet else False, limit=a.limit, trace=a.trace)
    except CampaignError as e:
        print(f"pciesim campaign: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pciesim campaign: interrupted; finished runs are kept, run it again to resume",
              file=sys.stderr)
        return 130
    print(f"{s['campaign']}: {s['runs']} runs, {s['ran']} run now, {s['skipped']} done before; "
          f"{s['wall_s']:.1f} s; results {s['database']} and {s['csv']}")
    if not a.quiet:
        print(report(s["out"]), end="")
    bad = sum(s["outcomes"].get(o, 0) for o in ("crash", "invalid"))
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())

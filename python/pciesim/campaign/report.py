"""A campaign's results: the summary table (outcome x fault kind, outcome x
location), the runs that need a look (isolation escapes, silent
corruptions, crashes, hangs) with their reproducer, and plots (matplotlib
PNG: outcome shares per fault kind, recovery time distribution)."""
from __future__ import annotations

import pathlib
import sqlite3
from typing import Optional

from .runner import OUTCOMES

ATTENTION = ["isolation_escape", "silent_corruption", "crash", "hang", "invalid"]


def load(results) -> "pandas.DataFrame":
    import pandas as pd
    p = pathlib.Path(results)
    if p.is_dir():
        p = p / "results.sqlite"
    if not p.exists():
        raise FileNotFoundError(f"{p}: no results database (run the campaign first)")
    with sqlite3.connect(str(p)) as db:
        return pd.read_sql_query("SELECT * FROM runs ORDER BY campaign, idx", db)


def _table(df, by: str) -> str:
    import pandas as pd
    if df.empty:
        return "(no runs)\n"
    cols = [o for o in OUTCOMES if o in set(df["outcome"])] + \
        sorted(set(df["outcome"]) - set(OUTCOMES))
    t = pd.crosstab(df[by].replace("", "(none)"), df["outcome"]).reindex(columns=cols,
                                                                         fill_value=0)
    t["total"] = t.sum(axis=1)
    return t.to_string() + "\n"


def summary(df) -> str:
    out = []
    for name, g in df.groupby("campaign"):
        counts = g["outcome"].value_counts()
        out.append(f"campaign {name}: {len(g)} runs, " +
                   ", ".join(f"{counts.get(o, 0)} {o}" for o in OUTCOMES if counts.get(o, 0)) +
                   f"; {g['wall_s'].sum():.1f} s of simulator wall time")
        out.append("")
        out.append("outcome by fault kind:")
        out.append(_table(g, "fault_kind"))
        out.append("outcome by location:")
        out.append(_table(g, "location"))
        bad = g[g["outcome"].isin(ATTENTION)]
        if bad.empty:
            out.append("no isolation escape, silent corruption, crash or hang")
        else:
            out.append("runs to look at:")
            for _, r in bad.iterrows():
                out.append(f"  {r['outcome']}: {r['fault_kind'] or '-'} at {r['location'] or '-'} "
                           f"inputs {r['inputs']}: {r['detail']}")
                out.append(f"    reproduce: {r['reproducer']}")
        out.append("")
    return "\n".join(out)


def plots(df, out_dir) -> list:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    if df.empty:
        return files
    t = pd.crosstab(df["fault_kind"].replace("", "(none)"), df["outcome"], normalize="index")
    cols = [o for o in OUTCOMES if o in t.columns] + sorted(set(t.columns) - set(OUTCOMES))
    t = t[cols]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(t) + 3), 4.5))
    t.plot.bar(stacked=True, ax=ax, width=0.8)
    ax.set_ylabel("share of runs")
    ax.set_xlabel("fault kind")
    ax.set_title("Outcome per fault kind")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    f = out_dir / "outcomes_by_kind.png"
    fig.savefig(f, dpi=100)
    plt.close(fig)
    files.append(f)
    rec = df["recovery_ns"].dropna()
    fig, ax = plt.subplots(figsize=(6, 4))
    if len(rec):
        ax.hist(rec / 1e3, bins=min(30, max(5, len(rec))))
    ax.set_xlabel("recovery time (us, the longest recovery of a run)")
    ax.set_ylabel("runs")
    ax.set_title(f"Recovery time ({len(rec)} runs with a recovery)")
    fig.tight_layout()
    f = out_dir / "recovery_time.png"
    fig.savefig(f, dpi=100)
    plt.close(fig)
    files.append(f)
    return files


def report(results, plot_dir: Optional[str] = None) -> str:
    df = load(results)
    text = summary(df)
    if plot_dir is None:
        p = pathlib.Path(results)
        plot_dir = p if p.is_dir() else p.parent
    for f in plots(df, plot_dir):
        text += f"plot: {f}\n"
    return text

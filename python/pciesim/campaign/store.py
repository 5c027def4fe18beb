"""The results database of a campaign: one SQLite row per finished run,
committed as it finishes (an interrupted campaign loses at most the runs in
flight and resumes where it stopped: runs are keyed by their inputs)."""
from __future__ import annotations

import csv
import json
import pathlib
import sqlite3
from typing import Any, Dict, Iterable, List

COLUMNS = [
    ("key", "TEXT PRIMARY KEY"), ("campaign", "TEXT"), ("idx", "INTEGER"), ("inputs", "TEXT"),
    ("fault_kind", "TEXT"), ("location", "TEXT"), ("fault", "TEXT"), ("outcome", "TEXT"),
    ("detail", "TEXT"), ("exit_code", "INTEGER"), ("wall_s", "REAL"), ("build", "TEXT"),
    ("sim_time_ns", "REAL"), ("fault_fired", "INTEGER"), ("aer_correctable", "INTEGER"),
    ("aer_non_fatal", "INTEGER"), ("aer_fatal", "INTEGER"), ("recoveries", "INTEGER"),
    ("recovery_ns", "REAL"), ("verified_bytes", "INTEGER"), ("mismatches", "INTEGER"),
    ("engine_errors", "INTEGER"), ("checks_failed", "INTEGER"), ("reproducer", "TEXT"),
]
NAMES = [c for c, _ in COLUMNS]


class Store:
    def __init__(self, path: pathlib.Path):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path))
        self.db.execute("PRAGMA journal_mode=WAL")  # a kill mid-write loses nothing committed
        self.db.execute(f"CREATE TABLE IF NOT EXISTS runs ({', '.join(f'{c} {t}' for c, t in COLUMNS)})")
        self.db.commit()

    def done(self, campaign: str) -> set:
        return {r[0] for r in self.db.execute("SELECT key FROM runs WHERE campaign = ?",
                                              (campaign,))}

    def add(self, campaign: str, row: Dict[str, Any]) -> None:
        vals = []
        for c in NAMES:
            v = campaign if c == "campaign" else row.get(c)
            if isinstance(v, (dict, list)):
                v = json.dumps(v, sort_keys=True)
            vals.append(v)
        self.db.execute(f"INSERT OR REPLACE INTO runs ({', '.join(NAMES)}) VALUES "
                        f"({', '.join('?' * len(NAMES))})", vals)
        self.db.commit()

    def rows(self, campaign: str = None) -> List[Dict[str, Any]]:
        q = f"SELECT {', '.join(NAMES)} FROM runs"
        args: Iterable = ()
        if campaign:
            q += " WHERE campaign = ?"
            args = (campaign,)
        q += " ORDER BY campaign, idx"
        return [dict(zip(NAMES, r)) for r in self.db.execute(q, tuple(args))]

    def export_csv(self, path: pathlib.Path, campaign: str = None) -> None:
        rows = self.rows(campaign)
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=NAMES)
            w.writeheader()
            w.writerows(rows)

    def close(self):
        self.db.close()

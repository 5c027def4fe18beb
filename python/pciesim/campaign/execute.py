"""Running a campaign: expansion, resume, the executors (a local pool of
worker threads that each drive one simulator process, a Dask LocalCluster,
or an existing Dask scheduler), the progress bar, the results."""
from __future__ import annotations

import collections
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, Dict, List, Optional

from .runner import OUTCOMES, execute
from .spec import Campaign, CampaignError, load_campaign
from .store import Store


def simulator_binary() -> str:
    """The pciesim binary: $PCIESIM_BIN, else the build tree next to this
    package, else `pciesim` on PATH."""
    env = os.environ.get("PCIESIM_BIN")
    if env:
        return env
    here = pathlib.Path(__file__).resolve().parents[3] / "build" / "pciesim"
    if here.exists():
        return str(here)
    found = shutil.which("pciesim")
    if not found:
        raise CampaignError("cannot find the pciesim binary (build it, or set PCIESIM_BIN)")
    return found


def build_hash(binary: str) -> str:
    h = hashlib.sha256()
    with open(binary, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def targets(binary: str, campaign: Campaign, tmp: pathlib.Path) -> Dict[str, Any]:
    """Fault kinds and the places they apply to in the base config
    (`pciesim targets`)."""
    import yaml
    tmp.mkdir(parents=True, exist_ok=True)
    base = tmp / "base.yaml"
    base.write_text(yaml.safe_dump(campaign.base, sort_keys=False))
    p = subprocess.run([binary, "targets", str(base)], capture_output=True, text=True,
                       env={**os.environ, "SC_COPYRIGHT_MESSAGE": "DISABLE"})
    if p.returncode != 0:
        raise CampaignError(f"{campaign.source}: the base config does not load: "
                            f"{(p.stderr or p.stdout).strip()}")
    return json.loads(p.stdout)


class Progress:
    """A tqdm bar with counts per outcome on a terminal; nothing otherwise."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.counts = collections.Counter()
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, initial=done, unit="run", dynamic_ncols=True,
                                file=sys.stderr)
            except ImportError:
                self.bar = None

    def update(self, outcome: str):
        self.counts[outcome] += 1
        if self.bar:
            self.bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in sorted(self.counts.items())),
                                     refresh=False)
            self.bar.update(1)

    def close(self):
        if self.bar:
            self.bar.close()


def run_campaign(campaign, out: str | os.PathLike = "campaign-out", *, workers: int = 1,
                 dask: bool = False, scheduler: Optional[str] = None, progress: Optional[bool] = None,
                 limit: Optional[int] = None, trace: bool = False,
                 on_result: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    """Runs every run of `campaign` (a Campaign, a file or a dict) not yet
    in OUT/results.sqlite; returns a summary. `workers` simulator processes
    at a time, on a local pool (default), a Dask LocalCluster (`dask`) or
    the Dask scheduler at `scheduler` (tcp://host:port). `limit`: stop
    after that many new runs (the rest stays for a resume)."""
    if not isinstance(campaign, Campaign):
        campaign = load_campaign(campaign)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise CampaignError(f"workers must be a positive integer, got {workers!r}")
    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    binary = os.path.abspath(simulator_binary())
    build = build_hash(binary)
    runs = campaign.runs(targets(binary, campaign, out / "tmp"), build)
    store = Store(out / "results.sqlite")
    done = store.done(campaign.name)
    pending = [r for r in runs if r.key not in done]
    if limit is not None:
        pending = pending[:limit]
    artifacts = out / "runs"
    jobs = [{"key": r.key, "index": r.index, "config": r.config, "inputs": r.inputs,
             "fault": r.fault, "binary": binary, "build": build, "artifacts": str(artifacts),
             "wall_time": campaign.wall_time, "outcomes": campaign.outcomes, "trace": trace}
            for r in pending]
    if progress is None:
        progress = sys.stderr.isatty()
    bar = Progress(len(runs), len(runs) - len([r for r in runs if r.key not in done]), progress)
    t0 = time.monotonic()

    def finish(row):
        store.add(campaign.name, row)
        bar.update(row["outcome"])
        if on_result:
            on_result(row)

    try:
        if dask or scheduler:
            _run_dask(jobs, workers, scheduler, finish)
        else:
            pool = ThreadPoolExecutor(max_workers=workers)
            try:
                futures = {pool.submit(execute, j): j for j in jobs}
                for f in as_completed(futures):
                    finish(_result_or_crash(f, futures[f]))
            except BaseException:
                # Ctrl-C: start nothing more; the runs in flight end with
                # their processes and are not recorded (a resume reruns them).
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
    finally:
        bar.close()
    wall = time.monotonic() - t0
    store.export_csv(out / "results.csv", campaign.name)
    rows = store.rows(campaign.name)
    store.close()
    counts = collections.Counter(r["outcome"] for r in rows)
    return {"campaign": campaign.name, "runs": len(runs), "ran": len(jobs),
            "skipped": len(runs) - len([r for r in runs if r.key not in done]),
            "outcomes": dict(counts), "wall_s": wall, "out": str(out),
            "database": str(out / "results.sqlite"), "csv": str(out / "results.csv")}


def _result_or_crash(future, job) -> Dict[str, Any]:
    try:
        return future.result()
    except Exception as e:  # the runner itself failed: the run is a result all the same
        fault = job.get("fault") or {}
        return {"key": job["key"], "idx": job["index"], "inputs": job["inputs"],
                "fault_kind": fault.get("kind", ""), "location": fault.get("where", ""),
                "fault": fault, "outcome": "crash", "detail": f"the run could not be executed: {e}",
                "exit_code": None, "wall_s": 0.0, "build": job["build"], "reproducer": ""}


def _run_dask(jobs, workers, scheduler, finish):
    try:
        from distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError:
        raise CampaignError("Dask is not installed (Debian: python3-distributed python3-dask)") \
            from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError, ValueError) as e:
            raise CampaignError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    try:
        futures = client.map(execute, jobs, pure=False, key=[f"run-{j['key']}" for j in jobs])
        by_key = {f.key: j for f, j in zip(futures, jobs)}
        for f in dask_completed(futures):
            finish(_result_or_crash(f, by_key[f.key]))
    finally:
        client.close()
        if cluster:
            cluster.close()


__all__ = ["run_campaign", "OUTCOMES", "simulator_binary", "build_hash"]

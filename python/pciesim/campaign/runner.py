"""One campaign run, in its own process, and the verdict on it
(docs/campaigns.md "Outcomes").

`execute(job)` is a pure function of the job (the whole config, the
simulator binary and its build hash): it writes the run's config into its
artifact directory, runs `pciesim run` on it with the campaign's wall-time
limit, and classifies what happened from the exit status and the stats.
It is importable by Dask workers and returns plain data.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import time
from typing import Any, Dict, List, Optional

import yaml

OUTCOMES = ["recovered", "error_reported", "silent_corruption", "isolation_escape", "hang",
            "crash", "invalid"]


def lookup(stats: Any, path: str):
    """A stats value by dotted path (list items by index; keys that contain
    dots, such as function names, are matched greedily)."""
    parts = path.split(".")
    node = stats
    i = 0
    while i < len(parts):
        if isinstance(node, list):
            try:
                node = node[int(parts[i])]
            except (ValueError, IndexError):
                return None
            i += 1
            continue
        if not isinstance(node, dict):
            return None
        for j in range(len(parts), i, -1):
            k = ".".join(parts[i:j])
            if k in node:
                node = node[k]
                i = j
                break
        else:
            return None
    return node


def _compare(value, o) -> bool:
    for op in ("equals", "not_equals", "less_than", "at_most", "greater_than", "at_least"):
        if op not in o:
            continue
        want = o[op]
        if value is None:
            return False
        try:
            if op == "equals":
                return value == want
            if op == "not_equals":
                return value != want
            v, w = float(value), float(want)
        except (TypeError, ValueError):
            return False
        return {"less_than": v < w, "at_most": v <= w, "greater_than": v > w,
                "at_least": v >= w}[op]
    return False


def owners(config: Dict[str, Any]) -> Dict[str, str]:
    """Function -> the VM it is assigned to at boot."""
    out = {}
    for vm in config.get("vms", []) or []:
        for fn in vm.get("functions", []) or []:
            out[fn] = vm.get("name", "")
    return out


def workload_vms(config: Dict[str, Any]) -> Dict[str, set]:
    own = owners(config)
    out = {}
    for w in config.get("workloads", []) or []:
        fns = w.get("functions") or ([w["function"]] if "function" in w else [])
        out[w.get("name", "")] = {own[f] for f in fns if f in own}
    return out


def classify(stats: Optional[Dict[str, Any]], rc: Optional[int], config: Dict[str, Any],
             fault: Optional[Dict[str, Any]], outcomes: List[Dict[str, Any]], stderr: str = ""):
    """(outcome, detail) of one run."""
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if rc is None:
        return "hang", "killed at the campaign's wall-time limit"
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return "crash", f"the simulator died ({name}) {tail}".strip()
    if rc == 2:
        return "invalid", f"the run's config was refused: {tail}"
    if rc not in (0, 1) or stats is None:
        return "crash", f"the simulator failed (exit {rc}): {tail}".strip()
    for o in outcomes:
        if _compare(lookup(stats, o["stat"]), o):
            return o["name"], f"{o['stat']} = {lookup(stats, o['stat'])}"
    wls = stats.get("workloads", {}) or {}
    aer = stats.get("aer", {}) or {}
    reported_errors = sum(int(aer.get(k, 0) or 0) for k in ("correctable", "non_fatal", "fatal"))
    engine_errors = sum(int(w.get("errors", 0) or 0) for w in wls.values())
    vms = (stats.get("iommu", {}) or {}).get("vms", {}) or {}
    stopped = [n for n, v in vms.items() if v.get("stopped")]
    failed_steps = [s for s in stats.get("scenario", []) if s.get("error")]
    failures = [f"{n}: {w['failure']}" for n, w in wls.items() if w.get("failure")]
    # The IOMMU's fault log is the host's (Linux: the DMAR fault handler).
    iommu_faults = int((stats.get("iommu", {}) or {}).get("faults", 0) or 0)
    reported = bool(reported_errors or engine_errors or stopped or failures or iommu_faults or
                    (stats.get("host", {}) or {}).get("reset_failures"))
    why = []
    if reported_errors:
        why.append(f"{reported_errors} AER error(s)")
    if engine_errors:
        why.append(f"{engine_errors} engine error(s)")
    if iommu_faults:
        why.append(f"{iommu_faults} IOMMU fault(s) logged")
    if stopped:
        why.append("VM stopped: " + ", ".join(stopped))
    if failed_steps:
        why.append(f"{len(failed_steps)} step(s) not carried out")
    why += failures[:2]
    time_limit = any(c.get("label") == "simulation" and not c.get("passed")
                     for c in stats.get("checks", []))
    unfinished = [n for n, w in wls.items() if not w.get("finished")]
    if time_limit and not stats.get("booted", True):
        return "hang", "simulation.max_time reached before the host finished booting"
    if time_limit and unfinished:
        return "hang", f"simulation.max_time reached with {', '.join(unfinished)} outstanding"
    own = owners(config)
    fault_vm = own.get(fault.get("where", "")) if fault else None
    wvms = workload_vms(config)
    corrupt = {n: int(w.get("mismatches", 0) or 0) for n, w in wls.items()
               if int(w.get("mismatches", 0) or 0)}
    if fault_vm:
        escaped = [n for n in corrupt if wvms.get(n) and fault_vm not in wvms[n]]
        if escaped:
            return "isolation_escape", (f"a fault in {fault_vm} ({fault['where']}) corrupted "
                                        f"{', '.join(escaped)} of another VM")
    if corrupt:
        what = ", ".join(f"{n}: {c} jobs" for n, c in corrupt.items())
        if not reported:
            return "silent_corruption", f"data differs and nothing reported it ({what})"
        return "error_reported", f"data differs ({what}), reported: " + "; ".join(why)
    expected = {}
    for w in config.get("workloads", []) or []:
        fns = w.get("functions") or [w.get("function")]
        expected[w.get("name")] = int(w.get("count", 1)) * len(fns)
    complete = all(w.get("finished") and not w.get("errors") and not w.get("stalled")
                   and not w.get("failure") and w.get("jobs") == expected.get(n, w.get("jobs"))
                   and w.get("verified_bytes", 0) == w.get("bytes", 0)
                   for n, w in wls.items() if w.get("started"))
    if complete and not failed_steps:
        return "recovered", ("reported and recovered: " + "; ".join(why) if reported
                             else "no visible effect" if fault else "no fault")
    if reported:
        return "error_reported", "; ".join(why)
    if any(w.get("stalled") for w in wls.values()):
        return "hang", "a workload made no progress and nothing was reported"
    return "silent_corruption", "work was lost and nothing reported it"


def key_stats(stats: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if not stats:
        return {}
    aer = stats.get("aer", {}) or {}
    wls = stats.get("workloads", {}) or {}
    armed = (stats.get("faults", {}) or {}).get("armed", []) or []
    durations = [e.get("duration_ns", 0) for e in aer.get("log", []) or []
                 if e.get("result") == "recovered"]
    return {
        "sim_time_ns": stats.get("sim_time_ns"),
        "fault_fired": armed[-1].get("fired", 0) if armed else 0,
        "aer_correctable": aer.get("correctable", 0),
        "aer_non_fatal": aer.get("non_fatal", 0),
        "aer_fatal": aer.get("fatal", 0),
        "recoveries": aer.get("recoveries", 0),
        "recovery_ns": max(durations) if durations else None,
        "verified_bytes": sum(int(w.get("verified_bytes", 0) or 0) for w in wls.values()),
        "mismatches": sum(int(w.get("mismatches", 0) or 0) for w in wls.values()),
        "engine_errors": sum(int(w.get("errors", 0) or 0) for w in wls.values()),
        "checks_failed": sum(1 for c in stats.get("checks", []) if not c.get("passed")),
    }


def execute(job: Dict[str, Any]) -> Dict[str, Any]:
    """Runs one job (a dict: key, index, config, inputs, fault, binary,
    build, artifacts, wall_time, outcomes, trace) and returns its row."""
    d = pathlib.Path(job["artifacts"]) / job["key"]
    d.mkdir(parents=True, exist_ok=True)
    cfg_path = d / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(job["config"], sort_keys=False))
    stats_path = d / "stats.json"
    if stats_path.exists():
        stats_path.unlink()
    cmd = [job["binary"], "run", str(cfg_path), "--stats", str(stats_path), "-q"]
    if job.get("trace"):
        cmd += ["--trace", str(d / "trace.jsonl")]
    env = {**os.environ, "SC_COPYRIGHT_MESSAGE": "DISABLE"}
    t0 = time.monotonic()
    rc: Optional[int]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=job["wall_time"], env=env)
        rc, stderr, stdout = p.returncode, p.stderr, p.stdout
    except subprocess.TimeoutExpired as e:
        rc = None
        stderr = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else \
            (e.stderr or "")
        stdout = ""
    wall = time.monotonic() - t0
    (d / "output.txt").write_text(stdout + stderr)
    stats = None
    if stats_path.exists():
        try:
            stats = json.loads(stats_path.read_text())
        except ValueError:
            stats = None
    outcome, detail = classify(stats, rc, job["config"], job.get("fault"),
                               job.get("outcomes", []), stderr)
    fault = job.get("fault") or {}
    return {
        "key": job["key"],
        "idx": job["index"],
        "inputs": job["inputs"],
        "fault_kind": fault.get("kind", ""),
        "location": fault.get("where", ""),
        "fault": fault,
        "outcome": outcome,
        "detail": detail,
        "exit_code": rc,
        "wall_s": round(wall, 3),
        "build": job["build"],
        **key_stats(stats),
        "reproducer": f"{job['binary']} run {cfg_path}",
    }

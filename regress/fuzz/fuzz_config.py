#!/usr/bin/env python3
"""Config fuzzer: structural mutations of the shipped configs and regression
cases, each validated and (when valid) run by the CLI with a bounded
simulated time and a wall-clock limit.

A finding is a crash (killed by a signal), a sanitizer report, a hang (the
wall-clock limit), an exit code other than 0/1/2, or exit 2 without the
CLI's own error prefix. Findings are written to regress/fuzz/found/ as
config files; test_found.py replays every file there.

    fuzz_config.py --seconds 60 --seed 1        # bounded run (CI)
    fuzz_config.py --iterations 500 --seed 7    # a fixed number of mutants
Deterministic for a seed and iteration count (wall-clock bounds only decide
when to stop).
"""
import argparse
import copy
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
FOUND = ROOT / "regress" / "fuzz" / "found"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: UndefinedBehaviorSanitizer")

EXTREMES = [0, -1, 1, 2, 3, 7, 64, 4095, 4096, 65535, 65536, 2**31, 2**32 - 1, 2**32, 2**63,
            2**64, -(2**63), 10**30, 0.5, -0.0, float("inf"), float("nan"), "", "x", "0ns",
            "1ms", "10s", "1e9s", "-5us", "4KiB", "16EiB", "ep0.pf", "ep0.vf9999", "rc.rp0",
            "sw0.dsp7", "03:00.0", "ff:1f.7", "sriov+0x10", "nope+4", True, False, None, [],
            {}, [1, 2], {"a": 1}, "\x00", "é", "a" * 300]


def corpus():
    files = sorted((ROOT / "configs").glob("*.yaml")) + sorted((ROOT / "regress" / "cases").glob("*.yaml"))
    docs = []
    for f in files:
        d = yaml.safe_load(f.read_text())
        if isinstance(d, dict) and d:
            docs.append((f.name, d))
    return docs


def paths(node, prefix=()):
    """Every (container, key) in the document, depth first."""
    out = []
    if isinstance(node, dict):
        for k in list(node):
            out.append((node, k, prefix + (k,)))
            out.extend(paths(node[k], prefix + (k,)))
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i, prefix + (i,)))
            out.extend(paths(node[i], prefix + (i,)))
    return out


def mutate(doc, rng):
    doc = copy.deepcopy(doc)
    for _ in range(rng.choice((1, 1, 2, 3))):
        spots = paths(doc)
        if not spots:
            break
        parent, key, _ = rng.choice(spots)
        op = rng.randrange(8)
        if op == 0:  # an extreme or wrongly-typed value
            parent[key] = copy.deepcopy(rng.choice(EXTREMES))
        elif op == 1:  # remove
            del parent[key]
        elif op == 2 and isinstance(parent, list):  # duplicate a list item
            parent.insert(key, copy.deepcopy(parent[key]))
        elif op == 3:  # a value from elsewhere in the document
            other = rng.choice(spots)
            if other[1] in other[0]:
                parent[key] = copy.deepcopy(other[0][other[1]])
        elif op == 4 and isinstance(parent, dict):  # an unknown key
            parent[key + "_x"] = parent[key]
        elif op == 5:  # numbers nudged across their limits
            v = parent[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                parent[key] = rng.choice((0, -1, 2**32))
            else:
                parent[key] = rng.choice((v + 1, v - 1, v * 2, -v, v * 1000))
        elif op == 6:  # wrap in a list / map
            parent[key] = rng.choice(([parent[key]], {"value": parent[key]}))
        else:  # list of many
            if isinstance(parent[key], list) and parent[key]:
                parent[key] = parent[key] * rng.choice((2, 8, 40))
    return doc


def run_cli(binary, args, timeout):
    env = dict(os.environ, SC_COPYRIGHT_MESSAGE="DISABLE")
    try:
        p = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout,
                           env=env, errors="replace")
    except subprocess.TimeoutExpired:
        return "hang", None
    out = p.stdout + p.stderr
    if p.returncode < 0:
        return f"killed by signal {-p.returncode}", out
    if any(m in out for m in SANITIZER_MARKS):
        return "sanitizer report", out
    if p.returncode not in (0, 1, 2):
        return f"exit {p.returncode}", out
    if p.returncode == 2 and "pciesim: " not in p.stderr:
        return "exit 2 without an error message", out
    return None, out


def check(binary, path, wall):
    """One config file through validate and (if valid) run."""
    why, out = run_cli(binary, ["validate", str(path)], wall)
    if why:
        return why, out
    if "valid (" not in out:
        return None, out  # refused with an error: fine
    return run_cli(binary, ["run", str(path), "-q", "--set", "simulation.max_time=20ms"], wall)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.environ.get("PCIESIM_BIN", str(ROOT / "build" / "pciesim")))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--iterations", type=int, default=0, help="stop after this many (0: time only)")
    ap.add_argument("--wall", type=float, default=30, help="wall-clock limit of one run, s")
    ap.add_argument("--work", default=None, help="scratch directory")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    docs = corpus()
    work = pathlib.Path(a.work or os.environ.get("TMPDIR", "/tmp")) / f"pciesim-fuzz-config-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    end = time.monotonic() + a.seconds
    n = findings = 0
    while time.monotonic() < end and (not a.iterations or n < a.iterations):
        name, doc = rng.choice(docs)
        mutant = mutate(doc, rng)
        path = work / f"m{n}.yaml"
        try:
            text = yaml.safe_dump(mutant, sort_keys=False, allow_unicode=True)
        except Exception:
            n += 1
            continue
        path.write_text(text)
        why, out = check(a.binary, path, a.wall)
        if why:
            findings += 1
            FOUND.mkdir(parents=True, exist_ok=True)
            keep = FOUND / f"config_seed{a.seed}_{n}.yaml"
            keep.write_text(f"# fuzz_config.py --seed {a.seed}: mutant {n} of {name}: {why}\n" + text)
            print(f"FINDING {keep.relative_to(ROOT)}: {why}\n{(out or '')[-2000:]}", flush=True)
        n += 1
    shutil.rmtree(work, ignore_errors=True)
    print(f"fuzz_config: {n} mutants, {findings} findings (seed {a.seed})")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

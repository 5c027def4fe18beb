#!/usr/bin/env python3
"""Host register-sequence fuzzer: random config and MMIO writes, resets, VF
enable/disable, bus-master and power changes and DMA between short runs,
through the Python API, on the shipped configs. One seed is one sequence,
run in a child process so that a crash is a result.

A finding is a crash (the child killed by a signal), a sanitizer report, a
hang (the wall-clock limit), an exception that is not the package's own
(pciesim.Error), or a completion-accounting violation at the end. Each
finding is written to regress/fuzz/found/ as a replayable sequence (JSON);
test_found.py replays them.

    fuzz_registers.py --seconds 60 --seed 1     # seeds 1, 2, 3 ... until time is up
    fuzz_registers.py --one 17 --steps 80       # one sequence, in this process
Deterministic per seed.
"""
import argparse
import json
import os
import pathlib
import random
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
FOUND = ROOT / "regress" / "fuzz" / "found"
CONFIGS = ["configs/sriov.yaml", "configs/p2p_acs.yaml", "configs/quickstart.yaml",
           "configs/migration.yaml"]
MIG_STATES = ("RUNNING", "RUNNING_P2P", "STOP", "STOP_COPY", "RESUMING", "PRE_COPY", "PRE_COPY_P2P")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
# Registers worth poking (offsets in config space; capability-relative ones
# are resolved per function from the capability lists).
HEADER = [0x04, 0x06, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24, 0x3C]
CAP_FIELDS = {0x10: [0x08, 0x0A, 0x10, 0x12], 0x11: [0x02], 0x01: [0x04]}  # exp, msix, pm
EXT_FIELDS = {0x10: [0x08, 0x10, 0x20, 0x24, 0x2C], 0x0D: [0x06], 0x01: [0x04, 0x08, 0x0C]}


def plan(seed, steps):
    """The sequence for a seed: a list of (action, args), independent of the run."""
    rng = random.Random(seed)
    seq = [("config", rng.choice(CONFIGS))]
    for _ in range(steps):
        r = rng.random()
        if r < 0.30:
            seq.append(("config_write", rng.randrange(1 << 16), rng.choice((1, 2, 4)),
                        rng.choice((0, 0xFFFFFFFF, rng.randrange(1 << 32), 1, 4, 6, 0x8000))))
        elif r < 0.40:
            seq.append(("config_read", rng.randrange(1 << 16), rng.choice((1, 2, 4))))
        elif r < 0.55:
            seq.append(("mmio_write", rng.randrange(1 << 16), rng.choice((0, 2)),
                        rng.randrange(0, 0x4000, 4), rng.randrange(1 << 32)))
        elif r < 0.60:
            seq.append(("mmio_read", rng.randrange(1 << 16), rng.choice((0, 2)),
                        rng.randrange(0, 0x4000, 4)))
        elif r < 0.66:
            seq.append(("reset", rng.randrange(1 << 16), rng.choice(("flr", "bare", "auto", "pm", "bus"))))
        elif r < 0.69:
            seq.append(("hot_reset", rng.randrange(1 << 16), rng.random() < 0.5))
        elif r < 0.75:
            seq.append(("vfs", rng.randrange(1 << 16), rng.choice((0, 1, 2, 8, 64, 9999))))
        elif r < 0.80:
            seq.append(("bus_master", rng.randrange(1 << 16), rng.random() < 0.5))
        elif r < 0.83:
            seq.append(("power", rng.randrange(1 << 16), rng.choice(("D0", "D3hot"))))
        elif r < 0.90:
            seq.append(("dma", rng.randrange(1 << 16), rng.randrange(1 << 20), rng.randrange(1 << 20),
                        rng.choice((1, 64, 4096, 65536)), rng.random() < 0.5, rng.random() < 0.5))
        elif r < 0.955:
            # VFIO migration: transitions, stream traffic (a saved stream,
            # cut or with a flipped byte), resets, queries, mailbox pokes.
            k = rng.random()
            if k < 0.35:
                seq.append(("mig_state", rng.randrange(1 << 16), rng.choice(MIG_STATES)))
            elif k < 0.50:
                seq.append(("mig_read", rng.randrange(1 << 16), rng.choice((1, 100, 1 << 20))))
            elif k < 0.65:
                seq.append(("mig_write", rng.randrange(1 << 16), rng.randrange(1 << 16),
                            rng.choice((0, 1, 2))))
            elif k < 0.72:
                seq.append(("mig_reset", rng.randrange(1 << 16)))
            elif k < 0.80:
                seq.append(("mig_query", rng.randrange(1 << 16)))
            elif k < 0.88:
                seq.append(("mig_fault", rng.choice(("save", "load", "suspend_initiator",
                                                     "suspend_responder", "get_state", "none")),
                            rng.choice(("error", "timeout"))))
            else:
                seq.append(("mailbox", rng.randrange(1 << 16), rng.randrange(0x800, 0x840, 4),
                            rng.choice((1, 2, 6, 7, 0xFFFFFFFF, rng.randrange(1 << 32)))))
        else:
            seq.append(("run", rng.choice(("1us", "10us", "100us", "1ms", "20ms"))))
    return seq


def register(sim, fn, pick):
    """A config offset in `fn`: a header register or a capability field."""
    caps = []
    pos = sim.config_read(fn, 0x34, size=1) & 0xFC
    for _ in range(48):
        if pos < 0x40:
            break
        cid = sim.config_read(fn, pos, size=1)
        caps += [pos + o for o in CAP_FIELDS.get(cid, [])]
        pos = sim.config_read(fn, pos + 1, size=1) & 0xFC
    pos = 0x100
    for _ in range(48):
        hdr = sim.config_read(fn, pos)
        if hdr in (0, 0xFFFFFFFF):
            break
        caps += [pos + o for o in EXT_FIELDS.get(hdr & 0xFFFF, [])]
        pos = hdr >> 20
        if pos < 0x100:
            break
    offsets = HEADER + caps
    return offsets[pick % len(offsets)]


def execute(seq, log=None):
    import pciesim
    _, config = seq[0]
    sim = pciesim.load(str(ROOT / config), overrides={"simulation.max_time": "100s"})
    saved = b""  # the last migration stream read, replayed (damaged) by mig_write
    try:
        sim.boot()
        vms = sim.stats().get("iommu", {}).get("vms", {})
        assigned = sorted({f for v in vms.values() for f in v["functions"]})
        for step in seq[1:]:
            fns = sim.functions()
            bridges = [f for f in fns if ".rp" in f or ".dsp" in f or ".usp" in f]
            act, pick = step[0], step[1] if len(step) > 1 and isinstance(step[1], int) else 0
            fn = fns[pick % len(fns)]
            if act.startswith("mig_") and assigned:
                fn = assigned[pick % len(assigned)]
            if log:
                log(step, fn)
            try:
                if act == "config_write":
                    _, _, size, value = step
                    off = register(sim, fn, value) & ~(size - 1)
                    sim.config_write(fn, off, value & ((1 << (8 * size)) - 1), size=size)
                elif act == "config_read":
                    sim.config_read(fn, register(sim, fn, pick) & ~(step[2] - 1), size=step[2])
                elif act == "mmio_write":
                    sim.mmio_write(fn, step[3], step[4], bar=step[2])
                elif act == "mmio_read":
                    sim.mmio_read(fn, step[3], bar=step[2])
                elif act == "reset":
                    if step[2] == "bare":
                        sim.flr(fn)
                    else:
                        sim.reset_function(fn, step[2])
                elif act == "hot_reset" and bridges:
                    sim.hot_reset(bridges[pick % len(bridges)], restore=step[2])
                elif act == "vfs":
                    sim.enable_vfs(fn, 0)
                    sim.enable_vfs(fn, step[2])
                elif act == "bus_master":
                    sim.bus_master(fn, step[2])
                elif act == "power":
                    sim.set_power_state(fn, step[2])
                elif act == "dma":
                    _, _, src, dst, length, sl, dl = step
                    sim.dma(fn, src, dst, length, src_local=sl, dst_local=dl, timeout="1ms")
                elif act == "mig_state":
                    sim.vfio(fn).set_state(step[2])
                elif act == "mig_read":
                    saved = (saved + sim.vfio(fn).read(step[2]))[-(4 << 20):]
                elif act == "mig_write":
                    _, _, where, how = step
                    data = bytearray(saved)
                    if how == 1 and data:
                        data = data[:where % len(data)]
                    elif how == 2 and data:
                        data[where % len(data)] ^= 0xFF
                    sim.vfio(fn).write(bytes(data))
                elif act == "mig_reset":
                    sim.vfio(fn).reset()
                elif act == "mig_query":
                    dev = sim.vfio(fn)
                    dev.data_size()
                    dev.precopy_info()
                elif act == "mig_fault":
                    for ep in {f.split(".")[0] for f in fns}:
                        sim.migration_fault(ep, step[1], mode=step[2])
                elif act == "mailbox":
                    sim.mmio_write(fn, step[2], step[3])
                elif act == "run":
                    sim.run(step[1])
            except pciesim.Error:
                pass  # the package's own error: refused cleanly
        c = sim.stats()["completions"]
        if c["violations"]:
            raise AssertionError(f"completion accounting: {c['violation_log'][:3]}")
    finally:
        sim.close()


def child(seed, steps):
    env = dict(os.environ)
    try:
        p = subprocess.run([sys.executable, __file__, "--one", str(seed), "--steps", str(steps)],
                           capture_output=True, text=True, timeout=ARGS.wall, env=env,
                           errors="replace")
    except subprocess.TimeoutExpired:
        return "hang", ""
    out = p.stdout + p.stderr
    if p.returncode < 0:
        return f"killed by signal {-p.returncode}", out
    if any(m in out for m in SANITIZER_MARKS):
        return "sanitizer report", out
    if p.returncode != 0:
        return f"exit {p.returncode}", out
    return None, out


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1, help="first seed")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seeds", type=int, default=0, help="stop after this many (0: time only)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--wall", type=float, default=120, help="wall-clock limit of one sequence, s")
    ap.add_argument("--one", type=int, default=None, help="run one seed in this process")
    ap.add_argument("--replay", default=None, help="run a found sequence (JSON) in this process")
    ARGS = ap.parse_args()
    if ARGS.one is not None:
        execute(plan(ARGS.one, ARGS.steps))
        return 0
    if ARGS.replay:
        execute(json.loads(pathlib.Path(ARGS.replay).read_text())["sequence"])
        return 0
    end = time.monotonic() + ARGS.seconds
    seed, n, findings = ARGS.seed, 0, 0
    while time.monotonic() < end and (not ARGS.seeds or n < ARGS.seeds):
        why, out = child(seed, ARGS.steps)
        if why:
            findings += 1
            FOUND.mkdir(parents=True, exist_ok=True)
            keep = FOUND / f"registers_seed{seed}.json"
            keep.write_text(json.dumps({"why": why, "seed": seed, "steps": ARGS.steps,
                                        "sequence": plan(seed, ARGS.steps)}, indent=1))
            print(f"FINDING {keep.relative_to(ROOT)}: {why}\n{out[-3000:]}", flush=True)
        seed += 1
        n += 1
    print(f"fuzz_registers: {n} sequences, {findings} findings (seeds {ARGS.seed}..{seed - 1})")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

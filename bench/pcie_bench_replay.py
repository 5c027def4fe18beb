#!/usr/bin/env python3
"""Replay pcie-bench measurements in pciesim and compare.

    bench/pcie_bench_replay.py MEASURED.csv [--platform NAME] [--mps N] [--mrrs N]
        [--iommu off|on|nosp] [--out SIM.csv] [--plot PNG]

MEASURED.csv is a pcie-bench result file (bw_dma_* or lat_dma_*: the Test,
PAT, Cache, HO, DO, WinSZ and SZ columns describe each experiment). Every
row is run in the simulator as the same experiment: a device directly below
a root port whose DMA engine's traffic generator (docs/dma-engine.md) issues
SZ-byte reads or writes at sequential or random slots of a WinSZ-byte host
window, with the host cache warm or cold first, as many in flight as the
device's tags and engine allow (bandwidth) or one at a time (latency). The
output has the input's rows and columns plus `measured` (the row's Gb/s or
median ns), `sim` (the simulator's value of the same quantity) and
`error_pct`.

Assumptions (docs/timing.md "Replaying pcie-bench"):
- The device is the one in sys-lspci.txt next to the CSV (link speed and
  width, MPS, MRRS, extended tags: 32 tags without them), defaults of
  pciesim's DMA engine otherwise. Without sys-lspci.txt: Gen3 x8, MPS 256,
  MRRS 512, 32 tags (an NFP-6000 as pcie-bench ran it).
- Buffers above 4 GiB (4-DW headers) when sys-dma-addrs.txt says most were.
- IOMMU from sys-kernel-cmdline.txt (intel_iommu=on; sp_off = no super
  pages) unless --iommu says otherwise.
- Cache: HWarm = the CPU wrote the window; Cold and DThrash = caches
  flushed; DWarm = the device went over the window once before.
- DO (device-side offset) is a property of the NFP's internal memory and
  is not modelled: such rows run as DO = 0 and are marked `device_offset`.
- BW_DMA_RW: reads and writes at once (the PF's engine reads, a VF's
  writes, half the transfers each); bandwidth per direction, as pcie-bench
  counts each read-write pair's bytes once.
"""
import argparse
import csv
import math
import os
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "python"), str(ROOT / "build" / "python")]

import pciesim  # noqa: E402

KINDS = {"BW_DMA_RD": "read", "BW_DMA_WR": "write", "BW_DMA_RW": "alternate",
         "LAT_DMA_RD": "read", "LAT_DMA_WRRD": "write_read"}
EXTRA = ["measured", "sim", "error_pct", "note"]
GENS = {"2.5": 1, "5": 2, "8": 3, "16": 4, "32": 5, "64": 6}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", help="pcie-bench result CSV (bw_dma_* or lat_dma_*)")
    p.add_argument("--platform", default=None, help="pciesim platform preset (default: the config default)")
    p.add_argument("--mps", type=int, default=None, help="Max Payload Size (default: sys-lspci.txt, else 256)")
    p.add_argument("--mrrs", type=int, default=None, help="Max Read Request Size (default: sys-lspci.txt, else 512)")
    p.add_argument("--iommu", choices=["off", "on", "nosp"], default=None,
                   help="IOMMU off, on (super pages), on without super pages (default: sys-kernel-cmdline.txt)")
    p.add_argument("--out", default=None, help="output CSV (default: SIM_<name>.csv next to the input... in the cwd)")
    p.add_argument("--plot", default=None, help="PNG overlaying measured and simulated values")
    p.add_argument("--transfers", type=int, default=None,
                   help="transfers per bandwidth row (default: enough for ~1 MiB, 2000..20000)")
    p.add_argument("--device-memory-gbps", type=float, default=57.6,
                   help="the device DMA engine's own memory bandwidth (default %(default)s: NFP-6000, docs/timing.md)")
    p.add_argument("--device-memory-latency", type=float, default=33.0,
                   help="ns the engine's device-memory accesses take (default %(default)s: NFP-6000, docs/timing.md)")
    p.add_argument("--latency-samples", type=int, default=200, help="transfers per latency row")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def lspci_defaults(directory):
    """MPS, MRRS, extended tags, speed and width of the measured device."""
    path = directory / "sys-lspci.txt"
    out = {}
    if not path.exists():
        return out
    block, blocks = [], []
    for line in path.read_text(errors="replace").splitlines():
        if re.match(r"^[0-9a-f]{2,4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] |^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] ", line):
            if block:
                blocks.append(block)
            block = [line]
        elif block:
            block.append(line)
    if block:
        blocks.append(block)
    eps = [b for b in blocks if any("Express" in l and "Endpoint" in l for l in b)]
    if not eps:
        return out

    def link(b):
        m = re.search(r"LnkSta:\s+Speed ([\d.]+)GT/s.*?Width x(\d+)", "\n".join(b))
        return (GENS.get(m.group(1), 1), int(m.group(2))) if m else (0, 0)
    # The device under test: the endpoint with the widest, fastest link
    # (the benchmarked NIC, not the board's own controllers).
    # Among equals, a NIC or FPGA board (pcie-bench's devices) before storage.
    eps.sort(key=lambda b: (-link(b)[0] * link(b)[1],
                            not re.search(r"Ethernet|Network|Netronome|Xilinx|Altera", b[0])))
    text = "\n".join(eps[0])
    m = re.search(r"DevCtl:.*?MaxPayload (\d+) bytes, MaxReadReq (\d+) bytes", text, re.S)
    if m:
        out["mps"], out["mrrs"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"DevCtl:.*?ExtTag([+-])", text, re.S)
    if m:
        out["ext_tags"] = m.group(1) == "+"
    if link(eps[0])[0]:
        out["gen"], out["width"] = link(eps[0])
    out["device"] = eps[0][0].split(" ", 1)[1]
    return out


def iommu_default(directory):
    path = directory / "sys-kernel-cmdline.txt"
    if not path.exists():
        return "off"
    cmd = path.read_text()
    if "intel_iommu=on" not in cmd and "amd_iommu=on" not in cmd:
        return "off"
    return "nosp" if "sp_off" in cmd else "on"


def high_buffers(directory):
    path = directory / "sys-dma-addrs.txt"
    if not path.exists():
        return True
    addrs = [int(x, 16) for x in path.read_text().split() if x.startswith("0x")]
    return sum(a >= 1 << 32 for a in addrs) * 2 >= len(addrs)


def config(row, kind, setup, transfers, latency):
    size = int(row["SZ"])
    window = int(float(row["WinSZ"]))
    cache = {"HWarm": "warm", "Cold": "cold", "DThrash": "cold", "DWarm": "cold"}.get(row["Cache"], "cold")
    pattern = "random" if row["PAT"].lower().startswith("rand") else "sequential"
    host_offset = int(row.get("HO", 0) or 0) % 64
    gen, width = setup["gen"], setup["width"]
    mem = ([{"base": 1 << 32, "size": "12GiB"}] if setup["high"]
           else [{"base": 0, "size": "2GiB"}, {"base": 1 << 32, "size": "12GiB"}])
    workload = {"name": "bench", "function": "ep0.pf", "type": "bench", "direction": kind,
                "size": size, "window": window, "pattern": pattern, "host_offset": host_offset,
                "cache": cache, "count": transfers, "queue_depth": 1 if latency else setup["tags"],
                "start": "manual"}
    cfg = {
        "simulation": {"quantum": "1us", "max_time": "10s", "seed": 1},
        "host": {"mps": setup["mps"], "mrrs": setup["mrrs"], "memory": mem},
        "endpoints": [{"name": "ep0", "max_link_speed": gen, "max_link_width": width,
                       "max_payload_supported": max(setup["mps"], 128), "device_memory": "1MiB",
                       "tags": setup["tags"], "staging_buffer": "256KiB",
                       "local_memory_gbps": setup["local_gbps"],
                       "local_memory_latency": f"{setup['local_ns']}ns",
                       "aligned_requests": True}],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0", "gen": gen, "width": width}],
        "workloads": [workload],
    }
    if setup["platform"]:
        cfg["platform"] = setup["platform"]
    if setup["iommu"] != "off":
        cfg["iommu"] = {"enabled": True, "host_large_pages": setup["iommu"] == "on"}
    if kind == "alternate":
        # The NFP's to-host and from-host DMA queues run independently:
        # reads on the PF's engine and writes on a VF's, at once, half each.
        cfg["endpoints"][0]["sriov"] = {"total_vfs": 1, "num_vfs": 1}
        workload.update(direction="read", count=max(1, transfers // 2))
        cfg["workloads"].append(dict(workload, name="bench_wr", function="ep0.vf1", direction="write"))
    if row["Cache"] == "DWarm":
        # The device goes over the window once first (sequentially).
        warm = dict(workload, name="warm", pattern="sequential", cache="keep",
                    count=max(1, window // max(64, (size + host_offset + 63) // 64 * 64)))
        cfg["workloads"].insert(0, warm)
    return cfg


def simulate(row, kind, setup, args):
    size = int(row["SZ"])
    latency = row["Test"].startswith("LAT")
    transfers = (args.latency_samples if latency else
                 args.transfers or max(2000, min(20000, (1 << 20) // max(size, 1))))
    cfg = config(row, kind, setup, transfers, latency)
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        if row["Cache"] == "DWarm":
            sim.start_workload("warm")
            sim.wait_workload("warm")
        names = [w["name"] for w in cfg["workloads"] if w["name"] != "warm"]
        for n in names:
            sim.start_workload(n)
        for n in names:
            sim.wait_workload(n)
        dmas = [sim.stat(f"functions.{w['function']}.dma") for w in cfg["workloads"] if w["name"] in names]
        failure = "; ".join(f for f in (sim.stat(f"workloads.{n}.failure") for n in names) if f)
    if failure:
        raise RuntimeError(failure)
    if latency:
        return dmas[0]["generator_latency_ns"]["p50"]
    # Bandwidth over the transfers after the first (pipeline fill excluded);
    # reads and writes at once: per direction, as pcie-bench counts each
    # read-write pair's bytes once.
    return sum(d["generator_steady_gbps"] for d in dmas) / len(dmas)


def measured_value(row):
    if row["Test"].startswith("LAT"):
        return float(row["Med(ns)"])
    return float(row["BW (GB/s)"])  # Gbit/s despite the header (pcie-bench README)


def plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    lat = rows and rows[0]["Test"].startswith("LAT")
    sweep_window = len({r["WinSZ"] for r in rows}) > 1
    x_key = "WinSZ" if sweep_window else ("HO" if len({r["HO"] for r in rows}) > 1 and len({r["SZ"] for r in rows}) < 10 else "SZ")
    series = {}
    for r in rows:
        if r["sim"] == "":
            continue
        key = (r["Test"], r["Cache"], r["SZ"] if x_key != "SZ" else "", r["DO"] if x_key == "HO" else "")
        if x_key == "HO" and r["DO"] != "0":
            continue
        series.setdefault(key, []).append(r)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for key, pts in sorted(series.items()):
        pts.sort(key=lambda r: float(r[x_key]))
        x = [float(r[x_key]) for r in pts]
        label = " ".join(k for k in key if k)
        line, = ax.plot(x, [float(r["measured"]) for r in pts], marker="o", ms=3, lw=1, label=label + " measured")
        ax.plot(x, [float(r["sim"]) for r in pts], marker="x", ms=4, ls="--", lw=1, color=line.get_color(),
                label=label + " pciesim")
    if x_key == "WinSZ":
        ax.set_xscale("log", base=2)
    ax.set_xlabel({"WinSZ": "window (bytes)", "SZ": "transfer size (bytes)", "HO": "host offset (bytes)"}[x_key])
    ax.set_ylabel("median latency (ns)" if lat else "bandwidth (Gb/s)")
    ax.set_title(title, fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    src = pathlib.Path(args.csv)
    if not src.exists():
        sys.exit(f"pcie_bench_replay: {src}: no such file")
    with open(src, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = list(reader.fieldnames or [])
    need = {"Test", "PAT", "Cache", "WinSZ", "SZ"}
    if not need <= set(columns):
        sys.exit(f"pcie_bench_replay: {src}: not a pcie-bench result (missing column(s) "
                 f"{', '.join(sorted(need - set(columns)))})")
    hw = lspci_defaults(src.parent)
    setup = {
        "platform": args.platform,
        "mps": args.mps or hw.get("mps", 256),
        "mrrs": args.mrrs or hw.get("mrrs", 512),
        "tags": 256 if hw.get("ext_tags", False) else 32,
        "gen": hw.get("gen", 3), "width": hw.get("width", 8),
        "iommu": args.iommu or iommu_default(src.parent),
        "high": high_buffers(src.parent),
        # The DMA engine stores what a read brought into device memory after
        # the last completion (and reads it before a write) at this rate: the
        # measured read latency grows by 0.295 ns/B, 0.14 more than the link
        # and the host path account for (docs/timing.md).
        "local_gbps": args.device_memory_gbps,
        # ... and this long after: small reads are tag-bound (32 tags / 62.3 M
        # reads/s = 514 ns of tag hold, 33 ns less than their latency).
        "local_ns": args.device_memory_latency,
    }
    if not args.quiet:
        print(f"{src.name}: {len(rows)} rows; device {hw.get('device', '(no sys-lspci.txt)')}: "
              f"Gen{setup['gen']} x{setup['width']} MPS {setup['mps']} MRRS {setup['mrrs']} "
              f"{setup['tags']} tags; IOMMU {setup['iommu']}; platform {args.platform or 'default'}",
              flush=True)
    out_rows = []
    cache = {}
    for i, row in enumerate(rows):
        kind = KINDS.get(row["Test"])
        r = dict(row)
        r["note"] = ""
        try:
            r["measured"] = measured_value(row)
        except (KeyError, ValueError):
            r["measured"] = ""
        if kind is None:
            r.update(sim="", error_pct="", note=f"unknown test {row['Test']}")
            out_rows.append(r)
            continue
        if str(row.get("DO", "0")) not in ("0", ""):
            r["note"] = "device_offset"
        key = (row["Test"], row["PAT"], row["Cache"], row.get("HO", "0"), row["WinSZ"], row["SZ"])
        try:
            if key not in cache:
                cache[key] = simulate(row, kind, setup, args)
            sim = cache[key]
        except (RuntimeError, pciesim.Error) as e:
            r.update(sim="", error_pct="", note=f"failed: {e}")
            out_rows.append(r)
            continue
        r["sim"] = round(sim, 3)
        r["error_pct"] = round(100 * (sim - r["measured"]) / r["measured"], 2) if r["measured"] else ""
        out_rows.append(r)
        if not args.quiet:
            print(f"  [{i + 1}/{len(rows)}] {row['Test']} {row['PAT']} {row['Cache']} HO {row.get('HO', 0)} "
                  f"DO {row.get('DO', 0)} win {int(float(row['WinSZ']))} sz {row['SZ']}: measured "
                  f"{r['measured']:.2f} sim {r['sim']:.2f} ({r['error_pct']:+.1f}%)", flush=True)
    out = pathlib.Path(args.out) if args.out else pathlib.Path(f"sim_{src.name}")
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns + EXTRA)
        w.writeheader()
        w.writerows(out_rows)
    errs = [abs(r["error_pct"]) for r in out_rows if r["error_pct"] != "" and not r["note"]]
    if errs:
        errs.sort()
        print(f"{out}: {len(out_rows)} rows; |error| median {errs[len(errs) // 2]:.1f}%, "
              f"max {errs[-1]:.1f}% (rows with a note excluded)")
    if args.plot:
        plot(out_rows, args.plot, f"{src.parent.name}/{src.name}")
        print(f"plot -> {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

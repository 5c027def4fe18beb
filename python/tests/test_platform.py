"""Platform presets and the host-side effects they switch on (docs/timing.md
"Platforms", "Host data path", "Host caches"), measured with the device's
traffic generator (workloads of type bench). Every check is a relation the
physics implies, not a copy of a measured number."""
import csv
import pathlib
import subprocess
import sys

import pytest

import pciesim

ROOT = pathlib.Path(__file__).resolve().parents[2]


def bench_cfg(direction="read", size=512, window=8192, pattern="random", count=3000, depth=32,
              cache="warm", host_offset=0, platform=None, iommu=None, **host):
    cfg = {
        "simulation": {"quantum": "1us", "max_time": "5s"},
        "host": {"mps": 256, "mrrs": 4096, "memory": [{"base": 1 << 32, "size": "4GiB"}], **host},
        "endpoints": [{"name": "ep0", "max_link_speed": 3, "max_link_width": 8, "tags": 32,
                       "device_memory": "1MiB", "staging_buffer": "256KiB"}],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0", "gen": 3, "width": 8}],
        "workloads": [{"name": "b", "function": "ep0.pf", "type": "bench", "direction": direction,
                       "size": size, "window": window, "pattern": pattern, "count": count,
                       "queue_depth": depth, "cache": cache, "host_offset": host_offset,
                       "start": "manual"}],
    }
    if platform:
        cfg["platform"] = platform
    if iommu:
        cfg["iommu"] = iommu
    return cfg


def run(cfg):
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        sim.start_workload("b")
        sim.wait_workload("b")
        assert not sim.stat("workloads.b.failure"), sim.stat("workloads.b.failure")
        return sim.stats()


def gbps(stats):
    return stats["functions"]["ep0.pf"]["dma"]["generator_steady_gbps"]


def p50(stats):
    return stats["functions"]["ep0.pf"]["dma"]["generator_latency_ns"]["p50"]


def down(stats):
    return stats["links"]["rc.rp0--ep0"]["down"]


def test_the_generator_moves_exactly_what_it_was_asked():
    s = run(bench_cfg(size=300, count=1000))
    dma = s["functions"]["ep0.pf"]["dma"]
    assert dma["generator_transfers"] == 1000
    assert dma["read_bytes"] == 300 * 1000 and dma["write_requests"] == 0
    assert dma["descriptor_fetches"] == 0  # no descriptors over PCIe
    w = run(bench_cfg(direction="write", size=300, count=1000))["functions"]["ep0.pf"]["dma"]
    assert w["write_bytes"] == 300 * 1000 and w["read_requests"] == 0


def test_completions_are_mps_sized_on_the_xeon_preset_and_rcb_sized_on_generic():
    # One 1 KiB read at a time: the downstream direction carries its completions.
    xeon = down(run(bench_cfg(size=1024, count=50, depth=1)))
    generic = down(run(bench_cfg(size=1024, count=50, depth=1, platform="generic")))
    # 1 KiB in 256-byte completions: 4 TLPs per read; in 64-byte ones 16.
    assert xeon["tlps"] - 50 * 4 < generic["tlps"] - 50 * 16 + 20
    assert generic["tlps"] >= 50 * 16 and xeon["tlps"] < 50 * 16 // 2
    # Small requests are completed line by line even on the Xeon preset.
    small = down(run(bench_cfg(size=256, count=50, depth=1)))
    assert small["tlps"] >= 50 * 4


def test_the_root_port_path_caps_reads_below_the_link():
    # 2 KiB reads: the link could carry 57.7 Gb/s of 256-byte completions;
    # the root port's path moves one line per read_line_time.
    s = run(bench_cfg(size=2048, count=2000))
    line_cap = 64 * 8 / 9.2  # Gb/s at 9.2 ns per line (the preset)
    assert gbps(s) == pytest.approx(line_cap, rel=0.01)
    faster = run(bench_cfg(size=2048, count=2000, platform="xeon-e5-v4") | {
        "root_complex": {"read_line_time": "4ns"}})
    assert gbps(faster) > gbps(s) * 1.03  # now the link limits, above the path's old cap


def test_read_latency_grows_with_size_by_more_than_the_wire():
    lat = {n: p50(run(bench_cfg(size=n, count=50, depth=1, pattern="sequential"))) for n in (64, 2048)}
    wire_only = (2048 - 64) * 8 / 63.0  # ns the extra bytes need on a Gen3 x8 wire
    # The lines stream back one per line time behind the first: the path,
    # slower than the wire, sets the growth.
    grow = lat[2048] - lat[64]
    assert grow > wire_only
    assert grow >= (2048 - 64) / 64 * 9.2 - 1
    # ... and the wire overlaps it (the first completion leaves before the
    # last line is fetched): less than the two added.
    assert grow < wire_only + (2048 - 64) / 64 * 9.2


def test_llc_hits_are_faster_than_dram_by_the_latency_difference():
    warm = p50(run(bench_cfg(size=64, count=200, depth=1, cache="warm")))
    cold = p50(run(bench_cfg(size=64, count=200, depth=1, cache="cold")))
    # memory_latency 90 ns vs llc_latency 50 ns on the preset.
    assert cold - warm == pytest.approx(40, abs=1)
    # A window larger than the LLC cannot stay warm: some reads miss.
    big = run(bench_cfg(size=64, count=4000, window=64 << 20, cache="warm", depth=1))
    small = run(bench_cfg(size=64, count=4000, window=1 << 20, cache="warm", depth=1))
    assert big["functions"]["ep0.pf"]["dma"]["generator_latency_ns"]["mean"] > \
        small["functions"]["ep0.pf"]["dma"]["generator_latency_ns"]["mean"] + 10


def test_device_writes_allocate_only_in_the_ddio_share():
    # The device writes a 16 MiB window (more than the DDIO share, less than
    # the LLC), then reads it back: most lines were evicted from the I/O ways.
    cfg = bench_cfg(direction="write", size=4096, window=16 << 20, pattern="sequential",
                    count=4096, cache="cold")
    rd = dict(cfg["workloads"][0], name="r", direction="read", cache="keep", count=4096, size=64,
              pattern="random", queue_depth=1)
    cfg["workloads"].append(rd)
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        sim.start_workload("b")
        sim.wait_workload("b")
        sim.start_workload("r")
        sim.wait_workload("r")
        lat = sim.stat("functions.ep0.pf.dma.generator_latency_ns")
    # DDIO holds 2.5 MiB of the 16: ~85 % of the reads miss (DRAM, +40 ns).
    warm = p50(run(bench_cfg(size=64, count=200, depth=1, cache="warm")))
    assert lat["p50"] == pytest.approx(warm + 40, abs=2)


def test_outside_the_iotlb_reach_each_read_pays_a_walk():
    nosp = {"enabled": True, "host_large_pages": False}
    inside = run(bench_cfg(size=64, window=128 << 10, count=6000, iommu=nosp))
    outside = run(bench_cfg(size=64, window=16 << 20, count=6000, iommu=nosp))
    io_in, io_out = inside["iommu"], outside["iommu"]
    # 64 entries x 4 KiB = 256 KiB of reach.
    assert io_in["iotlb_misses"] < 0.02 * io_in["translations"]
    assert io_out["iotlb_misses"] > 0.95 * io_out["translations"]
    assert gbps(outside) < 0.5 * gbps(inside)
    # With super pages one 2 MiB entry covers far more: no knee at 16 MiB.
    sp = run(bench_cfg(size=64, window=16 << 20, count=6000,
                       iommu={"enabled": True, "host_large_pages": True}))
    assert sp["iommu"]["iotlb_misses"] < 0.15 * sp["iommu"]["translations"]
    assert gbps(sp) > 1.5 * gbps(outside)


def test_a_read_that_is_not_line_aligned_costs_an_extra_line():
    per = {}
    for size, ho in ((64, 0), (64, 8), (128, 0), (128, 8)):
        s = run(bench_cfg(size=size, host_offset=ho, count=3000))
        per[(size, ho)] = size * 8 / gbps(s)  # ns per transfer
    assert per[(128, 8)] > per[(128, 0)] + 5  # 3 lines instead of 2
    assert per[(64, 8)] >= per[(64, 0)]


def test_a_partial_write_unit_costs_a_whole_one():
    t = {n: n * 8 / gbps(run(bench_cfg(direction="write", size=n, count=3000))) for n in (128, 129, 192, 256)}
    # 129 and 192 bytes cover two 128-byte units, like 256.
    assert t[129] == pytest.approx(t[256], rel=0.05)
    assert t[192] == pytest.approx(t[256], rel=0.05)
    assert t[129] > 1.4 * t[128]


def test_presets_set_defaults_that_fields_override():
    with pciesim.from_dict(bench_cfg(count=1) | {"root_complex": {"read_line_time": "0ns"}}) as sim:
        sim.boot()
        sim.start_workload("b")
        sim.wait_workload("b")
    with pytest.raises(pciesim.ConfigError, match="platform"):
        pciesim.from_dict(bench_cfg() | {"platform": "pentium"})
    with pytest.raises(pciesim.ConfigError, match="smaller than one slot"):
        pciesim.from_dict(bench_cfg(size=200, window=128))
    with pytest.raises(pciesim.ConfigError, match="applies to type: bench only"):
        cfg = bench_cfg()
        cfg["workloads"][0].pop("type")
        pciesim.from_dict(cfg)
    with pytest.raises(pciesim.ConfigError, match="ddio_size"):
        pciesim.from_dict(bench_cfg(llc_size="1MiB", ddio_size="2MiB"))


LSPCI = """\
00:02.0 PCI bridge: Intel Corporation Root Port 2 (rev 01)
\tCapabilities: [90] Express (v2) Root Port (Slot+), MSI 00
\t\tDevCtl:\tReport errors: Correctable- Non-Fatal+ Fatal+ Unsupported+
\t\t\tRlxdOrd- ExtTag- PhantFunc- AuxPwr- NoSnoop+
\t\t\tMaxPayload 256 bytes, MaxReadReq 128 bytes
03:00.0 Ethernet controller: Example NIC
\tCapabilities: [c0] Express (v2) Endpoint, MSI 00
\t\tDevCtl:\tReport errors: Correctable- Non-Fatal+ Fatal+ Unsupported+
\t\t\tRlxdOrd+ ExtTag- PhantFunc- AuxPwr- NoSnoop+ FLReset-
\t\t\tMaxPayload 256 bytes, MaxReadReq 4096 bytes
\t\tLnkSta:\tSpeed 8GT/s, Width x8, TrErr- Train- SlotClk+ DLActive- BWMgmt- ABWMgmt-
"""


def test_the_replay_tool_writes_the_rows_with_measured_sim_and_error(tmp_path):
    src = tmp_path / "bw_dma_sz_sweep.csv"
    cols = ["Test", "PAT", "Cache", "HO", "DO", "WinSZ", "SZ", "Time(cyc)", "Time", "Bytes", "Trans",
            "BW (GB/s)", "Trans/s"]
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerow(["BW_DMA_RD", "Rand", "HWarm", 0, 0, 8192, 2048, 1, 1, 1, 1, 55.58, 1])
        w.writerow(["BW_DMA_WR", "Seq", "Cold", 0, 0, 8192, 64, 1, 1, 1, 1, 24.27, 1])
        w.writerow(["BW_DMA_RD", "Rand", "HWarm", 0, 4, 8192, 64, 1, 1, 1, 1, 12.7, 1])
    (tmp_path / "sys-lspci.txt").write_text(LSPCI)
    out, png = tmp_path / "sim.csv", tmp_path / "p.png"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "pcie_bench_replay.py"), str(src),
                        "--out", str(out), "--plot", str(png), "--transfers", "2000"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "Gen3 x8 MPS 256 MRRS 4096 32 tags" in p.stdout  # from sys-lspci.txt
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0])[:len(cols)] == cols and {"measured", "sim", "error_pct"} <= set(rows[0])
    assert float(rows[0]["sim"]) == pytest.approx(55.58, rel=0.03)
    assert float(rows[0]["error_pct"]) == pytest.approx(
        100 * (float(rows[0]["sim"]) - 55.58) / 55.58, abs=0.01)
    assert rows[2]["note"] == "device_offset"
    assert png.stat().st_size > 10000


def test_the_replay_tool_names_a_file_that_is_not_pcie_bench(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "pcie_bench_replay.py"), str(bad)],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "not a pcie-bench result" in p.stderr and "SZ" in p.stderr

"""Hardware-behaviour corner cases (regress/cases/*.yaml), run through the CLI.

Every case is a complete config whose header names the rule it checks
(`# Rule:`) and what must be observed (`# Expect:`); it passes when
`pciesim run` passes all its expectations. Some cases get extra checks here
on the TLP trace, where the property is about every TLP on every link.
"""
import json
import pathlib
import re
import shutil
import subprocess

import pytest

CASES = sorted(pathlib.Path(__file__).parent.glob("*.yaml"))


def header(path):
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case_passes(cli, case):
    h = header(case)
    assert "# Rule:" in h and "# Expect:" in h, f"{case.name}: header must name the rule and the expectation"
    stats = cli.tmp / "stats.json"
    p = cli("run", case, "--stats", stats)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1].startswith("PASSED"), p.stdout
    s = json.loads(stats.read_text())
    assert s["checks"] and all(c["passed"] for c in s["checks"])
    assert not any(step["error"] for step in s["scenario"])


# "#   lspci[7] UESta: TLP+ ECRC-": the dump recorded by scenario step 7 (an
# `lspci` step), decoded by the real `lspci -F DUMP -vv`, has a line
# starting with "UESta:" that holds every one of those words.
LSPCI_LINE = re.compile(r"^#\s+lspci\[(\d+)\]\s+([A-Za-z0-9][A-Za-z0-9 ]*?):\s*(.*?)\s*$")
LSPCI = shutil.which("lspci")
DECODED = [c for c in CASES if any(LSPCI_LINE.match(line) for line in header(c).splitlines())]


def field_lines(text, field):
    """The lines of lspci -vv output that start with `field:`, each with the
    more deeply indented lines that continue it."""
    out, depth = [], None
    for ln in text.splitlines():
        indent = len(ln) - len(ln.lstrip())
        if depth is not None and indent > depth and ln.strip():
            out[-1] += " " + ln.strip()
            continue
        depth = None
        if ln.strip().startswith(field + ":"):
            out.append(ln.strip())
            depth = indent
    return out


@pytest.mark.skipif(LSPCI is None, reason="pciutils is not installed")
@pytest.mark.parametrize("case", DECODED, ids=[c.stem for c in DECODED])
def test_real_lspci_decodes_the_error_registers(cli, case):
    """The detecting function's AER registers, Device Status and the root
    port's Root Error Status / Error Source, as pciutils decodes them from a
    config dump taken mid-run (before the host's AER service cleared them)."""
    stats = cli.tmp / "stats.json"
    cli("run", case, "--stats", stats, "-q", check=0)
    steps = json.loads(stats.read_text())["scenario"]
    decoded = {}
    for line in header(case).splitlines():
        m = LSPCI_LINE.match(line)
        if not m:
            assert "lspci[" not in line, f"{case.name}: cannot read the lspci check {line!r}"
            continue
        step, field, words = int(m.group(1)), m.group(2), m.group(3).split()
        assert steps[step]["action"] == "lspci", f"{case.name}: scenario[{step}] is not an lspci step"
        if step not in decoded:
            dump = cli.tmp / f"dump{step}"
            dump.write_text(steps[step]["output"])
            p = subprocess.run([LSPCI, "-F", str(dump), "-vv"], capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
            decoded[step] = p.stdout
        lines = field_lines(decoded[step], field)
        assert lines, f"{case.name}: no '{field}:' line in lspci -vv of scenario[{step}]:\n{decoded[step]}"
        have = set(w.strip(",") for w in " ".join(lines).split())
        missing = [w for w in words if w not in have]
        assert not missing, f"{case.name}: lspci[{step}] {field}: {missing} not in {lines}"


def run_traced(cli, name):
    stats, trace = cli.tmp / "stats.json", cli.tmp / "trace.jsonl"
    cli("run", pathlib.Path(__file__).parent / name, "--stats", stats, "--trace", trace, "-q", check=0)
    tlps = [json.loads(line) for line in trace.read_text().splitlines()]
    return json.loads(stats.read_text()), tlps


def config_write_arrival(tlps, rid, offset, after_ns):
    """When the first config write to `rid` at `offset` after `after_ns` reached the device."""
    bus, rest = rid.split(":")
    dev, fn = rest.split(".")
    value = (int(bus, 16) << 8) | (int(dev, 16) << 3) | int(fn)
    addr = (value << 12) | offset
    hits = [t for t in tlps if t["kind"].startswith("CfgWr") and int(t["address"], 16) == addr
            and t["t_ns"] >= after_ns]
    assert hits, f"no config write to {rid} offset {offset:#x} after {after_ns} ns"
    # The last hop is the one into the device.
    first_ns = min(t["t_ns"] for t in hits)
    chain = [t for t in hits if t["t_ns"] < first_ns + 10_000]
    return max(t["arrive_ns"] for t in chain)


def test_bme_clear_stops_every_tlp_from_that_vf(cli):
    """No request (DMA or MSI-X write) from VF1 leaves the device after its
    Bus Master Enable was cleared there; VF2 keeps going. (TLPs issued
    before may still cross the links further up afterwards.)"""
    s, tlps = run_traced(cli, "bme_cleared_mid_dma.yaml")
    vf1, vf2 = s["functions"]["ep0.vf1"]["rid"], s["functions"]["ep0.vf2"]["rid"]
    step = s["scenario"][2]
    assert step["action"] == "bus_master"
    cleared = config_write_arrival(tlps, vf1, 0x4, step["start_ns"])
    from_vf1 = [t for t in tlps if t["requester"] == vf1 and t["dir"] == "up" and t["link"].endswith("--ep0")]
    before = [t for t in from_vf1 if t["t_ns"] <= cleared]
    after = [t for t in from_vf1 if t["t_ns"] > cleared]
    assert before, "VF1 should have been busy before BME was cleared"
    assert after == [], f"{len(after)} TLPs from VF1 after BME clear at {cleared} ns: {after[:3]}"
    vf2_after = [t for t in tlps if t["requester"] == vf2 and t["dir"] == "up" and t["t_ns"] > cleared]
    assert vf2_after, "VF2 must keep issuing requests after VF1 stopped"
    # No MSI-X from VF1 after the clear: MSI writes target the MSI window.
    msi_from_vf1 = [t for t in after if t["kind"] == "MWr" and int(t["address"], 16) >> 20 == 0xFEE]
    assert msi_from_vf1 == []
    assert any(int(t["address"], 16) >> 20 == 0xFEE for t in before), "VF1 sent MSIs before"


def test_pf_flr_stops_every_tlp_from_its_vfs(cli):
    """After the PF's FLR reached the device no VF issues anything."""
    s, tlps = run_traced(cli, "pf_flr_kills_running_vfs.yaml")
    pf = s["functions"]["ep0.pf"]["rid"]
    step = s["scenario"][2]
    assert step["action"] == "flr"
    devctl = 0x48 + 8  # the DMA engine's PCI Express capability (lspci: [48]) + Device Control
    flr = config_write_arrival(tlps, pf, devctl, step["start_ns"])
    vfs = {s["functions"][f"ep0.vf{n}"]["rid"] for n in range(1, 5)}
    # Issued = entering the device's own link (TLPs issued before may still
    # cross the links further up afterwards).
    busy = [t for t in tlps if t["requester"] in vfs and t["dir"] == "up" and t["link"].endswith("--ep0")]
    assert busy and min(t["t_ns"] for t in busy) < flr
    late = [t for t in busy if t["t_ns"] > flr]
    assert late == [], f"{len(late)} TLPs from VFs after the PF FLR at {flr} ns: {late[:3]}"


def test_no_read_of_an_unmapped_range_succeeds_after_the_invalidation(cli):
    """iommu_unmap_under_dma: once the unmap step (with its waited-for IOTLB
    invalidation) returned, every read of the range that reaches the root
    complex is refused; before the unmap began, they all succeeded."""
    s, tlps = run_traced(cli, "iommu_unmap_under_dma.yaml")
    step = s["scenario"][2]
    assert step["action"] == "iommu_unmap" and step["status"] == 0
    vf1 = s["functions"]["ep0.vf1"]["rid"]
    lo, hi = 0x103000, 0x103000 + 0x3efd000
    reads = [t for t in tlps if t["requester"] == vf1 and t["kind"] == "MRd" and t["dir"] == "up"
             and lo <= int(t["address"], 16) < hi]
    before = [t for t in reads if t["arrive_ns"] < step["start_ns"]]
    after = [t for t in reads if t["arrive_ns"] > step["end_ns"]]
    assert before and all(t["status"] == "SC" for t in before)
    assert after, "the engine should have tried to read the range again"
    assert all(t["status"] == "UR" for t in after), [t for t in after if t["status"] != "UR"][:3]


CONFIGS = sorted((pathlib.Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_shipped_config_passes(cli, config):
    text = config.read_text()
    assert text.startswith("# " + config.name), f"{config.name}: header comment must start with its name"
    p = cli("run", config, "-q")
    assert p.returncode == 0, p.stdout + p.stderr


def test_every_fault_kind_has_a_case(cli):
    """Every kind `pciesim faults` lists is injected by at least one case."""
    import yaml
    listed = set(re.findall(r"^## (\w+)$", cli("faults").stdout, re.M))
    assert len(listed) >= 20, listed
    used = set()
    for case in CASES:
        doc = yaml.safe_load(case.read_text()) or {}
        # An aer_inject entry (an aer-inject file) arms aer_report faults.
        used.update(f.get("kind", "aer_report" if "aer_inject" in f or "aer_inject_text" in f else None)
                    for f in doc.get("faults", []))
        used.update(s["fault"]["kind"] for s in doc.get("scenario", []) if isinstance(s, dict) and "fault" in s)
    # test_abort only kills the simulator: the campaign runner's test fault
    # (python/tests/test_campaign.py), not hardware behaviour.
    listed.discard("test_abort")
    assert listed - used == set(), f"fault kinds without a regression case: {sorted(listed - used)}"


@pytest.mark.parametrize("name", ["fault_lcrc_storm_only_costs_time.yaml",
                                  "fault_link_down_under_switch_with_dpc.yaml"])
def test_same_fault_plan_and_seed_give_byte_identical_stats_and_trace(cli, name):
    outputs = []
    for run in range(2):
        stats, trace = cli.tmp / f"s{run}.json", cli.tmp / f"t{run}.jsonl"
        cli("run", pathlib.Path(__file__).parent / name, "--stats", stats, "--trace", trace, "-q")
        outputs.append((stats.read_bytes(), trace.read_bytes()))
    assert outputs[0][1], "the trace is empty"
    assert outputs[0][0] == outputs[1][0], "stats differ between two runs of the same plan and seed"
    assert outputs[0][1] == outputs[1][1], "traces differ between two runs of the same plan and seed"

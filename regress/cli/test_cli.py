"""The pciesim command line as a new user meets it (issue: foundation)."""
import json
import pathlib
import re
import shutil
import subprocess

import pytest

QUICKSTART = "configs/quickstart.yaml"


def test_run_quickstart_passes_and_writes_stats(cli, root):
    stats = cli.tmp / "s.json"
    p = cli("run", root / QUICKSTART, "--stats", stats, check=0)
    assert "PASSED: 6 of 6 checks passed" in p.stdout.splitlines()[-1]
    assert "copy0" in p.stdout and "links (busy share while workloads ran):" in p.stdout
    s = json.loads(stats.read_text())
    assert s["schema_version"] == 1
    assert s["sim_time_ns"] > s["boot_time_ns"] > 0
    link = s["links"]["sw0.dsp0--ep0"]
    for d in ("up", "down"):
        assert link[d]["tlps"] > 0 and link[d]["wire_bytes"] > link[d]["payload_bytes"] > 0
    ep0 = s["functions"]["ep0.pf"]
    assert ep0["dma"]["read_bytes"] == 64 * 4096
    assert ep0["dma"]["write_bytes"] == 64 * 4096
    assert ep0["dma"]["operations"] == 64
    assert ep0["dma"]["descriptors_completed"] == 64
    assert ep0["interrupts"]["sent"] == 64 and ep0["interrupts"]["received"] == 64
    assert s["workloads"]["copy1"]["verified_bytes"] == 32 * 16384


def test_same_config_same_stats(cli, root):
    a = cli.run_stats(root / QUICKSTART)
    b = cli.run_stats(root / QUICKSTART)
    assert a == b


def test_failed_expectation_exits_1(cli, root):
    p = cli("run", root / QUICKSTART, "--set", "expect[1].equals=5", check=1)
    assert "FAIL expect[1]" in p.stdout
    assert p.stdout.splitlines()[-1].startswith("FAILED")


def test_validate_malformed_config_names_file_line_col(cli):
    bad = cli.write("bad.yaml", "links:\n  - {upstream: rc.rp0, downstream: ep0, gen: 9}\n")
    p = cli("validate", bad, check=2)
    assert re.search(r"bad\.yaml:2:\d+ \(links\[0\]\.gen\)", p.stderr), p.stderr
    assert "expected an integer in 1..6" in p.stderr


def test_validate_unknown_key_and_syntax(cli):
    p = cli("validate", cli.write("k.yaml", "simulation:\n  sede: 1\n"), check=2)
    assert "k.yaml:2:3" in p.stderr and "unknown key 'sede'" in p.stderr
    p = cli("validate", cli.write("y.yaml", "a: [1, 2\n"), check=2)
    assert "y.yaml:2:1" in p.stderr and "YAML syntax" in p.stderr
    p = cli("validate", cli.tmp / "missing.yaml", check=2)
    assert "no such config file" in p.stderr
    for path, why in [(cli.tmp, "is a directory"), ("/dev/null", "not a regular file"),
                      ("/dev/zero", "not a regular file"),
                      (cli.write("e.yaml", "# nothing\n"), "the config is empty")]:
        p = cli("run", path, check=2)
        assert why in p.stderr, p.stderr
    p = cli("validate", cli.write("d.yaml", "simulation:\n  quantum: 0ns\nsimulation: {}\n"),
            check=2)
    assert "d.yaml:3:1" in p.stderr and "duplicate key 'simulation'" in p.stderr


def test_run_on_bad_config_exits_2(cli):
    p = cli("run", cli.write("b.yaml", "endpoints:\n  - name: ep0\n    msix_vectors: 5000\n"), check=2)
    assert "b.yaml:3:19" in p.stderr


def test_set_overrides_and_bad_set(cli, root):
    s = cli.run_stats(root / QUICKSTART, "--set", "links[1].gen=4", "--set", "simulation.seed=7")
    assert s["seed"] == 7
    p = cli("run", root / QUICKSTART, "--set", "links[1].gen=x", check=2)
    assert "links[1].gen" in p.stderr


def test_topo_prints_dot(cli, root):
    p = cli("topo", root / QUICKSTART, check=0)
    assert p.stdout.startswith("digraph pcie {")
    assert '"sw0" -> "ep0"' in p.stdout and "Gen3 x8" in p.stdout


def test_config_reference_is_current(cli, root):
    """docs/config-reference.md must be what the readers generate."""
    p = cli("config-reference", check=0)
    assert (root / "docs" / "config-reference.md").read_text() == p.stdout


LSPCI = shutil.which("lspci")


def real_lspci(dump, *args):
    return subprocess.run([LSPCI, "-F", str(dump), *args], capture_output=True, text=True).stdout


@pytest.mark.skipif(LSPCI is None, reason="pciutils is not installed")
def test_real_lspci_decodes_the_dump(cli, root):
    dump = cli.tmp / "dump"
    dump.write_text(cli("lspci", root / QUICKSTART, "-xxxx", check=0).stdout)
    out = real_lspci(dump, "-vv")
    # Every function, with its IDs, BARs, bus numbers and capabilities.
    for bdf, ident in [("00:00.0", "Host bridge: Device 5ec0:0100"),
                       ("00:01.0", "PCI bridge: Device 5ec0:0101"),
                       ("01:00.0", "PCI bridge: Device 5ec0:0200"),
                       ("02:00.0", "PCI bridge: Device 5ec0:0201"),
                       ("03:00.0", "System peripheral: Device 5ec0:0001"),
                       ("04:00.0", "System peripheral: Device 5ec0:0001")]:
        assert f"{bdf} {ident}" in out
    assert "Bus: primary=00, secondary=01, subordinate=06" in out
    assert "Bus: primary=01, secondary=02, subordinate=06" in out
    assert "Region 0: Memory at 80000000 (64-bit, non-prefetchable)" in out
    assert "Region 2: Memory at 4000000000 (64-bit, prefetchable)" in out
    assert "Memory behind bridge: 80000000-801fffff" in out
    assert "Express (v2) Root Port (Slot+)" in out
    assert "Express (v2) Upstream Port" in out
    assert "Express (v2) Downstream Port (Slot+)" in out
    assert "Express (v2) Endpoint" in out
    assert "MSI-X: Enable+ Count=4 Masked-" in out
    assert "LnkSta:\tSpeed 8GT/s, Width x8" in out
    assert "Advanced Error Reporting" in out and "Alternative Routing-ID Interpretation" in out


def normalise_live(text):
    """Our lspci mimics a live system; -F on a dump cannot know BAR sizes or
    bound drivers, and pciutils 3.9's dump decoding shows the upper dword
    of a 64-bit BAR above 4 GiB as an extra pseudo-region."""
    text = re.sub(r"(\tMemory at [^\n]*?) \[size=\d+[KMGT]?\]", r"\1", text)
    return "\n".join(l for l in text.splitlines() if not l.startswith("\tKernel driver in use:"))


def normalise_dump(text):
    return "\n".join(l for l in text.splitlines()
                     if l not in ("\tMemory at <unassigned> (32-bit, non-prefetchable)",
                                  "\tI/O ports at <unassigned> [disabled]"))


@pytest.mark.skipif(LSPCI is None, reason="pciutils is not installed")
@pytest.mark.parametrize("flags", [[], ["-v"], ["-t"], ["-tv"], ["-n"], ["-x"], ["-xxx"]])
def test_native_formats_match_real_lspci(cli, root, flags):
    dump = cli.tmp / "dump"
    dump.write_text(cli("lspci", root / QUICKSTART, "-xxxx", check=0).stdout)
    mine = cli("lspci", root / QUICKSTART, *flags, check=0).stdout
    assert normalise_live(mine) == normalise_dump(real_lspci(dump, *flags))


def test_lspci_refuses_vv_with_a_hint(cli, root):
    p = cli("lspci", root / QUICKSTART, "-vv", check=2)
    assert "lspci -F" in p.stderr


@pytest.mark.skipif(LSPCI is None, reason="pciutils is not installed")
def test_real_lspci_decodes_sriov_and_every_vf(cli, root):
    """configs/sriov.yaml: PF 01:00.0, NumVFs 8, First VF Offset 4, Stride 2."""
    dump = cli.tmp / "dump"
    dump.write_text(cli("lspci", root / "configs/sriov.yaml", "-xxxx", check=0).stdout)
    out = real_lspci(dump, "-vv")
    blocks = {b.split(" ", 1)[0]: b for b in out.strip().split("\n\n")}
    pf = blocks["01:00.0"]
    assert "Device 5ec0:0001" in pf
    assert "Single Root I/O Virtualization (SR-IOV)" in pf
    assert "IOVCtl:\tEnable+ Migration- Interrupt- MSE+ ARIHierarchy+" in pf
    assert "Initial VFs: 8, Total VFs: 8, Number of VFs: 8, Function Dependency Link: 00" in pf
    assert "VF offset: 4, stride: 2, Device ID: 0002" in pf
    assert "Supported Page Size: 00000553, System Page Size: 00000001" in pf
    # VF BAR0 (8 x 16 KiB registers) and VF BAR2 (8 x 64 KiB device memory).
    assert re.search(r"SR-IOV.*\n(.*\n)*?\t\tRegion 0: Memory at [0-9a-f]{16} \(64-bit, non-prefetchable\)", pf)
    assert re.search(r"SR-IOV.*\n(.*\n)*?\t\tRegion 2: Memory at [0-9a-f]{16} \(64-bit, prefetchable\)", pf)
    vfs = []
    for n in range(1, 9):
        rid = 0x100 + 4 + (n - 1) * 2
        vfs.append(f"{rid >> 8:02x}:{(rid >> 3) & 0x1f:02x}.{rid & 7}")
    for bdf in vfs:
        assert bdf in blocks, f"VF at {bdf} missing from the dump"
        vf = blocks[bdf]
        # Vendor ID and Device ID read 0xFFFF in a VF's own config space.
        assert vf.startswith(f"{bdf} System peripheral: Illegal Vendor ID Device ffff"), vf.splitlines()[0]
        assert "Control: I/O- Mem- BusMaster+" in vf  # MSE reads 0 in a VF; BME set by its driver
        assert "MSI-X: Enable+ Count=2" in vf
    # Nothing between the VFs or beyond the last one.
    assert sorted(b for b in blocks if b.startswith("01:")) == sorted(["01:00.0", *vfs])


def test_validate_iommu_and_dma_steps(cli):
    base = "endpoints: [{name: ep0}]\nlinks: [{upstream: rc.rp0, downstream: ep0}]\n"
    p = cli("validate", cli.write("a.yaml", base + "scenario:\n  - {action: dma, target: ep0.pf, "
                                  "src: ep9.pf.bar2, dst: 0, length: 4}\n"), check=2)
    assert "a.yaml:4:40 (scenario[0].src)" in p.stderr and "no DMA function named 'ep9.pf'" in p.stderr
    p = cli("validate", cli.write("b.yaml", base + "scenario:\n  - {action: iommu_unmap, domain: d, "
                                  "iova: 0, length: 4096}\n"), check=2)
    assert "needs the IOMMU" in p.stderr
    p = cli("validate", cli.write("c.yaml", base + "vms: [{name: v, memory: 3MiB}]\n"), check=2)
    assert "c.yaml:3" in p.stderr
    p = cli("validate", cli.write("d.yaml", base + "iommu: {enabled: true, levels: 5}\n"), check=2)
    assert "d.yaml:3" in p.stderr and "levels" in p.stderr
    p = cli("validate", cli.write("e.yaml", base + "iommu: {enabled: true}\n"
                                  "vms: [{name: v, functions: [ep0.vf1]}]\n"), check=2)
    assert "no DMA function named 'ep0.vf1'" in p.stderr


def test_write_errors_on_outputs_fail_the_run(cli, root):
    for opt in ("--stats", "--trace"):
        p = cli("run", root / QUICKSTART, opt, "/dev/full", check=2)
        assert "/dev/full" in p.stderr and "No space left on device" in p.stderr, p.stderr


def test_failed_steps_are_printed_and_fail_unless_expected(cli):
    base = ("endpoints: [{name: ep0}]\nlinks: [{upstream: rc.rp0, downstream: ep0}]\n"
            "scenario:\n")
    steps = ("  - {action: enable_vfs, target: ep0.pf, count: 2%s}\n"
             "  - {action: hot_reset, target: ep0.pf%s}\n")
    p = cli("run", cli.write("s1.yaml", base + steps % ("", "")), check=1)
    assert "scenario[0]        enable_vfs: status -22 (-EINVAL)" in p.stdout, p.stdout
    assert "scenario[1]        hot_reset: status -25 (-ENOTTY)" in p.stdout
    assert "FAIL scenario[0]" in p.stdout and "FAIL scenario[1]" in p.stdout
    # Expected statuses are checks; `any` records without judging (still printed).
    p = cli("run", cli.write("s2.yaml", base + steps % (", status: -22", ", status: any")),
            check=0)
    assert "PASS scenario[0]" in p.stdout and "returns status -22" in p.stdout
    assert "hot_reset: status -25" in p.stdout and "FAIL" not in p.stdout
    p = cli("run", cli.write("s3.yaml", base + steps % (", status: -16", ", status: any")),
            check=1)
    assert "FAIL scenario[0]" in p.stdout
    # An expectation on the status is enough.
    p = cli("run", cli.write("s4.yaml", base + steps % ("", ", status: any") +
                             "expect:\n  - {stat: scenario.0.status, equals: -22}\n"), check=0)


def test_links_and_mps_trained_down_are_reported(cli, root):
    args = ("--set", "links[1].gen=4", "--set", "links[1].width=16", "--set", "host.mps=4096")
    p = cli("validate", root / QUICKSTART, *args, check=0)
    assert "warning: links[1] (sw0.dsp0 -- ep0): Gen4 x16 trains to Gen3 x8" in p.stdout, p.stdout
    assert "warning: host.mps 4096 is above what the hierarchy of sw0 supports" in p.stdout
    stats = cli.tmp / "w.json"
    p = cli("run", root / QUICKSTART, *args, "--stats", stats, check=0)
    assert "warning: links[1]" in p.stdout
    s = json.loads(stats.read_text())
    assert s["links"]["sw0.dsp0--ep0"]["generation"] == 3 and s["links"]["sw0.dsp0--ep0"]["width"] == 8
    assert len(s["warnings"]) == 2
    p = cli("validate", root / QUICKSTART, "--set", "links[0].gen=4", check=0)
    assert "warning" not in p.stdout


def test_unfinished_workloads_report_progress_and_busy_links(cli, root):
    stats = cli.tmp / "u.json"
    # Boot takes ~403 us (enumeration, AER set-up, SR-IOV); 440 us stops mid-copy.
    cli("run", root / QUICKSTART, "--set", "simulation.max_time=440us", "--stats", stats, check=1)
    s = json.loads(stats.read_text())
    w = s["workloads"]["copy0"]
    assert not w["finished"] and 0 < w["jobs"] < 64
    assert w["throughput_gbps"] > 1.0, w  # bytes moved so far over the time so far
    assert w["interrupts"] == w["jobs"]  # one MSI-X per completed job, counted live
    # The uplink is busy while the workloads run, though the run is mostly boot.
    up = s["links"]["rc.rp0--sw0.usp"]["down"]
    assert up["utilization"] < 0.5 * up["workload_utilization"], up
    assert up["workload_utilization"] > 0.5
    assert s["workload_window"]["running"] is True


@pytest.mark.parametrize("config", sorted(p.name for p in (pathlib.Path(__file__).resolve()
                                                            .parents[2] / "configs").glob("*.yaml")))
def test_every_shipped_config_passes(cli, root, config):
    p = cli("run", root / "configs" / config, check=0)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1].startswith("PASSED"), p.stdout


def test_migration_config_stats_show_every_arc_with_its_time(cli, root):
    # Issue 11 acceptance: `pciesim run configs/migration.yaml` passes and its
    # stats show every arc with its simulated duration.
    stats = cli.tmp / "mig.json"
    cli("run", root / "configs/migration.yaml", "--stats", stats)
    s = json.loads(stats.read_text())
    src = s["functions"]["ep0.vf1"]["migration"]
    dst = s["functions"]["ep1.vf1"]["migration"]
    assert [a["arc"] for a in src["arcs"]] == [
        "RUNNING->RUNNING_P2P", "RUNNING_P2P->STOP", "STOP->STOP_COPY"]
    assert [a["arc"] for a in dst["arcs"]] == [
        "RUNNING->RUNNING_P2P", "RUNNING_P2P->STOP", "STOP->RESUMING", "RESUMING->STOP",
        "STOP->RUNNING_P2P", "RUNNING_P2P->RUNNING"]
    for a in src["arcs"] + dst["arcs"]:
        assert a["ns"] >= 100_000 and a["status"] == 0  # at least one firmware command each
    assert src["arc_time_ns"]["STOP->STOP_COPY"]["count"] == 1
    assert src["commands"]["save"]["count"] == 1


def test_race_config_fails_without_the_p2p_step_and_says_why(cli, root):
    """Issue 13 acceptance: configs/p2p_migration_race.yaml passes as shipped
    and shows the race with p2p_quiesce: false."""
    stats = cli.tmp / "race.json"
    p = cli("run", root / "configs/p2p_migration_race.yaml", "--set",
            "scenario[3].p2p_quiesce=false", "--stats", stats)
    assert p.returncode != 0, p.stdout
    assert p.stdout.splitlines()[-1].startswith("FAILED"), p.stdout
    assert "race: ep0.vf1 received" in p.stdout and "from ep1.vf1" in p.stdout
    assert "ep0.vf1 differs on the destination" in p.stdout
    m = json.loads(stats.read_text())["migrations"]["vmA_to_vmB"]
    assert m["diverged"] is True and m["race"][0]["bytes"] > 0
    assert m["devices"]["ep0.vf1"]["compare"]["devmem_bytes_differ"] > 0


def test_migrate_step_refuses_bad_policy_with_its_place(cli):
    base = """
iommu: {enabled: true}
endpoints:
  - {name: ep0, sriov: {total_vfs: 2, num_vfs: 2, autoprobe: false},
     migration: {flags: [stop_copy, p2p]}}
links:
  - {upstream: rc.rp0, downstream: ep0}
vms:
  - {name: vmA, memory: 8MiB, functions: [ep0.vf1]}
  - {name: vmB, memory: 8MiB, incoming: true, functions: [ep0.vf2]}
scenario:
  - {action: migrate, vm: vmA, to: vmB, %s}
"""
    for bad, words in (("bandwidth: fast", "(scenario[0].bandwidth)"),
                       ("bandwidth: 0Gbps", "between 1 kB/s and 10 TB/s"),
                       ("max_iterations: 0", "max_iterations"),
                       ("dirty_tracking: maybe", "auto | device | iommu | none"),
                       ("functions: [ep0.vf1]", "expected a mapping")):
        path = cli.write("m.yaml", base % bad)
        p = cli("validate", path)
        assert p.returncode != 0, bad
        assert words in p.stderr + p.stdout, (bad, p.stderr)
    # A destination that is not incoming is refused when the step runs.
    path = cli.write("m2.yaml", (base % "bandwidth: 10Gbps").replace("to: vmB", "to: vmA"))
    p = cli("run", path)
    assert p.returncode != 0 and "cannot migrate to itself" in p.stdout + p.stderr


def test_fault_kinds_doc_is_current(cli, root):
    """docs/fault-kinds.md is what `pciesim faults` prints."""
    p = cli("faults", check=0)
    assert (root / "docs" / "fault-kinds.md").read_text() == p.stdout
    assert "## poisoned" in p.stdout and "## link_down" in p.stdout


def test_wait_fault_and_lspci_steps_refuse_bad_use(cli):
    """A fault that was never armed and a dump that cannot be written fail
    their steps with the reason; a zero count is refused at validation."""
    path = cli.write("h.yaml", """
endpoints: [{name: ep0}]
links: [{upstream: rc.rp0, downstream: ep0}]
scenario:
  - {action: wait_fault, fault_id: 99}
  - {action: lspci, target: ep0.pf, file: /nonexistent/dir/x}
""")
    p = cli("run", path, check=1)
    assert "no fault 99 (0 armed so far)" in p.stdout
    assert "cannot write the dump to '/nonexistent/dir/x'" in p.stdout
    bad = cli.write("h2.yaml", """
endpoints: [{name: ep0}]
links: [{upstream: rc.rp0, downstream: ep0}]
scenario:
  - {action: wait_fault, fault_id: 1, count: 0}
""")
    p = cli("validate", bad, check=2)
    assert "scenario[0].count" in p.stderr and "at least 1 firing" in p.stderr


def test_aer_inject_option_and_config_entry(cli):
    """`run --aer-inject FILE` and a faults[] `aer_inject:` entry arm the
    file's records; a bad file or time is refused with its place."""
    aer = cli.write("e.aer", "AER\nPCI_ID 01:00.0\nCOR_STATUS BAD_TLP\n")
    cfg = cli.write("a.yaml", """
endpoints: [{name: ep0}]
links: [{upstream: rc.rp0, downstream: ep0}]
scenario:
  - {action: wait, duration: 100us}
""")
    stats = cli.tmp / "s.json"
    cli("run", cfg, "--aer-inject", aer, "--aer-inject-at", "5us", "--stats", stats, "-q")
    s = json.loads(stats.read_text())
    assert s["faults"]["armed"][0]["kind"] == "aer_report"
    assert s["faults"]["armed"][0]["fired"] == 1
    assert s["root_complex"]["root_ports"]["rp0"]["err_cor_received"] == 1
    bad = cli.write("b.aer", "AER\nPCI_ID 01:00.0\nCOR_STATUS NOPE\n")
    p = cli("run", cfg, "--aer-inject", bad, check=2)
    assert "b.aer:3" in p.stderr and "'NOPE'" in p.stderr
    p = cli("run", cfg, "--aer-inject", aer, "--aer-inject-at", "soon", check=2)
    assert "--aer-inject-at" in p.stderr and "'soon'" in p.stderr
    p = cli("run", cfg, "--aer-inject", cli.tmp / "missing.aer", check=2)
    assert "cannot read" in p.stderr
    # The config form: a file relative to the config, or the text inline.
    entry = cli.write("c.yaml", """
endpoints: [{name: ep0}]
links: [{upstream: rc.rp0, downstream: ep0}]
faults:
  - {aer_inject: e.aer, at: 5us}
  - {aer_inject_text: "AER ID 01:00.0 UNCOR UNSUP", at: 6us}
scenario:
  - {action: wait, duration: 100us}
""")
    cli("run", entry, "--stats", stats, "-q")
    s = json.loads(stats.read_text())
    assert [f["fired"] for f in s["faults"]["armed"]] == [1, 1]
    assert s["root_complex"]["root_ports"]["rp0"]["err_nonfatal_received"] == 1
    mixed = cli.write("d.yaml", """
endpoints: [{name: ep0}]
links: [{upstream: rc.rp0, downstream: ep0}]
faults:
  - {aer_inject: e.aer, kind: lcrc}
""")
    p = cli("validate", mixed, check=2)
    assert "faults[0].kind" in p.stderr and "takes only `at`" in p.stderr
    broken = cli.write("f.yaml", """
endpoints: [{name: ep0}]
links: [{upstream: rc.rp0, downstream: ep0}]
faults:
  - {aer_inject_text: "AER ID 01:00.0"}
""")
    p = cli("validate", broken, check=2)
    assert "f.yaml" in p.stderr and "injects no error" in p.stderr


def test_targets_lists_every_kind_and_the_places_of_the_config(cli, root):
    p = cli("targets", root / "configs/campaigns/vm_isolation_machine.yaml", check=0)
    t = json.loads(p.stdout)
    names = {k["name"] for k in t["kinds"]}
    assert {"poisoned", "surprise_flr", "iommu_unmap", "test_abort"} <= names
    assert {k["name"]: k["target"] for k in t["kinds"]}["link_down"] == "link_undirected"
    assert t["targets"]["function"] == ["ep0.pf", "ep0.vf1", "ep0.vf2"]
    assert "sw0.dsp0--ep0:up" in t["targets"]["link"]
    assert t["targets"]["domain"] == ["vmA", "vmB"]
    p = cli("targets", root / "no-such.yaml")
    assert p.returncode == 2 and "no-such.yaml" in p.stderr

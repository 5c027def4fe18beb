"""Fault injection (docs/faults.md): each kind's architected outcome as the
requester, the detecting function's AER registers, the root port and the
host's recovery see it; determinism; injection from a scheduled callback."""
import json
import os
import subprocess
import sys

import pytest

import pciesim

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
QUICK = os.path.join(CONFIGS, "quickstart.yaml")
EP_LINK = "sw0.dsp0--ep0"


def booted():
    sim = pciesim.load(QUICK)
    sim.boot()
    return sim


def test_poisoned_completion_of_a_dma_read_is_logged_not_used_and_recovered():
    """PCIe 2.7.2: the requester logs Poisoned TLP with the CplD's header
    (EP set), does not use the data (engine error), ERR_NONFATAL reaches the
    root port and the host's AER service recovers the hierarchy."""
    sim = booted()
    h = sim.inject("poisoned", where=EP_LINK + ":down", match={"kinds": ["CplD"]})
    sim.run("300us")
    assert h.fired == 1 and "CplD for MRd" in h.log[0]["detail"]
    a = sim.aer("ep0.pf")
    assert a["status"]["detected_parity_error"] is True
    hdr = int(a["header_log"][0], 16)
    assert hdr >> 24 == 0x4A and hdr & (1 << 14), a["header_log"]  # CplD, EP
    s = sim.stats()
    assert s["functions"]["ep0.pf"]["dma"]["errors"] >= 1
    assert s["root_complex"]["root_ports"]["rp0"]["err_nonfatal_received"] == 1
    assert s["aer"]["non_fatal"] == 1 and s["aer"]["recovered"] == 1
    assert "TLP" in s["aer"]["log"][0]["errors"]
    assert s["completions"]["violations"] == 0


def test_lcrc_storm_only_costs_time():
    """NAK and replay (3.6.2): every TLP arrives, the receiver logs Bad TLP
    (correctable), ERR_COR reaches the root port; no data is lost."""
    clean = booted()
    clean.run("400us")
    base = clean.stats()
    sim = booted()
    h = sim.inject("lcrc", where=EP_LINK + ":up", count=20, repeat=2)
    sim.run("400us")
    s = sim.stats()
    assert h.fired == 20
    assert s["aer"]["correctable"] >= 1
    assert s["root_complex"]["root_ports"]["rp0"]["err_cor_received"] >= 1
    w = s["workloads"]["copy0"]
    assert w["mismatches"] == 0 and w["errors"] == 0
    assert s["functions"]["ep0.pf"]["dma"]["read_latency_ns"]["max"] >= \
        base["functions"]["ep0.pf"]["dma"]["read_latency_ns"]["max"]
    assert s["completions"]["violations"] == 0


def test_rollover_after_four_bad_copies():
    sim = booted()
    sim.inject("lcrc", where=EP_LINK + ":up", repeat=4)
    sim.run("100us")
    msgs = " ".join(sim.stats()["aer"]["messages"])
    assert "Rollover" in msgs and "BadTLP" in msgs


def test_no_completion_times_out_at_the_requester():
    """2.8: a request without a completion ends with a completion timeout;
    the requester logs CmpltTO (non-fatal); exactly one ending per request."""
    sim = booted()
    h = sim.inject("no_completion", where="rc", match={"kinds": ["MRd"], "requester": "ep0.pf"})
    sim.run("200ms")
    s = sim.stats()
    assert h.fired == 1
    assert s["completions"]["timeouts"] == 1 and s["completions"]["violations"] == 0
    assert "CmpltTO" in sim.aer("ep0.pf")["uncorrectable"]["errors"] or \
        any("CmpltTO" in m for m in s["aer"]["messages"])


def test_cpl_ur_from_host_memory_is_advisory_at_the_completer():
    sim = booted()
    sim.inject("cpl_ur", where="rc", match={"kinds": ["MRd"], "requester": "ep0.pf"})
    sim.run("300us")
    rp = sim.aer("rc.rp0")
    assert "UnsupReq" in rp["uncorrectable"]["errors"]
    assert "AdvNonFatalErr" in rp["correctable"]["errors"]
    assert sim.aer("ep0.pf")["status"]["received_master_abort"] is True


def test_internal_error_is_masked_by_default_and_fatal_when_unmasked():
    """7.8.4.3: Uncorrectable Internal Error is masked by default: status
    and Fatal Error Detected only. Unmasked: ERR_FATAL, link reset."""
    sim = booted()
    sim.inject("internal_error", where="ep0.pf", at=sim.now)
    sim.run("10us")
    a = sim.aer("ep0.pf")
    assert "UncorrIntErr" in a["uncorrectable"]["errors"] and a["device_status"]["fatal"]
    assert sim.stats()["aer"]["fatal"] == 0
    sim2 = booted()
    mask = sim2.config_read("ep0.pf", 0x100 + 8, 4)  # AER is the first extended capability
    sim2.config_write("ep0.pf", 0x100 + 8, mask & ~0x00400000, 4)
    sim2.inject("internal_error", where="ep0.pf", at=sim2.now)
    sim2.run("200ms")
    s = sim2.stats()
    assert s["aer"]["fatal"] == 1
    assert s["aer"]["log"][0]["severity"] == "fatal"
    assert s["aer"]["log"][0]["result"] == "recovered"


def test_link_down_then_recovery_retrains_it():
    sim = booted()
    sim.inject("link_down", where=EP_LINK, at=sim.now)
    sim.run("500ms")
    s = sim.stats()
    # Surprise Down at the port above (fatal), a secondary bus reset
    # retrains the link, the driver's slot_reset restores the function.
    rec = s["aer"]["log"][0]
    assert "SDES" in rec["errors"] and rec["severity"] == "fatal" and rec["source"] == "sw0.dsp0"
    assert rec["result"] == "recovered" and rec["outcomes"] == {"ep0.pf": "recovered"}
    assert sim.config_read("ep0.pf", 0, 2) == 0x5EC0
    assert s["completions"]["violations"] == 0


def test_same_plan_and_seed_give_identical_stats():
    def run():
        sim = booted()
        sim.inject("lcrc", where=EP_LINK + ":up", count=0, probability=0.05)
        sim.run("300us")
        return json.dumps(sim.stats(), sort_keys=True)
    assert run() == run()


def test_inject_from_a_scheduled_callback_while_dma_runs():
    sim = booted()
    handles = []
    sim.after("50us", lambda: handles.append(
        sim.inject("poisoned", where=EP_LINK + ":down", match={"kinds": ["CplD"]})))
    sim.run("300us")
    assert handles and handles[0].fired == 1
    handles[0].cancel()
    assert sim.stats()["faults"]["armed"][0]["cancelled"] is True


def test_bad_fault_descriptions_are_refused_with_their_place():
    sim = booted()
    with pytest.raises(pciesim.ConfigError, match="unknown fault kind 'bogus'"):
        sim.inject("bogus", where=EP_LINK)
    with pytest.raises(pciesim.UsageError, match="no link 'nowhere'"):
        sim.inject("lcrc", where="nowhere")
    with pytest.raises(pciesim.UsageError, match="no function"):
        sim.inject("cpl_ca", where="ep7.pf")
    with pytest.raises(TypeError):
        sim.inject("lcrc", where=EP_LINK, match=[1])


def test_the_inject_faults_example_runs():
    script = os.path.join(os.path.dirname(__file__), "..", "examples", "inject_faults.py")
    p = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "lcrc storm: fired 30 times" in p.stdout
    assert "recovery from sw0.dsp0: fatal, recovered" in p.stdout
    assert "every request ended once: True" in p.stdout


AER_FILE = """
# aer-inject's format: ep0 (03:00.0) reports a non-fatal Completion Timeout
AER
PCI_ID 0000:03:00.0
UNCOR_STATUS COMP_TIME
HEADER_LOG 0x20000001 0x030000ff 0 0x01003000
AER ID 02:00.0 COR_STATUS BAD_TLP   # sw0.dsp0, correctable
"""


def test_aer_inject_text_is_logged_by_the_functions_and_recovered():
    """aer-inject records become aer_report faults: the function's AER
    registers hold the error and the header, the root port receives the
    messages from the right sources, and the host recovers (non-fatal: no
    reset)."""
    sim = booted()
    at = sim.now
    hs = sim.aer_inject(AER_FILE, at=at)
    assert [h.where for h in hs] == ["03:00.0", "02:00.0"]
    seen = []
    sim.after("1ns", lambda: seen.append(sim.aer("ep0.pf")))
    sim.run("200us")
    assert all(h.fired == 1 for h in hs)
    assert "ep0.pf (03:00.0) logs CmpltTO" in hs[0].log[-1]["detail"]
    a = seen[0]
    assert "CmpltTO" in a["uncorrectable"]["errors"]
    assert a["first_error_pointer"] == 14
    assert a["header_log"] == ["0x20000001", "0x030000ff", "0x00000000", "0x01003000"]
    s = sim.stats()
    rp = s["root_complex"]["root_ports"]["rp0"]
    assert rp["err_nonfatal_received"] == 1 and rp["err_cor_received"] == 1
    assert rp["aer"]["root"]["cor_source"] == "02:00.0"
    assert rp["aer"]["root"]["uncor_source"] == "03:00.0"
    assert s["aer"]["recoveries"] == 1 and s["aer"]["log"][0]["severity"] == "non_fatal"
    assert s["aer"]["log"][0]["outcomes"]["ep0.pf"] == "recovered"
    assert s["completions"]["violations"] == 0


def test_aer_inject_before_boot_waits_for_enumeration(tmp_path):
    """A PCI address means nothing before enumeration: a record armed before
    boot fires once the host has given out the bus numbers."""
    f = tmp_path / "cor.aer"
    f.write_text("AER\nBUS 3 DEV 0 FN 0\nCOR_STATUS RCVR\n")
    sim = pciesim.load(QUICK)
    (h,) = sim.aer_inject(path=f)
    sim.run("1ms")
    assert h.fired == 1
    assert "ep0.pf (03:00.0) logs RxErr" in h.log[-1]["detail"]
    assert sim.stats()["root_complex"]["root_ports"]["rp0"]["err_cor_received"] == 1


def test_bad_aer_inject_input_is_refused_with_its_line_and_nothing_armed():
    sim = booted()
    with pytest.raises(pciesim.UsageError, match=r"aer_inject:3: UNCOR_STATUS: unknown .*'BOGUS'"):
        sim.aer_inject("AER\nID 03:00.0\nUNCOR_STATUS BOGUS\n")
    with pytest.raises(pciesim.UsageError, match="no function at 09:00.0"):
        sim.aer_inject("AER ID 03:00.0 COR RCVR\nAER ID 09:00.0 COR RCVR\n")
    with pytest.raises(pciesim.UsageError, match="bit 0 is not implemented"):
        sim.aer_inject("AER ID 03:00.0 UNCOR TRAIN\n")
    with pytest.raises(pciesim.UsageError, match="domain 1 does not exist"):
        sim.aer_inject("AER ID 0001:03:00.0 COR RCVR\n")
    with pytest.raises(pciesim.UsageError, match="host bridge"):
        sim.aer_inject("AER ID 00:00.0 COR RCVR\n")
    with pytest.raises(TypeError):
        sim.aer_inject()
    with pytest.raises(TypeError):
        sim.aer_inject(5)
    # All or nothing: the refused files armed no fault.
    assert sim.stats()["faults"]["armed"] == []
    with pytest.raises(pciesim.ConfigError, match="aer_report needs cor_status or uncor_status"):
        sim.inject("aer_report", where="ep0.pf")
    with pytest.raises(pciesim.ConfigError, match="expected an uncorrectable error name"):
        sim.inject("aer_report", where="ep0.pf", uncor_status="BAD_TLP")
    with pytest.raises(pciesim.ConfigError, match="aer_report parameters"):
        sim.inject("lcrc", where=EP_LINK, cor_status="RCVR")


def test_a_failed_descriptor_fetch_completes_the_earlier_descriptors_first():
    """The second descriptor fetch of a copy gets UR while the 8 descriptors
    of the first fetch are still being worked on: those finish (records in
    ring order, every byte verified) before the failed descriptor's error
    record halts the engine."""
    cfg = {
        "simulation": {"seed": 3, "max_time": "1s"},
        "endpoints": [{"name": "ep0"}],
        "links": [{"upstream": "rc.rp0", "downstream": "ep0", "gen": 3, "width": 8}],
        "workloads": [{"name": "copy", "function": "ep0.pf", "size": "4KiB", "count": 16,
                       "queue_depth": 8, "start": "manual"}],
    }
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        ring = sim.mmio_read("ep0.pf", 0x10) | sim.mmio_read("ep0.pf", 0x14) << 32
        h = sim.inject("cpl_ur", where="rc", nth=2,
                       match={"kinds": ["MRd"], "requester": "ep0.pf", "address_lo": ring,
                              "address_hi": ring + 256 * 32})
        sim.start_workload("copy")
        sim.run("5ms")
        assert h.fired == 1
        w = sim.stats()["workloads"]["copy"]
        assert w["jobs"] == 8 and w["verified_bytes"] == 8 * 4096 and w["mismatches"] == 0
        assert w["errors"] == 1 and "error 2 on job 8" in w["failure"]
        assert sim.stats()["completions"]["violations"] == 0

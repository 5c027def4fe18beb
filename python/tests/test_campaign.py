"""Campaigns (pciesim.campaign, docs/campaigns.md): the small shipped
campaign gives the same results on the local pool and on a 2-worker Dask
LocalCluster; a run that aborts the simulator is a `crash` and the campaign
completes; a resumed campaign re-runs nothing that finished; outcomes are
classified from the stats; bad descriptions are refused with their place."""
import pathlib
import sqlite3
import subprocess
import sys

import pytest

from pciesim import campaign

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "campaigns" / "smoke.yaml"
MACHINE = ROOT / "configs" / "campaigns" / "vm_isolation_machine.yaml"
STABLE = ["key", "idx", "inputs", "fault_kind", "location", "outcome", "detail", "exit_code",
          "sim_time_ns", "fault_fired", "aer_non_fatal", "recoveries", "verified_bytes",
          "mismatches", "engine_errors"]


def rows(out):
    with sqlite3.connect(str(pathlib.Path(out) / "results.sqlite")) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM runs ORDER BY idx")]


def test_the_small_campaign_gives_the_same_results_locally_and_on_dask(tmp_path):
    local = campaign.run_campaign(SMOKE, tmp_path / "local", workers=2, progress=False)
    dask = campaign.run_campaign(SMOKE, tmp_path / "dask", workers=2, dask=True, progress=False)
    assert local["runs"] == dask["runs"] == 6 and local["ran"] == 6
    a, b = rows(tmp_path / "local"), rows(tmp_path / "dask")
    assert [{k: r[k] for k in STABLE} for r in a] == [{k: r[k] for k in STABLE} for r in b]
    assert {r["outcome"] for r in a} <= set(campaign.OUTCOMES)
    assert all(r["fault_fired"] >= 1 for r in a)
    # Every run's artifacts: its config (the reproducer runs it) and stats.
    for r in a:
        d = tmp_path / "local" / "runs" / r["key"]
        assert (d / "config.yaml").exists() and (d / "stats.json").exists()
        assert r["reproducer"].endswith(f"{d}/config.yaml")
    csv = (tmp_path / "local" / "results.csv").read_text().splitlines()
    assert len(csv) == 7 and csv[0].startswith("key,campaign,idx")


def test_a_crashing_run_is_a_result_and_the_campaign_completes(tmp_path):
    c = {"name": "crashy", "base": str(MACHINE), "limits": {"wall_time": "60s"},
         "axes": [{"name": "fault", "fault_list": [
             {"kind": "test_abort", "where": "simulator", "at": "20us"},
             {"kind": "surprise_flr", "where": "ep0.vf2", "at": "20us"}]}]}
    s = campaign.run_campaign(c, tmp_path / "out", workers=2, progress=False)
    assert s["runs"] == 2 and s["ran"] == 2
    by_kind = {r["fault_kind"]: r for r in rows(tmp_path / "out")}
    crash = by_kind["test_abort"]
    assert crash["outcome"] == "crash" and "SIGABRT" in crash["detail"]
    assert crash["exit_code"] == -6
    assert by_kind["surprise_flr"]["outcome"] != "crash"


def test_resume_reruns_nothing_that_finished(tmp_path):
    first = campaign.run_campaign(SMOKE, tmp_path / "out", workers=1, limit=2, progress=False)
    assert first["ran"] == 2
    before = {r["key"]: r["wall_s"] for r in rows(tmp_path / "out")}
    seen = []
    again = campaign.run_campaign(SMOKE, tmp_path / "out", workers=2, progress=False,
                                  on_result=lambda r: seen.append(r["key"]))
    assert again["ran"] == 4 and again["skipped"] == 2
    assert not set(seen) & set(before)
    after = rows(tmp_path / "out")
    assert len(after) == 6
    assert all(r["wall_s"] == before[r["key"]] for r in after if r["key"] in before)
    third = campaign.run_campaign(SMOKE, tmp_path / "out", workers=2, progress=False)
    assert third["ran"] == 0


def test_a_run_that_reaches_the_time_limit_with_work_outstanding_hangs(tmp_path):
    c = {"name": "short", "base": str(MACHINE), "limits": {"sim_time": "100400us"},
         "axes": [{"name": "seed", "set": "simulation.seed", "values": [1]}]}
    campaign.run_campaign(c, tmp_path / "out", progress=False)
    (r,) = rows(tmp_path / "out")
    assert r["outcome"] == "hang" and "outstanding" in r["detail"]


def _stats(**wl):
    base = {"workloads": {}, "aer": {"correctable": 0, "non_fatal": 0, "fatal": 0},
            "checks": [], "scenario": []}
    for name, w in wl.items():
        base["workloads"][name] = {"started": True, "finished": True, "jobs": 4, "bytes": 64,
                                   "verified_bytes": 64, "mismatches": 0, "errors": 0,
                                   "stalled": False, "failure": "", **w}
    return base


CFG = {"vms": [{"name": "vmA", "functions": ["ep0.vf1"]}, {"name": "vmB", "functions": ["ep0.vf2"]}],
       "workloads": [{"name": "a", "function": "ep0.vf1", "count": 4},
                     {"name": "b", "function": "ep0.vf2", "count": 4}]}


def test_outcomes_are_classified_from_the_stats():
    fa = {"kind": "cpl_ca", "where": "ep0.vf1"}
    assert campaign.classify(_stats(a={}, b={}), 0, CFG, fa, [])[0] == "recovered"
    # vmA's fault changed vmB's data: an escape, whatever was reported.
    s = _stats(a={}, b={"mismatches": 1, "verified_bytes": 48})
    assert campaign.classify(s, 1, CFG, fa, [])[0] == "isolation_escape"
    # A shared place (the PF's link) has no owner: that is corruption.
    assert campaign.classify(s, 1, CFG, {"kind": "ecrc", "where": "l:down"}, [])[0] == \
        "silent_corruption"
    s["aer"]["non_fatal"] = 1
    assert campaign.classify(s, 1, CFG, {"kind": "ecrc", "where": "l:down"}, [])[0] == \
        "error_reported"
    s = _stats(a={"errors": 1, "jobs": 3, "verified_bytes": 48, "bytes": 48}, b={})
    assert campaign.classify(s, 1, CFG, fa, [])[0] == "error_reported"
    assert campaign.classify(None, -11, CFG, fa, [])[0] == "crash"
    assert campaign.classify(None, None, CFG, fa, [])[0] == "hang"
    assert campaign.classify(None, 2, CFG, fa, [], "bad key")[0] == "invalid"
    user = [{"name": "slow", "stat": "aer.non_fatal", "at_least": 1}]
    s = _stats(a={}, b={})
    s["aer"]["non_fatal"] = 2
    assert campaign.classify(s, 0, CFG, fa, user) == ("slow", "aer.non_fatal = 2")


@pytest.mark.parametrize("doc, words", [
    ({"base": "nope.yaml"}, "cannot read"),
    ({"base": str(MACHINE), "colour": 1}, "unknown key(s): colour"),
    ({"base": str(MACHINE), "axes": [{"name": "x", "values": [1]}]}, "needs set"),
    ({"base": str(MACHINE), "axes": [{"name": "f", "faults": {"kinds": ["meteor"]}}]},
     "unknown fault kind 'meteor'"),
    ({"base": str(MACHINE), "axes": [{"name": "f", "faults": {"at": ["soon"]}}]},
     "times with units"),
    ({"base": str(MACHINE), "sample": 0}, "sample must be a positive"),
    ({"base": str(MACHINE), "limits": {"wall_time": "forever"}}, "limits.wall_time"),
    ({"base": str(MACHINE), "axes": [{"name": "x", "set": "links[9].gen", "values": [3]}]},
     "index 9 is past the end"),
])
def test_bad_campaigns_are_refused_with_their_place(tmp_path, doc, words):
    with pytest.raises(campaign.CampaignError, match=None) as e:
        campaign.run_campaign(doc, tmp_path / "o", progress=False)
    assert words in str(e.value)


def test_every_fault_kind_expands_over_the_isolation_machine():
    c = campaign.load_campaign(ROOT / "configs" / "campaigns" / "isolation.yaml")
    import json
    binary = campaign.simulator_binary()
    from pciesim.campaign.execute import targets
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        t = targets(binary, c, pathlib.Path(d))
    runs = c.runs(t, "build")
    kinds = {r.fault_kind for r in runs}
    assert kinds == {k["name"] for k in t["kinds"] if not k["test_only"]}
    places = {r.location for r in runs}
    assert set(t["targets"]["link"]) <= places and set(t["targets"]["function"]) <= places
    assert len({r.key for r in runs}) == len(runs)        # every run its own key
    assert json.dumps(runs[0].config)                      # plain data


def test_the_cli_runs_a_campaign_and_reports_it(tmp_path):
    pciesim_bin = campaign.simulator_binary()
    p = subprocess.run([pciesim_bin, "campaign", str(SMOKE), "--workers", "2", "--out",
                        str(tmp_path / "r"), "-q"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "smoke: 6 runs, 6 run now" in p.stdout
    p = subprocess.run([pciesim_bin, "campaign", "report", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "outcome by fault kind:" in p.stdout and "surprise_flr" in p.stdout
    assert (tmp_path / "r" / "outcomes_by_kind.png").read_bytes()[:4] == b"\x89PNG"
    p = subprocess.run([pciesim_bin, "campaign", str(tmp_path / "missing.yaml")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "cannot read" in p.stderr

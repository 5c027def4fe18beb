"""A campaign description and its expansion into runs (docs/campaigns.md).

A campaign is a base config, parameter axes and how to judge each run:

    name: isolation
    base: ../vm_isolation.yaml          # relative to the campaign file
    seed: 1                             # the campaign's own seed (sampling)
    limits: {sim_time: 50ms, wall_time: 120s}
    axes:
      - {name: seed, set: simulation.seed, values: [1, 2]}
      - name: fault
        faults:
          kinds: all                    # or a list; from `pciesim targets`
          where: auto                   # every place the kind applies, or a list
          at: [20us, 60us]              # timed kinds: when; others: from when
          params: {aer_report: {uncor_status: DLP}}
      - {name: gen, set: "links[0].gen", values: [3, 4]}
    sample: 40                          # optional: a random subset (campaign seed)
    outcomes:                           # optional user-defined outcomes, first match wins
      - {name: slow_recovery, stat: aer.log.0.duration_ns, greater_than: 1e6}

Axes combine as a grid (every combination); `sample: N` draws N of them
with the campaign seed. Each run is a pure function of its inputs: the
base config's text, the overrides, the fault, and the simulator build.
"""
from __future__ import annotations

import copy
import hashlib
import json
import pathlib
import random
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import yaml

TIME_RE = re.compile(r"^\s*[0-9.]+(e[+-]?[0-9]+)?\s*(fs|ps|ns|us|ms|s)\s*$", re.IGNORECASE)


class CampaignError(ValueError):
    """A campaign description that cannot be run; the message names the
    place (file and key) and the value."""


@dataclass
class Run:
    """One simulation of a campaign: the config it runs and what it varies."""
    index: int
    config: Dict[str, Any]                 # the whole config, overrides and fault applied
    inputs: Dict[str, Any]                 # axis name -> the value this run takes
    fault: Optional[Dict[str, Any]] = None
    key: str = ""

    @property
    def fault_kind(self) -> str:
        return self.fault["kind"] if self.fault else ""

    @property
    def location(self) -> str:
        return self.fault.get("where", "") if self.fault else ""


@dataclass
class Campaign:
    name: str
    base_path: pathlib.Path
    base: Dict[str, Any]
    axes: List[Dict[str, Any]]
    seed: int = 1
    sample: Optional[int] = None
    sim_time: Optional[str] = None
    wall_time: float = 300.0
    outcomes: List[Dict[str, Any]] = field(default_factory=list)
    source: str = "<campaign>"

    # -- expansion ---------------------------------------------------------------
    def runs(self, targets: Dict[str, Any], build: str) -> List[Run]:
        """Every run, keyed by its inputs and the simulator build `build`.
        `targets` is `pciesim targets BASE` (fault kinds and where they
        apply)."""
        choices = [self._axis_values(i, a, targets) for i, a in enumerate(self.axes)]
        combos: List[List[Any]] = [[]]
        for values in choices:
            combos = [c + [v] for c in combos for v in values]
        if self.sample is not None and self.sample < len(combos):
            rng = random.Random(self.seed)
            picked = sorted(rng.sample(range(len(combos)), self.sample))
            combos = [combos[i] for i in picked]
        runs = []
        for i, combo in enumerate(combos):
            cfg = copy.deepcopy(self.base)
            inputs: Dict[str, Any] = {}
            fault = None
            for axis, value in zip(self.axes, combo):
                if "faults" in axis or "fault_list" in axis:
                    fault = value
                    inputs[axis["name"]] = _fault_label(value)
                else:
                    set_path(cfg, axis["set"], value, f"{self.source}: axis {axis['name']}")
                    inputs[axis["name"]] = value
            if fault is not None:
                cfg.setdefault("faults", [])
                if not isinstance(cfg["faults"], list):
                    raise CampaignError(f"{self.base_path}: faults must be a list")
                cfg["faults"] = list(cfg["faults"]) + [fault]
            if self.sim_time:
                cfg.setdefault("simulation", {})["max_time"] = self.sim_time
            run = Run(index=i, config=cfg, inputs=inputs, fault=fault)
            run.key = run_key(cfg, build)
            runs.append(run)
        return runs

    def _axis_values(self, i, axis, targets):
        where = f"{self.source}: axes[{i}] ({axis.get('name', '?')})"
        if "faults" in axis:
            return expand_faults(axis["faults"], targets, where)
        if "fault_list" in axis:
            faults = axis["fault_list"]
            if not isinstance(faults, list) or not all(isinstance(f, dict) for f in faults):
                raise CampaignError(f"{where}: fault_list must be a list of fault mappings")
            return [dict(f) for f in faults]
        return list(axis["values"])


def _fault_label(f: Dict[str, Any]) -> str:
    s = f"{f['kind']}@{f.get('where', '')}"
    if "at" in f:
        s += f"+{f['at']}"
    return s


def run_key(config: Dict[str, Any], build: str) -> str:
    """The run's identity: its whole config (canonical JSON) and the build."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((build + "\n" + text).encode()).hexdigest()[:20]


_PATH_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def set_path(cfg: Dict[str, Any], path: str, value: Any, where: str) -> None:
    """Sets `a.b[2].c` (list items also by their `name`: endpoints.ep0.x)."""
    parts = []
    for m in _PATH_RE.finditer(path):
        parts.append(int(m.group(2)) if m.group(2) is not None else m.group(1))
    if not parts or "".join(str(p) for p in parts) == "":
        raise CampaignError(f"{where}: empty override path")
    node: Any = cfg
    for n, p in enumerate(parts):
        last = n == len(parts) - 1
        if isinstance(node, list):
            if isinstance(p, str):
                named = [x for x in node if isinstance(x, dict) and x.get("name") == p]
                if not named:
                    raise CampaignError(f"{where}: no list item named '{p}' in '{path}'")
                idx = node.index(named[0])
            else:
                idx = p
                if idx >= len(node):
                    raise CampaignError(f"{where}: index {idx} is past the end of the list in "
                                        f"'{path}' ({len(node)} items)")
            if last:
                node[idx] = value
                return
            node = node[idx]
        elif isinstance(node, dict):
            key = str(p)
            if last:
                node[key] = value
                return
            if key not in node or node[key] is None:
                node[key] = {}
            node = node[key]
        else:
            raise CampaignError(f"{where}: '{path}' goes through a value that is not a mapping or "
                                f"list")


# Which `where` each kind takes: from `pciesim targets` ("target" of a kind).
def expand_faults(spec: Dict[str, Any], targets: Dict[str, Any], where: str) -> List[Dict]:
    if not isinstance(spec, dict):
        raise CampaignError(f"{where}: faults must be a mapping (kinds, where, at, params, ...)")
    unknown = set(spec) - {"kinds", "where", "at", "params", "count", "nth", "probability",
                           "match", "until", "exclude"}
    if unknown:
        raise CampaignError(f"{where}: unknown key(s) in faults: {', '.join(sorted(unknown))}")
    kinds_info = {k["name"]: k for k in targets["kinds"]}
    kinds = spec.get("kinds", "all")
    if kinds == "all":
        kinds = [k for k, info in kinds_info.items() if not info.get("test_only")]
    if not isinstance(kinds, list):
        raise CampaignError(f"{where}: kinds must be 'all' or a list of fault kinds")
    for k in kinds:
        if k not in kinds_info:
            raise CampaignError(f"{where}: unknown fault kind '{k}' (pciesim faults lists them)")
    exclude = set(spec.get("exclude", []))
    params = spec.get("params", {}) or {}
    if not isinstance(params, dict):
        raise CampaignError(f"{where}: params must map a kind to its parameters")
    ats = spec.get("at", [None])
    if not isinstance(ats, list):
        ats = [ats]
    for t in ats:
        if t is not None and not (isinstance(t, str) and TIME_RE.match(t)):
            raise CampaignError(f"{where}: at must be times with units (20us), got {t!r}")
    out = []
    for k in kinds:
        if k in exclude:
            continue
        info = kinds_info[k]
        missing = [p for p in info.get("required", []) if p not in params.get(k, {})]
        if missing:
            # A kind that cannot fire without a parameter is left out unless given.
            continue
        places = spec.get("where", "auto")
        if places == "auto":
            places = targets["targets"].get(info["target"], [])
        elif isinstance(places, str):
            places = [places]
        elif isinstance(places, dict):
            places = places.get(k, targets["targets"].get(info["target"], []))
        for place in places:
            for t in ats:
                f: Dict[str, Any] = {"kind": k, "where": place}
                if t is not None:
                    f["at"] = t
                for key in ("count", "nth", "probability", "match", "until"):
                    if key in spec:
                        f[key] = spec[key]
                f.update(params.get(k, {}))
                out.append(f)
    if not out:
        raise CampaignError(f"{where}: the fault axis expands to no fault (kinds {kinds}, where "
                            f"{spec.get('where', 'auto')})")
    return out


_CAMPAIGN_KEYS = {"name", "base", "seed", "axes", "sample", "limits", "outcomes"}
_AXIS_KEYS = {"name", "set", "values", "faults", "fault_list"}
_COMPARATORS = {"equals", "not_equals", "less_than", "at_most", "greater_than", "at_least"}


def load_campaign(path_or_dict, *, source: Optional[str] = None) -> Campaign:
    """Reads a campaign from a YAML file or a dict; CampaignError names what
    is wrong and where."""
    if isinstance(path_or_dict, (str, pathlib.Path)):
        path = pathlib.Path(path_or_dict)
        try:
            doc = yaml.safe_load(path.read_text())
        except OSError as e:
            raise CampaignError(f"{path}: cannot read it ({e.strerror})") from None
        except yaml.YAMLError as e:
            raise CampaignError(f"{path}: not valid YAML: {e}") from None
        here = path.parent
        source = source or str(path)
    elif isinstance(path_or_dict, dict):
        doc = copy.deepcopy(path_or_dict)
        here = pathlib.Path.cwd()
        source = source or "<campaign>"
    else:
        raise TypeError(f"a campaign is a file path or a dict, got {type(path_or_dict).__name__}")
    if not isinstance(doc, dict):
        raise CampaignError(f"{source}: a campaign is a mapping")
    unknown = set(doc) - _CAMPAIGN_KEYS
    if unknown:
        raise CampaignError(f"{source}: unknown key(s): {', '.join(sorted(unknown))} (known: "
                            f"{', '.join(sorted(_CAMPAIGN_KEYS))})")
    if "base" not in doc:
        raise CampaignError(f"{source}: 'base' (the config every run starts from) is missing")
    base = doc["base"]
    if isinstance(base, dict):
        base_cfg, base_path = copy.deepcopy(base), here / "<inline>"
    else:
        base_path = (here / str(base)).resolve()
        try:
            base_cfg = yaml.safe_load(base_path.read_text())
        except OSError as e:
            raise CampaignError(f"{source}: base '{base}': cannot read {base_path} "
                                f"({e.strerror})") from None
        if not isinstance(base_cfg, dict):
            raise CampaignError(f"{source}: base '{base}' is not a config mapping")
    axes = doc.get("axes", [])
    if not isinstance(axes, list):
        raise CampaignError(f"{source}: axes must be a list")
    names = set()
    for i, a in enumerate(axes):
        w = f"{source}: axes[{i}]"
        if not isinstance(a, dict):
            raise CampaignError(f"{w}: an axis is a mapping with name and set/values or faults")
        bad = set(a) - _AXIS_KEYS
        if bad:
            raise CampaignError(f"{w}: unknown key(s): {', '.join(sorted(bad))}")
        if "name" not in a or not isinstance(a["name"], str):
            raise CampaignError(f"{w}: every axis needs a name")
        if a["name"] in names:
            raise CampaignError(f"{w}: axis name '{a['name']}' is used twice")
        names.add(a["name"])
        has_fault = "faults" in a or "fault_list" in a
        if has_fault and ("set" in a or "values" in a):
            raise CampaignError(f"{w}: a fault axis takes faults or fault_list, not set/values")
        if not has_fault:
            if "set" not in a or "values" not in a:
                raise CampaignError(f"{w} ({a['name']}): needs set (a config path) and values")
            if not isinstance(a["values"], list) or not a["values"]:
                raise CampaignError(f"{w} ({a['name']}): values must be a non-empty list")
    if sum(1 for a in axes if "faults" in a or "fault_list" in a) > 1:
        raise CampaignError(f"{source}: at most one fault axis (a run injects one fault plan)")
    limits = doc.get("limits", {}) or {}
    if not isinstance(limits, dict) or set(limits) - {"sim_time", "wall_time"}:
        raise CampaignError(f"{source}: limits takes sim_time and wall_time")
    sim_time = limits.get("sim_time")
    if sim_time is not None and not (isinstance(sim_time, str) and TIME_RE.match(sim_time)):
        raise CampaignError(f"{source}: limits.sim_time must be a time with a unit, got "
                            f"{sim_time!r}")
    wall = limits.get("wall_time", "300s")
    wall_s = _seconds(wall, f"{source}: limits.wall_time")
    sample = doc.get("sample")
    if sample is not None and (not isinstance(sample, int) or isinstance(sample, bool)
                               or sample < 1):
        raise CampaignError(f"{source}: sample must be a positive number of runs, got {sample!r}")
    seed = doc.get("seed", 1)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise CampaignError(f"{source}: seed must be an integer, got {seed!r}")
    outcomes = doc.get("outcomes", []) or []
    if not isinstance(outcomes, list):
        raise CampaignError(f"{source}: outcomes must be a list")
    for i, o in enumerate(outcomes):
        w = f"{source}: outcomes[{i}]"
        if not isinstance(o, dict) or "name" not in o or "stat" not in o:
            raise CampaignError(f"{w}: an outcome needs name, stat and one comparison")
        cmp = set(o) & _COMPARATORS
        if len(cmp) != 1 or set(o) - _COMPARATORS - {"name", "stat"}:
            raise CampaignError(f"{w}: exactly one of {', '.join(sorted(_COMPARATORS))}")
    name = doc.get("name", pathlib.Path(source).stem if source else "campaign")
    return Campaign(name=str(name), base_path=base_path, base=base_cfg, axes=axes, seed=seed,
                    sample=sample, sim_time=sim_time, wall_time=wall_s, outcomes=outcomes,
                    source=source)


def _seconds(v, where) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = re.match(r"^\s*([0-9.]+)\s*(ms|s|min|h)\s*$", str(v))
    if not m:
        raise CampaignError(f"{where}: expected a wall time such as 60s or 5min, got {v!r}")
    return float(m.group(1)) * {"ms": 1e-3, "s": 1, "min": 60, "h": 3600}[m.group(2)]

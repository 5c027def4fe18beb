import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def quickstart():
    return str(ROOT / "configs" / "quickstart.yaml")


SMALL = {
    "switches": [{"name": "sw0", "downstream_ports": 2}],
    "endpoints": [{"name": "ep0"}, {"name": "ep1"}],
    "links": [
        {"upstream": "rc.rp0", "downstream": "sw0"},
        {"upstream": "sw0.dsp0", "downstream": "ep0"},
        {"upstream": "sw0.dsp1", "downstream": "ep1"},
    ],
    "workloads": [{"name": "w", "function": "ep0.pf", "size": "8KiB", "count": 50,
                   "queue_depth": 4, "start": "manual"}],
}


@pytest.fixture
def small():
    import copy
    return copy.deepcopy(SMALL)

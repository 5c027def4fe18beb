"""pciesim: script, drive and inspect PCI Express / SR-IOV simulations.

    import pciesim
    with pciesim.load("configs/quickstart.yaml") as sim:
        sim.boot()
        print(sim.bdf("ep0.pf"), sim.config_read("ep0.pf", 0x00, size=2))
        sim.run("50us")
        print(sim.stats()["workloads"]["copy0"]["jobs"])

A config is a YAML file or a dict with the same schema
(docs/config-reference.md). Times are SimTime values or strings with units.
"""
from ._errors import ConfigError, Error, MigrationError, ModelError, UsageError
from ._sim import MigrationReport, RunResult, Simulation, from_dict, load, validate
from . import vfio  # noqa: F401
from ._time import SimTime, as_time, fs, ms, ns, parse, ps, seconds, us

__all__ = [
    "Simulation", "RunResult", "MigrationReport", "load", "from_dict", "validate",
    "SimTime", "as_time", "parse", "fs", "ps", "ns", "us", "ms", "seconds",
    "Error", "ConfigError", "UsageError", "ModelError", "MigrationError",
]
__version__ = "0.1.0"

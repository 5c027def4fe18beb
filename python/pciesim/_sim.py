"""The Simulation class: the Python face of the sim facade."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, Optional

from . import _native
from ._time import SimTime, as_time

D0, D3HOT = 0, 3


@dataclass
class RunResult:
    """Outcome of Simulation.run(): scenario checks and expectations."""
    completed: bool
    time_limit: bool
    checks: List[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c["passed"] for c in self.checks)

    @property
    def failures(self) -> List[dict]:
        return [c for c in self.checks if not c["passed"]]


def _overrides(overrides) -> list:
    """--set style assignments from None, one "key=value" string, a list of
    them, or a dict {key: value}."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    if isinstance(overrides, dict):
        out = []
        for k, v in overrides.items():
            if not isinstance(k, str):
                raise _native.UsageError(f"override keys are config paths (str), got {k!r}")
            out.append(f"{k}={_yaml_scalar(v)}")
        return out
    if isinstance(overrides, (list, tuple)):
        for o in overrides:
            if not isinstance(o, str):
                raise _native.UsageError(f"overrides are 'key=value' strings, got {o!r}")
        return list(overrides)
    raise _native.UsageError(
        f"overrides must be a 'key=value' string, a list of them or a dict, got {overrides!r}")


def _yaml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def load(config, *, overrides=None) -> "Simulation":
    """A Simulation from a YAML path, YAML text or a config dict.

    `overrides` are --set style assignments: a list of "key.path=value"
    strings or a dict {"simulation.quantum": "0ns"}.
    """
    if isinstance(config, dict):
        return from_dict(config, overrides=overrides)
    if isinstance(config, (str, os.PathLike)) and os.path.exists(os.fspath(config)):
        return Simulation(_native.NativeSimulation.from_file(os.fspath(config), _overrides(overrides)))
    if isinstance(config, str) and "\n" in config:
        return Simulation(_native.NativeSimulation.from_text(config, "<text>", _overrides(overrides)))
    raise _native.UsageError(f"no config file '{config}' (pass a path, YAML text or a dict)")


def from_dict(config: dict, *, overrides=None) -> "Simulation":
    """A Simulation from a dict with the YAML schema; errors name the dict path."""
    if not isinstance(config, dict):
        raise _native.UsageError(f"from_dict takes a dict, got {type(config).__name__}")
    return Simulation(_native.NativeSimulation.from_dict(config, _overrides(overrides)))


def validate(config, *, overrides=None) -> None:
    """Raises ConfigError if `config` (path or dict) is not valid."""
    if isinstance(config, dict):
        _native.validate_dict(config, _overrides(overrides))
    elif isinstance(config, (str, os.PathLike)):
        _native.validate_file(os.fspath(config), _overrides(overrides))
    else:
        raise _native.UsageError(f"validate takes a path or a dict, got {type(config).__name__}")


def _uint(name: str, value, bits: int = 64, minimum: int = 0) -> int:
    """An integer argument in range, or a UsageError naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _native.UsageError(f"{name} must be an integer, got {value!r}")
    if not minimum <= value < (1 << bits):
        raise _native.UsageError(f"{name} must be in {minimum}..{(1 << bits) - 1:#x}, got {value:#x}")
    return value


def _str(name: str, value) -> str:
    """A text argument (a function, bridge, domain, VM or workload name)."""
    if not isinstance(value, str):
        raise _native.UsageError(f"{name} must be a string such as 'ep0.pf', got {value!r}")
    return value


def _bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise _native.UsageError(f"{name} must be True or False, got {value!r}")
    return value


def _size(value, allowed) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise _native.UsageError(
            f"size must be one of {', '.join(map(str, allowed))} bytes, got {value!r}")
    return value


def _bar(value) -> int:
    """A BAR index, 0..5."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise _native.UsageError(f"bar must be a BAR index 0..5, got {value!r}")
    return value


def _value(value, size: int) -> int:
    """A register value that fits `size` bytes."""
    _uint("value", value, 64)
    if value >= 1 << (8 * size):
        raise _native.UsageError(f"value {value:#x} does not fit {size} byte(s)")
    return value


def _power_state(state) -> int:
    table = {"D0": D0, "D3hot": D3HOT, "d0": D0, "d3hot": D3HOT, 0: D0, 3: D3HOT}
    if state not in table:
        raise _native.UsageError(f"power state must be 'D0' or 'D3hot', got {state!r}")
    return table[state]


class Simulation:
    """One simulated machine. Create it with pciesim.load() or from_dict().

    Host operations (config and MMIO accesses, resets, SR-IOV) take simulated
    time: between runs they advance the simulation until they complete;
    inside a callback scheduled with at() they run at that point of time.
    SystemC runs one kernel per process at a time: creating a Simulation
    closes the previous one (use `with` to make that explicit).
    """

    def __init__(self, native):
        self._n = native

    # ---- life cycle ----
    def __enter__(self) -> "Simulation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Frees the simulation and its kernel; further calls raise UsageError."""
        self._n.close()

    @property
    def closed(self) -> bool:
        return self._n.closed

    def __repr__(self) -> str:
        if self.closed:
            return "<pciesim.Simulation (closed)>"
        return f"<pciesim.Simulation {self._n.source()} at {self.now}>"

    # ---- time and running ----
    @property
    def now(self) -> SimTime:
        """Current simulated time."""
        return SimTime(self._n.now())

    @property
    def booted(self) -> bool:
        return self._n.booted()

    def boot(self) -> "Simulation":
        """Runs until the host has enumerated the system and probed drivers."""
        self._n.boot()
        return self

    def run(self, duration=None):
        """With a duration: advance that long (boot happens on the way).
        Without: boot, run the config's scenario and workloads to completion
        (or simulation.max_time) and return a RunResult with every check."""
        if duration is None:
            r = self._n.run()
            return RunResult(r["completed"], r["time_limit"], r["checks"])
        self._n.run_for(int(as_time(duration)))
        return None

    def run_until(self, when) -> None:
        """Advance to absolute simulated time `when`."""
        self._n.run_until(int(as_time(when)))

    def at(self, when, fn: Optional[Callable[[], Any]] = None):
        """Calls fn() at absolute simulated time `when` (now, if already past),
        inside the simulation: it may use every host operation, and
        run(duration) there waits that long. Simulated time stands still
        while fn's Python code runs. An operation still waiting when the
        outer run() returns continues in the next run (fn resumes then).
        Inside fn, close(), a full run() and creating a Simulation raise
        UsageError; at()/after() nest. Usable as a decorator:
        @sim.at("20us"). An exception in fn stops the run at that time and
        is raised by the run() call; the simulation stays usable."""
        t = int(as_time(when))
        if fn is not None and not callable(fn):
            raise _native.UsageError(f"at()/after() take a callable, got {fn!r}")
        if fn is None:
            def deco(f):
                if not callable(f):
                    raise _native.UsageError(f"at()/after() take a callable, got {f!r}")
                self._n.schedule(t, f)
                return f
            return deco
        self._n.schedule(t, fn)
        return fn

    def after(self, delay, fn: Optional[Callable[[], Any]] = None):
        """Like at(), relative to now."""
        return self.at(self.now + as_time(delay), fn)

    # ---- host operations ----
    def config_read(self, target: str, offset: int, size: int = 4) -> int:
        """Configuration read through ECAM by the host CPU (all ones on UR)."""
        size = _size(size, (1, 2, 4))
        return self._n.config_read(_str("target", target), _uint("offset", offset, 12), size)

    def config_write(self, target: str, offset: int, value: int, size: int = 4) -> None:
        size = _size(size, (1, 2, 4))
        self._n.config_write(_str("target", target), _uint("offset", offset, 12), size,
                             _value(value, size))

    def mmio_read(self, target: str, offset: int, *, bar: int = 0, size: int = 4) -> int:
        """MMIO read at `offset` in BAR `bar` of `target`, as the host mapped it."""
        size = _size(size, (1, 2, 4, 8))
        return self._n.mmio_read(_str("target", target), _bar(bar),
                                 _uint("offset", offset), size)

    def mmio_write(self, target: str, offset: int, value: int, *, bar: int = 0, size: int = 4) -> None:
        size = _size(size, (1, 2, 4, 8))
        self._n.mmio_write(_str("target", target), _bar(bar), _uint("offset", offset),
                           size, _value(value, size))

    def read_memory(self, address: int, length: int) -> bytes:
        """Host DRAM contents (zero simulated time)."""
        return self._n.memory_read(_uint("address", address), _uint("length", length, 32))

    def write_memory(self, address: int, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise _native.UsageError(f"data must be bytes, got {type(data).__name__}")
        self._n.memory_write(_uint("address", address), bytes(data))

    def start_workload(self, name: str) -> None:
        self._n.start_workload(_str("name", name))

    def wait_workload(self, name: str) -> None:
        """Starts the workload if needed and runs until it has finished."""
        self._n.wait_workload(_str("name", name))

    # SR-IOV and resets: return 0 or a negative errno, as Linux does.
    def enable_vfs(self, pf: str, count: int) -> int:
        """sriov_numvfs: 0, or -ERANGE / -EBUSY / -ENOENT / -ENOMEM."""
        return self._n.enable_vfs(_str("pf", pf), _uint("count", count, 16))

    def disable_vfs(self, pf: str) -> int:
        return self._n.disable_vfs(_str("pf", pf))

    def flr(self, target: str, *, restore: bool = False) -> int:
        """Function Level Reset; restore=True saves and restores config
        around it (pci_reset_function with the FLR method)."""
        return self._n.flr(_str("target", target), _bool("restore", restore))

    def reset_function(self, target: str, method: str = "auto") -> int:
        """pci_reset_function: save, reset ('auto', 'flr', 'pm', 'bus'), restore."""
        return self._n.reset_function(_str("target", target), _str("method", method))

    def hot_reset(self, bridge: str, *, restore: bool = True) -> int:
        """Secondary Bus Reset below `bridge` (pci_reset_bus when restore)."""
        return self._n.hot_reset(_str("bridge", bridge), _bool("restore", restore))

    def set_power_state(self, target: str, state) -> None:
        """'D0' or 'D3hot' (pci_set_power_state, with its 10 ms wait)."""
        self._n.set_power_state(_str("target", target), _power_state(state))

    def bus_master(self, target: str, enable: bool) -> None:
        """Set or clear Bus Master Enable (pci_set_master / pci_clear_master)."""
        self._n.set_bus_master(_str("target", target), _bool("enable", enable))

    def memory_space(self, target: str, enable: bool) -> None:
        """Set or clear Memory Space Enable."""
        self._n.set_memory_space(_str("target", target), _bool("enable", enable))

    # ---- DMA, IOMMU and VMs (docs/iommu.md) ----
    def dma(self, target: str, src, dst, length: int, *, src_local: bool = False,
            dst_local: bool = False, timeout="10ms") -> int:
        """One descriptor on `target`'s engine, waited for. `src`/`dst` are
        addresses as the function sees them (IOVA, guest-physical for a VM's
        function, or offsets in its device memory with src_local/dst_local).
        Returns the engine's status: 0, an error code (pciesim.dma: ERR_DMA_UR
        ...), or -110 when nothing completed within `timeout`."""
        status, _ = self._n.dma(_str("target", target), _uint("src", src), _uint("dst", dst),
                                _uint("length", length, 32, 1), _bool("src_local", src_local),
                                _bool("dst_local", dst_local),
                                int(as_time(timeout)))
        return status

    def peer_address(self, initiator: str, target: str, bar: int = 2) -> int:
        """The address `initiator` uses to reach `target`'s BAR (mapped into
        its IOMMU domain or VM if needed): a peer-to-peer DMA address."""
        return self._n.peer_address(_str("initiator", initiator), _str("target", target),
                                    _bar(bar))

    def iommu_map(self, domain: str, iova: int, address: int, length: int, *, read: bool = True,
                  write: bool = True) -> int:
        """Map [iova, iova+length) to host-physical `address` in a domain: 0,
        -EINVAL (-22) or -EEXIST (-17)."""
        return self._n.iommu_map(_str("domain", domain), _uint("iova", iova),
                                 _uint("address", address), _uint("length", length),
                                 _bool("read", read), _bool("write", write))

    def iommu_dirty_tracking(self, domain: str, enable: bool = True) -> int:
        """Enables (or disables) the IOMMU's dirty bits for a domain, as
        iommufd's IOMMU_HWPT_SET_DIRTY_TRACKING: 0, -95 (EOPNOTSUPP: the
        IOMMU has no A/D support, iommu.params.access_dirty) or -22
        (EINVAL: not a translated domain). A VM's RAM is watched by the
        simulator's ground truth from then on."""
        if not isinstance(enable, bool):
            raise TypeError(f"enable must be a bool, got {type(enable).__name__}")
        return self._n.iommu_dirty_tracking(_str("domain", domain), enable)

    def iommu_read_dirty(self, domain: str, iova: int, length: int, *, page_size: int = 4096,
                         no_clear: bool = False) -> dict:
        """Reads (and, unless no_clear, clears) the dirty bitmap of
        [iova, iova + length) at `page_size` granularity, as
        IOMMU_HWPT_GET_DIRTY_BITMAP: bit (addr - iova) / page_size of the
        64-bit words in "bitmap". Checked against the simulator's record of
        every DMA write: "written_pages" (4 KiB pages written since each was
        last read), "missed_pages" / "missed" (written, not reported: must
        be 0), "over_reported_units". "status" is 0 or -22 (EINVAL: tracking
        off, bad page size or alignment)."""
        for name, v in (("no_clear", no_clear),):
            if not isinstance(v, bool):
                raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
        return json.loads(self._n.iommu_read_dirty_json(
            _str("domain", domain), _uint("iova", iova), _uint("length", length),
            _uint("page_size", page_size), no_clear))

    def migrate(self, vm: str, *, to: str, functions: Optional[dict] = None, bandwidth=None,
                downtime_limit=None, max_iterations: Optional[int] = None,
                dirty_tracking: Optional[str] = None, p2p_quiesce: Optional[bool] = None,
                force: Optional[bool] = None, cancel_after=None,
                name: Optional[str] = None) -> "MigrationReport":
        """Live-migrates VM `vm`'s guest, with its functions, to the VM `to`
        (vms[] with incoming: true), as QEMU does (docs/migration.md
        "Migrating a VM"): dirty tracking, pre-copy passes at `bandwidth`
        (10e9/8 bytes/s, "10Gbps", "128MiB/s"; default 128 MiB/s) until the
        rest fits `downtime_limit` (default 300 ms) or `max_iterations`
        (default 30), then the switchover. `functions` pairs source and
        destination functions (default: in order); `dirty_tracking` is auto,
        device, iommu or none; `p2p_quiesce=False` stops devices one by one
        (the unsafe order); `force` migrates several devices without P2P;
        `cancel_after` cancels that long after the start. Takes simulated
        time; returns the report (a dict: status, downtime_ns, total_ns,
        iterations, bytes_sent, missed_dirty_pages, diverged, race, ...), the
        same as stats migrations.<name>. A refusal, failure or cancel is a
        report with its status and error, the source running again."""
        spec = {"vm": _str("vm", vm), "to": _str("to", to)}
        if functions is not None:
            if not isinstance(functions, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in functions.items()):
                raise TypeError("functions must be a dict of source function name: "
                                "destination function name")
            spec["functions"] = dict(functions)
        if bandwidth is not None:
            if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float, str)):
                raise TypeError(f"bandwidth must be bytes/s or a rate string such as '10Gbps', "
                                f"got {type(bandwidth).__name__}")
            spec["bandwidth"] = bandwidth if isinstance(bandwidth, str) else float(bandwidth)
        for key, t in (("downtime_limit", downtime_limit), ("cancel_after", cancel_after)):
            if t is not None:
                spec[key] = f"{int(as_time(t))} fs"
        if max_iterations is not None:
            spec["max_iterations"] = _uint("max_iterations", max_iterations, 32, 1)
        if dirty_tracking is not None:
            spec["dirty_tracking"] = _str("dirty_tracking", dirty_tracking)
        for key, v in (("p2p_quiesce", p2p_quiesce), ("force", force)):
            if v is not None:
                if not isinstance(v, bool):
                    raise TypeError(f"{key} must be a bool, got {type(v).__name__}")
                spec[key] = v
        if name is not None:
            spec["name"] = _str("name", name)
        return MigrationReport(json.loads(self._n.migrate_json(json.dumps(spec))))

    def pause_vm(self, vm: str) -> None:
        """Pauses the VM's vCPUs (its cpu writer stops storing; devices run on)."""
        self._n.vm_pause(_str("vm", vm), True)

    def resume_vm(self, vm: str) -> None:
        """Resumes the VM's vCPUs."""
        self._n.vm_pause(_str("vm", vm), False)

    def cpu_dirty_log(self, vm: str, enable: bool = True) -> None:
        """Starts (or stops) the hypervisor's log of the VM's own CPU stores
        (KVM_MEM_LOG_DIRTY_PAGES); exact, like KVM's write protection."""
        if not isinstance(enable, bool):
            raise TypeError(f"enable must be a bool, got {type(enable).__name__}")
        self._n.cpu_dirty_log(_str("vm", vm), enable)

    def read_cpu_dirty_log(self, vm: str, *, clear: bool = True) -> dict:
        """KVM_GET_DIRTY_LOG (+ KVM_CLEAR_DIRTY_LOG with clear): the guest
        pages the vCPUs stored into since each was last read, bit gpa/4096
        of 64-bit words in "bitmap"; "dirty_pages"; "status" 0 or -22 (the
        log is not started). DMA writes are not in it (the IOMMU's dirty
        bits or the device's DMA log track those)."""
        if not isinstance(clear, bool):
            raise TypeError(f"clear must be a bool, got {type(clear).__name__}")
        return json.loads(self._n.read_cpu_dirty_log_json(_str("vm", vm), clear))

    def iommu_unmap(self, domain: str, iova: int, length: int, *, flush: bool = True) -> int:
        """Unmap, and (flush=True) invalidate the IOTLB and wait: 0, -EINVAL or -ENOENT (-2)."""
        return self._n.iommu_unmap(_str("domain", domain), _uint("iova", iova),
                                   _uint("length", length), _bool("flush", flush))

    def iommu_flush(self, kind: str = "global", *, domain: str = "", iova: int = 0,
                    length: int = 0, target: str = "") -> None:
        """Invalidate: kind 'global', 'domain', 'page' (domain, iova, length)
        or 'device' (target's context and domain); waits for completion."""
        self._n.iommu_flush(_str("kind", kind), _str("domain", domain), _uint("iova", iova),
                            _uint("length", length), _str("target", target))

    def create_domain(self, name: str, kind: str = "dma") -> None:
        """A new IOMMU domain: 'dma' (translated), 'identity' or 'blocked'."""
        self._n.create_domain(_str("name", name), _str("kind", kind))

    def attach(self, target: str, domain: str) -> None:
        """Point `target`'s context entry at `domain`."""
        self._n.attach(_str("target", target), _str("domain", domain))

    def assign(self, target: str, vm: str) -> None:
        """Assign a function to a VM: its domain, and the guest's driver."""
        self._n.assign(_str("target", target), _str("vm", vm))

    def iommu_lookup(self, domain: str, iova: int) -> Optional[int]:
        """What the domain's page tables map `iova` to (None if unmapped)."""
        return self._n.iommu_lookup(_str("domain", domain), _uint("iova", iova))

    def vm_address(self, vm: str, gpa: int, length: int = 1) -> int:
        """Host-physical address of a VM's guest-physical address."""
        return self._n.vm_to_host(_str("vm", vm), _uint("gpa", gpa), _uint("length", length))

    def iommu_faults(self) -> List[dict]:
        """The IOMMU's fault log: requester, function, address, write, reason, t_ns."""
        return self.stats().get("iommu", {}).get("fault_log", [])

    # ---- VFIO migration (docs/migration.md) ----
    def vfio(self, target: str):
        """Opens a function assigned to a VM through VFIO: a
        pciesim.vfio.VfioDevice (migration state machine, data stream,
        queries, reset, the VM's MMIO)."""
        from .vfio import VfioDevice
        return VfioDevice(self._n, _str("target", target))

    def migration_fault(self, endpoint: str, command: str, *, mode: str = "error",
                        after: int = 1, count: int = 1) -> None:
        """Makes the PF firmware fail a migration command: the `after`-th
        `command` ('save', 'load', 'suspend_initiator', ...; 'none' clears)
        and the count-1 following ones fail ('error') or never complete
        ('timeout', until a reset of the function or PF)."""
        self._n.migration_fault(_str("endpoint", endpoint), _str("command", command),
                                _str("mode", mode), _uint("after", after, 32, 1),
                                _uint("count", count, 32, 1))

    # ---- faults (docs/faults.md) ----
    def inject(self, kind: str, *, where: str, match: Optional[dict] = None, at=None,
               until=None, nth: int = 1, count: int = 1, probability: float = 1.0,
               **params) -> "FaultHandle":
        """Arms a fault (`pciesim faults` lists the kinds and their
        parameters): `where` it applies, `match` (kinds, requester,
        address_lo/address_hi, tag) the TLPs it hits, `at` / `until` the
        simulated-time window (absolute; timed kinds fire at `at`), `nth`
        the first match that fires, `count` firings at most (0 = every
        match), `probability` drawn from the run's seed. Kind parameters
        (repeat, duration, report, domain, iova, length, command, mode,
        faults) go as keywords. Works before boot, between runs and from a
        scheduled callback. Returns a FaultHandle."""
        spec = {"kind": _str("kind", kind), "where": _str("where", where),
                "nth": _uint("nth", nth, 63, 1), "count": _uint("count", count, 63)}
        if not isinstance(probability, (int, float)) or isinstance(probability, bool):
            raise TypeError(f"probability must be a number, got {type(probability).__name__}")
        spec["probability"] = float(probability)
        if match is not None:
            if not isinstance(match, dict):
                raise TypeError(f"match must be a dict, got {type(match).__name__}")
            spec["match"] = match
        for key, t in (("at", at), ("until", until)):
            if t is not None:
                spec[key] = f"{int(as_time(t))} fs"
        for key, value in params.items():
            if key == "duration":
                value = f"{int(as_time(value))} fs"
            spec[key] = value
        fid = self._n.inject(json.dumps(spec))
        return FaultHandle(self._n, fid)

    def aer_inject(self, text: Optional[str] = None, *, path=None, at=None) -> List["FaultHandle"]:
        """Arms the errors of an aer-inject file (Linux's aer-inject tool's
        format: AER, PCI_ID / BUS DEV FN, COR_STATUS, UNCOR_STATUS,
        HEADER_LOG) as aer_report faults: give its `text` or its `path`.
        Each record makes its function log those errors at `at` (absolute;
        default now) and send the messages the hardware would; PCI
        addresses are resolved once the host has enumerated. Unlike the
        real tool nothing is faked: masks, severities, reporting enables and
        DPC apply (docs/faults.md). Returns one FaultHandle per record."""
        if (text is None) == (path is None):
            raise TypeError("aer_inject takes the file's text or path=, exactly one")
        if path is not None:
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"path must be a string or path, got {type(path).__name__}")
            source = os.fspath(path)
            with open(source, "r", encoding="utf-8", errors="replace") as f:
                text = f.read()
        else:
            if not isinstance(text, str):
                raise TypeError(f"text must be the aer-inject file's text (str), got "
                                f"{type(text).__name__}")
            source = "aer_inject"
        when = self.now if at is None else at
        ids = self._n.aer_inject(text, source, int(as_time(when)))
        return [FaultHandle(self._n, i) for i in ids]

    def aer(self, target: str) -> dict:
        """The function's error registers decoded: device_status, status,
        uncorrectable / correctable (status, errors, mask), first error
        pointer, header_log (4 DW in TLP format), root (root ports), dpc,
        and the recovery outcome of the host's last recovery walk."""
        return json.loads(self._n.aer_json(_str("target", target)))

    # ---- inspection ----
    @property
    def warnings(self) -> List[str]:
        """What the config asks for that the hardware does differently (a
        link that trains lower, an MPS the devices cannot take)."""
        return list(self.stats()["warnings"])

    def bdf(self, target: str) -> str:
        """Current routing ID of a function ("03:00.0")."""
        return self._n.bdf(_str("target", target))

    def functions(self, *, existing_only: bool = True) -> List[str]:
        return self._n.functions(_bool("existing_only", existing_only))

    def trace(self, path) -> None:
        """Write a JSON-lines TLP trace (one object per link hop, fields in
        docs/scenarios.md) to `path` from now on."""
        if not isinstance(path, (str, os.PathLike)):
            raise _native.UsageError(f"path must be a file path, got {path!r}")
        self._n.trace_to(os.fspath(path))

    def trace_perfetto(self, path, *, start=None, end=None, components=None, kinds=None,
                       max_bytes=None, time_unit: str = "ns",
                       counter_interval="1us") -> None:
        """Write a Perfetto trace (open it in ui.perfetto.dev; tracks in
        docs/observability.md) to `path` from now on, until close() or
        finish_traces(). `start`/`end`: a simulated-time window; `components`:
        glob patterns over link and function names ("ep0.vf*"); `kinds`: TLP
        kinds to keep ("MRd", "CplD", ...); `max_bytes`: size cap (the file
        stays valid and says it was truncated); `time_unit`: "ns" or "ps"
        (simulated ps written as trace ns, to see every TLP);
        `counter_interval`: sampling of the counter tracks."""
        self._add_trace("perfetto", path, start, end, components, kinds, max_bytes, time_unit,
                        counter_interval)

    def trace_vcd(self, path, *, start=None, end=None, components=None, max_bytes=None,
                  counter_interval="1us") -> None:
        """Write a VCD file (GTKWave) of link busy, credits, outstanding tags
        and function states to `path`; options as trace_perfetto()."""
        self._add_trace("vcd", path, start, end, components, None, max_bytes, "ns",
                        counter_interval)

    def finish_traces(self) -> List[str]:
        """Close every trace now (they are complete up to now); returns the
        messages of traces that hit their size cap."""
        return list(self._n.finish_traces())

    def _add_trace(self, fmt, path, start, end, components, kinds, max_bytes, unit, interval):
        if not isinstance(path, (str, os.PathLike)):
            raise _native.UsageError(f"path must be a file path, got {path!r}")

        def names(what, v):
            if v is None:
                return []
            if isinstance(v, str):
                v = [v]
            v = list(v)
            for x in v:
                if not isinstance(x, str):
                    raise _native.UsageError(f"{what} must be strings, got {x!r}")
            return v
        lo = 0 if start is None else int(as_time(start))
        hi = (1 << 64) - 1 if end is None else int(as_time(end))
        cap = 0 if max_bytes is None else _uint("max_bytes", max_bytes, minimum=1)
        self._n.add_trace(fmt, os.fspath(path), lo, hi, names("components", components),
                          names("kinds", kinds), cap, _str("time_unit", unit),
                          int(as_time(interval)))

    def stats(self) -> dict:
        """The statistics document (same schema as `pciesim run --stats`)."""
        return json.loads(self._n.stats_json())

    def stat(self, path: str):
        """One value of stats() by dotted path ("functions.ep0.pf.dma.read_bytes");
        keys containing dots are matched as a whole."""
        node: Any = self.stats()
        rest = _str("path", path)
        while rest:
            if isinstance(node, list):
                head, _, tail = rest.partition(".")
                if not head.isdigit() or int(head) >= len(node):
                    raise _native.UsageError(
                        f"no stat '{path}': '{head}' is not an index of a list of {len(node)}")
                node, rest = node[int(head)], tail
                continue
            if not isinstance(node, dict):
                raise _native.UsageError(f"no stat '{path}' ('{rest}' is below a value)")
            best = max((k for k in node if rest == k or rest.startswith(k + ".")), key=len,
                       default=None)
            if best is None:
                raise _native.UsageError(f"no stat '{path}' (stopped at '{rest}')")
            node = node[best]
            rest = rest[len(best) + 1:]
        return node

    def check(self) -> List[dict]:
        """Evaluates the config's expectations now."""
        return list(self._n.check_expectations())

    def lspci(self, *flags: str) -> str:
        """lspci-format output: lspci("-v"), lspci("-t"), lspci("-xxxx")."""
        verbose = hexlvl = 0
        tree = numeric = False
        for f in flags:
            if not (f.startswith("-") and len(f) > 1):
                raise _native.UsageError(f"lspci flags look like '-v' or '-xxxx', got {f!r}")
            for ch in f[1:]:
                if ch == "v":
                    verbose += 1
                elif ch == "x":
                    hexlvl += 1
                elif ch == "t":
                    tree = True
                elif ch == "n":
                    numeric = True
                else:
                    raise _native.UsageError(f"unsupported lspci flag -{ch}")
        if verbose > 1:
            raise _native.UsageError("up to -v; decode lspci('-xxxx') with the real `lspci -F` for more")
        return self._n.lspci(verbose, 1 if hexlvl == 2 else hexlvl, tree, numeric)

    def topology(self) -> str:
        """Graphviz DOT of the topology."""
        return self._n.topology_dot()


class FaultHandle:
    """An armed fault: .kind, .where, .fired (times it fired), .matched,
    .log (what it did, with times), .cancel()."""

    def __init__(self, native, fid: int):
        self._n = native
        self.id = fid

    def _state(self) -> dict:
        return json.loads(self._n.fault_json(self.id))

    @property
    def kind(self) -> str:
        return self._state()["kind"]

    @property
    def where(self) -> str:
        return self._state()["where"]

    @property
    def fired(self) -> int:
        return self._state()["fired"]

    @property
    def matched(self) -> int:
        return self._state()["matched"]

    @property
    def log(self) -> List[dict]:
        return self._state()["log"]

    def cancel(self) -> None:
        self._n.cancel_fault(self.id)

    def __repr__(self) -> str:
        s = self._state()
        return f"<fault {self.id} {s['kind']} at {s['where']}: fired {s['fired']}>"


class MigrationReport(dict):
    """What Simulation.migrate returns: the report as a dict (the keys of
    stats migrations.<name>), with a few conveniences."""

    @property
    def ok(self) -> bool:
        """Completed, with no missed dirty page and no divergence."""
        return (self.get("status") == "completed" and not self.get("diverged")
                and self.get("missed_dirty_pages") == 0)

    @property
    def downtime(self) -> SimTime:
        return SimTime(round(self["downtime_ns"] * 1_000_000))

    @property
    def total_time(self) -> SimTime:
        return SimTime(round(self["total_ns"] * 1_000_000))

"""VFIO migration of an assigned function (docs/migration.md).

    dev = sim.vfio("ep0.vf1")          # the function must be assigned to a VM
    dev.migration_flags                # ['stop_copy', 'p2p', 'pre_copy']
    dev.set_state("STOP_COPY")         # ['RUNNING', 'RUNNING_P2P', 'STOP', 'STOP_COPY']
    image = dev.read_all()             # the whole stream, as bytes
    other = sim.vfio("ep0.vf2")
    other.set_state("RESUMING"); other.write(image); other.set_state("RUNNING")

Every failure raises pciesim.MigrationError with .errno ('EINVAL',
'ENOMSG', 'EIO', ...), .code (negative errno), .state (the state the device
is in afterwards) and .reason (for refused images: 'truncated', 'checksum',
'version', 'device', 'magic', 'unknown_record', 'oversize_record',
'malformed').
"""
from __future__ import annotations

import json
from typing import List, Tuple

from . import _native

STATES = ("ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY",
          "PRE_COPY_P2P")


def _int(name: str, value, bits: int = 64, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _native.UsageError(f"{name} must be an integer, got {value!r}")
    if not minimum <= value < (1 << bits):
        raise _native.UsageError(f"{name} must be in {minimum}..{(1 << bits) - 1:#x}, got {value:#x}")
    return value


class VfioDevice:
    """A function opened through VFIO. Operations take simulated time (the
    variant driver relays firmware commands through the PF driver)."""

    def __init__(self, native, target: str):
        self._n = native
        self.name = target
        self._n.vfio_open(target)

    def __repr__(self) -> str:
        return f"<pciesim.VfioDevice {self.name} {self.state}>"

    def _info(self) -> dict:
        return self._n.vfio_open(self.name)

    @property
    def migration_flags(self) -> List[str]:
        """The VFIO_MIGRATION_* flags the driver reports (empty: no migration)."""
        return list(self._info()["flags"])

    @property
    def migration_unavailable(self) -> str:
        """Why migration is not offered ('' when it is)."""
        return self._info()["unavailable"]

    @property
    def state(self) -> str:
        """The device's migration state (RUNNING right after open)."""
        return self._info()["state"]

    def set_state(self, state: str) -> List[str]:
        """Moves to `state` one arc at a time; returns every state passed
        through, the start included. MigrationError on failure (its .state
        is where the device stopped)."""
        if not isinstance(state, str) or state not in STATES:
            raise _native.UsageError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        return list(self._n.vfio_set_state(self.name, state))

    def read(self, max_bytes: int = 1 << 20) -> bytes:
        """Reads the data stream (PRE_COPY*, STOP_COPY): up to max_bytes;
        b'' at the end of STOP_COPY's stream; MigrationError ENOMSG in
        PRE_COPY when nothing is available now."""
        return self._n.vfio_read(self.name, _int("max_bytes", max_bytes, 32, 1))

    def read_all(self, chunk: int = 1 << 20) -> bytes:
        """STOP_COPY: the rest of the stream. PRE_COPY: what is available
        now (until ENOMSG)."""
        out = bytearray()
        while True:
            try:
                b = self.read(chunk)
            except _native.MigrationError as e:
                if e.errno == "ENOMSG" and self.state in ("PRE_COPY", "PRE_COPY_P2P"):
                    return bytes(out)
                raise
            if not b:
                return bytes(out)
            out += b

    def write(self, data) -> int:
        """Writes (part of) a resume stream in RESUMING, in chunks of any size."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise _native.UsageError(f"data must be bytes, got {type(data).__name__}")
        return self._n.vfio_write(self.name, bytes(data))

    def precopy_info(self) -> Tuple[int, int]:
        """(initial_bytes, dirty_bytes); only in PRE_COPY states."""
        a, b = self._n.vfio_precopy_info(self.name)
        return a, b

    def data_size(self) -> int:
        """Estimated bytes of the STOP_COPY stream (VFIO_DEVICE_FEATURE_MIG_DATA_SIZE)."""
        return self._n.vfio_data_size(self.name)

    def reset(self) -> None:
        """VFIO_DEVICE_RESET: from any state (ERROR included) back to RUNNING."""
        self._n.vfio_reset(self.name)

    # ---- DMA logging (dirty tracking by the device, docs/migration.md) ----
    def dma_logging_start(self, ranges, *, page_size: int = 4096) -> dict:
        """VFIO_DEVICE_FEATURE_DMA_LOGGING_START: the device logs the pages
        its DMA writes touch inside `ranges`, a list of (iova, length).
        Returns {"status": 0 or -errno (-22 EINVAL, -7 E2BIG, -25 ENOTTY,
        -28 ENOSPC, -5 EIO), "page_size": the size the device logs at (it
        may pick another), "ranges": what it tracks (merged, smallest gap
        first, when it supports fewer)}."""
        if isinstance(ranges, (str, bytes, dict)) or not hasattr(ranges, "__iter__"):
            raise TypeError(f"ranges must be a list of (iova, length), got {type(ranges).__name__}")
        rs = []
        for i, r in enumerate(ranges):
            if not isinstance(r, (tuple, list)) or len(r) != 2:
                raise TypeError(f"ranges[{i}] must be (iova, length), got {r!r}")
            rs.append((_int(f"ranges[{i}] iova", r[0]), _int(f"ranges[{i}] length", r[1])))
        return json.loads(self._n.dma_logging_start_json(self.name, rs,
                                                         _int("page_size", page_size)))

    def dma_logging_stop(self) -> int:
        """VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP (0 when no session ran)."""
        return self._n.dma_logging_stop(self.name)

    def dma_logging_report(self, iova: int, length: int, *, page_size: int = 4096) -> dict:
        """VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: reads and clears the
        device's log of [iova, iova + length) into a bitmap at `page_size`
        (bit (addr - iova) / page_size of 64-bit words), checked against the
        simulator's record of this function's DMA writes: "written_pages",
        "missed_pages" / "missed" (must be 0 / empty),
        "over_reported_units"; "status" 0 or -errno."""
        return json.loads(self._n.dma_logging_report_json(
            self.name, _int("iova", iova), _int("length", length), _int("page_size", page_size)))

    def mmio_read(self, offset: int, *, bar: int = 0, size: int = 4) -> int:
        """The VM's access through VFIO: refused (MigrationError EIO, nothing
        sent) while the device is STOP, STOP_COPY, RESUMING or ERROR."""
        return self._n.vfio_mmio_read(self.name, _bar(bar), _int("offset", offset), _size(size))

    def mmio_write(self, offset: int, value: int, *, bar: int = 0, size: int = 4) -> None:
        size = _size(size)
        _int("value", value, 8 * size)
        self._n.vfio_mmio_write(self.name, _bar(bar), _int("offset", offset), size, value)


def _bar(v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 5:
        raise _native.UsageError(f"bar must be a BAR index 0..5, got {v!r}")
    return v


def _size(v) -> int:
    if isinstance(v, bool) or v not in (1, 2, 4, 8):
        raise _native.UsageError(f"size must be one of 1, 2, 4, 8 bytes, got {v!r}")
    return v

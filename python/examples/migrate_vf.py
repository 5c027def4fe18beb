#!/usr/bin/env python3
"""Migrate a VF in the middle of a copy, the VFIO way (docs/migration.md).

The guest's driver on ep0.vf1 copies 4 MiB inside VM memory; 30 us in, the
VF is stopped and saved, its image is loaded into ep1.vf1 (another PF's VF)
which finishes the copy. Then a corrupted copy of the image is refused and
the target left as it was.

    /usr/bin/python3 python/examples/migrate_vf.py
"""
import pathlib

import yaml

import pciesim
from pciesim import dma

CONFIG = pathlib.Path(__file__).resolve().parents[2] / "configs" / "migration.yaml"
# The machine of configs/migration.yaml; this script does its scenario.
config = yaml.safe_load(CONFIG.read_text())
del config["scenario"], config["expect"]

with pciesim.from_dict(config) as sim:
    sim.boot()
    sim.start_workload("guestcopy")
    sim.run("30us")

    src = sim.vfio("ep0.vf1")
    print("flags:", src.migration_flags)
    t0 = sim.now
    print("source:", " -> ".join(src.set_state("STOP_COPY")), "in", sim.now - t0)
    image = src.read_all()
    print(f"image: {len(image)} bytes, magic {image[:4]!r}")

    dst = sim.vfio("ep1.vf1")
    dst.set_state("RESUMING")
    dst.write(image)
    print("destination:", " -> ".join(dst.set_state("RUNNING")))
    sim.wait_workload("guestcopy")
    w = sim.stat("workloads.guestcopy")
    print(f"copy: {w['verified_bytes']} bytes verified, {w['mismatches']} mismatches")

    # A damaged image: one flipped byte. The load is refused, the device
    # stays RESUMING and unchanged; a reset brings it back to RUNNING.
    other = sim.vfio("ep0.vf2")
    before = sim.mmio_read("ep0.vf2", dma.RING_BASE_LO)
    bad = bytearray(image)
    bad[-10] ^= 0xFF
    other.set_state("RESUMING")
    other.write(bytes(bad))
    try:
        other.set_state("RUNNING")
    except pciesim.MigrationError as e:
        print(f"refused: {e.errno} ({e.reason}), device state {e.state}")
    assert sim.mmio_read("ep0.vf2", dma.RING_BASE_LO) == before
    other.reset()
    print("after reset:", other.state)

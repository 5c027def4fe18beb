"""VFIO live migration, device side (docs/migration.md): each test names the
rule of SPEC.md F / MIGRATION.md it checks and asserts what is observable
(states, bytes, counters, the TLP trace)."""
import json
import struct

import pytest

import pciesim
from pciesim import dma

HDR = 32  # image header bytes


def mig_config(flags0=("stop_copy", "p2p", "pre_copy"), flags1=("stop_copy", "p2p"), **mig0):
    return {
        "simulation": {"seed": 7},
        "iommu": {"enabled": True},
        "switches": [{"name": "sw0", "downstream_ports": 2}],
        "endpoints": [
            {"name": "ep0", "max_link_speed": 4,
             "sriov": {"total_vfs": 4, "num_vfs": 4, "autoprobe": False},
             "migration": {"flags": list(flags0), **mig0}},
            {"name": "ep1", "max_link_speed": 4,
             "sriov": {"total_vfs": 2, "num_vfs": 2, "autoprobe": False},
             "migration": {"flags": list(flags1)}},
        ],
        "links": [
            {"upstream": "rc.rp0", "downstream": "sw0", "gen": 4, "width": 16},
            {"upstream": "sw0.dsp0", "downstream": "ep0", "gen": 4, "width": 8},
            {"upstream": "sw0.dsp1", "downstream": "ep1", "gen": 4, "width": 8},
        ],
        "vms": [{"name": "vmA", "memory": "64MiB",
                 "functions": ["ep0.vf1", "ep0.vf2", "ep0.vf3", "ep1.vf1"]}],
    }


def with_workload(cfg, name, function, size, dst="host", src="host", count=1, depth=1):
    cfg["workloads"] = cfg.get("workloads", []) + [{
        "name": name, "function": function, "size": size, "count": count,
        "queue_depth": depth, "src": src, "dst": dst, "start": "manual"}]
    return cfg


def trace_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def stop_copy_image(dev):
    """The device's image as STOP_COPY streams it (from STOP, back to STOP)."""
    assert dev.state == "STOP"
    dev.set_state("STOP_COPY")
    img = dev.read_all()
    assert dev.read() == b""  # end of stream
    dev.set_state("STOP")
    return img


def restamp(img):
    """Recomputes the CRC of a one-image stream after an edit."""
    import zlib
    length = struct.unpack_from("<Q", img, 16)[0]
    crc = zlib.crc32(img[HDR:length]) & 0xffffffff
    return img[:24] + struct.pack("<I", crc) + img[28:]


# ---------------------------------------------------------------- open, flags

def test_opened_device_reports_running_and_its_flags():
    # SPEC.md F: a device opened for use reports RUNNING, never STOP.
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        assert dev.state == "RUNNING"
        assert dev.migration_flags == ["stop_copy", "p2p", "pre_copy"]
        assert sim.vfio("ep1.vf1").migration_flags == ["stop_copy", "p2p"]
        with pytest.raises(pciesim.UsageError, match="not assigned to a VM"):
            sim.vfio("ep0.vf4")


@pytest.mark.parametrize("flags", [[], ["p2p"], ["pre_copy"], ["p2p", "pre_copy"],
                                   ["stop_copy", "stop_copy"], ["stop_copy", "bogus"]])
def test_undefined_flag_sets_refused_at_load(flags):
    # SPEC.md F: other flag combinations are undefined and must be refused.
    cfg = mig_config()
    cfg["endpoints"][0]["migration"]["flags"] = flags
    with pytest.raises(pciesim.ConfigError, match="migration.flags"):
        pciesim.from_dict(cfg)


def test_unmanaged_pf_offers_no_migration():
    # MIGRATION.md 1: the variant driver relays through the PF's driver;
    # with an unmanaged PF migration is not offered.
    cfg = mig_config()
    cfg["endpoints"][0]["driver"] = "pf-stub"
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        assert dev.migration_flags == []
        assert "unmanaged PF" in dev.migration_unavailable
        with pytest.raises(pciesim.MigrationError) as e:
            dev.set_state("STOP")
        assert e.value.errno == "ENOTTY" and e.value.state == "RUNNING"


def test_paths_and_refused_requests():
    # SPEC.md F: multi-step paths (vfio_mig_get_next_state); undefined
    # requests refused with the state unchanged.
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        assert dev.set_state("STOP_COPY") == ["RUNNING", "RUNNING_P2P", "STOP", "STOP_COPY"]
        for bad in ("PRE_COPY", "PRE_COPY_P2P", "ERROR"):
            with pytest.raises(pciesim.MigrationError) as e:
                dev.set_state(bad)
            assert e.value.errno == "EINVAL" and e.value.state == "STOP_COPY"
        assert dev.state == "STOP_COPY"
        assert dev.set_state("RUNNING") == ["STOP_COPY", "STOP", "RUNNING_P2P", "RUNNING"]
        assert dev.set_state("PRE_COPY") == ["RUNNING", "PRE_COPY"]
        assert dev.set_state("STOP_COPY") == ["PRE_COPY", "PRE_COPY_P2P", "STOP_COPY"]
        dev.reset()
        other = sim.vfio("ep1.vf1")  # no pre_copy
        with pytest.raises(pciesim.MigrationError) as e:
            other.set_state("PRE_COPY")
        assert e.value.errno == "EINVAL" and e.value.state == "RUNNING"
        for bad in (3, "running", None):
            with pytest.raises(pciesim.UsageError):
                other.set_state(bad)
        st = sim.stats()["functions"]["ep0.vf1"]["migration"]
        arcs = [a["arc"] for a in st["arcs"]]
        assert arcs[:3] == ["RUNNING->RUNNING_P2P", "RUNNING_P2P->STOP", "STOP->STOP_COPY"]
        assert all(a["ns"] > 0 for a in st["arcs"])


def test_without_p2p_running_and_stop_are_one_arc():
    with pciesim.from_dict(mig_config(flags0=("stop_copy",))) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        assert dev.set_state("STOP_COPY") == ["RUNNING", "STOP", "STOP_COPY"]
        with pytest.raises(pciesim.MigrationError):
            dev.set_state("RUNNING_P2P")


# ---------------------------------------------------------------- quiesce

def test_quiesce_under_load_drains_and_stays_a_target(tmp_path):
    # SPEC.md F RUNNING_P2P: no new requests, outstanding ones completed
    # before the transition returns; MMIO and inbound P2P still served.
    cfg = with_workload(mig_config(), "load", "ep0.vf1", "8MiB", dst="device", count=1)
    cfg["endpoints"][0]["sriov"]["vf_device_memory"] = "8MiB"
    trace = tmp_path / "t.jsonl"
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        sim.trace(str(trace))
        sim.start_workload("load")
        sim.run("20us")
        rid = sim.bdf("ep0.vf1")
        dev = sim.vfio("ep0.vf1")
        # Reads in flight right now (Transactions Pending set).
        assert sim.config_read("ep0.vf1", 0x40 + 0x0a, size=2) & 0x20
        assert dev.set_state("RUNNING_P2P") == ["RUNNING", "RUNNING_P2P"]
        returned = sim.now.ns
        # No outstanding request (Transactions Pending clear) ...
        devsta = sim.config_read("ep0.vf1", 0x40 + 0x0a, size=2)  # exp + PCI_EXP_DEVSTA
        assert not devsta & 0x20
        # ... and still a target: MMIO and a peer's P2P write into BAR2.
        assert dev.mmio_read(dma.ID) == dma.ID_VALUE
        peer = sim.peer_address("ep0.vf2", "ep0.vf1", 2)
        sim.write_memory(sim.vm_address("vmA", 0x300000), b"\x5a" * 64)
        assert sim.dma("ep0.vf2", 0x300000, peer + 0x1000, 64) == 0
        assert dev.mmio_read(0x1000, bar=2) == 0x5a5a5a5a
        sim.run("100us")
        reads_in_flight = sim.stats()["functions"]["ep0.vf1"]["dma"]["read_requests"]
        assert reads_in_flight > 100  # it was under load
    late = [r for r in trace_lines(trace)
            if r["requester"] == rid and r["kind"] in ("MRd", "MWr") and r["t_ns"] > returned]
    assert late == []


def test_devsta_offset_is_the_pcie_capability():
    # The test above reads Device Status at 0x4a: the VF's PCIe capability is at 0x40.
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        assert sim.config_read("ep0.vf1", 0x40, size=1) == 0x10  # PCI_CAP_ID_EXP


# ---------------------------------------------------------------- freeze

def test_freeze_fixes_the_state_and_sends_nothing(tmp_path):
    # SPEC.md F STOP: no DMA, no interrupts, no change of state; a
    # misbehaving user harms nothing.
    trace = tmp_path / "t.jsonl"
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        rid = sim.bdf("ep0.vf1")
        dev = sim.vfio("ep0.vf1")
        sim.mmio_write("ep0.vf1", 0x40, 0x11223344, bar=2)
        dev.set_state("STOP")
        before = stop_copy_image(dev)
        sim.trace(str(trace))
        t0 = sim.now.ns
        # A peer's P2P write into its BAR2, a hostile user MMIO, and a raw
        # host write that bypasses VFIO: none changes it.
        peer = sim.peer_address("ep0.vf2", "ep0.vf1", 2)
        sim.write_memory(sim.vm_address("vmA", 0x300000), b"\xee" * 64)
        assert sim.dma("ep0.vf2", 0x300000, peer + 0x40, 64) == 0
        with pytest.raises(pciesim.MigrationError) as e:
            dev.mmio_write(dma.RING_TAIL, 5)
        assert e.value.errno == "EIO" and e.value.state == "STOP"
        sim.mmio_write("ep0.vf1", dma.CTRL, 0)  # raw, not through VFIO
        sim.mmio_write("ep0.vf1", 0x2000, 0xdead, size=4)  # MSI-X table
        sim.run("50us")
        after = stop_copy_image(dev)
        assert after == before
        fn = sim.stats()["functions"]["ep0.vf1"]
        assert fn["target"]["frozen_drops"] >= 3
        assert fn["migration"]["refused_mmio"] == 1
    sent = [r for r in trace_lines(trace) if r["requester"] == rid and r["t_ns"] >= t0
            and r["kind"] != "end"]
    assert sent == []


# ---------------------------------------------------------------- save / load

@pytest.mark.parametrize("target", ["ep0.vf2", "ep1.vf1"])
def test_save_mid_copy_load_elsewhere_finishes_the_copy(target):
    # Issue 11 item 1: a VF resumed from an image continues exactly where
    # the saved one stopped -- in another VF of the same PF or of another PF.
    cfg = with_workload(mig_config(), "copy", "ep0.vf1", "4MiB")
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        sim.start_workload("copy")
        sim.run("30us")
        src = sim.vfio("ep0.vf1")
        src.set_state("STOP_COPY")
        image = src.read_all()
        assert image[:4] == b"PSMG"
        dst = sim.vfio(target)
        assert dst.set_state("RESUMING")[-1] == "RESUMING"
        for i in range(0, len(image), 1000):  # any chunking
            dst.write(image[i:i + 1000])
        assert dst.set_state("RUNNING")[-1] == "RUNNING"
        sim.wait_workload("copy")
        st = sim.stats()
        w = st["workloads"]["copy"]
        assert w["verified_bytes"] == 4 << 20 and w["mismatches"] == 0 and w["errors"] == 0
        a = st["functions"]["ep0.vf1"]["dma"]["write_bytes"]
        b = st["functions"][target]["dma"]["write_bytes"]
        assert a > 0 and b > 0 and a + b == 4 << 20  # nothing written twice
        assert st["completions"]["violations"] == 0


def test_vf_that_never_started_migrates_cleanly():
    # MIGRATION.md 6.8.
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        src = sim.vfio("ep0.vf3")
        src.set_state("STOP_COPY")
        img = src.read_all()
        dst = sim.vfio("ep1.vf1")
        dst.set_state("RESUMING")
        dst.write(img)
        dst.set_state("RUNNING")
        assert dst.mmio_read(dma.ID) == dma.ID_VALUE


def corrupt_kinds(img):
    version = img[:4] + struct.pack("<H", 2) + img[6:]
    device = img[:10] + struct.pack("<H", 0x7777) + img[12:]
    flipped = bytearray(img)
    flipped[-20] ^= 0xff
    # An extra record (type, flags, length) at the end, length and count fixed.
    def extra(rtype, rflags, declared, payload):
        body = img + struct.pack("<HHI", rtype, rflags, declared) + payload
        count = struct.unpack_from("<I", img, 28)[0] + 1
        body = body[:16] + struct.pack("<Q", len(body)) + body[24:28] + struct.pack("<I", count) + body[32:]
        return restamp(body)
    return {
        "truncated": (img[:len(img) - 100], "EINVAL"),
        "magic": (b"XXXX" + img[4:], "EBADMSG"),
        "checksum": (bytes(flipped), "EBADMSG"),
        "version": (version, "EPROTO"),
        "device": (device, "EINVAL"),
        "unknown_record": (extra(0x7777, 1, 8, b"\0" * 8), "EOPNOTSUPP"),
        "oversize_record": (extra(6, 1, 0x7ffffff0, b"\0" * 8), "ENOMEM"),
    }, extra


def test_every_corrupt_stream_is_refused_and_leaves_the_target_alone():
    # SPEC.md F RESUMING; MIGRATION.md 3 and 6.7.
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        src = sim.vfio("ep0.vf1")
        sim.mmio_write("ep0.vf1", 0x100, 0x0badf00d, bar=2)
        src.set_state("STOP_COPY")
        img = src.read_all()
        kinds, extra = corrupt_kinds(img)
        dst = sim.vfio("ep0.vf2")
        ring = sim.mmio_read("ep0.vf2", dma.RING_BASE_LO)
        for reason, (bad, name) in kinds.items():
            sim.mmio_write("ep0.vf2", 0x40, 0xcafebabe, bar=2)  # (reset clears it)
            dst.set_state("RESUMING")
            dst.write(bad)
            with pytest.raises(pciesim.MigrationError) as e:
                dst.set_state("RUNNING")
            assert (e.value.reason, e.value.errno) == (reason, name)
            assert e.value.state == "RESUMING" and dst.state == "RESUMING"
            # Unchanged (a raw host read; the device answers reads when frozen).
            assert sim.mmio_read("ep0.vf2", 0x40, bar=2) == 0xcafebabe
            assert sim.mmio_read("ep0.vf2", dma.RING_BASE_LO) == ring
            dst.reset()
            assert dst.state == "RUNNING"
        st = sim.stats()["functions"]["ep0.vf2"]
        assert st["migration"]["loads_refused"] == len(kinds)
        assert st["device_migration"]["images_loaded"] == 0
        # An unknown optional record is skipped.
        dst.set_state("RESUMING")
        dst.write(extra(0x7777, 0, 8, b"\0" * 8))
        dst.set_state("RUNNING")
        assert sim.mmio_read("ep0.vf2", 0x100, bar=2) == 0x0badf00d


def test_stream_is_only_open_in_its_states():
    # MIGRATION.md 3: reads in PRE_COPY*/STOP_COPY only, writes in RESUMING only.
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        for call in (lambda: dev.read(), lambda: dev.write(b"x"), lambda: dev.precopy_info()):
            with pytest.raises(pciesim.MigrationError) as e:
                call()
            assert e.value.errno == "EINVAL" and e.value.state == "RUNNING"
        dev.set_state("STOP_COPY")
        with pytest.raises(pciesim.MigrationError):
            dev.write(b"x")
        with pytest.raises(pciesim.UsageError):
            dev.read(0)
        with pytest.raises(pciesim.UsageError):
            dev.write("text")


# ---------------------------------------------------------------- pre-copy

def test_precopy_initial_shrinks_dirty_grows():
    # SPEC.md F PRE_COPY; MIGRATION.md 6.9.
    cfg = with_workload(mig_config(), "fill", "ep0.vf1", "8KiB", dst="device", count=4000)
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        for page in range(3):
            sim.mmio_write("ep0.vf1", page * 4096, 0x1111 * (page + 1), bar=2)
        assert dev.set_state("PRE_COPY") == ["RUNNING", "PRE_COPY"]
        initial, dirty = dev.precopy_info()
        assert initial > 3 * 4096 and dirty == 0
        part = dev.read(1000)
        assert len(part) == 1000
        assert dev.precopy_info()[0] == initial - 1000
        rest = dev.read_all()
        assert len(rest) == initial - 1000
        assert dev.precopy_info()[0] == 0
        # Quiet device: nothing to send is ENOMSG, not the end of the stream.
        with pytest.raises(pciesim.MigrationError) as e:
            dev.read()
        assert e.value.errno == "ENOMSG" and e.value.state == "PRE_COPY"
        sim.start_workload("fill")
        sim.run("200us")
        initial2, dirty2 = dev.precopy_info()
        assert initial2 == 0 and dirty2 >= 4096
        delta = dev.read_all()
        assert len(delta) >= 4096
        assert dev.set_state("STOP_COPY") == ["PRE_COPY", "PRE_COPY_P2P", "STOP_COPY"]
        final = dev.read_all()
        stream = part + rest + delta + final
        other = sim.vfio("ep0.vf2")
        other.set_state("RESUMING")
        other.write(stream)
        other.set_state("STOP")
        # The destination's device memory equals the source's.
        for off in range(0, 64 << 10, 4096):
            assert sim.mmio_read("ep0.vf2", off, bar=2, size=8) == \
                sim.mmio_read("ep0.vf1", off, bar=2, size=8)
        st = sim.stats()["functions"]["ep0.vf1"]["migration"]
        assert st["images_saved"] >= 3


# ---------------------------------------------------------------- failures

def test_failing_command_enters_error_until_reset():
    # MIGRATION.md 6.5: a firmware failure -> ERROR, sticky until reset.
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        sim.migration_fault("ep0", "suspend_responder")
        with pytest.raises(pciesim.MigrationError) as e:
            dev.set_state("STOP_COPY")
        assert e.value.errno == "EIO" and e.value.state == "ERROR"
        assert "RUNNING_P2P" in str(e.value)  # the part of the path that was done
        with pytest.raises(pciesim.MigrationError) as e:
            dev.set_state("RUNNING")
        assert e.value.errno == "EINVAL" and e.value.state == "ERROR"
        dev.reset()
        assert dev.state == "RUNNING"
        assert dev.set_state("STOP_COPY")[-1] == "STOP_COPY"  # the fault fired once
        with pytest.raises(pciesim.UsageError):
            sim.migration_fault("ep0", "bogus")
        with pytest.raises(pciesim.UsageError):
            sim.migration_fault("ep9", "save")


def test_hung_command_times_out_into_error():
    with pciesim.from_dict(mig_config(command_timeout="2ms")) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        sim.migration_fault("ep0", "save", mode="timeout")
        t0 = sim.now.ns
        with pytest.raises(pciesim.MigrationError) as e:
            dev.set_state("STOP_COPY")
        assert e.value.errno == "ETIMEDOUT" and e.value.state == "ERROR"
        assert sim.now.ns - t0 >= 2e6
        dev.reset()  # the VF's FLR also ends the firmware's hung command
        assert dev.set_state("STOP_COPY")[-1] == "STOP_COPY"
        assert len(dev.read_all()) > HDR


def test_pf_flr_in_stop_copy_fails_the_next_step_cleanly():
    # MIGRATION.md 6.6: the PF resets while a VF migrates.
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        dev.set_state("STOP_COPY")
        assert sim.flr("ep0.pf", restore=True) == 0
        with pytest.raises(pciesim.MigrationError) as e:
            dev.set_state("STOP")
        assert e.value.state == "ERROR" and e.value.errno in ("EIO", "ENOTCONN")
        dev.reset()
        assert dev.state == "RUNNING"


def test_vf_disable_in_stop_copy_fails_the_next_step_cleanly():
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        dev.set_state("STOP_COPY")
        assert sim.disable_vfs("ep0.pf") == 0
        with pytest.raises(pciesim.MigrationError) as e:
            dev.set_state("STOP")
        assert e.value.errno == "ENODEV" and e.value.state == "ERROR"
        with pytest.raises(pciesim.MigrationError) as e:
            dev.reset()
        assert e.value.errno == "ENODEV"
        assert sim.stats()["functions"]["ep0.vf1"]["migration"]["state"] == "ERROR"


# ---------------------------------------------------------------- user MMIO

def test_user_mmio_while_stopped_never_reaches_the_link(tmp_path):
    # Issue 11 item 3: vfio revokes the user's mappings; a refused access
    # sends no TLP.
    trace = tmp_path / "t.jsonl"
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        sim.trace(str(trace))
        t0 = sim.now.ns
        dev.mmio_read(dma.ID)           # allowed in RUNNING: shows the addresses
        dev.mmio_read(0x10, bar=2)
        t1 = sim.now.ns
        dev.set_state("STOP")
        base = sim.stats()["functions"]["ep0.vf1"]["target"]["mmio_reads"]
        for state in ("STOP", "STOP_COPY", "RESUMING"):
            dev.set_state(state)
            for op in (lambda: dev.mmio_read(dma.ID), lambda: dev.mmio_write(dma.RING_TAIL, 1),
                       lambda: dev.mmio_read(0x10, bar=2)):
                with pytest.raises(pciesim.MigrationError) as e:
                    op()
                assert e.value.errno == "EIO" and e.value.state == state
        fn = sim.stats()["functions"]["ep0.vf1"]
        assert fn["migration"]["refused_mmio"] == 9
        assert fn["target"]["mmio_reads"] == base
    recs = trace_lines(trace)
    cpu = [r for r in recs if r["requester"] == "00:00.0" and r["kind"] in ("MRd", "MWr")]
    vf_addrs = {int(r["address"], 0) for r in cpu if t0 <= r["t_ns"] <= t1 and r["link"].endswith("ep0")}
    assert len(vf_addrs) == 2
    later = [r for r in cpu if r["t_ns"] > t1 and
             any(a - 0x40 <= int(r["address"], 0) <= a + 0x40 for a in vf_addrs)]
    assert later == []


def test_full_suspend_style_freezes_at_p2p():
    # MIGRATION.md 1: the one-command style (qat, xe, virtio) -- documented
    # behaviour: inbound writes are discarded already in RUNNING_P2P.
    with pciesim.from_dict(mig_config(style="full")) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        dev.set_state("RUNNING_P2P")
        sim.mmio_write("ep0.vf1", 0x80, 0x1234, bar=2)
        assert sim.mmio_read("ep0.vf1", 0x80, bar=2) == 0
        assert dev.set_state("STOP_COPY") == ["RUNNING_P2P", "STOP", "STOP_COPY"]
        cmds = sim.stats()["functions"]["ep0.vf1"]["migration"]["commands"]
        assert "suspend_responder" not in cmds


def test_example_script_runs():
    import pathlib
    import subprocess
    import sys
    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "migrate_vf.py"
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "4194304 bytes verified, 0 mismatches" in p.stdout
    assert "refused: EBADMSG (checksum), device state RESUMING" in p.stdout


def test_concurrent_operations_on_one_device_are_serialised():
    # Linux's migration state mutex: a callback's transition and the
    # caller's wait for each other instead of interleaving arcs.
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        seen = []

        @sim.after("10us")
        def other():
            seen.append(dev.set_state("RUNNING"))

        assert dev.set_state("STOP_COPY") == ["RUNNING", "RUNNING_P2P", "STOP", "STOP_COPY"]
        sim.run("5ms")
        assert seen == [["STOP_COPY", "STOP", "RUNNING_P2P", "RUNNING"]]


def _arcs(flags):
    """SPEC.md F: the single-step arcs a device with `flags` implements."""
    a = {("STOP_COPY", "STOP"), ("RESUMING", "STOP"), ("STOP", "STOP_COPY"), ("STOP", "RESUMING")}
    p2p, pre = "p2p" in flags, "pre_copy" in flags
    if p2p:
        a |= {("RUNNING_P2P", "STOP"), ("RUNNING_P2P", "RUNNING"), ("RUNNING", "RUNNING_P2P"),
              ("STOP", "RUNNING_P2P")}
    else:
        a |= {("RUNNING", "STOP"), ("STOP", "RUNNING")}
    if pre:
        a |= {("PRE_COPY", "RUNNING"), ("RUNNING", "PRE_COPY")}
        if p2p:
            a |= {("PRE_COPY_P2P", "RUNNING_P2P"), ("RUNNING_P2P", "PRE_COPY_P2P"),
                  ("PRE_COPY", "PRE_COPY_P2P"), ("PRE_COPY_P2P", "PRE_COPY"),
                  ("PRE_COPY_P2P", "STOP_COPY")}
        else:
            a.add(("PRE_COPY", "STOP_COPY"))
    return a


def _oracle(flags, cur, req):
    """Shortest path; saving-group states only in the interior of a path
    that starts and ends in the group; STOP_COPY never back to PRE_COPY*."""
    saving = {"PRE_COPY", "PRE_COPY_P2P", "STOP_COPY"}
    if cur == req:
        return [cur]
    if cur == "STOP_COPY" and req in ("PRE_COPY", "PRE_COPY_P2P"):
        return None
    within = cur in saving and req in saving
    arcs = _arcs(flags)
    frontier, prev = [cur], {cur: None}
    while frontier:
        nxt = []
        for s in frontier:
            if s != cur and s in saving and not within:
                continue
            for a, b in sorted(arcs):
                if a == s and b not in prev:
                    prev[b] = s
                    nxt.append(b)
        frontier = nxt
        if req in prev:
            path = [req]
            while prev[path[-1]] is not None:
                path.append(prev[path[-1]])
            return path[::-1]
    return None


@pytest.mark.parametrize("flags", [("stop_copy",), ("stop_copy", "p2p"),
                                   ("stop_copy", "pre_copy"), ("stop_copy", "p2p", "pre_copy")])
def test_live_device_takes_the_rule_path_for_every_pair(flags):
    # Issue 11 item 5: for all four flag sets and every (current, requested)
    # pair, the path the device takes equals the rule of SPEC.md F.
    states = ["RUNNING", "STOP", "STOP_COPY", "RESUMING"]
    if "p2p" in flags:
        states.append("RUNNING_P2P")
    if "pre_copy" in flags:
        states.append("PRE_COPY")
    if "p2p" in flags and "pre_copy" in flags:
        states.append("PRE_COPY_P2P")
    with pciesim.from_dict(mig_config(flags0=flags)) as sim:
        sim.boot()
        donor = sim.vfio("ep0.vf2")
        donor.set_state("STOP_COPY")
        image = donor.read_all()
        dev = sim.vfio("ep0.vf1")
        pairs = 0
        every = ["RUNNING", "RUNNING_P2P", "STOP", "STOP_COPY", "RESUMING", "PRE_COPY",
                 "PRE_COPY_P2P", "ERROR"]  # unsupported ones are refused
        for cur in states:
            for req in every:
                dev.reset()
                dev.set_state(cur)
                if cur == "RESUMING":
                    dev.write(image)  # leaving RESUMING loads it
                want = None if req == "ERROR" else _oracle(flags, cur, req)
                if want is None:
                    with pytest.raises(pciesim.MigrationError) as e:
                        dev.set_state(req)
                    assert e.value.errno == "EINVAL" and e.value.state == cur, (cur, req)
                else:
                    assert dev.set_state(req) == want, (flags, cur, req)
                pairs += 1
        assert pairs == len(states) * len(every)


def test_pci_core_reset_returns_to_running_bare_flr_does_not():
    # MIGRATION.md 2 and 6.4: a reset the PCI core reports (reset_done)
    # returns the device to RUNNING with its streams closed; a bare FLR it
    # does not report leaves the state stale, and the next transition finds
    # the function no longer suspended (ERROR).
    with pciesim.from_dict(mig_config()) as sim:
        sim.boot()
        dev = sim.vfio("ep0.vf1")
        dev.set_state("STOP_COPY")
        assert sim.flr("ep0.vf1", restore=True) == 0
        assert dev.state == "RUNNING"
        with pytest.raises(pciesim.MigrationError) as e:
            dev.read()
        assert e.value.errno == "EINVAL"
        dev.set_state("STOP_COPY")
        assert sim.flr("ep0.vf1") == 0  # bare pcie_flr
        assert dev.state == "STOP_COPY"
        with pytest.raises(pciesim.MigrationError) as e:
            dev.set_state("STOP")
        assert e.value.errno == "EIO" and e.value.state == "ERROR"
        assert "lost its migration state" in str(e.value)


def test_string_stats_compare_as_text():
    # A migration state in an expectation: `equals: STOP`; a text operand
    # against a number fails with a reason, it is not silently accepted.
    cfg = mig_config()
    cfg["expect"] = [
        {"stat": "functions.ep0.vf1.migration.state", "equals": "STOP"},
        {"stat": "functions.ep0.vf1.migration.state", "not_equals": "RUNNING"},
        {"stat": "functions.ep0.vf1.migration.refused_mmio", "equals": "STOP"},
    ]
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        sim.vfio("ep0.vf1").set_state("STOP")
        results = sim.check()
        assert [r["passed"] for r in results] == [True, True, False]
        assert results[2]["observed"].startswith("not text")

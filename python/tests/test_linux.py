"""The host behaves like Linux and the device like the spec (issue 10,
items 20-28). Each test names the Linux function or spec section."""
import pytest

import pciesim

SRIOV = 0x160  # the SR-IOV capability of the PF (lspci: [160])
CTRL, NUMVF, PGSZ, BAR0 = 0x08, 0x10, 0x20, 0x24


def machine(**ep):
    sriov = {"total_vfs": 2, "num_vfs": 2}
    sriov.update(ep.pop("sriov", {}))
    return {"endpoints": [dict(name="ep0", sriov=sriov, **ep)],
            "links": [{"upstream": "rc.rp0", "downstream": "ep0"}],
            "simulation": {"max_time": "200s"}}


def sriov_cap(sim):
    # Walk the extended list for ID 0x10 rather than trusting a constant.
    pos = 0x100
    while pos:
        hdr = sim.config_read("ep0.pf", pos)
        if hdr & 0xffff == 0x10:
            return pos
        pos = hdr >> 20
    raise AssertionError("no SR-IOV capability")


def test_vf_bars_follow_the_system_page_size():
    # SR-IOV 1.1, 3.3.13-3.3.14: VF BARs are sized in, and aligned to,
    # multiples of the System Page Size; only one supported bit is valid.
    with pciesim.from_dict(machine()) as sim:
        sim.boot()
        c = sriov_cap(sim)
        assert sim.disable_vfs("ep0.pf") == 0
        sim.config_write("ep0.pf", c + BAR0, 0x80004000)  # an address at 4 KiB pages
        sim.config_write("ep0.pf", c + PGSZ, 0x10)  # 64 KiB
        assert sim.config_read("ep0.pf", c + PGSZ) == 0x10
        assert sim.config_read("ep0.pf", c + BAR0) == 0x80000004  # bit 14 no longer sticks
        sim.config_write("ep0.pf", c + BAR0, 0xffffffff)
        assert sim.config_read("ep0.pf", c + BAR0) == 0xffff0004  # 64 KiB, contiguous
        ignored = sim.stat("functions.ep0.pf.target.ignored_writes")
        for bad in (0x3, 0x11, 0x4, 0):  # two bits, two bits, unsupported 16 KiB, none
            sim.config_write("ep0.pf", c + PGSZ, bad)
            assert sim.config_read("ep0.pf", c + PGSZ) == 0x10, hex(bad)
        assert sim.stat("functions.ep0.pf.target.ignored_writes") == ignored + 4
        sim.config_write("ep0.pf", c + PGSZ, 0x2)  # 8 KiB is supported
        assert sim.config_read("ep0.pf", c + PGSZ) == 0x2


def test_reset_of_a_vf_the_hardware_lost_gives_up_like_pci_dev_wait():
    # A bare PF FLR destroys the VFs the host still believes in. Resetting
    # one reads all ones everywhere (its Device Capabilities say FLR), so
    # pcie_flr resets and pci_dev_wait polls PCI_COMMAND (all ones = not
    # ready) 1, 2, 4 ... ms, giving up with -ENOTTY once the next sleep would
    # pass 60 s. Before that pcie_flr polls Transactions Pending (all ones:
    # set) at 0, 100, 200, 400 ms: 700 ms + 100 ms + 65.535 s.
    with pciesim.from_dict(machine()) as sim:
        sim.boot()
        assert sim.flr("ep0.pf") == 0
        t = sim.now
        assert sim.flr("ep0.vf1") == -25
        assert pciesim.ms(66335) <= sim.now - t < pciesim.ms(66340), sim.now - t
        assert sim.stat("host.reset_failures") == 1


def test_restore_after_a_bare_flr_brings_the_vfs_back():
    # sriov_restore_state writes iov->ctrl (VF Enable still set), NumVFs,
    # the page size and the VF BARs from the PCI core's copy, then 100 ms.
    with pciesim.from_dict(machine()) as sim:
        sim.boot()
        c = sriov_cap(sim)
        assert sim.flr("ep0.pf") == 0  # bare: the hardware lost its VFs
        assert sim.config_read("ep0.vf1", 0) == 0xffffffff
        assert sim.config_read("ep0.pf", c + CTRL, size=2) & 1 == 0
        assert sim.reset_function("ep0.pf", "flr") == 0
        assert sim.config_read("ep0.pf", c + CTRL, size=2) & 1 == 1
        assert sim.config_read("ep0.pf", c + NUMVF, size=2) == 2
        # VF Vendor and Device ID read 0xffff by spec: the class code answers.
        assert sim.config_read("ep0.vf1", 0x08) != 0xffffffff
        # Its BAR decodes (VF BARs come from the resources; the PF's own header
        # was saved after the bare FLR had cleared it, as on Linux).
        assert sim.mmio_read("ep0.vf1", 0) == 0x444D4131  # "DMA1"


def test_bus_reset_of_a_function_that_shares_its_bus_is_refused():
    # pci_parent_bus_reset: -ENOTTY unless the function is alone on the bus
    # (its VFs share it).
    with pciesim.from_dict(machine()) as sim:
        sim.boot()
        assert sim.reset_function("ep0.pf", "bus") == -25
        assert sim.disable_vfs("ep0.pf") == 0
        assert sim.reset_function("ep0.pf", "bus") == 0


@pytest.mark.parametrize("speed, low, high", [(5, 122, 123), (2, 102, 103)])
def test_secondary_bus_reset_waits_as_linux(speed, low, high):
    # pci_bridge_wait_for_secondary_bus: faster than 5 GT/s: 2 ms + 20 ms +
    # Link Active + 100 ms; at 5 GT/s or less: 2 ms + 100 ms.
    cfg = machine(sriov={"total_vfs": 0, "num_vfs": 0})
    cfg["root_complex"] = {"max_link_speed": speed}
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        t = sim.now
        assert sim.hot_reset("rc.rp0") == 0
        assert pciesim.ms(low) <= sim.now - t < pciesim.ms(high), sim.now - t


def test_unreachable_first_vf_fails_sriov_enable_with_eio():
    # Without ARI the root port forwards device 0 only; VF1 at device 1 reads
    # an invalid header type and sriov_enable fails with -EIO.
    cfg = machine(sriov={"num_vfs": 0, "first_vf_offset_no_ari": 8, "vf_stride_no_ari": 1})
    cfg["root_complex"] = {"ari_forwarding": False}
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        c = sriov_cap(sim)
        assert sim.enable_vfs("ep0.pf", 2) == -5
        assert sim.config_read("ep0.pf", c + CTRL, size=2) & 1 == 0
        assert [f for f in sim.functions() if "vf" in f] == []
        assert "01:01.0" not in sim.lspci("-v")
        assert sim.stat("host.sriov_enable_failures") == 1


def test_d3hot_to_d0_with_soft_reset_rewrites_the_vf_bars():
    # pci_restore_bars -> pci_update_resource covers the IOV resources.
    with pciesim.from_dict(machine()) as sim:
        sim.boot()
        c = sriov_cap(sim)
        before = sim.config_read("ep0.pf", c + BAR0)
        assert before & ~0xf
        assert sim.disable_vfs("ep0.pf") == 0
        sim.set_power_state("ep0.pf", "D3hot")
        sim.set_power_state("ep0.pf", "D0")
        assert sim.config_read("ep0.pf", c + BAR0) == before


def test_lspci_tree_lists_buses_ascending_and_vf_regions_are_virtual():
    cfg = machine(sriov={"total_vfs": 300, "num_vfs": 300})
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        tree = sim.lspci("-t")
        assert tree.index("[0000:01]") < tree.index("[0000:02]")
        v = sim.lspci("-v")
        vf1 = v[v.index("01:00.1 "):].split("\n\n")[0]
        assert "Memory at 80004000 (64-bit, non-prefetchable) [virtual] [size=16K]" in vf1, vf1
        assert "<unassigned>" not in vf1


def test_flr_of_a_busy_function_notes_its_transactions_pending_wait():
    cfg = machine()
    cfg["workloads"] = [{"name": "w", "function": "ep0.vf1", "size": "1MiB", "count": 4,
                         "start": "manual"}]
    with pciesim.from_dict(cfg) as sim:
        sim.boot()
        sim.start_workload("w")
        sim.run("20us")
        assert sim.flr("ep0.vf1") == 0
        notes = [m for m in sim.stat("host.messages") if "Transactions Pending" in m]
        assert notes and notes[0].startswith("ep0.vf1: FLR waited"), notes


def test_lspci_shows_a_function_that_answers_all_ones_like_pciutils():
    # After a bare PF FLR the host still lists VFs that read all ones:
    # pciutils prints "!!! Unknown header type 7f" and nothing else.
    with pciesim.from_dict(machine()) as sim:
        sim.boot()
        assert sim.flr("ep0.pf") == 0
        v = sim.lspci("-v")
        vf1 = v[v.index("01:00.1 "):].split("\n\n")[0].splitlines()
        assert vf1[1:] == ["\t!!! Unknown header type 7f"], vf1

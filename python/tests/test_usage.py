"""Wrong arguments and calls at the wrong time get the package's own errors,
worded for the user, never a raw binding error or a silent wrong result
(issue 10, items 13, 14, 16, 18, 19d)."""
import pytest

import pciesim

SMALL = {
    "endpoints": [{"name": "ep0", "sriov": {"total_vfs": 2, "num_vfs": 2}}],
    "links": [{"upstream": "rc.rp0", "downstream": "ep0"}],
}


def test_no_address_before_boot():
    with pciesim.from_dict(SMALL) as sim:
        for call in (lambda: sim.bdf("ep0.pf"), lambda: sim.config_read("ep0.pf", 0),
                     lambda: sim.config_write("ep0.pf", 4, 0, size=2)):
            with pytest.raises(pciesim.UsageError, match="before the host enumerates"):
                call()
        with pytest.raises(pciesim.UsageError, match="no function named 'ep7.pf'"):
            sim.bdf("ep7.pf")
        sim.boot()
        assert sim.bdf("ep0.pf") == "01:00.0"
        assert sim.config_read("ep0.pf", 0, size=2) == 0x5EC0


@pytest.mark.parametrize("call, match", [
    (lambda s: s.config_read(3, 0), "target must be a string"),
    (lambda s: s.config_read("ep0.pf", "0"), "offset must be an integer"),
    (lambda s: s.config_read("ep0.pf", 1 << 70), "offset must be in"),
    (lambda s: s.config_read("ep0.pf", -4), "offset must be in"),
    (lambda s: s.config_read("ep0.pf", 0, size=3), "size must be one of 1, 2, 4"),
    (lambda s: s.config_write("ep0.pf", 4, 0x10000, size=2), "does not fit 2 byte"),
    (lambda s: s.config_write("ep0.pf", 4, 0x1ff, size=1), "does not fit 1 byte"),
    (lambda s: s.config_write("ep0.pf", 4, -1), "value must be in"),
    (lambda s: s.mmio_read("ep0.pf", 0x4000), "outside BAR0"),
    (lambda s: s.mmio_read("ep0.pf", 0x3ffe, size=4), "outside BAR0"),
    (lambda s: s.mmio_read("ep0.pf", 1 << 64), "offset must be in"),
    (lambda s: s.mmio_write("ep0.pf", 0x48, 1 << 40, size=4), "does not fit 4 byte"),
    (lambda s: s.enable_vfs("ep0.pf", 1 << 40), "count must be in"),
    (lambda s: s.enable_vfs("ep0.pf", "2"), "count must be an integer"),
    (lambda s: s.flr("ep0.vf1", restore="yes"), "restore must be True or False"),
    (lambda s: s.bus_master("ep0.pf", 1), "enable must be True or False"),
    (lambda s: s.write_memory(0x1000, "text"), "data must be bytes"),
    (lambda s: s.read_memory(-1, 4), "address must be in"),
    (lambda s: s.stat("scenario.99"), "no stat 'scenario.99'"),
    (lambda s: s.stat("functions.ep0.pf.nothing"), "no stat"),
    (lambda s: s.stat(5), "path must be a string"),
    (lambda s: s.at("1us", 42), "take a callable"),
    (lambda s: s.dma("ep0.pf", 0, 0, 0), "length must be in"),
])
def test_bad_arguments_are_usage_errors(call, match):
    with pciesim.from_dict(SMALL) as sim:
        sim.boot()
        before = sim.config_read("ep0.pf", 4, size=2)
        with pytest.raises(pciesim.UsageError, match=match):
            call(sim)
        assert sim.config_read("ep0.pf", 4, size=2) == before  # nothing was written


def test_mmio_beyond_a_vf_bar_is_refused_not_the_next_vf():
    # VF BAR0s are contiguous: 0x4000 into VF1's 16 KiB BAR0 is VF2's registers.
    with pciesim.from_dict(SMALL) as sim:
        sim.boot()
        with pytest.raises(pciesim.UsageError, match="outside BAR0"):
            sim.mmio_read("ep0.vf1", 0x4000)
        assert sim.mmio_read("ep0.vf1", 0) == sim.mmio_read("ep0.vf2", 0)  # the ID register


@pytest.mark.parametrize("overrides", ["endpoints.ep0.sriov.num_vfs=1",
                                       ["endpoints.ep0.sriov.num_vfs=1"],
                                       {"endpoints.ep0.sriov.num_vfs": 1}])
def test_overrides_as_string_list_or_dict(overrides):
    with pciesim.from_dict(SMALL, overrides=overrides) as sim:
        sim.boot()
        assert [f for f in sim.functions() if f.startswith("ep0")] == ["ep0.pf", "ep0.vf1"]


@pytest.mark.parametrize("overrides, match", [
    (5, "overrides must be"), ([1], "'key=value' strings"), ({1: 2}, "config paths"),
])
def test_bad_overrides(overrides, match):
    with pytest.raises(pciesim.UsageError, match=match):
        pciesim.from_dict(SMALL, overrides=overrides)


@pytest.mark.parametrize("name", ["ep.0", "ep 0", "ep:0", "", "0ep", "x" * 65])
def test_names_must_be_usable_as_instance_names(name):
    cfg = {"endpoints": [{"name": name}], "links": [{"upstream": "rc.rp0", "downstream": name}]}
    with pytest.raises(pciesim.ConfigError, match="not a valid name") as e:
        pciesim.validate(cfg)
    assert e.value.path == "endpoints[0].name"


def test_wrong_config_types():
    with pytest.raises(pciesim.UsageError, match="takes a dict"):
        pciesim.from_dict([1, 2])
    with pytest.raises(pciesim.UsageError, match="path or a dict"):
        pciesim.validate(42)


def test_trace_write_errors_are_reported():
    with pciesim.from_dict(SMALL) as sim:
        sim.trace("/dev/full")
        with pytest.raises(pciesim.UsageError, match="No space left on device"):
            sim.boot()  # enumeration writes enough records to overflow the buffer
        sim.run("10us")  # tracing stopped; the simulation goes on
        assert sim.config_read("ep0.pf", 0, size=2) == 0x5EC0
    sim = pciesim.from_dict(SMALL)
    sim.boot()
    sim.trace("/dev/full")
    sim.config_read("ep0.pf", 0)  # two records, still buffered: the error shows at the flush
    with pytest.raises(pciesim.UsageError, match="No space left on device"):
        sim.close()
    assert sim.closed

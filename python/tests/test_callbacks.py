"""Callbacks scheduled with at()/after(): host operations that outlive a run,
calls that are refused inside a callback, other threads, and the lifetime of
the Python callable (issue 10, items 1, 2, 5, 5a, 5b)."""
import gc
import threading

import pytest

import pciesim

SRIOV = {
    "endpoints": [{"name": "ep0", "sriov": {"total_vfs": 4, "num_vfs": 2}}],
    "links": [{"upstream": "rc.rp0", "downstream": "ep0"}],
}


@pytest.fixture
def sim():
    s = pciesim.from_dict(SRIOV)
    s.boot()
    yield s
    s.close()


@pytest.mark.parametrize("op", ["flr", "reset_function", "hot_reset", "enable_vfs",
                                "disable_vfs", "dma"])
def test_operation_outliving_the_run_continues_in_the_next(sim, op):
    calls = {
        "flr": lambda: sim.flr("ep0.vf1"),
        "reset_function": lambda: sim.reset_function("ep0.vf1"),
        "hot_reset": lambda: sim.hot_reset("rc.rp0"),
        "enable_vfs": lambda: sim.enable_vfs("ep0.pf", 0) or sim.enable_vfs("ep0.pf", 4),
        "disable_vfs": lambda: sim.disable_vfs("ep0.pf"),
        "dma": lambda: sim.dma("ep0.pf", 0, 0x80000, 0x40000, src_local=True, dst_local=True),
    }
    seen = []

    @sim.after("1us")
    def cb():
        start = sim.now
        seen.append(calls[op]())
        seen.append(sim.now - start)

    sim.run("2us")  # the operation is still waiting when this run ends
    assert seen == []
    for _ in range(200):
        if seen:
            break
        sim.run("10ms")
    assert seen and seen[0] == 0, seen
    assert seen[1] > pciesim.us(1)
    assert sim.config_read("ep0.pf", 0, size=2) == 0x5EC0


def test_waiting_sleeps_and_nested_scheduling_inside_a_callback(sim):
    seen = []

    @sim.after("1us")
    def cb():
        t = sim.now
        sim.run("5us")  # inside a callback: wait 5 us of simulated time
        seen.append(sim.now - t)
        sim.after("3us", lambda: seen.append(("nested", sim.now - t)))

    sim.run("20us")
    assert seen == [pciesim.us(5), ("nested", pciesim.us(8))]


@pytest.mark.parametrize("call, match", [
    (lambda s: s.close(), "cannot be closed inside"),
    (lambda s: s.run(), "cannot start inside a callback"),
    (lambda s: pciesim.from_dict(SRIOV), "cannot be created while one runs"),
])
def test_calls_refused_inside_a_callback(sim, call, match):
    errors = []

    @sim.after("1us")
    def cb():
        try:
            call(sim)
        except pciesim.UsageError as e:
            errors.append(str(e))

    sim.run("5us")
    assert len(errors) == 1 and match in errors[0], errors
    assert not sim.closed and sim.config_read("ep0.pf", 0, size=2) == 0x5EC0


def test_close_wakes_a_callback_waiting_in_an_operation():
    s = pciesim.from_dict(SRIOV)
    s.boot()
    seen = []

    @s.after("1us")
    def cb():
        try:
            s.flr("ep0.vf1")
            seen.append("completed")
        except pciesim.UsageError as e:
            seen.append(str(e))
        try:
            s.config_read("ep0.pf", 0)
        except pciesim.UsageError as e:
            seen.append("again: " + str(e))

    s.run("2us")
    s.close()
    assert len(seen) == 2 and "closed while the callback waited" in seen[0]
    assert seen[1].startswith("again:")


def test_another_thread_is_refused_while_the_simulation_runs(sim):
    seen = []

    def other():
        try:
            sim.config_read("ep0.pf", 0)
            seen.append("ran")
        except pciesim.UsageError as e:
            seen.append(str(e))
        try:
            sim.stats()
            seen.append("ran")
        except pciesim.UsageError as e:
            seen.append(str(e))

    @sim.after("1us")
    def cb():
        t = threading.Thread(target=other)
        t.start()
        t.join()

    sim.run("5us")
    assert len(seen) == 2 and all("running in another thread" in m for m in seen), seen
    # Between runs another thread may use it.
    t = threading.Thread(target=lambda: seen.append(sim.config_read("ep0.pf", 0, size=2)))
    t.start()
    t.join()
    assert seen[-1] == 0x5EC0


def test_operation_abandoned_at_max_time_then_more_operations():
    # 5a: the abandoned operation must not resume into a dead frame.
    for _ in range(10):
        s = pciesim.from_dict(SRIOV, overrides={"simulation.max_time": "150ms"})
        s.boot()
        with pytest.raises(pciesim.UsageError, match="max_time"):
            s.flr("ep0.pf", restore=True)
        with pytest.raises(pciesim.UsageError, match="max_time"):
            s.config_write("ep0.pf", 4, 6, size=2)
        r = s.run()
        assert r.time_limit and not r.passed
        s.run("200ms")  # past max_time on request: the abandoned operations finish
        assert s.stats()["functions"]["ep0.pf"]
        with pytest.raises(pciesim.UsageError, match="max_time"):
            s.config_read("ep0.pf", 0, size=2)
        s.close()


def test_unreferenced_callables_are_released_with_the_gil(sim):
    # 5b: the lambda's only reference is the schedule itself.
    hits = []
    for i in range(50):
        sim.after(f"{i + 1}ns", lambda i=i: hits.append(i))
    for i in range(50):
        sim.after("1s", lambda: None)  # never fire before close
    gc.collect()
    sim.run("1us")
    gc.collect()
    assert hits == list(range(50))


def test_callback_of_a_closed_simulation_never_runs():
    s = pciesim.from_dict(SRIOV)
    s.boot()
    hits = []
    s.after("1us", lambda: hits.append(1))
    s.close()
    t = pciesim.from_dict(SRIOV)
    t.run("2ms")
    t.close()
    assert hits == []


def test_callbacks_scheduled_before_the_first_run():
    # Before the kernel first runs, SystemC's "current process" is the last
    # one created: that must not make run() think it is inside a callback.
    s = pciesim.from_dict(SRIOV)
    seen = []
    s.after("1us", lambda: seen.append((s.now, s.booted)))
    assert s.run("50us") is None
    assert seen == [(pciesim.us(1), False)]  # it ran during enumeration
    assert s.run().completed
    s.close()
    s = pciesim.from_dict(SRIOV)
    s.after("1us", lambda: seen.append(1))
    assert s.run().completed and seen[-1] == 1
    s.close()

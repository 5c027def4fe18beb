"""Every input the fuzzers ever found (regress/fuzz/found/) is a regression
case: it must now run without a crash, a sanitizer report or an exception
that is not the package's own."""
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
import fuzz_config  # noqa: E402

FOUND = sorted((HERE / "found").glob("*"))


@pytest.mark.parametrize("path", [p for p in FOUND if p.suffix == ".json"], ids=lambda p: p.name)
def test_register_sequence(path):
    p = subprocess.run([sys.executable, str(HERE / "fuzz_registers.py"), "--replay", str(path)],
                       capture_output=True, text=True, timeout=300, errors="replace")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert not any(m in out for m in fuzz_config.SANITIZER_MARKS), out[-3000:]


@pytest.mark.parametrize("path", [p for p in FOUND if p.suffix == ".yaml"], ids=lambda p: p.name)
def test_config(path):
    binary = os.environ.get("PCIESIM_BIN", str(HERE.parents[1] / "build" / "pciesim"))
    why, out = fuzz_config.check(binary, path, 120)
    assert why is None, f"{why}\n{(out or '')[-3000:]}"


def test_the_found_directory_exists():
    assert (HERE / "found").is_dir()

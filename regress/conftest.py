"""Shared pytest fixtures for pciesim's CLI, regression and Python tests."""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _bin():
    env = os.environ.get("PCIESIM_BIN")
    if env:
        return env
    return str(ROOT / "build" / "pciesim")


class Cli:
    """Runs the pciesim binary and returns (exit code, stdout, stderr)."""

    def __init__(self, tmp_path):
        self.bin = _bin()
        self.tmp = tmp_path

    def __call__(self, *args, check=None):
        p = subprocess.run([self.bin, *map(str, args)], capture_output=True, text=True,
                           env={**os.environ, "SC_COPYRIGHT_MESSAGE": "DISABLE"})
        if check is not None:
            assert p.returncode == check, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        return p

    def write(self, name, text):
        path = self.tmp / name
        path.write_text(text)
        return path

    def run_stats(self, config, *extra, check=0):
        stats = self.tmp / "stats.json"
        self("run", config, "--stats", stats, "-q", *extra, check=check)
        return json.loads(stats.read_text())


@pytest.fixture
def cli(tmp_path):
    return Cli(tmp_path)


@pytest.fixture
def root():
    return ROOT

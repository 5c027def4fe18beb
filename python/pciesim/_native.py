"""Loads the native module, with a clear message if it is not built."""
try:
    from _pciesim import *  # noqa: F401,F403
    from _pciesim import Simulation as NativeSimulation  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only on broken installs
    raise ImportError(
        "pciesim's native module _pciesim is not built or not on the path. Run "
        "`./build.sh build` as root (it installs a .pth for /usr/bin/python3), or set "
        "PYTHONPATH=<repo>/python:<repo>/build/python") from e

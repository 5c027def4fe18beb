#!/usr/bin/env bash
# pciesim developer entry point.
#   ./build.sh demo    install what is missing, build, run configs/quickstart.yaml
#   ./build.sh test    install what is missing, build, run every test (ctest)
#   ./build.sh build   install what is missing, build
#   ./build.sh bench   build, run the bandwidth/latency benchmark (bench/README.md)
#   ./build.sh bench sriov   build, run the SR-IOV scale benchmark
set -euo pipefail
cd "$(dirname "$0")"
what="${1:-demo}"

./scripts/setup.sh
jobs="$(nproc 2>/dev/null || echo 2)"
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE=/usr/bin/python3 >/dev/null
fi
cmake --build build -j "$jobs" | grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking)' || true
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "build failed" >&2; exit 1; }

# Make `import pciesim` work for Debian's /usr/bin/python3: a .pth file in its
# site directory naming the pure-Python package and the built module.
site="$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')"
pth="$site/pciesim.pth"
want="$PWD/python
$PWD/build/python"
if [ "$(cat "$pth" 2>/dev/null)" != "$want" ]; then
  if mkdir -p "$site" 2>/dev/null && printf '%s\n' "$want" > "$pth" 2>/dev/null; then
    echo "python: installed $pth (import pciesim works for /usr/bin/python3)"
  else
    echo "python: not root; use PYTHONPATH=$PWD/python:$PWD/build/python" >&2
  fi
fi

case "$what" in
  demo)
    exec ./build/pciesim run configs/quickstart.yaml ;;
  build)
    ;;
  bench)
    shift || true
    if [ "${1:-}" = sriov ]; then
      shift
      exec /usr/bin/python3 bench/sriov_scale.py "$@"
    fi
    exec /usr/bin/python3 bench/run_bench.py "$@" ;;
  test)
    cd build
    set +e
    ctest --output-on-failure -j "$jobs" 2>&1 | tee ctest.log | grep -v '^Total Test time'
    rc=${PIPESTATUS[0]}
    # ctest prints its summary before the timing line; repeat the summary so
    # it is the last thing printed.
    grep -E '^[0-9]+% tests passed' ctest.log | tail -n 1
    exit "$rc" ;;
  *)
    echo "usage: $0 [demo|test|build|bench]" >&2
    exit 2 ;;
esac

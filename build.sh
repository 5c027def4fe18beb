#!/usr/bin/env bash
# pciesim developer entry point.
#   ./build.sh demo    install what is missing, build, run configs/quickstart.yaml
#   ./build.sh test    install what is missing, build, run every test (ctest), then
#                      the whole suite again in an ASan+UBSan build (build-asan/)
#   ./build.sh test fast   the normal build's suite only
#   ./build.sh test sanitize   the sanitizer build's suite only
#   ./build.sh build   install what is missing, build
#   ./build.sh bench   build, run the bandwidth/latency benchmark (bench/README.md)
#   ./build.sh bench sriov   build, run the SR-IOV scale benchmark
#   ./build.sh bench migration   build, run the VF migration downtime benchmark
#   ./build.sh bench vm-migration   build, run the whole-VM migration sweep
#   ./build.sh bench trace   build, measure what each trace output costs
#   ./build.sh bench replay  build, replay the pcie-bench measurements (bench/replay/)
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
    if [ "${1:-}" = migration ]; then
      shift
      exec /usr/bin/python3 bench/migration_downtime.py "$@"
    fi
    if [ "${1:-}" = vm-migration ]; then
      shift
      exec /usr/bin/python3 bench/vm_migration.py "$@"
    fi
    if [ "${1:-}" = replay ]; then
      shift
      exec /usr/bin/python3 bench/replay_all.py "$@"
    fi
    if [ "${1:-}" = trace ]; then
      shift
      exec /usr/bin/python3 bench/trace_overhead.py "$@"
    fi
    exec /usr/bin/python3 bench/run_bench.py "$@" ;;
  test)
    mode="${2:-all}"
    case "$mode" in all|fast|sanitize) ;; *) echo "usage: $0 test [fast|sanitize]" >&2; exit 2 ;; esac
    # One ctest run in a build tree; its log is build*/ctest.log.
    suite() {
      (cd "$1" && ctest --output-on-failure -j "$jobs" 2>&1 | tee ctest.log |
        grep -vE '^(Total Test time|[0-9]+% tests passed)')
      return "${PIPESTATUS[0]}"
    }
    set +e
    rc=0
    logs=()
    if [ "$mode" != sanitize ]; then
      echo "== normal build"
      suite build || rc=1
      logs+=(build/ctest.log)
    fi
    if [ "$mode" != fast ]; then
      # ASan + UBSan (docs/testing.md): the same suite, Python tests and the
      # bounded fuzzers included.
      echo "== sanitizer build (ASan + UBSan)"
      if [ ! -f build-asan/build.ninja ]; then
        cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPCIESIM_SANITIZE=ON \
          -DPCIESIM_BUILD_BENCH=OFF -DPython_EXECUTABLE=/usr/bin/python3 >/dev/null || exit 1
      fi
      cmake --build build-asan -j "$jobs" | grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking)' || true
      [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "sanitizer build failed" >&2; exit 1; }
      suite build-asan || rc=1
      logs+=(build-asan/ctest.log)
    fi
    # The runner's summary is the last line: ctest's, summed over the builds.
    total=0 failed=0
    for l in "${logs[@]}"; do
      line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$l" | tail -n 1)
      [ -n "$line" ] || { rc=1; continue; }
      echo "$l: $line"
      f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
      t=$(sed -E 's/.* tests failed out of ([0-9]+).*/\1/' <<<"$line")
      failed=$((failed + f)); total=$((total + t))
    done
    pct=0
    # Rounded as ctest rounds, but never 100% with a failure.
    [ "$total" -gt 0 ] && pct=$(( ((total - failed) * 100 + total / 2) / total ))
    [ "$failed" -gt 0 ] && [ "$pct" -gt 99 ] && pct=99
    echo "${pct}% tests passed, ${failed} tests failed out of ${total}"
    [ "$failed" -eq 0 ] || rc=1
    exit "$rc" ;;
  *)
    echo "usage: $0 [demo|test|build|bench]" >&2
    exit 2 ;;
esac

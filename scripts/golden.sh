#!/bin/bash
# Captures the simulated results of every config and regression case (stats
# JSON without wall-clock fields, the JSON-lines trace's hash, CLI output) into DIR, so
# that a speed change can be checked to leave them byte for byte identical:
#   scripts/golden.sh /tmp/before; (change, rebuild); scripts/golden.sh /tmp/after
#   diff -r /tmp/before /tmp/after
set -u
out=${1:?usage: scripts/golden.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
for f in "$root"/configs/*.yaml "$root"/regress/cases/*.yaml; do
  n=$(basename "$(dirname "$f")")_$(basename "$f" .yaml)
  (cd "$(dirname "$f")" && SC_COPYRIGHT_MESSAGE=DISABLE timeout 600 "$root/build/pciesim" run -q "$f" \
      --stats "$out/$n.stats.json" --trace "$out/$n.trace.jsonl" >"$out/$n.out" 2>&1; echo "rc $?" >>"$out/$n.out")
  [ -f "$out/$n.stats.json" ] && /usr/bin/python3 - "$out/$n.stats.json" <<'PY'
import json, sys
p = sys.argv[1]; s = json.load(open(p))
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if not any(w in k for w in ("wall", "per_wall", "host_seconds"))}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o
json.dump(strip(s), open(p, "w"), indent=1, sort_keys=True)
PY
  if [ -f "$out/$n.trace.jsonl" ]; then
    echo "$(sha256sum <"$out/$n.trace.jsonl" | cut -c1-64) $(wc -l <"$out/$n.trace.jsonl") lines" >"$out/$n.trace.sha256"
    rm -f "$out/$n.trace.jsonl"
  fi
done
sed -i -E 's/[0-9.]+ ?(s|ms) wall[^ ]*//g' "$out"/*.out 2>/dev/null
echo "$(ls "$out" | wc -l) files in $out"

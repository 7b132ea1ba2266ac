#!/usr/bin/env bash
# Crash-safety check: a tiny run is killed with SIGKILL at a random point N times, each time
# resumed with `--resume` until it finishes; every resumed run's metrics (timings aside) must equal
# an uninterrupted run's, line for line.
#   scripts/kill_resume.sh [N (default 50)] [STEPS (default 24)]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
N="${1:-50}"
STEPS="${2:-24}"
swift build -c release --product tokenwise >&2
bin="$(swift build -c release --show-bin-path)/tokenwise"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
args=(--preset tiny --threads 1 --quiet --set "train.steps=$STEPS" --set output.checkpoint_every=3 --set output.save_model=false
      --set eval.before=false --set rollout.max_new_tokens=16)
"$bin" train --out "$work/whole" "${args[@]}"
same() {
  python3 - "$1" "$2" <<'PY'
import json, sys
def rows(d):
    out = []
    for line in open(d + "/metrics.jsonl"):
        r = json.loads(line)
        out.append({k: v for k, v in r.items() if "seconds" not in k and "per_second" not in k and k != "peak_memory_mb"})
    return out
sys.exit(0 if rows(sys.argv[1]) == rows(sys.argv[2]) else 1)
PY
}
passed=0 failed=0
for i in $(seq 1 "$N"); do
  dir="$work/run-$i"
  "$bin" train --out "$dir" "${args[@]}" & pid=$!
  # A random point of the run: from before the first checkpoint to near its end.
  sleep "$(python3 -c "import random; print(round(random.uniform(0.2, 4.0), 2))")"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ -f "$dir/config.yaml" ]]; then
    "$bin" train --resume "$dir" --threads 1 --quiet
  else
    "$bin" train --out "$dir" "${args[@]}"   # killed before the folder existed: start again
  fi
  if same "$work/whole" "$dir"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "run $i: metrics differ" >&2; fi
  rm -rf "$dir"
done
echo "kill_resume: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

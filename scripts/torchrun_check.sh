#!/usr/bin/env bash
# The data-parallel checks under torchrun itself (torch.distributed.run from torch==2.11.0), which
# the test suite cannot assume: it needs the full torch wheel and its NVIDIA dependencies (~4 GB),
# installed here into the git-ignored .deps/torchrun-venv.
#   1. 2 ranks launched by torchrun give the weights of 1 process after 3 steps (to 1e-5);
#   2. a rank killed mid-run stops torchrun with the other rank's c10d error, and torchrun --resume
#      with 2 ranks continues from the last complete checkpoint to the end.
# Usage: scripts/torchrun_check.sh [path/to/tokenwise]   (default: a fresh debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.deps/torchrun-venv
if [ ! -x "$VENV/bin/torchrun" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "torch==2.11.0" numpy
fi
BIN=${1:-}
if [ -z "$BIN" ]; then swift build -q --product tokenwise && BIN=.build/debug/tokenwise; fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SETS=(--set train.steps=3 --set train.prompts_per_step=3 --set eval.before=false --set eval.after=false
      --set output.save_model=false --set output.report=false --set output.checkpoint_every=1)
TORCHRUN=("$VENV/bin/torchrun" --nproc-per-node 2 --no-python)

echo "[torchrun_check] 1 process vs 2 torchrun ranks"
"$BIN" train --preset tiny --threads 1 --quiet --out "$WORK/one" "${SETS[@]}"
"${TORCHRUN[@]}" "$BIN" train --preset tiny --quiet --out "$WORK/two" "${SETS[@]}" 2>"$WORK/two.err"
"$VENV/bin/python" - "$WORK/one" "$WORK/two" <<'PY'
import json, struct, sys
import numpy as np
def load(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in h.items() if k != "__metadata__"}
a, b = (load(d + "/checkpoints/step-3/adapter_model.safetensors") for d in sys.argv[1:3])
worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
print(f"[torchrun_check] largest weight difference after 3 steps: {worst:.3g}")
assert worst < 1e-5, worst
PY

echo "[torchrun_check] a rank killed mid-run, then --resume with 2 ranks"
RUN="$WORK/killed"
LONG=("${SETS[@]}" --set train.steps=400)
TOKENWISE_DIST_TIMEOUT=60 "${TORCHRUN[@]}" "$BIN" train --preset tiny --quiet --out "$RUN" "${LONG[@]}" 2>"$WORK/killed.err" &
AGENT=$!
until [ -f "$RUN/metrics.jsonl" ] && [ "$(wc -l <"$RUN/metrics.jsonl")" -ge 3 ]; do sleep 0.1; done
VICTIM=$(for p in $(pgrep -P "$AGENT"); do tr '\0' '\n' <"/proc/$p/environ" | grep -qx RANK=1 && echo "$p"; done)
kill -9 "$VICTIM"
START=$(date +%s)
if wait "$AGENT"; then echo "[torchrun_check] torchrun exited 0 after a rank was killed"; exit 1; fi
echo "[torchrun_check] torchrun stopped $(( $(date +%s) - START )) s after the kill"
grep -q "failed on rank 0" "$WORK/killed.err" || { echo "[torchrun_check] no c10d error from rank 0:"; cat "$WORK/killed.err"; exit 1; }
grep -m1 "Another rank exited" "$WORK/killed.err" | cut -c1-300 || true
DONE=$(wc -l <"$RUN/metrics.jsonl")
sed -i "s/steps: 400/steps: $((DONE + 3))/" "$RUN/config.yaml"
"${TORCHRUN[@]}" "$BIN" train --resume "$RUN" --quiet 2>>"$WORK/killed.err"
"$VENV/bin/python" - "$RUN/metrics.jsonl" "$((DONE + 3))" <<'PY'
import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1])]
assert steps == list(range(1, int(sys.argv[2]) + 1)), steps
print(f"[torchrun_check] resumed to step {steps[-1]}: steps 1…{steps[-1]} each recorded once")
PY
echo "[torchrun_check] passed"

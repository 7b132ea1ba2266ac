#!/usr/bin/env bash
# The README's main-job command: installs what is missing (libtorch, the default model), builds the
# release binary and runs the default training job — SmolLM2-135M-Instruct with LoRA on held-out
# single-digit addition, TEMPO credit, an eval before and after, and runs/main-<time>/report.html.
# Any arguments are passed to tokenwise instead, e.g. `scripts/run.sh bench matmul --threads 1`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh libtorch model
swift build -c release --product tokenwise >&2
bin="$(swift build -c release --show-bin-path)/tokenwise"
if [[ $# -eq 0 ]]; then set -- train --preset default --out "runs/main-$(date +%Y%m%d-%H%M%S)"; fi
exec "$bin" "$@"

#!/usr/bin/env bash
# The README's main-job command: installs what is missing, builds the release binary and runs it.
# With no arguments it runs the default job (for now `tokenwise bench matmul`); any arguments are
# passed to tokenwise instead, e.g. `scripts/run.sh bench matmul --sizes 512,1024 --threads 1`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh libtorch
swift build -c release --product tokenwise >&2
bin="$(swift build -c release --show-bin-path)/tokenwise"
if [[ $# -eq 0 ]]; then set -- bench matmul; fi
exec "$bin" "$@"

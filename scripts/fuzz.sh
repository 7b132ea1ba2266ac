#!/usr/bin/env bash
# Fuzz campaigns over every parser a user's file reaches, in-process and seeded (tokenwise-fuzz).
#   scripts/fuzz.sh [CASES_PER_PARSER] [FIRST_SEED] [TARGETS]
# CASES_PER_PARSER defaults to 10000 (the short campaign scripts/test.sh runs); the long campaign is
# scripts/fuzz.sh 1000000. Cases run in chunks of at most 20000, one seed each, so that a crash
# (which ends the process) loses one chunk: the chunk's input is kept, and the campaign goes on.
# Prints a line per chunk and a total per parser; exits 1 if anything was found.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cases="${1:-10000}"
seed="${2:-1}"
targets="${3:-gguf,hf_dir,tokenizer_json,yaml,jsonl,credit_json,objective_json}"
[[ "$cases" =~ ^[0-9]+$ && "$cases" -ge 1 ]] || { echo "fuzz.sh: CASES_PER_PARSER must be a positive whole number, got '$cases'" >&2; exit 2; }

scripts/setup.sh libtorch >/dev/null
# The same flags as the test command's release build, so the two share one build.
swift build -c release --static-swift-stdlib --product tokenwise-fuzz >/dev/null
work="$(mktemp -d "${TMPDIR:-/tmp}/tokenwise-fuzz.XXXXXX")"
# The binary is copied so that a rebuild during a long campaign does not change it under the run.
cp .build/release/tokenwise-fuzz "$work/tokenwise-fuzz"
found=0
IFS=',' read -ra list <<<"$targets"
for target in "${list[@]}"; do
  done_cases=0; chunk_seed="$seed"; problems=0
  while (( done_cases < cases )); do
    n=$(( cases - done_cases < 20000 ? cases - done_cases : 20000 ))
    set +e
    out="$("$work/tokenwise-fuzz" --target "$target" --cases "$n" --seed "$chunk_seed" --work "$work/run" 2>&1)"
    status=$?
    set -e
    if (( status != 0 )); then
      problems=$((problems + 1))
      echo "$out" | grep -E "CRASH|HANG|FINDING|Fatal" | head -5
      # The next chunk reuses the scratch folder: keep this one's files (the crashing input among them).
      kept="$work/crashes/$target-seed-$chunk_seed"
      mkdir -p "$kept" && cp -r "$work/run/scratch-$target/." "$kept/"
      echo "fuzz.sh: $target seed $chunk_seed ended with status $status; its last input is kept in $kept" >&2
    fi
    done_cases=$((done_cases + n)); chunk_seed=$((chunk_seed + 1))
  done
  echo "$target: $done_cases cases (seeds $seed…$((chunk_seed - 1))), $problems chunk(s) with findings"
  found=$((found + problems))
done
if (( found == 0 )); then rm -rf "$work"; fi
exit $(( found == 0 ? 0 : 1 ))

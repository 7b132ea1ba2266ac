#!/usr/bin/env bash
# Renders a run's report.html (or a comparison folder's compare.html) with headless Chromium
# (Debian's `chromium` package) to a PNG, to check that the page opens offline and shows its curves,
# bands and token colouring. Not part of CI.
#   scripts/report_screenshot.sh runs/main-…/ [out.png] [height]
set -euo pipefail
run="${1:?usage: scripts/report_screenshot.sh RUN_DIR [OUT.png] [HEIGHT]}"
out="${2:-$run/report.png}"
height="${3:-2600}"
page=report.html
[[ -f "$run/report.html" || ! -f "$run/compare.html" ]] || page=compare.html
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[[ -n "$browser" ]] || { echo "no Chromium found: apt-get install chromium" >&2; exit 1; }
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,"$height" \
  --screenshot="$(realpath -m "$out")" "file://$(realpath "$run")/$page" 2>/dev/null
echo "$out"

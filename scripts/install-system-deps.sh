#!/usr/bin/env bash
# Installs what the test suite drives for real, from Debian's packages:
#   chromium       the headless browser for page screenshots and the browser test
#   prometheus     a real Prometheus server (and promtool) for the SLI collector tests
#   libpango*      Pango, which WeasyPrint lays out PDF reports with (`poise report --format pdf`)
# Idempotent and quiet when everything is present. Without root or apt (a laptop), it
# says what is missing; the tests that need it then skip with that reason.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# Pango for WeasyPrint's PDF layout (poise report).
ldconfig -p 2>/dev/null | grep 'libpangoft2-1.0.so.0' >/dev/null || need+=(libpango-1.0-0 libpangoft2-1.0-0)
# Fonts for readable charts and PDF reports.
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: no apt-get here; missing: ${need[*]} (tests that need them will skip)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install-system-deps: not root; missing: ${need[*]} (tests that need them will skip)"
    exit 0
  fi
fi
echo "install-system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

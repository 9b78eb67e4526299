#!/usr/bin/env bash
# Build the HTML docs into docs/_build/html; warnings are errors, and so is a cross-reference
# that does not resolve (-n, nitpicky; conf.py lists the third-party targets left out offline).
#
#   docs/build.sh            # incremental
#   docs/build.sh --clean    # from scratch (what CI does)
#
# Needs the doc dependencies: pip install ".[doc]". Intersphinx links need the network;
# offline they are left out automatically (force with HPVADE_DOCS_INTERSPHINX=0/1).
set -euo pipefail
cd "$(dirname "$0")"
if [[ "${1:-}" == "--clean" ]]; then
  rm -rf _build generated api.md tutorials jupyter_execute
fi
exec python -m sphinx -W -n --keep-going -b html -j 1 . _build/html

#!/usr/bin/env bash
# Sets up a fresh machine for minimaxvl-tools: system packages (Tesseract for the offline engine,
# poppler for the pdf2image backend, a font for generated test pages, libtasn1-doc for a real
# third-party PDF in the tests), a virtualenv in .venv and the package with its dev/agents extras.
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pkgs="tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd poppler-utils fonts-dejavu-core libtasn1-doc"
need=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
echo "minimaxvl-tools set up in .venv ($(.venv/bin/python -c 'import minimaxvl_tools as m; print(m.__version__)'))"

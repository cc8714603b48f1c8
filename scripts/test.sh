#!/usr/bin/env bash
# Set up (with test extras) and run every check: ruff, ruff format, mypy, pytest.
# Extra arguments are passed to pytest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '==> %s\n' "$*"; }

bash scripts/setup.sh --test

PY=.venv/bin/python
failed=()

step "ruff check ."
"$PY" -m ruff check . || failed+=("ruff check")

step "ruff format --check ."
"$PY" -m ruff format --check . || failed+=("ruff format")

step "mypy"
"$PY" -m mypy || failed+=("mypy")

# One pytest process per core (pytest-xdist): the suite waits on servers, browsers and the
# database about half its time. `scripts/test.sh -n 0` runs it in one process.
step "pytest -n auto $*"
rc=0
"$PY" -m pytest -n auto "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests (exit code 5): treating this as a failure" >&2
    failed+=("pytest (no tests collected)")
elif [ "$rc" -ne 0 ]; then
    failed+=("pytest (exit code $rc)")
fi

if [ "${#failed[@]}" -ne 0 ]; then
    printf 'test.sh: FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
step "all checks passed"

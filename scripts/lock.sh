#!/usr/bin/env bash
# Lock the Python dependencies: write requirements/lock.txt from setup.cfg.
#
#   scripts/lock.sh              keep every pin that still satisfies setup.cfg, add what is new
#   scripts/lock.sh --upgrade    move every package to its newest release setup.cfg allows
#
# The lock pins the install requirements and the `test` extra (ruff, mypy, pytest ...) with
# their hashes; scripts/setup.sh installs from it. Run this after any change to
# install_requires or extras_require, and commit setup.cfg and the lock together
# (tests/packaging/test_lock.py fails while they disagree).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# pip-tools lives in a throwaway virtualenv: the lock's own tool is pinned too, and the
# project's venv gains nothing.
PIP_TOOLS_VERSION=7.7.0
UPGRADE=()
for arg in "$@"; do
    case "$arg" in
        --upgrade) UPGRADE=(--upgrade) ;;
        -h | --help)
            sed -n '2,10p' "$0"
            exit 0
            ;;
        *)
            echo "lock.sh: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q --disable-pip-version-check "pip-tools==$PIP_TOOLS_VERSION"

mkdir -p requirements
# No index or find-links lines: the lock names packages and hashes, never where they come from.
"$tools/venv/bin/pip-compile" --quiet "${UPGRADE[@]}" \
    --extra test \
    --generate-hashes \
    --allow-unsafe \
    --strip-extras \
    --no-emit-index-url \
    --no-emit-trusted-host \
    --no-emit-find-links \
    --output-file requirements/lock.txt \
    setup.cfg
echo "lock.sh: wrote requirements/lock.txt"

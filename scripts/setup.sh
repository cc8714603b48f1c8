#!/usr/bin/env bash
# Set up a development/CI checkout of Regulars.
#
#   scripts/setup.sh          Python venv + locked dependencies + package, front-end bundle
#   scripts/setup.sh --test   ... plus system packages the tests need
#                             (Debian chromium, PostgreSQL server binaries, runuser)
#
# Python packages come from requirements/lock.txt (exact versions and hashes, the test tools
# included; refresh it with scripts/lock.sh), then the package itself without dependencies.
# Idempotent: safe to run again at any time.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

WITH_TEST=0
for arg in "$@"; do
    case "$arg" in
        --test) WITH_TEST=1 ;;
        -h | --help)
            sed -n '2,10p' "$0"
            exit 0
            ;;
        *)
            echo "setup.sh: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

VENV=.venv
LOCK=requirements/lock.txt
# The installer is pinned too: a new pip must not change an install under us.
PIP_VERSION=26.3

step() { printf '==> %s\n' "$*"; }
die() {
    printf 'setup.sh: error: %s\n' "$*" >&2
    exit 1
}

# Run a command as root: directly when we are root, else through sudo if present.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# Wait for another apt/dpkg run (e.g. a background install) to finish.
wait_for_apt() {
    local waited=0
    while pgrep -x apt-get >/dev/null 2>&1 || pgrep -x apt >/dev/null 2>&1 ||
        pgrep -x dpkg >/dev/null 2>&1; do
        if [ "$waited" -eq 0 ]; then
            step "waiting for another apt/dpkg process to finish"
        fi
        if [ "$waited" -ge 1800 ]; then
            die "apt/dpkg still busy after ${waited}s"
        fi
        sleep 5
        waited=$((waited + 5))
    done
}

have_pg_server() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then
            return 0
        fi
    done
    command -v initdb >/dev/null 2>&1
}

install_system_packages() {
    local pkgs=()
    if [ ! -x /usr/bin/chromium ]; then
        pkgs+=(chromium fonts-dejavu-core)
    fi
    if ! have_pg_server; then
        if apt-cache show postgresql-15 >/dev/null 2>&1; then
            pkgs+=(postgresql-15)
        else
            pkgs+=(postgresql)
        fi
    fi
    if ! command -v runuser >/dev/null 2>&1; then
        pkgs+=(util-linux)
    fi
    if [ "${#pkgs[@]}" -eq 0 ]; then
        step "system packages present (chromium, PostgreSQL server, runuser)"
    else
        command -v apt-get >/dev/null 2>&1 ||
            die "missing system packages (${pkgs[*]}) and no apt-get to install them"
        step "installing system packages: ${pkgs[*]}"
        wait_for_apt
        as_root apt-get -qq -o DPkg::Lock::Timeout=600 update
        wait_for_apt
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            -o DPkg::Lock::Timeout=600 --no-install-recommends "${pkgs[@]}" >/dev/null
    fi
    [ -x /usr/bin/chromium ] || die "/usr/bin/chromium is still missing"
    have_pg_server || die "PostgreSQL server binaries (initdb) are still missing"
    # PostgreSQL refuses to run as root: the test clusters run as 'postgres' then.
    if [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1; then
        step "creating the 'postgres' system user"
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
}

# --- Python -----------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    step "creating virtualenv $VENV"
    python3 -m venv "$VENV"
fi

PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input)

step "installing pip $PIP_VERSION"
"${PIP[@]}" "pip==$PIP_VERSION"

[ -f "$LOCK" ] || die "$LOCK is missing: run scripts/lock.sh"
step "installing the locked dependencies ($LOCK)"
"${PIP[@]}" --require-hashes -r "$LOCK"

# Everything it needs is in place: no dependency resolution, and setuptools from the lock
# builds it (no build isolation, which would fetch the newest setuptools).
step "installing the package (pip install --no-deps -e .)"
"${PIP[@]}" --no-deps --no-build-isolation -e .

# --- Translations (docs/i18n.md) ---------------------------------------------------
# The .po catalogs are the source; the .mo files the service reads are built, not kept.
step "compiling the translations (pybabel compile -d translations)"
"$VENV/bin/pybabel" -q compile -d translations

# --- Front-end vendor bundle ----------------------------------------------------
command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js (>= 18) and npm"

if [ -f node_modules/.package-lock.json ] &&
    [ node_modules/.package-lock.json -nt package-lock.json ] &&
    [ node_modules/.package-lock.json -nt package.json ]; then
    step "node_modules up to date with package-lock.json (skipping npm ci)"
else
    step "installing front-end build dependencies (npm ci)"
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi

step "building static/vendor/zaf_sdk.min.js (npm run build:vendor)"
npm run --silent build:vendor
[ -s static/vendor/zaf_sdk.min.js ] || die "static/vendor/zaf_sdk.min.js was not built"

# --- System packages for the test suite -------------------------------------------
if [ "$WITH_TEST" -eq 1 ]; then
    install_system_packages
fi

step "setup complete"

#!/usr/bin/env bash
# Set up, migrate and seed the database, then serve the Regulars demo locally.
# Port: $PORT (default 5000).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '==> %s\n' "$*"; }

bash scripts/setup.sh

PORT="${PORT:-5000}"

step "migrating the database (flask db upgrade)"
.venv/bin/flask --app plugin db upgrade

step "seeding demo data (flask demo seed)"
.venv/bin/flask --app plugin demo seed

echo "Regulars demo: open http://127.0.0.1:${PORT}/demo"
# The demo's notes are sent by a worker thread inside the service: no second command to run.
export REGULARS_OUTBOX_IN_PROCESS="${REGULARS_OUTBOX_IN_PROCESS:-true}"
exec .venv/bin/flask --app plugin run --host 127.0.0.1 --port "$PORT"

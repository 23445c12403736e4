# Start the database servers the tests need, on a fresh machine or a used one.
# Sourced by scripts/test; every function is idempotent.

log() { printf '\n==> %s\n' "$*"; }

start_postgres() {
    # A server someone already runs (PGHOST set, or a local one answering) is used as is.
    if ! pg_isready -q 2>/dev/null; then
        if command -v pg_ctlcluster >/dev/null; then
            local version
            version=$(pg_lsclusters -h | awk 'NR==1 {print $1}')
            log "Starting PostgreSQL ${version}"
            pg_ctlcluster "${version}" main start || true
        else
            echo "PostgreSQL is not running and pg_ctlcluster is missing: install PostgreSQL or set PGHOST." >&2
            return 1
        fi
        for _ in $(seq 1 60); do pg_isready -q && break; sleep 0.5; done
        pg_isready -q || { echo "PostgreSQL did not start." >&2; return 1; }
    fi
    local me
    me=$(whoami)
    if ! psql -d postgres -tAc "SELECT 1" >/dev/null 2>&1; then
        log "Creating a PostgreSQL superuser role for ${me}"
        su postgres -c "createuser -s ${me}"
    fi
    if [ "$(psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='metronome'")" != "1" ]; then
        createdb metronome
    fi
}

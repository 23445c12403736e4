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

apt_install_missing() {
    # apt_install_missing PACKAGE...: install the Debian packages not installed yet.
    # The package lists are refreshed only when something has to be installed.
    local missing=() package started=$SECONDS
    # Not Debian: leave it to pip to say what is missing.
    command -v dpkg-query >/dev/null || return 0
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("${package}")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "Missing Debian packages: ${missing[*]}. Install them as root (apt-get install ${missing[*]})." >&2
        return 1
    fi
    log "Installing ${missing[*]} (Debian packages)"
    local output
    output=$(mktemp)
    if ! {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                -o DPkg::Lock::Timeout=300 "${missing[@]}"
    } >"${output}" 2>&1; then
        cat "${output}" >&2
        rm -f "${output}"
        echo "Could not install ${missing[*]}." >&2
        return 1
    fi
    rm -f "${output}"
    log "Installed in $((SECONDS - started)) s"
}

port_answers() {
    # port_answers HOST PORT: something accepts TCP connections there.
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

mariadb_client() {
    # The command-line client: mariadb (MariaDB 10.5+) or mysql (MySQL, older MariaDB).
    command -v mariadb || command -v mysql
}

start_mariadb() {
    # MariaDB (or MySQL) for METRONOME_TEST_DB=mariadb: a server on MYSQL_HOST:MYSQL_PORT
    # (default 127.0.0.1:3306), a database "metronome" and a user "metronome"
    # (password "metronome") that may also create and drop the test_metronome*
    # databases of the test runs. A server someone already runs is used as is.
    local host=${MYSQL_HOST:-127.0.0.1} port=${MYSQL_PORT:-3306} started=$SECONDS
    local local_server=false
    case ${host} in 127.0.0.1 | localhost | ::1) local_server=true ;; esac

    if port_answers "${host}" "${port}"; then
        # mysqlclient is built from source: it needs the client library and pkg-config;
        # the command-line client sets up the database below.
        apt_install_missing libmariadb-dev pkg-config
        mariadb_client >/dev/null || apt_install_missing mariadb-client
    elif [ "${local_server}" = false ]; then
        echo "No MariaDB/MySQL server answers on ${host}:${port}." >&2
        return 1
    else
        apt_install_missing mariadb-server libmariadb-dev pkg-config
        log "Starting MariaDB"
        # Debian's init script (there is no systemd in a container); mysqld_safe if it fails.
        if ! service mariadb start >/dev/null 2>&1; then
            install -d -o mysql -g mysql /run/mysqld
            setsid mysqld_safe >/dev/null 2>&1 </dev/null &
        fi
        for _ in $(seq 1 120); do port_answers "${host}" "${port}" && break; sleep 0.5; done
        if ! port_answers "${host}" "${port}"; then
            echo "MariaDB did not start; see /var/log/mysql/error.log or syslog." >&2
            return 1
        fi
        log "MariaDB answers, $((SECONDS - started)) s after the check (install included)"
    fi

    local client
    client=$(mariadb_client) || { echo "No mariadb/mysql client found." >&2; return 1; }
    if [ "${local_server}" = true ] && "${client}" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
        # As the system's root, Debian's MariaDB lets root in through the socket.
        "${client}" -uroot <<'SQL'
CREATE DATABASE IF NOT EXISTS metronome CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'metronome'@'localhost' IDENTIFIED BY 'metronome';
CREATE USER IF NOT EXISTS 'metronome'@'127.0.0.1' IDENTIFIED BY 'metronome';
ALTER USER 'metronome'@'localhost' IDENTIFIED BY 'metronome';
ALTER USER 'metronome'@'127.0.0.1' IDENTIFIED BY 'metronome';
GRANT ALL PRIVILEGES ON `metronome`.* TO 'metronome'@'localhost', 'metronome'@'127.0.0.1';
GRANT ALL PRIVILEGES ON `test\_metronome%`.* TO 'metronome'@'localhost', 'metronome'@'127.0.0.1';
SQL
    fi
    # Whoever set the server up, the tests' user must get in.
    if ! MYSQL_PWD=${MYSQL_PASSWORD:-metronome} "${client}" -h "${host}" -P "${port}" \
        -u"${MYSQL_USER:-metronome}" -e 'SELECT 1' metronome >/dev/null; then
        echo "The user ${MYSQL_USER:-metronome} cannot use the database metronome on ${host}:${port}." >&2
        return 1
    fi
}

start_redis() {
    # redis-server for the RQ tests (tests/test_tasks_rq.py): Debian's package, on
    # METRONOME_TEST_REDIS_PORT (default 6390, away from a project's own 6379), in
    # memory only. A server someone already runs there is used as is.
    local port=${METRONOME_TEST_REDIS_PORT:-6390}
    port_answers 127.0.0.1 "${port}" && return 0
    apt_install_missing redis-server
    log "Starting redis-server on port ${port}"
    redis-server --port "${port}" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize yes --logfile /tmp/metronome-redis-"${port}".log
    for _ in $(seq 1 60); do port_answers 127.0.0.1 "${port}" && break; sleep 0.2; done
    port_answers 127.0.0.1 "${port}" || { echo "redis-server did not start." >&2; return 1; }
}

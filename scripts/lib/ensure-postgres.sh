# Sourced by scripts/test: make Debian's PostgreSQL server available (the tests start their
# own clusters with initdb on free loopback ports; the packaged cluster is not used), and
# the postgres user it runs as when the tests run as root.
ensure_postgres() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -n1 || true)
  if [ -z "$found" ] || ! id postgres >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "PostgreSQL's server is missing: installing it with '$sudo apt-get install -y postgresql'" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
    found=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -n1 || true)
  fi
  if [ -z "$found" ]; then
    echo "initdb is still missing after 'apt-get install -y postgresql'" >&2
    return 1
  fi
}

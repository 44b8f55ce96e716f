#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian/Ubuntu machine; fast when already done.
#   - system packages: redis-server, chrony (NTP server for tests/dev), faketime, Java 17 + Maven,
#     wrk (bench_http_joins / bench_http_holds)
#   - the Python project, editable, with dev extras
#   - Kafka broker jars (resolved by Maven into a cache outside the repo)
#   - KubeRay's CRD schemas (its operator's Go module, into Go's module cache)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' infra/kafka/pom.xml)"
KAFKA_LIBS="${TICKETING_KAFKA_HOME:-$HOME/.cache/ticketing/kafka-$KAFKA_VERSION}/libs"

# --- system packages (only what is missing) ---------------------------------------------------
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chronyd >/dev/null 2>&1 || [ -x /usr/sbin/chronyd ] || missing+=(chrony)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v go >/dev/null 2>&1 || missing+=(golang-go)  # fetches KubeRay's CRD schemas
command -v wrk >/dev/null 2>&1 || missing+=(wrk)  # the HTTP benchmarks' load generator
# Debian's Chromium for the browser tests (Playwright drives it; no browser downloads).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt-get install ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # chrony's postinst tries to start the system daemon; we run our own unprivileged one instead.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Keep package-started system daemons from holding the default ports we use.
  for svc in redis-server chrony; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# --- Python project ---------------------------------------------------------------------------
# Re-installed whenever pyproject.toml changes (or the project is not importable from here).
PY_MARK="$HOME/.cache/ticketing/pyproject.sha256"
PY_SUM="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$PY_MARK" 2>/dev/null)" != "$PY_SUM" ] \
   || ! "$PYTHON" -m pip show -q ticketing >/dev/null 2>&1; then
  echo "install: pip install -e '.[dev]'"
  "$PYTHON" -m pip install -q --disable-pip-version-check -e '.[dev]'
  mkdir -p "$(dirname "$PY_MARK")"
  echo "$PY_SUM" > "$PY_MARK"
fi

# --- Kafka jars -------------------------------------------------------------------------------
# Re-resolved (into a fresh directory) whenever infra/kafka/pom.xml changes.
POM_SUM="$(sha256sum infra/kafka/pom.xml | cut -d' ' -f1)"
if [ "$(cat "$KAFKA_LIBS/.pom.sha256" 2>/dev/null)" != "$POM_SUM" ]; then
  command -v mvn >/dev/null 2>&1 || { echo "install: mvn is missing" >&2; exit 1; }
  echo "install: resolving Kafka $KAFKA_VERSION jars into $KAFKA_LIBS"
  rm -rf "$KAFKA_LIBS.tmp"
  mvn -q -B -f infra/kafka/pom.xml dependency:copy-dependencies \
      -DoutputDirectory="$KAFKA_LIBS.tmp" -DincludeScope=runtime
  echo "$POM_SUM" > "$KAFKA_LIBS.tmp/.pom.sha256"
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
fi

# --- KubeRay CRD schemas (tests/unit/test_kuberay_manifest.py) --------------------------------
"$PYTHON" -m infra.kuberay >/dev/null

# --- promtool (tests/unit/test_dashboards.py checks deploy/prometheus/alerts.yml with it) -------
"$PYTHON" -m infra.promtool >/dev/null

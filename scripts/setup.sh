#!/usr/bin/env bash
# Make the environment cxgraph needs, idempotently, caching heavy downloads outside the clone:
#   - Python 3.11 venv with every dependency: $CXGRAPH_CACHE/venv (default ~/.cache/cxgraph),
#     updated only when pyproject.toml changes.
#   - Java 17/21 and Maven for the Neo4j server (installed with apt-get when missing and allowed).
#   - Chromium + chromedriver for the viewer test (apt-get as root; skipped without them).
#   - Neo4j Community + APOC from Maven Central into $CXGRAPH_CACHE/neo4j-<version>.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CXGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cxgraph}"
VENV="$CACHE/venv"
mkdir -p "$CACHE"
exec 9>"$CACHE/setup.lock"
flock 9  # two clones setting up at once share one venv

apt_install() {
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing $* with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "setup: please install $* (no root apt-get here)" >&2
    exit 1
  fi
}

PYTHON="$(command -v python3.11 || true)"
if [ -z "$PYTHON" ]; then apt_install python3.11 python3.11-venv; PYTHON="$(command -v python3.11)"; fi
command -v java >/dev/null || [ -n "${JAVA_HOME:-}" ] || apt_install openjdk-17-jre-headless
command -v mvn >/dev/null || [ -n "${NEO4J_URI:-}" ] || apt_install maven
# Headless Chromium for the viewer test (tests/test_view.py skips, saying why, without it).
if ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt_install chromium chromium-driver
  else
    echo "setup: chromium + chromium-driver missing: the viewer's browser test will be skipped" >&2
  fi
fi

stamp="$(sha256sum pyproject.toml | cut -c1-16)"
if ! "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
  echo "setup: creating $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip wheel setuptools
fi
if [ "$(cat "$VENV/.cxgraph-deps" 2>/dev/null)" != "$stamp" ]; then
  echo "setup: installing Python dependencies into $VENV (first time: a few minutes; torch is large)"
  # Dependencies only: the venv is shared by every clone, so the code itself is never
  # installed into it; the Makefile and bin/cxgraph put this clone on PYTHONPATH.
  "$VENV/bin/python" - <<'PY' > "$VENV/.requirements.txt"
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["test"]))
PY
  "$VENV/bin/pip" install -q -r "$VENV/.requirements.txt"
  echo "$stamp" > "$VENV/.cxgraph-deps"
fi
# An older setup installed the code itself into the shared venv; it would shadow this clone.
if "$VENV/bin/pip" show -q cxgraph >/dev/null 2>&1; then "$VENV/bin/pip" uninstall -q -y cxgraph; fi
export PYTHONPATH="$PWD"
if [ -z "${NEO4J_URI:-}" ]; then
  "$VENV/bin/python" -m cxgraph neo4j install
fi

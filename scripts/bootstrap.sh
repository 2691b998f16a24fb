#!/bin/sh
# Installs what loa needs: system packages (apt-get, when root) and a virtualenv with the project.
# Usage: scripts/bootstrap.sh run|test
set -eu
MODE=${1:-run}
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."

need=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need="$need mosquitto"
command -v ffmpeg >/dev/null 2>&1 || need="$need ffmpeg"
command -v espeak-ng >/dev/null 2>&1 || need="$need espeak-ng"
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then need="$need python3-venv"; fi
# the desk's pages are tested in a real browser: Debian's chromium, driven by Playwright (no browser download)
if [ "$MODE" = test ]; then command -v chromium >/dev/null 2>&1 || need="$need chromium"; fi
# `loa backup` of a PostgreSQL database runs pg_dump (and `loa restore`, pg_restore): tested against the local server
if [ "$MODE" = test ]; then command -v pg_dump >/dev/null 2>&1 || need="$need postgresql-client"; fi

if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "loa: installing system packages:$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
  else
    echo "loa: missing system packages:$need" >&2
    echo "loa: install them with:  sudo apt-get install -y$need" >&2
    exit 1
  fi
fi

# mosquitto lives in /usr/sbin, which is not on every user's PATH
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin"; export PATH ;; esac

if [ ! -x .venv/bin/python ]; then
  echo "loa: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.loa-installed-$MODE
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "loa: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if [ "$MODE" = test ]; then
    .venv/bin/python -m pip install -q -e '.[server,test]'
  else
    .venv/bin/python -m pip install -q -e '.[server]'
  fi
  touch "$stamp"
fi

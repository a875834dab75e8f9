#!/usr/bin/env bash
# deps.sh: install what Parley needs to build, test and run, on Debian 12. Idempotent and
# quick when everything is present. Usage: scripts/deps.sh [build|test|bench|fuzz]...
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
            libcurl4-openssl-dev libsodium-dev liblua5.4-dev libpcre2-dev libjemalloc-dev)
test_pkgs=(libcmocka-dev nodejs npm sqlite3)
bench_pkgs=(wrk)
fuzz_pkgs=(clang libclang-rt-14-dev)

want=()
npm_needed=0
for what in "${@:-build}"; do
  case "$what" in
    build) want+=("${build_pkgs[@]}") ;;
    test) want+=("${build_pkgs[@]}" "${test_pkgs[@]}"); npm_needed=1 ;;
    bench) want+=("${build_pkgs[@]}" "${bench_pkgs[@]}" nodejs npm) ;;
    fuzz) want+=("${build_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
    *) echo "deps.sh: unknown set $what" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  # nodejs/npm may come from elsewhere (e.g. a NodeSource install): a working binary is enough.
  if [[ $p == nodejs ]] && command -v node >/dev/null; then continue; fi
  if [[ $p == npm ]] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps.sh: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) == 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ((npm_needed)); then
  stamp=tests/e2e/node_modules/.parley-lock
  if [[ ! -f $stamp ]] || ! cmp -s tests/e2e/package-lock.json "$stamp"; then
    echo "deps.sh: installing end-to-end test packages (npm ci)" >&2
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >&2)
    cp tests/e2e/package-lock.json "$stamp"
  fi
fi

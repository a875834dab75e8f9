#!/usr/bin/env bash
# run.sh: build the libFuzzer target (fuzz/fuzz_http.c + src/ minus main.c, with ASan and
# UBSan) into build/fuzz/fuzz_http and fuzz it for a bounded time. Non-zero exit when
# libFuzzer finds a crash, leak, timeout or invariant failure; the input that triggered
# it is saved as build/fuzz/crash-* (or leak-*, timeout-*, oom-*).
#
#   fuzz/run.sh                      fuzz for FUZZ_SECONDS (default 60) seconds
#   fuzz/run.sh -runs=100000 ...     extra libFuzzer options are passed through
#   fuzz/run.sh build/fuzz/crash-X   reproduce: run the given inputs once, no fuzzing
#
# Environment: FUZZ_SECONDS (time budget, default 60), CC (default clang). Needs clang and libclang-rt-14-dev: `scripts/deps.sh fuzz`.
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${CC:-clang}
OUT=build/fuzz
BIN=$OUT/fuzz_http
SECONDS_BUDGET=${FUZZ_SECONDS:-60}

if ! command -v "$CC" >/dev/null; then
  echo "fuzz/run.sh: $CC not found; run scripts/deps.sh fuzz (or make fuzz)" >&2
  exit 2
fi

mkdir -p "$OUT/obj"

# ---- build (only when a source, header, migration or this script changed) ----
mapfile -t SRCS < <(find src/ -name '*.c' ! -path src/main.c | sort)
MIGRATIONS_C=$OUT/migrations.c
cmake -DOUT="$MIGRATIONS_C" -DDIR=src/store/migrations -P cmake/embed_sql.cmake

CFLAGS=(-std=gnu17 -g -O1 -fno-omit-frame-pointer
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -Isrc -DPARLEY_VERSION='"fuzz"')
read -r -a PKG_CFLAGS <<<"$(pkg-config --cflags libmicrohttpd jansson sqlite3 libcurl libsodium)"
read -r -a PKG_LIBS <<<"$(pkg-config --libs libmicrohttpd jansson sqlite3 libcurl libsodium)"

stale=0
if [[ ! -x $BIN ]] || ! printf '%s\n' "${SRCS[@]}" | cmp -s - "$OUT/sources.txt"; then
  stale=1
elif [[ -n $(find src/ fuzz/fuzz_http.c fuzz/run.sh "$MIGRATIONS_C" -newer "$BIN" \
                -type f \( -name '*.c' -o -name '*.h' -o -name '*.sh' \) -print -quit) ]]; then
  stale=1
fi
if ((stale)); then
  echo "fuzz/run.sh: building $BIN" >&2
  rm -f "$OUT"/obj/*.o
  objs=()
  for src in "${SRCS[@]}" "$MIGRATIONS_C" fuzz/fuzz_http.c; do
    obj=$OUT/obj/$(echo "${src%.c}" | tr / _).o
    objs+=("$obj")
    # -fsanitize=fuzzer on a compile only adds coverage instrumentation; main comes at link.
    "$CC" "${CFLAGS[@]}" "${PKG_CFLAGS[@]}" -c "$src" -o "$obj" &
  done
  wait_failed=0
  for job in $(jobs -p); do wait "$job" || wait_failed=1; done
  if ((wait_failed)); then
    echo "fuzz/run.sh: compilation failed" >&2
    exit 2
  fi
  "$CC" "${CFLAGS[@]}" "${objs[@]}" "${PKG_LIBS[@]}" -lm -lpthread -o "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
  printf '%s\n' "${SRCS[@]}" >"$OUT/sources.txt"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---- reproduce given inputs ----
if (($# > 0)) && [[ $1 != -* ]]; then
  exec "$BIN" -detect_leaks=1 "$@"
fi

# ---- fuzz: new inputs go to a fresh working corpus; fuzz/corpus is read-only seeds ----
WORK=$OUT/corpus
rm -rf "$WORK"
mkdir -p "$WORK"
args=(-max_total_time="$SECONDS_BUDGET" -max_len=4096 -timeout=10 -detect_leaks=1
      -artifact_prefix="$OUT/" -print_final_stats=1)
echo "fuzz/run.sh: fuzzing for ${SECONDS_BUDGET}s (crash inputs go to $OUT/)" >&2
set +e
"$BIN" "${args[@]}" "$@" "$WORK" fuzz/corpus
rc=$?
set -e
if ((rc != 0)); then
  echo "fuzz/run.sh: libFuzzer found a problem (exit $rc); reproduce with: fuzz/run.sh $OUT/crash-..." >&2
  for f in "$OUT"/crash-* "$OUT"/leak-* "$OUT"/timeout-* "$OUT"/oom-*; do
    [[ -e $f ]] && echo "  $f" >&2
  done
  exit "$rc"
fi
echo "fuzz/run.sh: no crash in ${SECONDS_BUDGET}s" >&2

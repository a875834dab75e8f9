# shellcheck shell=bash
# shellcheck disable=SC2034 # BENCH_* result variables are set for the scripts sourcing this
# bench/lib.sh: shared helpers for Parley's benchmark scripts. Source it, do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Everything is loopback-only (127.0.0.1) and time-bounded. Servers started with
# bench_start_server are killed when the shell that started them exits (EXIT/INT/TERM traps),
# also when that shell is a $(...) subshell. Progress goes to stderr; stdout is left to the caller.
#
# Settings (environment):
#   BENCH_DURATION      wrk -d per measured run        (default 10s)
#   BENCH_CONNECTIONS   wrk -c                         (default 64)
#   BENCH_THREADS       wrk -t                         (default 2)
#   BENCH_WARMUP        warm-up run before measuring   (default 2s, 0 to skip)
#   BENCH_START_TIMEOUT seconds a server gets to answer 200 (default 10)
#   BENCH_BUILD_DIR     where helper binaries are built (default <repo>/build/bench)
#   BENCH_KEEP_TMP=1    keep the scratch dir (logs, wrk output, data dirs) even on success
#   BENCH_NO_INSTALL=1  never run apt-get; fail if wrk/libmicrohttpd-dev are missing

if [[ -n "${BENCH_LIB_LOADED:-}" ]]; then
    return 0
fi
BENCH_LIB_LOADED=1

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$BENCH_ROOT/bench"
BENCH_BUILD_DIR="${BENCH_BUILD_DIR:-$BENCH_ROOT/build/bench}"
BENCH_HOST=127.0.0.1

BENCH_DURATION="${BENCH_DURATION:-10s}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_WARMUP="${BENCH_WARMUP:-2s}"
BENCH_START_TIMEOUT="${BENCH_START_TIMEOUT:-10}"

# Per-shell state. Entries are "<owner BASHPID>:<pid>" so a $(...) subshell only ever cleans up
# what it started itself.
BENCH__PIDS=()
BENCH__TRAP_OWNER=""
BENCH_TMP=""
BENCH__TMP_OWNER=""
BENCH_CLEANUP_HOOKS=()

# ---------------------------------------------------------------------------------------------
# Messages

bench_log() {
    printf '[bench] %s\n' "$*" >&2
}

bench_warn() {
    printf '[bench] WARNING: %s\n' "$*" >&2
}

# bench_die MESSAGE...: print an error and exit 1 (the traps stop servers and keep the logs).
bench_die() {
    printf '[bench] ERROR: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Cleanup

bench__cleanup() {
    local status=$1 entry owner pid hook
    for hook in "${BENCH_CLEANUP_HOOKS[@]}"; do
        eval "$hook" || true
    done
    for entry in "${BENCH__PIDS[@]}"; do
        owner=${entry%%:*}
        pid=${entry#*:}
        if [[ "$owner" == "$BASHPID" ]]; then
            bench_stop_server "$pid" 2>/dev/null || true
        fi
    done
    BENCH__PIDS=()
    if [[ -n "$BENCH_TMP" && "$BENCH__TMP_OWNER" == "$BASHPID" && -d "$BENCH_TMP" ]]; then
        if [[ "$status" -ne 0 || "${BENCH_KEEP_TMP:-0}" == 1 ]]; then
            printf '[bench] logs kept in %s\n' "$BENCH_TMP" >&2
        else
            rm -rf -- "$BENCH_TMP"
        fi
    fi
}

bench__on_exit() {
    local status=$?
    trap - EXIT
    bench__cleanup "$status"
    exit "$status"
}

bench__on_signal() {
    local status=$1
    trap - EXIT INT TERM
    printf '[bench] interrupted\n' >&2
    bench__cleanup "$status"
    exit "$status"
}

# bench_install_traps: make sure the current shell (or subshell) stops its servers on exit.
# Replaces any EXIT/INT/TERM trap of the caller; register extra cleanup with bench_on_exit.
bench_install_traps() {
    if [[ "$BENCH__TRAP_OWNER" == "$BASHPID" ]]; then
        return 0
    fi
    BENCH__TRAP_OWNER=$BASHPID
    trap 'bench__on_exit' EXIT
    trap 'bench__on_signal 130' INT
    trap 'bench__on_signal 143' TERM
}

# bench_on_exit 'COMMAND': run COMMAND (eval'd) during cleanup, before servers are stopped.
bench_on_exit() {
    bench_install_traps
    BENCH_CLEANUP_HOOKS+=("$1")
}

# bench_tmpdir: create (once per shell) the scratch dir $BENCH_TMP for logs and data dirs.
# Call it directly, not as $(bench_tmpdir), so that $BENCH_TMP is set in your shell.
bench_tmpdir() {
    if [[ -n "$BENCH_TMP" && "$BENCH__TMP_OWNER" == "$BASHPID" && -d "$BENCH_TMP" ]]; then
        return 0
    fi
    bench_install_traps
    BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/parley-bench.XXXXXX")" ||
        bench_die "cannot create a scratch directory"
    BENCH__TMP_OWNER=$BASHPID
}

# ---------------------------------------------------------------------------------------------
# Dependencies

# bench_ensure_deps: install wrk, libmicrohttpd-dev and a C compiler if missing (Debian/apt).
bench_ensure_deps() {
    local missing=() pkg
    if command -v dpkg >/dev/null 2>&1; then
        for pkg in wrk libmicrohttpd-dev; do
            dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
        done
    else
        command -v wrk >/dev/null 2>&1 || missing+=(wrk)
        [[ -f /usr/include/microhttpd.h || -f /usr/local/include/microhttpd.h ]] ||
            missing+=(libmicrohttpd-dev)
    fi
    command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi
    if [[ "${BENCH_NO_INSTALL:-0}" == 1 ]] || ! command -v apt-get >/dev/null 2>&1; then
        bench_die "missing: ${missing[*]} (install them, e.g. apt-get install -y ${missing[*]})"
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            bench_die "missing: ${missing[*]}; not root and no sudo to install them"
        sudo=(sudo)
    fi
    bench_log "installing ${missing[*]}"
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
    if ! "${apt[@]}" install -y "${missing[@]}" >&2; then
        # A fresh machine may have empty package lists; refresh them once and retry.
        "${apt[@]}" update >&2 || bench_die "apt-get update failed"
        "${apt[@]}" install -y "${missing[@]}" >&2 || bench_die "apt-get install ${missing[*]} failed"
    fi
}

# bench_build_mhd_hello: compile bench/mhd_hello.c (if stale) and echo the binary's path.
bench_build_mhd_hello() {
    local src="$BENCH_DIR/mhd_hello.c" out="$BENCH_BUILD_DIR/mhd_hello" flags
    mkdir -p "$BENCH_BUILD_DIR" || bench_die "cannot create $BENCH_BUILD_DIR"
    if [[ ! -x "$out" || "$src" -nt "$out" ]]; then
        flags="$(pkg-config --cflags --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)"
        bench_log "building $out"
        # shellcheck disable=SC2086 # pkg-config output is a word list
        cc -O2 -Wall -Wextra -o "$out.tmp" "$src" $flags >&2 ||
            bench_die "failed to compile $src"
        mv -f "$out.tmp" "$out"
    fi
    printf '%s\n' "$out"
}

# ---------------------------------------------------------------------------------------------
# Ports and servers

# bench_port_in_use PORT: true if something accepts connections on 127.0.0.1:PORT.
bench_port_in_use() {
    (exec 3<>"/dev/tcp/$BENCH_HOST/$1") 2>/dev/null
}

# bench_free_port: echo a free loopback TCP port, below the kernel's ephemeral range so that
# wrk's own client sockets can never collide with it.
bench_free_port() {
    local lo=10000 hi=32767 eph_lo eph_hi port i
    if read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null; then
        if ((eph_lo > 11000)); then
            hi=$((eph_lo - 1))
        elif ((eph_hi < 64000)); then
            lo=$((eph_hi + 1)) hi=65535
        fi
    fi
    for ((i = 0; i < 200; i++)); do
        port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
        if ! bench_port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    bench_die "no free port found in $lo-$hi"
}

# bench_start_server NAME LOGPREFIX CMD [ARGS...]: start CMD in the background in its own
# session, stdout to LOGPREFIX.out and stderr to LOGPREFIX.err; sets BENCH_SERVER_PID.
# Wrapper scripts should `exec` the real server so that the PID (and its VmHWM) is the server's.
bench_start_server() {
    local name=$1 prefix=$2
    shift 2
    bench_install_traps
    if command -v setsid >/dev/null 2>&1; then
        setsid "$@" >"$prefix.out" 2>"$prefix.err" </dev/null &
    else
        "$@" >"$prefix.out" 2>"$prefix.err" </dev/null &
    fi
    BENCH_SERVER_PID=$!
    BENCH__PIDS+=("$BASHPID:$BENCH_SERVER_PID")
    bench_log "started $name (pid $BENCH_SERVER_PID): $*"
}

# bench_stop_server PID: SIGTERM (its process group too, if it leads one), SIGKILL after 5 s.
bench_stop_server() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        bench_warn "pid $pid ignored SIGTERM for 5 s, killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    bench__forget_pid "$pid"
}

bench__forget_pid() {
    local entry keep=()
    for entry in "${BENCH__PIDS[@]}"; do
        [[ "${entry#*:}" == "$1" ]] || keep+=("$entry")
    done
    BENCH__PIDS=("${keep[@]}")
}

# bench_run_bounded SECONDS OUTFILE CMD [ARGS...]: run CMD with stdout+stderr to OUTFILE, killed
# after SECONDS. Runs in the background and is waited for, so INT/TERM reach the traps at once
# (a foreground child would delay them) and the cleanup kills CMD too. Returns CMD's status.
bench_run_bounded() {
    local secs=$1 out=$2 pid rc=0
    shift 2
    bench_install_traps
    # timeout(1) makes itself a process group leader: killing -pid stops CMD as well.
    timeout -k 5 "$secs" "$@" >"$out" 2>&1 </dev/null &
    pid=$!
    BENCH__PIDS+=("$BASHPID:$pid")
    wait "$pid" || rc=$?
    bench__forget_pid "$pid"
    return "$rc"
}

# bench_http_status PORT PATH: echo the HTTP status code of GET http://127.0.0.1:PORT/PATH.
bench_http_status() {
    local port=$1 path=$2
    (
        exec 3<>"/dev/tcp/$BENCH_HOST/$port" || exit 1
        printf 'GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' \
            "$path" "$BENCH_HOST" "$port" >&3
        IFS=' ' read -r -t 2 _ code _ <&3 || exit 1
        printf '%s\n' "$code"
    ) 2>/dev/null
}

# bench_wait_http NAME PID PORT PATH [LOGPREFIX]: wait until GET PATH answers 200, at most
# BENCH_START_TIMEOUT seconds. Dies with a clear message (and the server's log tail) otherwise.
bench_wait_http() {
    local name=$1 pid=$2 port=$3 path=$4 prefix=${5:-} code="" deadline status
    deadline=$((SECONDS + BENCH_START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            status=0
            wait "$pid" 2>/dev/null || status=$?
            bench__show_logs "$prefix"
            bench_die "$name exited (status $status) before answering" \
                "GET http://$BENCH_HOST:$port$path"
        fi
        code="$(bench_http_status "$port" "$path" || true)"
        if [[ "$code" == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    bench__show_logs "$prefix"
    bench_die "$name did not answer 200 on GET http://$BENCH_HOST:$port$path within" \
        "${BENCH_START_TIMEOUT}s (last status: ${code:-no answer})"
}

bench__show_logs() {
    local prefix=$1 f
    [[ -n "$prefix" ]] || return 0
    for f in "$prefix.err" "$prefix.out"; do
        if [[ -s "$f" ]]; then
            printf '[bench] --- last lines of %s ---\n' "$f" >&2
            tail -n 20 "$f" >&2
        fi
    done
}

# bench_peak_rss_kb PID: echo the process's peak resident set size (VmHWM) in kB.
bench_peak_rss_kb() {
    local kb
    kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null)"
    [[ -n "$kb" ]] || return 1
    printf '%s\n' "$kb"
}

# ---------------------------------------------------------------------------------------------
# wrk

bench__seconds() {
    local v=$1
    case "$v" in
    *ms) echo 1 ;;
    *s) echo "${v%s}" ;;
    *m) echo $((${v%m} * 60)) ;;
    *h) echo $((${v%h} * 3600)) ;;
    *) echo "$v" ;;
    esac
}

# bench_check_settings: die unless the BENCH_* settings are well-formed.
bench_check_settings() {
    local v
    for v in BENCH_CONNECTIONS BENCH_THREADS BENCH_START_TIMEOUT; do
        [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer (got '${!v}')"
    done
    for v in BENCH_DURATION BENCH_WARMUP; do
        [[ "${!v}" =~ ^[0-9]+(s|m|h)?$ ]] || bench_die "$v must look like 10, 10s or 1m (got '${!v}')"
    done
    [[ "$(bench__seconds "$BENCH_DURATION")" -gt 0 ]] || bench_die "BENCH_DURATION must be > 0"
    ((BENCH_CONNECTIONS >= BENCH_THREADS)) ||
        bench_die "BENCH_CONNECTIONS ($BENCH_CONNECTIONS) must be >= BENCH_THREADS ($BENCH_THREADS)"
}

# bench_wrk_settings: a one-line description of the wrk settings in use.
bench_wrk_settings() {
    printf 'wrk -t%s -c%s -d%s --latency (warm-up %s)\n' \
        "$BENCH_THREADS" "$BENCH_CONNECTIONS" "$BENCH_DURATION" "$BENCH_WARMUP"
}

# bench_latency_ms VALUE: convert a wrk latency such as 512.00us / 1.20ms / 2.00s to ms.
bench_latency_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f\n", n }'
}

# bench_wrk NAME URL: warm up, then measure URL with wrk. Sets BENCH_RPS (integer),
# BENCH_P50 / BENCH_P99 (as wrk prints them), BENCH_P50_MS / BENCH_P99_MS, BENCH_NON2XX,
# BENCH_SOCKET_ERRORS, BENCH_WRK_OUT (file with the raw wrk output).
bench_wrk() {
    local name=$1 url=$2 dur secs out
    case "$url" in
    http://127.0.0.1:* | http://127.0.0.1/*) ;;
    *) bench_die "refusing to benchmark non-loopback URL $url" ;;
    esac
    bench_check_settings
    bench_tmpdir
    if [[ "$BENCH_WARMUP" != 0 && "$BENCH_WARMUP" != 0s ]]; then
        secs="$(bench__seconds "$BENCH_WARMUP")"
        bench_run_bounded $((secs + 30)) "$BENCH_TMP/wrk-$name-warmup.txt" \
            wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d"$BENCH_WARMUP" "$url" ||
            bench_die "wrk warm-up against $name failed (see $BENCH_TMP/wrk-$name-warmup.txt)"
    fi
    dur=$BENCH_DURATION
    secs="$(bench__seconds "$dur")"
    out="$BENCH_TMP/wrk-$name.txt"
    bench_log "measuring $name: $(bench_wrk_settings) $url"
    bench_run_bounded $((secs + 30)) "$out" \
        wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d"$dur" --latency "$url" || {
        cat "$out" >&2
        bench_die "wrk against $name failed"
    }
    BENCH_WRK_OUT=$out
    BENCH_RPS="$(awk '/^Requests\/sec:/ { printf "%d\n", $2 + 0.5 }' "$out")"
    BENCH_P50="$(awk '/Latency Distribution/ { d = 1 } d && $1 == "50%" { print $2; exit }' "$out")"
    BENCH_P99="$(awk '/Latency Distribution/ { d = 1 } d && $1 == "99%" { print $2; exit }' "$out")"
    BENCH_NON2XX="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")"
    BENCH_NON2XX=${BENCH_NON2XX:-0}
    BENCH_SOCKET_ERRORS="$(sed -n 's/^ *Socket errors: *//p' "$out")"
    if [[ -z "$BENCH_RPS" || -z "$BENCH_P50" || -z "$BENCH_P99" ]]; then
        cat "$out" >&2
        bench_die "could not parse wrk output for $name"
    fi
    BENCH_P50_MS="$(bench_latency_ms "$BENCH_P50")"
    BENCH_P99_MS="$(bench_latency_ms "$BENCH_P99")"
    if [[ "$BENCH_NON2XX" != 0 ]]; then
        bench_warn "$name: $BENCH_NON2XX non-2xx/3xx responses; its requests/s is not comparable"
    fi
    if [[ -n "$BENCH_SOCKET_ERRORS" ]]; then
        bench_warn "$name: socket errors: $BENCH_SOCKET_ERRORS"
    fi
    bench_log "$name: $BENCH_RPS req/s, p50 $BENCH_P50, p99 $BENCH_P99"
}

# bench_measure NAME PORT PATH CMD [ARGS...]: start CMD (which must listen on 127.0.0.1:PORT),
# wait for GET PATH to answer 200, run bench_wrk on it, record its peak RSS, stop it.
# Sets the bench_wrk variables plus BENCH_PEAK_RSS_KB.
bench_measure() {
    local name=$1 port=$2 path=$3 pid
    shift 3
    bench_check_settings
    bench_tmpdir
    bench_start_server "$name" "$BENCH_TMP/$name" "$@"
    pid=$BENCH_SERVER_PID
    bench_wait_http "$name" "$pid" "$port" "$path" "$BENCH_TMP/$name"
    bench_wrk "$name" "http://$BENCH_HOST:$port$path"
    kill -0 "$pid" 2>/dev/null || {
        bench__show_logs "$BENCH_TMP/$name"
        bench_die "$name died during the benchmark"
    }
    BENCH_PEAK_RSS_KB="$(bench_peak_rss_kb "$pid" || echo 0)"
    bench_stop_server "$pid"
}

# bench_measure_bare: build and measure the bare libmicrohttpd hello-world (GET /healthz) with
# the current settings. Sets BENCH_BARE_RPS, BENCH_BARE_P50, BENCH_BARE_P99, BENCH_BARE_P50_MS,
# BENCH_BARE_P99_MS, BENCH_BARE_PEAK_RSS_KB.
bench_measure_bare() {
    local bin port
    bench_ensure_deps
    bin="$(bench_build_mhd_hello)" || exit 1
    port="$(bench_free_port)" || exit 1
    bench_measure bare-mhd "$port" /healthz "$bin" --port "$port"
    BENCH_BARE_RPS=$BENCH_RPS
    BENCH_BARE_P50=$BENCH_P50
    BENCH_BARE_P99=$BENCH_P99
    BENCH_BARE_P50_MS=$BENCH_P50_MS
    BENCH_BARE_P99_MS=$BENCH_P99_MS
    BENCH_BARE_PEAK_RSS_KB=$BENCH_PEAK_RSS_KB
}

# bench_bare_rps: echo the bare libmicrohttpd requests/s measured in this run (measures it on
# the first call; later calls in the same shell reuse it). Works as rps=$(bench_bare_rps).
bench_bare_rps() {
    if [[ -z "${BENCH_BARE_RPS:-}" ]]; then
        bench_measure_bare >&2 || exit 1
    fi
    printf '%s\n' "$BENCH_BARE_RPS"
}

# bench_ratio A B: echo A/B with two decimals (0.00 if B is 0).
bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "0.00"; else printf "%.2f\n", a / b }'
}

# bench_percent A B: echo A/B as a percentage with one decimal.
bench_percent() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "0.0%"; else printf "%.1f%%\n", 100 * a / b }'
}

# bench_human_kb KB: echo a size in kB as MiB with one decimal.
bench_human_kb() {
    awk -v k="$1" 'BEGIN { printf "%.1f MiB\n", k / 1024 }'
}

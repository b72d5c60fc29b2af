#!/usr/bin/env bash
# Replays every sample event in events/ through `cargo lambda watch`, end to end: the real function
# binaries, the Lambda runtime emulator, and the embedded store in a temporary directory.
#
#   ./scripts/invoke-events.sh
#   ./scripts/invoke-events.sh --list-functions    # prints the functions it builds, and stops
#
# It builds every function of the registry (functions.toml). For each
# events/<function>.<status>.<case>.json, in name order: `imgbt dev seed` resets the dev
# vault, `cargo lambda invoke <function> --data-file <file>` sends the event, and the statusCode of
# the response must be the status the name declares. A function on a schedule (gc) answers no
# HTTP response: its event (an EventBridge scheduled event) is named with 200, which stands for an
# invocation that succeeds and answers the function's report. One line per event; exit 1 on any
# mismatch.
#
# Environment: IMGBT_EVENTS_PORT (default 9750; the next free port up to +49 is used if it is taken).
# The Cloudflare variables are ignored: this always runs on a fresh embedded store.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- the functions: every one of the registry (functions.toml) ---------------------------------
functions=()
scheduled=()
while read -r name on_schedule; do
    functions+=("$name")
    [[ "$on_schedule" == 1 ]] && scheduled+=("$name")
done < <(python3 -c '
import sys, tomllib
with open(sys.argv[1], "rb") as registry:
    for function in tomllib.load(registry)["function"]:
        print(function["name"], int("schedule" in function))
' functions.toml)
[[ ${#functions[@]} -gt 0 ]] || { echo "functions.toml lists no function" >&2; exit 1; }
if [[ "${1:-}" == "--list-functions" ]]; then
    printf '%s\n' "${functions[@]}"
    exit 0
fi

# --- cargo-lambda -----------------------------------------------------------------------------
if ! cargo lambda --version >/dev/null 2>&1; then
    echo "==> Installing cargo-lambda"
    # PyPI's package ships the binary and Zig; `cargo install` is the slower fallback.
    if command -v pip3 >/dev/null 2>&1; then pip=pip3; elif command -v pip >/dev/null 2>&1; then pip=pip; else pip=""; fi
    if [[ -n "$pip" ]] && "$pip" install cargo-lambda && cargo lambda --version >/dev/null 2>&1; then
        :
    else
        cargo install --locked cargo-lambda
    fi
fi

# --- a fresh embedded store -------------------------------------------------------------------
unset CLOUDFLARE_ACCOUNT_ID CLOUDFLARE_API_TOKEN IMGBT_D1_DATABASE_ID IMGBT_D1_BASE_URL \
    IMGBT_R2_BUCKET IMGBT_R2_ACCESS_KEY_ID IMGBT_R2_SECRET_ACCESS_KEY IMGBT_R2_ENDPOINT
work="$(mktemp -d "${TMPDIR:-/tmp}/imgbt-events.XXXXXX")"
export IMGBT_DATA_DIR="$work/data"

watch_pid=""
cleanup() {
    local status=$?
    if [[ -n "$watch_pid" ]]; then
        # watch runs in its own process group (set -m below): stop it and the functions it started.
        kill -TERM -- "-$watch_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$watch_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$watch_pid" 2>/dev/null || true
        wait "$watch_pid" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -s "$work/watch.log" ]]; then
        echo "--- the last lines of cargo lambda watch's log:" >&2
        tail -n 40 "$work/watch.log" >&2
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> Building imgbt and the functions"
packages=(-p imgbt-cli)
for name in "${functions[@]}"; do packages+=(-p "$name"); done
cargo build -q "${packages[@]}"
imgbt() { cargo run -q -p imgbt-cli -- "$@"; }
imgbt migrate >/dev/null

# --- cargo lambda watch -----------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port="${IMGBT_EVENTS_PORT:-9750}"
last=$((port + 49))
while port_in_use "$port"; do
    port=$((port + 1))
    [[ $port -le $last ]] || { echo "no free port in ${IMGBT_EVENTS_PORT:-9750}..$last" >&2; exit 1; }
done

echo "==> Starting cargo lambda watch on 127.0.0.1:$port"
set -m
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --ignore-changes \
    >"$work/watch.log" 2>&1 &
watch_pid=$!
set +m
for _ in $(seq 300); do
    port_in_use "$port" && break
    kill -0 "$watch_pid" 2>/dev/null || { echo "cargo lambda watch exited" >&2; exit 1; }
    sleep 0.2
done
port_in_use "$port" || { echo "cargo lambda watch did not answer on port $port" >&2; exit 1; }

# --- the events -------------------------------------------------------------------------------
shopt -s nullglob
events=()
while IFS= read -r file; do events+=("$file"); done < <(printf '%s\n' events/*.json | LC_ALL=C sort)
[[ ${#events[@]} -gt 0 ]] || { echo "no events in events/" >&2; exit 1; }

echo "==> Invoking ${#events[@]} events"
failed=0
for file in "${events[@]}"; do
    name="$(basename "$file" .json)"
    IFS=. read -r function expected _ <<<"$name"
    known=0
    for f in "${functions[@]}"; do [[ "$f" == "$function" ]] && known=1; done
    if [[ $known -eq 0 || ! "$name" =~ ^[a-z0-9_]+\.[0-9]{3}\.[a-z0-9]+(-[a-z0-9]+)*$ ]]; then
        printf 'FAIL  %-36s the name is not <function>.<status>.<case>.json, with a function of functions.toml\n' "$name"
        failed=$((failed + 1))
        continue
    fi
    if ! seed="$(imgbt dev seed 2>&1)"; then
        printf 'FAIL  %-36s imgbt dev seed failed: %s\n' "$name" "$seed"
        failed=$((failed + 1))
        continue
    fi
    if ! response="$(cargo lambda invoke "$function" --data-file "$file" \
        --invoke-address 127.0.0.1 --invoke-port "$port" 2>&1)"; then
        printf 'FAIL  %-36s cargo lambda invoke failed: %s\n' "$name" "$response"
        failed=$((failed + 1))
        continue
    fi
    on_schedule=0
    for f in "${scheduled[@]}"; do [[ "$f" == "$function" ]] && on_schedule=1; done
    if [[ $on_schedule -eq 1 ]]; then
        # A report (it has the sweep's lists), not a Lambda error: as good as a 200.
        if grep -q '"orphans"' <<<"$response" && ! grep -q '"errorType"' <<<"$response"; then
            got=200
        else
            got=""
        fi
    else
        # The response is one JSON object; its first statusCode is the response's own (the body
        # is a JSON string, so any statusCode inside it is escaped).
        got="$(grep -o '"statusCode":[[:space:]]*[0-9]*' <<<"$response" | head -n 1 | grep -o '[0-9]*$' || true)"
    fi
    if [[ "$got" == "$expected" ]]; then
        printf 'ok    %-36s %s\n' "$name" "$got"
    else
        printf 'FAIL  %-36s expected %s, got %s: %.300s\n' "$name" "$expected" "${got:-no statusCode}" "$response"
        failed=$((failed + 1))
    fi
done

if [[ $failed -gt 0 ]]; then
    echo "==> $failed of ${#events[@]} events did not get the status their name declares" >&2
    exit 1
fi
echo "==> All ${#events[@]} events got the status their name declares"

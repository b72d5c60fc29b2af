#!/usr/bin/env bash
# Runs the imgbt API locally on the embedded default (a SQLite file and a directory of objects).
#
#   ./scripts/dev.sh
#
# Installs cargo-lambda if it is missing, migrates the store, creates a `dev` vault once (its keys
# are saved to $IMGBT_DATA_DIR/dev-vault.json, local only), prints ready-to-run curl lines, then
# runs `cargo lambda watch`, which serves every function on http://localhost:$IMGBT_PORT.
#
# Beside it, `imgbt dev objects` serves the store's objects on http://127.0.0.1:$IMGBT_OBJECTS_PORT
# for signed URLs only, as R2 serves presigned GETs: a function's answer cannot carry more than
# about 6 MB, so `content` redirects there. Its secret is generated once into
# $IMGBT_DATA_DIR/local-objects.secret (local only, never printed) and given to both.
#
#   ./scripts/dev.sh --local-cloudflare
#
# runs the production code path instead: D1 over REST and R2 over S3, against the test kit's
# protocol-faithful D1 and S3 servers on 127.0.0.1 (in memory; gone when the script stops).
#
# Environment: IMGBT_DATA_DIR (default ./.imgbt), IMGBT_PORT (default 9000), IMGBT_OBJECTS_PORT
# (default 9001).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

local_cloudflare=false
case "${1:-}" in
    --local-cloudflare) local_cloudflare=true ;;
    "") ;;
    *) echo "usage: $0 [--local-cloudflare]" >&2; exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*"; }

# --- cargo-lambda -----------------------------------------------------------------------------
if ! cargo lambda --version >/dev/null 2>&1; then
    step "Installing cargo-lambda"
    # PyPI's package ships the binary and Zig; `cargo install` is the slower fallback.
    if command -v pip3 >/dev/null 2>&1; then pip=pip3; elif command -v pip >/dev/null 2>&1; then pip=pip; else pip=""; fi
    if [[ -n "$pip" ]] && "$pip" install cargo-lambda && cargo lambda --version >/dev/null 2>&1; then
        :
    else
        cargo install --locked cargo-lambda
    fi
fi

# --- cmake and nasm, which the transform crate's libjpeg-turbo is built with -----------------
./scripts/native-tools.sh

# --- the store --------------------------------------------------------------------------------
# Absolute, so that every function process `cargo lambda watch` starts uses the same store.
export IMGBT_DATA_DIR="${IMGBT_DATA_DIR:-$PWD/.imgbt}"
mkdir -p "$IMGBT_DATA_DIR"
IMGBT_DATA_DIR="$(cd "$IMGBT_DATA_DIR" && pwd)"
port="${IMGBT_PORT:-9000}"
objects_port="${IMGBT_OBJECTS_PORT:-9001}"

imgbt() { cargo run -q -p imgbt-cli -- "$@"; }

vault_file="$IMGBT_DATA_DIR/dev-vault.json"
if $local_cloudflare; then
    step "Starting the local D1 REST and S3 servers"
    env_file="$IMGBT_DATA_DIR/local-cloudflare.env"
    rm -f "$env_file"
    cargo build -q -p imgbt-test-servers --bin local-cloudflare
    # The built binary itself, not `cargo run`: that could wait on another build's lock.
    target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    "$target_dir/debug/local-cloudflare" "$env_file" >/dev/null &
    servers=$!
    trap 'kill "$servers" 2>/dev/null || true' EXIT
    for _ in $(seq 300); do [[ -s "$env_file" ]] && break; sleep 0.1; done
    [[ -s "$env_file" ]] || { echo "the local servers did not start" >&2; exit 1; }
    set -a
    # shellcheck disable=SC1090
    . "$env_file"
    set +a
    # A fresh D1 every run: the vault made for it is kept apart from the embedded one's.
    vault_file="$IMGBT_DATA_DIR/dev-vault-local-cloudflare.json"
    rm -f "$vault_file"
fi

step "Migrating the store"
imgbt migrate

# Reads one string field of the flat JSON object `imgbt vault create --json` prints.
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$2"; }

if [[ -f "$vault_file" ]]; then
    saved="$(field vault_id "$vault_file")"
    vaults="$(imgbt vault list --json)"
    if [[ -z "$saved" || "$vaults" != *"\"$saved\""* ]]; then
        # The store was reset but the saved keys were not: they belong to a vault that is gone.
        rm -f "$vault_file"
    fi
fi
if [[ ! -f "$vault_file" ]]; then
    step "Creating the dev vault"
    tmp="$(mktemp "$IMGBT_DATA_DIR/dev-vault.XXXXXX")"
    chmod 600 "$tmp"
    imgbt vault create --name dev --json >"$tmp" || { rm -f "$tmp"; exit 1; }
    mv "$tmp" "$vault_file"
fi
chmod 600 "$vault_file"

vault="$(field vault_id "$vault_file")"
pk="$(field public_key "$vault_file")"
sk="$(field secret_key "$vault_file")"
base="http://localhost:$port/api/v1/vaults/$vault/assets"

cat <<EOF

==> Dev vault (keys saved in $vault_file)
  vault:       $vault
  public key:  $pk   (read-only: list, get)
  secret key:  $sk   (read and write)

Upload this README, once the functions below have compiled:
  curl -sS -H "Authorization: Bearer $sk" -F file=@README.md -F partition=docs -F collection=readme -F channel=main $base

List:
  curl -sS -H "Authorization: Bearer $pk" "$base?partition=docs&limit=10"

The imgbt client (cargo run -q -p imgbt-cli -- upload|ls|show|patch|rm|download …), in another terminal:
  export IMGBT_URL=http://localhost:$port IMGBT_API_KEY=$sk IMGBT_VAULT=$vault

==> Serving on http://localhost:$port (Ctrl-C to stop)
EOF

if ! $local_cloudflare; then
    step "Starting the local object server on http://127.0.0.1:$objects_port"
    secret_file="$IMGBT_DATA_DIR/local-objects.secret"
    if [[ ! -s "$secret_file" ]]; then
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$secret_file")
    fi
    chmod 600 "$secret_file"
    # Exported, not passed on a command line, so the secret never shows in `ps`. cargo lambda
    # watch hands its environment to every function it starts, as it does IMGBT_DATA_DIR.
    IMGBT_LOCAL_OBJECTS_SECRET="$(cat "$secret_file")"
    export IMGBT_LOCAL_OBJECTS_SECRET
    export IMGBT_LOCAL_OBJECTS_URL="http://127.0.0.1:$objects_port"
    # The built binary itself, not `cargo run`: that could wait on another build's lock.
    cargo build -q -p imgbt-cli
    target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    "$target_dir/debug/imgbt" dev objects --port "$objects_port" &
    objects=$!
    trap 'kill "$objects" 2>/dev/null || true' EXIT
fi

# Not exec: the trap must stop the local servers when watch ends.
cargo lambda watch --invoke-port "$port"

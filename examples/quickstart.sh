#!/usr/bin/env bash
# The README walk-through as a script: starts a gateway on a fresh data directory,
# mints a super_admin and two org-owner tokens, creates sessions in two organizations,
# lists them org-scoped and cross-tenant, pages with the cursor, creates and uses an
# api-key, and shows the api-key refused on the admin route. Exits non-zero on any
# unexpected status.
#
#   bash examples/quickstart.sh            # builds and uses target/release/wa-gateway
#   WAG_BIN=/path/to/wa-gateway bash examples/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${WAG_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release -q
  BIN=target/release/wa-gateway
fi
DATA=$(mktemp -d)
PORT=${QUICKSTART_PORT:-$((20000 + RANDOM % 20000))}
GW=http://127.0.0.1:$PORT
"$BIN" serve --data "$DATA" --listen "127.0.0.1:$PORT" 2>"$DATA/gateway.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 200); do curl -fs "$GW/readyz" >/dev/null 2>&1 && break; sleep 0.05; done

step() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
# call EXPECTED_STATUS METHOD PATH TOKEN [JSON]: prints the body, fails on another status.
call() {
  local want=$1 method=$2 path=$3 token=$4 body=${5:-}
  local args=(-s -o "$DATA/body" -w '%{http_code}' -X "$method" "$GW$path" -H "Authorization: Bearer $token")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' -d "$body")
  local got
  got=$(curl "${args[@]}")
  echo "$method $path -> $got"
  cat "$DATA/body"; echo
  if [ "$got" != "$want" ]; then echo "expected $want" >&2; exit 1; fi
}
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$DATA/body"; }

step "Tokens from the embedded issuer"
ROOT=$("$BIN" token --data "$DATA" --sub root --super-admin)
ACME=$("$BIN" token --data "$DATA" --sub alice --org org_acme --role owner)
GLOBEX=$("$BIN" token --data "$DATA" --sub bob --org org_globex --role owner)
echo "super_admin: ${ROOT:0:24}..."

step "Sessions in two organizations"
call 201 POST /api/v1/sessions "$ACME" '{"label":"Support line","phoneNumber":"6281234567890"}'
call 201 POST /api/v1/sessions "$ACME" '{"label":"Billing"}'
call 201 POST /api/v1/sessions "$GLOBEX" '{"label":"Sales"}'

step "Org-scoped: each owner sees only their own"
call 200 GET /api/v1/sessions "$ACME"
call 200 GET /api/v1/sessions "$GLOBEX"

step "Cross-tenant, as super_admin, one page at a time"
call 200 GET "/api/v1/admin/sessions?limit=2" "$ROOT"
NEXT=$(field nextCursor)
call 200 GET "/api/v1/admin/sessions?limit=2&cursor=$NEXT" "$ROOT"
call 403 GET /api/v1/admin/sessions "$ACME"

step "An api-key for a script: shown once, then only its prefix"
call 201 POST /api/v1/api-keys "$ACME" '{"name":"ci","permissions":["sessions:read"]}'
KEY=$(field key)
call 200 GET /api/v1/sessions "$KEY"
call 403 POST /api/v1/sessions "$KEY" '{"label":"nope"}'
call 403 GET /api/v1/admin/sessions "$KEY"

echo; echo "quickstart: all steps behaved as documented"

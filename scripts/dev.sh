#!/usr/bin/env bash
# dev.sh: a dev Vault with bankauth mounted at bankauth/ and the bank emulator
# configured for all four providers, and a FAPI 2.0 user-consent config
# (obank) at the emulator's authorization server. Runs until Ctrl-C, then
# cleans up.
#
# Env: VAULT_PORT (8200), EMU_PORT (8300), TOKEN_TTL (60s), DEV_DIR (.dev),
#      VAULT_BIN (a vault binary to use; default: scripts/install-vault.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

vault_port="${VAULT_PORT:-8200}"
emu_port="${EMU_PORT:-8300}"
ttl="${TOKEN_TTL:-60s}"
work="${DEV_DIR:-.dev}"
rm -rf "$work" && mkdir -p "$work/plugins" "$work/bin"
work=$(cd "$work" && pwd)

vault_bin="${VAULT_BIN:-$(scripts/install-vault.sh)}"
# The vault binary may live in a cache directory that is not on PATH: link it
# into $work/bin, which the printed commands put first on PATH.
ln -sf "$(cd "$(dirname "$vault_bin")" && pwd)/$(basename "$vault_bin")" "$work/bin/vault"
echo "==> building the plugin and the bank emulator"
go build -o "$work/plugins/vault-plugin-secrets-bankauth" ./cmd/vault-plugin-secrets-bankauth
go build -o "$work/bankemu" ./cmd/bankemu

pids=()
cleanup() {
  echo; echo "==> stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# The emulator's FAPI 2.0 authorization server (issuer $emu/fapi) verifies its
# client's assertions with the public keys of bankauth's key obsig, fetched from
# Vault's unauthenticated JWKS path when first needed (the key is published by
# vault write bankauth/key/obsig type=ec-p256 purpose=client_auth public_jwks=true).
"$work/bankemu" -listen "127.0.0.1:$emu_port" -ttl "$ttl" \
  -fapi-client-jwks-uri "http://127.0.0.1:$vault_port/v1/bankauth/jwks/obsig" >"$work/bankemu.log" 2>&1 &
pids+=($!)
"$vault_bin" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$vault_port" \
  -dev-plugin-dir="$work/plugins" >"$work/vault.log" 2>&1 &
pids+=($!)

export VAULT_ADDR="http://127.0.0.1:$vault_port" VAULT_TOKEN=root
v() { echo "\$ vault $*"; "$vault_bin" "$@"; }
vq() { echo "\$ vault $*"; "$vault_bin" "$@" >/dev/null; } # v without the answer
for _ in $(seq 1 100); do "$vault_bin" status >/dev/null 2>&1 && break; sleep 0.1; done

sum=$(sha256sum "$work/plugins/vault-plugin-secrets-bankauth" | cut -d' ' -f1)
v plugin register -sha256="$sum" -command=vault-plugin-secrets-bankauth secret bankauth
v secrets enable -path=bankauth bankauth
# The emulator listens on 127.0.0.1: a mount refuses loopback unless told.
v write bankauth/settings allow_loopback=true

emu="http://127.0.0.1:$emu_port"
# Acceleration Cloud's real tokens live 2 h (its sample JWT). With $ttl tokens,
# background refresh would spend its 60-requests-a-day budget within the hour.
curl -fsS -X POST "$emu/_emulator/ttl" -d '{"provider":"accelerationcloud","seconds":7200}' >/dev/null || true
# The emulator's made-up credentials (cmd/bankemu flags); never real ones.
v write bankauth/config/isbank provider=isbank base_url="$emu" \
  client_id=emu-client-id client_secret='emu-client-secret-4f/9+Zq=' \
  service_account_id=emu-service-account-id service_account_secret=emu-service-account-secret-7Hk2
v write bankauth/config/etranzact provider=etranzact base_url="$emu" username=emu-user password='emu-password-Xy9!'
v write bankauth/config/rakbank provider=rakbank base_url="$emu" \
  client_id=emu-client-id client_secret='emu-client-secret-4f/9+Zq=' scope=accounts \
  oauth_metadata='{"account_id":"0188000049916"}'
v write bankauth/config/accelerationcloud provider=accelerationcloud base_url="$emu" \
  client_id=emu-client-id client_secret='emu-client-secret-4f/9+Zq=' user_id=user-42
# A user-consent connection at the emulator's FAPI 2.0 authorization server
# (docs/consents.md): obsig signs the client assertions (the emulator fetches
# its public key from bankauth/jwks/obsig), obdpop the DPoP proofs its tokens
# are bound to. https://app.example/cb is one of the emulator client's
# redirect URIs; nothing fetches it: the app copies the redirect it gets.
vq write bankauth/key/obsig type=ec-p256 purpose=client_auth public_jwks=true \
  allowed_endpoints="$emu/fapi/" allowed_audiences="$emu/fapi"
vq write bankauth/key/obdpop type=ec-p256 purpose=dpop
v write bankauth/config/obank provider=oauth2 grant_type=authorization_code issuer="$emu/fapi" \
  client_id=emu-fapi-client auth_method=private_key_jwt signing_key=obsig dpop_key=obdpop \
  redirect_uris=https://app.example/cb scope="openid accounts offline_access" fapi=2.0
v list bankauth/config
v read bankauth/token/etranzact

cat <<EOT

bankauth is mounted at bankauth/ on a dev Vault; the bank emulator is at $emu.
In another shell:
  export PATH="$work/bin:\$PATH" VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=root
  vault read bankauth/token/rakbank
  vault write -f bankauth/token/rakbank          # force a new token
  curl -s $emu/_emulator/stats                   # bank requests so far
  curl -s $emu/_emulator/fapi/stats              # the FAPI 2.0 server (issuer $emu/fapi, client emu-fapi-client)
  vault read bankauth/status/rakbank             # health: token, last error, counters
  url=\$(vault write -f -field=authorization_url bankauth/consent/obank/alice)   # alice's consent: where to send her
  loc=\$(curl -s -o /dev/null -w '%{redirect_url}' "\$url")   # she approves at once: the redirect the app receives
  vault write bankauth/consent/obank/alice/callback callback_url="\$loc"      # the app hands it to Vault
  vault read -field=token_type bankauth/token/obank/alice   # her DPoP-bound token (docs/consents.md)
  curl -s -H "X-Vault-Token: root" \$VAULT_ADDR/v1/bankauth/metrics   # Prometheus text
  curl -s -X POST $emu/_emulator/fail -d '{"provider":"rakbank","count":-1,"status":503}'   # break it
  curl -s -X POST $emu/_emulator/clear           # fix it
Logs: $work/vault.log, $work/bankemu.log. Ctrl-C stops everything.
EOT
wait

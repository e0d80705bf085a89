#!/usr/bin/env bash
# compat.sh: run bankauth's core end-to-end tests against several Vault
# releases and print a Markdown table of the results (the README's "Vault
# versions" table). Not part of `make test`: each Vault version is built from
# source by scripts/install-vault.sh (10-25 minutes on 2 cores, cached after).
#
# Usage: scripts/compat.sh [version ...]     default: $COMPAT_VERSIONS
# Env:   COMPAT_VERSIONS (default "1.21.0 1.17.6"), COMPAT_RUN (the tests' -run regexp),
#        COMPAT_LOG_DIR (default .compat: one build log and one test log per version)
set -uo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
[ ${#versions[@]} -gt 0 ] || read -r -a versions <<<"${COMPAT_VERSIONS:-1.21.0 1.17.6}"
run="${COMPAT_RUN:-^(TestAllFourProvidersThroughVault|TestConcurrentColdReadersOneBankRequest|TestForceRefreshAndRefreshGrant|TestConfigLifecycleThroughCLI|TestBadInputIs400NamingTheField|TestUpstreamErrorReachesTheReader|TestSeveralMountsAndVersion|TestTokenSurvivesVaultRestart|TestTokenSurvivesSealUnseal|TestLeaseFalseOnRealVault|TestStatusAndMetricsFollowTheBank|TestMetricsNeedATokenUnlessOptedIn|TestMonitoringPolicy|TestCustomProfileOwnFieldsThroughVault|TestUpgradeAndDowngrade)\$}"
logs="${COMPAT_LOG_DIR:-.compat}"
mkdir -p "$logs"

rows=()
failed=0
for v in "${versions[@]}"; do
  v=${v#v}
  echo "compat: Vault $v: installing (log: $logs/build-$v.log)" >&2
  if ! bin=$(VAULT_VERSION="$v" BANKAUTH_FORCE_BUILD=1 scripts/install-vault.sh 2>"$logs/build-$v.log"); then
    why=$(grep -E '^[^ ]+\.go:[0-9]+:[0-9]+: |error|cannot|failed|not found|invalid' "$logs/build-$v.log" | head -1 | cut -c1-160)
    rows+=("| $v | could not build: ${why:-see $logs/build-$v.log} |")
    failed=1
    continue
  fi
  echo "compat: Vault $v: running the core e2e tests (log: $logs/test-$v.log)" >&2
  start=$(date +%s)
  VAULT_BIN="$bin" go test -count=1 -tags e2e -timeout 20m -v -run "$run" ./e2e/ >"$logs/test-$v.log" 2>&1
  code=$?
  pass=$(grep -c '^--- PASS' "$logs/test-$v.log")
  fail=$(grep -c '^--- FAIL' "$logs/test-$v.log")
  secs=$(( $(date +%s) - start ))
  if [ $code -eq 0 ] && [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]; then
    rows+=("| $v | $pass core e2e tests pass (${secs}s) |")
  else
    names=$(grep '^--- FAIL' "$logs/test-$v.log" | awk '{print $3}' | paste -sd, -)
    rows+=("| $v | $fail of $((pass + fail)) core e2e tests fail: ${names:-exit $code, see $logs/test-$v.log} |")
    failed=1
  fi
done

echo "| Vault | result |"
echo "|---|---|"
printf '%s\n' "${rows[@]}"
exit $failed

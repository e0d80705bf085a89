# bankauth: build, test and try the Vault plugin.
#   make dev    a dev Vault with the plugin mounted and the emulator configured
#   make test   unit tests, then end-to-end tests on a real Vault
#   make bench  benchmark on a real Vault (about 40 minutes; BENCH_ARGS=-short for a smoke run)
SHELL := /bin/bash
PLUGIN := vault-plugin-secrets-bankauth
VERSION ?= v0.1.0
LDFLAGS := -X github.com/bankauth/vault-plugin-secrets-bankauth.Version=$(VERSION)
E2E_TIMEOUT ?= 20m
# FUZZTIME is how long make fuzz runs each fuzz target.
FUZZTIME ?= 15s

.PHONY: all build test unit fuzz fuzz-e2e e2e bench bench-smoke dev fmt fmtcheck vet vault prometheus promcheck release compat

all: fmtcheck vet build

build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o bin/$(PLUGIN) ./cmd/$(PLUGIN)
	go build -trimpath -o bin/bankemu ./cmd/bankemu

# release builds the plugin for linux and darwin, amd64 and arm64,
# reproducibly, into dist/$(VERSION) with SHA256SUMS, and prints the
# `vault plugin register` lines. See scripts/release.sh.
release:
	@scripts/release.sh $(VERSION)

# compat runs the core e2e tests against each Vault release in
# COMPAT_VERSIONS (each built from source once, then cached) and prints the
# README's "Vault versions" table. Not part of test.
COMPAT_VERSIONS ?= 1.21.0 1.17.6
compat:
	@COMPAT_VERSIONS="$(COMPAT_VERSIONS)" scripts/compat.sh

# vault installs (or finds) the pinned Vault binary; see scripts/install-vault.sh.
vault:
	@scripts/install-vault.sh >/dev/null

# prometheus installs (or finds) prometheus and promtool; see scripts/install-prometheus.sh.
prometheus:
	@scripts/install-prometheus.sh >/dev/null

test: fmtcheck vet unit promcheck fuzz e2e

# promcheck checks the alert rules in deploy/prometheus and runs their unit
# tests (each alert fires on the series that should fire it, and only then).
promcheck:
	@prom=$$(scripts/install-prometheus.sh) && cd deploy/prometheus && \
	  "$$prom/promtool" check rules bankauth-rules.yml && \
	  "$$prom/promtool" test rules bankauth-rules.test.yml

unit:
	go test -race -count=1 ./...

# fuzz runs every Fuzz* target of every package for FUZZTIME each (go test
# -fuzz takes one target per run). A failing input is written to the
# package's testdata/fuzz/<target>/: commit it as a regression seed.
fuzz:
	@for pkg in $$(go list ./...); do \
	  for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
	    go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The plugin binary Vault runs is built with -race too (BANKAUTH_RACE=1).
# The Prometheus tests use the server and promtool from PROMETHEUS_DIR.
e2e:
	@vault_bin=$$(scripts/install-vault.sh) && prom=$$(scripts/install-prometheus.sh) && \
	  VAULT_BIN="$$vault_bin" PROMETHEUS_DIR="$$prom" BANKAUTH_RACE=1 go test -race -count=1 -tags e2e -timeout $(E2E_TIMEOUT) -v ./e2e/ 2>&1 | \
	  grep -v -E '^=== (RUN|PAUSE|CONT)' ; exit $${PIPESTATUS[0]}

# fuzz-e2e runs only the hostile-input fuzzer (e2e TestFuzz, docs/security.md)
# for FUZZ_E2E_TIME instead of make test's 45 seconds; BANKAUTH_FUZZ_SEED=n
# picks another seed. Not part of test.
FUZZ_E2E_TIME ?= 10m
FUZZ_E2E_TIMEOUT ?= 30m
fuzz-e2e:
	@vault_bin=$$(scripts/install-vault.sh) && \
	  VAULT_BIN="$$vault_bin" BANKAUTH_FUZZ_TIME=$(FUZZ_E2E_TIME) go test -count=1 -tags e2e -timeout $(FUZZ_E2E_TIMEOUT) \
	  -run '^TestFuzz$$' -v ./e2e/ 2>&1 | grep -v -E '^=== (RUN|PAUSE|CONT)' ; exit $${PIPESTATUS[0]}

# bench prints a Markdown report of figures measured in one run (see
# docs/benchmarks.md); the plugins are built without -race. Not part of test.
BENCH_ARGS ?=
bench:
	@vault_bin=$$(scripts/install-vault.sh) && VAULT_BIN="$$vault_bin" go run ./cmd/bankbench $(BENCH_ARGS)

# bench-smoke runs every phase of the harness with tiny sizes (about a minute).
bench-smoke:
	@$(MAKE) --no-print-directory bench BENCH_ARGS="-short $(BENCH_ARGS)"

dev:
	scripts/dev.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

fmtcheck:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

vet:
	go vet ./...
	go vet -tags e2e ./e2e/

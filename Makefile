# bankauth: build, test and try the Vault plugin.
#   make dev    a dev Vault with the plugin mounted and the emulator configured
#   make test   unit tests, then end-to-end tests on a real Vault
SHELL := /bin/bash
PLUGIN := vault-plugin-secrets-bankauth
VERSION ?= v0.1.0
LDFLAGS := -X github.com/bankauth/vault-plugin-secrets-bankauth.Version=$(VERSION)
E2E_TIMEOUT ?= 20m
# FUZZTIME is how long make fuzz runs each fuzz target.
FUZZTIME ?= 15s

.PHONY: all build test unit fuzz e2e dev fmt fmtcheck vet vault

all: fmtcheck vet build

build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o bin/$(PLUGIN) ./cmd/$(PLUGIN)
	go build -trimpath -o bin/bankemu ./cmd/bankemu

# vault installs (or finds) the pinned Vault binary; see scripts/install-vault.sh.
vault:
	@scripts/install-vault.sh >/dev/null

test: fmtcheck vet unit fuzz e2e

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
e2e:
	@vault_bin=$$(scripts/install-vault.sh) && \
	  VAULT_BIN="$$vault_bin" BANKAUTH_RACE=1 go test -race -count=1 -tags e2e -timeout $(E2E_TIMEOUT) -v ./e2e/ 2>&1 | \
	  grep -v -E '^=== (RUN|PAUSE|CONT)' ; exit $${PIPESTATUS[0]}

dev:
	scripts/dev.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

fmtcheck:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

vet:
	go vet ./...
	go vet -tags e2e ./e2e/

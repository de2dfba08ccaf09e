# Trellis — `make help` lists the targets.
GO       ?= go
OPA      := $(GO) tool opa
BIN      := bin/trellis
PKGS     := ./...
BENCHTIME ?= 1s
SHELL    := /bin/bash
.SHELLFLAGS := -eo pipefail -c

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/trellis
	$(GO) build -o $(BIN) ./cmd/trellis

.PHONY: run
run: ## Run Trellis on the embedded demo data with dev tokens (no database)
	$(GO) run ./cmd/trellis serve --dev

.PHONY: test
test: test-policies test-go ## Run every test: Rego (opa test/check/fmt) and Go (unit, integration, end-to-end)

.PHONY: test-go
test-go: ## Go tests (fuzz seed corpora included)
	$(GO) vet $(PKGS)
	$(GO) test -count=1 $(PKGS)

.PHONY: test-policies
test-policies: ## Rego: opa check --strict, opa fmt, opa test with ≥ 95 % coverage
	$(OPA) check --strict policies/
	$(OPA) fmt --fail --list policies/
	$(OPA) test policies/ --fail-on-empty
	$(OPA) test policies/ --coverage --threshold 95 --format=json >/dev/null \
		|| { echo "Rego coverage is under 95 %"; exit 1; }

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 20s)
	$(GO) test ./internal/token -run '^$$' -fuzz FuzzVerify -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./internal/datafile -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./internal/httpapi -run '^$$' -fuzz FuzzDecode -fuzztime $${FUZZTIME:-20s}

.PHONY: bench
bench: ## Go benchmarks on a generated 1,000,000-resource dataset, with the OPA floor side by side
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./internal/engine/ ./internal/token/ | tee bench.out

.PHONY: lint
lint: ## golangci-lint (config: .golangci.yml)
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 run

.PHONY: fmt
fmt: ## Format Go and Rego
	gofmt -w $$(git ls-files '*.go')
	$(OPA) fmt -w policies/

.PHONY: clean
clean: ## Remove build output
	rm -rf bin bundle/dist bench.out

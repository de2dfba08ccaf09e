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
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/trellis

.PHONY: run
run: ## Run Trellis on the embedded demo data with dev tokens (no database)
	$(GO) run ./cmd/trellis serve --dev

.PHONY: run-postgres
run-postgres: build ## Run Trellis on a throwaway PostgreSQL (port PGPORT, default 55432) with the demo loaded and dev tokens
	@PGBIN=$$(dirname $$(readlink -f $$(command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1) 2>/dev/null) 2>/dev/null); \
	[ -x "$$PGBIN/initdb" ] || { echo "PostgreSQL server binaries not found: apt-get install postgresql-15"; exit 1; }; \
	dir=$$(mktemp -d /tmp/trellis-pg-XXXXXX); as=""; \
	if [ "$$(id -u)" = 0 ]; then chown postgres "$$dir"; as="runuser -u postgres --"; fi; \
	trap '$$as "$$PGBIN/pg_ctl" -D "$$dir/data" stop -m fast >/dev/null 2>&1; rm -rf "$$dir"' EXIT; trap 'exit 130' INT TERM; \
	$$as "$$PGBIN/initdb" -D "$$dir/data" -U trellis --auth=trust -E UTF8 --locale=C >"$$dir/initdb.log" 2>&1 \
		|| { cat "$$dir/initdb.log"; echo "initdb failed (log above)"; exit 1; }; \
	$$as "$$PGBIN/pg_ctl" -D "$$dir/data" -w -l "$$dir/log" -o "-p $(PGPORT) -c listen_addresses=127.0.0.1 -k $$dir" start >/dev/null \
		|| { cat "$$dir/log"; echo "PostgreSQL did not start on port $(PGPORT) (log above; another port: make run-postgres PGPORT=…)"; exit 1; }; \
	url="postgres://trellis@127.0.0.1:$(PGPORT)/postgres?sslmode=disable"; \
	echo "PostgreSQL: $$url"; \
	./$(BIN) load --database-url "$$url"; \
	./$(BIN) serve --dev --database-url "$$url"

PGPORT ?= 55432

.PHONY: test
test: test-policies test-go ## Run every test: Rego (opa test/check/fmt) and Go (unit, integration, end-to-end)

.PHONY: test-go
test-go: ## Go tests (fuzz seed corpora included; internal/topology needs haproxy), then the lists' and the cache's concurrency tests with -race
	$(GO) vet $(PKGS)
	@command -v haproxy >/dev/null || echo "SKIP internal/topology: haproxy not found (apt-get install haproxy): the replica topology test does not run"
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || echo "SKIP cmd/trellis TestConsole*: chromium not found (apt-get install chromium): the console's browser tests do not run"
	$(GO) test -count=1 $(PKGS)
	$(GO) test -race -count=1 -run 'TestWalkUnderWrites|TestCacheOracle' ./internal/authz/

.PHONY: test-policies
test-policies: ## Rego: opa check --strict, opa fmt, opa test with ≥ 95 % coverage
	$(OPA) check --strict policies/
	$(OPA) fmt --fail --list policies/
	$(OPA) test policies/ --fail-on-empty --timeout 60s
	$(OPA) test policies/ --timeout 60s --coverage --threshold 95 --format=json >/dev/null \
		|| { echo "Rego coverage is under 95 %"; exit 1; }

.PHONY: bundle
bundle: ## Write bundle/dist/trellis.tar.gz (DATA=file, default the demo; SIGNING_KEY=pem [SIGNING_KEY_ID=trellis]; JWKS_FILE + ISSUER ship token keys)
	$(GO) run ./cmd/trellis bundle build --out bundle/dist/trellis.tar.gz \
		$(if $(DATA),--data $(DATA)) \
		$(if $(SIGNING_KEY),--signing-key $(SIGNING_KEY) --signing-key-id $(or $(SIGNING_KEY_ID),trellis)) \
		$(if $(JWKS_FILE),--jwks-file $(JWKS_FILE) --issuer $(ISSUER))

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 20s)
	$(GO) test ./internal/token -run '^$$' -fuzz FuzzVerify -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./internal/datafile -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./internal/httpapi -run '^$$' -fuzz FuzzDecode -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./internal/workos -run '^$$' -fuzz FuzzDecode -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./internal/rawjson -run '^$$' -fuzz FuzzCheckText -fuzztime $${FUZZTIME:-20s}

BENCHCOUNT ?= 1
BENCHPKGS  := ./internal/relstore/ ./internal/engine/ ./internal/authz/ ./internal/token/ ./internal/bundle/ ./internal/edge/

# bench runs the benchmarks (BENCHTIME per benchmark, BENCHCOUNT runs; use
# BENCHCOUNT=3 for medians), keeps the raw output in bench.out and prints a
# summary: the median of each figure, with the targets reported, not
# asserted. The x-floor ratios divide by the OPA floor measured earlier in the
# same process, so they mean something only when a whole BenchmarkDecide or
# BenchmarkService ran. Building the 1M-resource store takes tens of seconds
# per package, hence the long timeout.
.PHONY: bench
bench: ## Go benchmarks on a generated 1,000,000-resource dataset (depth 5), with the OPA floor side by side (BENCHTIME, BENCHCOUNT)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 60m $(BENCHPKGS) | tee bench.out
	@awk "$$BENCH_SUMMARY" bench.out

# bench-postgres adds the PostgreSQL benchmarks: snapshot load of the tier M
# dataset (bulk-loaded first, which alone takes minutes), apply latency of one
# assignment change and commit-to-decision freshness at 100 writes/s.
.PHONY: bench-postgres
bench-postgres: ## PostgreSQL benchmarks: snapshot load at 1M resources + 1M assignments, apply latency, freshness
	TRELLIS_BENCH_POSTGRES=1 $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 90m ./internal/postgres/ | tee bench-postgres.out
	@awk "$$BENCH_SUMMARY" bench-postgres.out

# bench-http loads Trellis, the stock OPA server (on the bundle Trellis builds
# for the same dataset) and a constant-answer Go handler, one after the other
# over loopback, with one generated dataset and request mix (checks with
# cached and fresh tokens, by assignment at varied depth, denies, batches of
# 50, list-resources; HTTP_MIX sets the shares); every Trellis and OPA answer
# is checked against a brute-force oracle. With HTTP_HALF_LOAD=true a fresh
# Trellis is loaded again in open loop at half its closed-loop throughput.
# Results go to bench-results/ (Markdown and SVG). For issue 6's RSS
# criterion use HTTP_DURATION=60s.
HTTP_TIER        ?= S
HTTP_CONNECTIONS ?= 32
HTTP_DURATION    ?= 20s
HTTP_WARMUP      ?= 5s
HTTP_HALF_LOAD   ?= true
HTTP_MIX         ?= token=25,token-fresh=5,assignment=40,deny=20,batch=5,list=5

.PHONY: bench-http
bench-http: build ## HTTP load test side by side: Trellis, stock OPA, constant ceiling (HTTP_TIER, HTTP_CONNECTIONS, HTTP_DURATION, HTTP_WARMUP, HTTP_HALF_LOAD, HTTP_MIX)
	./$(BIN) bench http --tier $(HTTP_TIER) --connections $(HTTP_CONNECTIONS) --duration $(HTTP_DURATION) \
		--warmup $(HTTP_WARMUP) --half-load=$(HTTP_HALF_LOAD) --mix '$(HTTP_MIX)' --opa "$$($(GO) tool -n opa)" --out bench-results

# BENCH_SUMMARY prints, per benchmark, the medians of ns/op, allocs/op and
# every custom metric, marking the targets of the x-floor, us/check (cached
# check), s-build and B/resource metrics as met or MISSED.
define BENCH_SUMMARY
/^Benchmark/ {
	n = $$1; sub(/-[0-9]+$$/, "", n)
	if (!(n in seen)) { seen[n] = 1; order[++k] = n }
	for (i = 3; i < NF; i += 2) {
		u = $$(i + 1)
		if (!((n, u) in v)) units[n] = units[n] " " u
		v[n, u] = v[n, u] " " $$i
	}
}
function med(s,  a, c, i, j, t) {
	c = split(s, a, " ")
	for (i = 2; i <= c; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return a[int((c + 1) / 2)]
}
function target(n, u, x,  t) {
	t = ""
	if (u == "x-floor" && n ~ /check_token$$/) t = 1.2
	else if (u == "x-floor" && n ~ /check_assignment_depth5$$/) t = 1.5
	else if (u == "us/check" && n ~ /cached$$/) t = 2
	else if (u == "s-build") t = 10
	else if (u == "B/resource" && n ~ /Build\/relstore$$/) t = 200
	else if (u == "objects" && n ~ /Build\/relstore$$/) t = 1000000
	else if (u == "B/resource") t = 1024
	return t == "" ? "" : sprintf(" (target <= %s: %s)", t, x + 0 <= t + 0 ? "met" : "MISSED")
}
END {
	printf "\nSummary of bench.out (medians over -count runs; x-floor = ns/op / floor ns/op of the same run)\n"
	printf "%-46s %14s %10s  %s\n", "benchmark", "ns/op", "allocs/op", "other metrics"
	for (i = 1; i <= k; i++) {
		n = order[i]; extra = ""
		c = split(units[n], us, " ")
		for (j = 1; j <= c; j++) {
			u = us[j]
			if (u == "ns/op" || u == "B/op" || u == "allocs/op") continue
			m = med(v[n, u]); extra = extra sprintf("%s %s%s  ", m, u, target(n, u, m))
		}
		printf "%-46s %14s %10s  %s\n", n, med(v[n, "ns/op"]), med(v[n, "allocs/op"]), extra
	}
}
endef
export BENCH_SUMMARY

GOLANGCI_LINT_VERSION ?= v2.15.0

.PHONY: lint
lint: ## golangci-lint, pinned by GOLANGCI_LINT_VERSION, via the module proxy (config: .golangci.yml; the first run builds it)
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run $(LINTFLAGS) ./...

.PHONY: fmt
fmt: ## Format Go and Rego
	gofmt -w $$(git ls-files '*.go')
	$(OPA) fmt -w policies/

.PHONY: clean
clean: ## Remove build output
	rm -rf bin bundle/dist bench.out bench-postgres.out bench-results

# Optralis backend. `make run` starts the local stack; `make test` runs every suite
# against real PostgreSQL and Redis (throwaway servers unless TEST_DATABASE_URL /
# TEST_REDIS_URL are set).

GO        ?= go
FUNCTIONS := $(notdir $(wildcard functions/*))
LAMBDA_FLAGS := -trimpath -tags lambda.norpc -ldflags='-s -w'

.PHONY: run test test-go test-timescale test-infra vet build synth deploy-base deploy migrate bench-compression bench-ingest bench-coldstart bench-dashboard bench-alerts clean $(addprefix build-,$(FUNCTIONS))

# The timescale-mode tests fail when Node (the PGlite TimescaleDB sidecar) is missing, under
# make as under plain `go test`; OPTRALIS_SKIP_TIMESCALE=1 opts out (they skip instead).
WITH_SERVICES = $(GO) run ./internal/testenv/withservices

# The CDK app runs on jsii's Node.js runtime: quiet, no telemetry, no version check (GUIDE §6).
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 20
export CDK_DISABLE_CLI_TELEMETRY = true
export CDK_DISABLE_VERSION_CHECK = 1
# Deployment settings (infra/stack/config.go); the example synthesizes offline.
CONFIG  ?= infra/config/example.json
CDK_CLI ?= npx --yes aws-cdk@2.1148.1

run:
	$(GO) build -o bin/optralis ./cmd/optralis
	./bin/optralis dev

# Everything: every package's tests, which include the timescale-mode suite.
test: vet test-go

# gofmt, go vet, staticcheck (pinned; it supports go 1.26) and a tidy go.mod.
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff

# Includes the infrastructure tests (infra/...): CDK assertions on the synthesized templates.
test-go:
	$(WITH_SERVICES) $(GO) test -count=1 -timeout 20m ./...

# The infrastructure tests alone (no database needed).
test-infra:
	$(GO) test -count=1 -timeout 15m ./infra/...

# The migration and storage suite in timescale mode only: against the PGlite TimescaleDB
# sidecar (tools/tsdb-sidecar), or the real server of TIMESCALE_TEST_URL when set.
test-timescale:
	$(WITH_SERVICES) $(GO) test -count=1 -timeout 20m -run Timescale ./...

# TimescaleDB compression of realistic agent data (BENCH_MACHINES, BENCH_DAYS).
bench-compression:
	$(WITH_SERVICES) $(GO) test -run '^$$' -bench TimescaleCompression -benchtime 1x -timeout 60m ./internal/series

# Heartbeat ingest: BENCH_MACHINES agents (1000) enrolled through the bootstrap, heartbeats
# over mutual TLS at a stepped rate until saturation, the raw unnest-insert limit measured in
# the same run; writes bench/ingest.md and bench/ingest.png.
bench-ingest:
	$(WITH_SERVICES) $(GO) test -run '^$$' -bench Ingest -benchtime 1x -count=1 -timeout 30m ./internal/agentsim

# Cold start of every functions/* Lambda and a hello-world baseline under the Lambda Runtime
# Interface Emulator (built from its Go module, no Docker): 10 fresh processes each, against a
# throwaway migrated database (COLDSTART_DATABASE_URL) and Redis (COLDSTART_REDIS_URL); writes
# bench/coldstart.md. Flags: COLDSTART_FLAGS='-runs 10 -warm 5 -only heartbeat,status'.
bench-coldstart:
	$(GO) run ./bench/coldstart $(COLDSTART_FLAGS)

# The dashboard read side: seeds 10,000 machines across 20 clients (series for 500), serves
# the API in-process and replays a dashboard workload over HTTP with and without Redis;
# writes bench/dashboard.md. DATABASE_URL / REDIS_URL when set, else throwaway servers.
# Flags: DASHBOARD_FLAGS='-requests 6000 -speedup 10 -real-pace 150s -wait-load 2'.
bench-dashboard:
	$(GO) run ./bench/dashboard $(DASHBOARD_FLAGS)

# Alert evaluation: BENCH_MACHINES machines (10,000) across clients of 100, 5 rules each
# client, one run's duration (median of 9) and statement count for 1,000 and 10,000
# machines, and the missed-heartbeat → firing delay at the job's cadence; writes bench/alerts.md.
bench-alerts:
	$(WITH_SERVICES) $(GO) test -run '^$$' -bench Alerts -benchtime 1x -count=1 -timeout 30m ./internal/alerteval

migrate:
	$(GO) run ./cmd/optralis migrate

# One bootstrap per Lambda: linux/arm64, static, stripped (GUIDE §7).
build: $(addprefix build-,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do stat -c %s build/$$f/bootstrap | awk -v f=$$f '{ printf "%-12s %10d bytes  %5.1f MiB\n", f, $$1, $$1/1048576 }'; done

# A static pattern rule: make skips implicit (plain %) rules for .PHONY targets.
$(addprefix build-,$(FUNCTIONS)): build-%:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o build/$*/bootstrap ./functions/$*

# CloudFormation templates in cdk.out, offline (no AWS account): the real binaries are
# built first so the templates' asset hashes are the ones `make deploy` uploads.
synth: build
	rm -rf cdk.out
	OPTRALIS_SYNTH_OFFLINE=1 CDK_OUTDIR=cdk.out CDK_CONTEXT_JSON='{"optralis:config":"$(CONFIG)"}' $(GO) run ./infra
	@ls cdk.out/*.template.json

# Deploying needs AWS credentials, a CDK-bootstrapped account/region and your CONFIG
# (infra/README.md). First the base stacks: the CA key (it makes the truststore) and the
# network (the database is peered with it); then everything.
deploy-base:
	@if [ "$(CONFIG)" = "infra/config/example.json" ]; then echo "usage: make deploy-base CONFIG=infra/config/<yours>.json (see infra/README.md)"; exit 1; fi
	$(CDK_CLI) deploy --all -c optralis:config=$(CONFIG) -c optralis:baseOnly=true --require-approval broadening

deploy: build
	@if [ "$(CONFIG)" = "infra/config/example.json" ]; then echo "usage: make deploy CONFIG=infra/config/<yours>.json (see infra/README.md)"; exit 1; fi
	$(CDK_CLI) deploy --all -c optralis:config=$(CONFIG) --require-approval broadening

clean:
	rm -rf build cdk.out

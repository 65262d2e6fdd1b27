# Optralis backend. `make run` starts the local stack; `make test` runs every suite
# against real PostgreSQL and Redis (throwaway servers unless TEST_DATABASE_URL /
# TEST_REDIS_URL are set).

GO        ?= go
FUNCTIONS := $(notdir $(wildcard functions/*))
LAMBDA_FLAGS := -trimpath -tags lambda.norpc -ldflags='-s -w'

.PHONY: run test test-go test-timescale vet build migrate bench-compression clean $(addprefix build-,$(FUNCTIONS))

# The timescale-mode tests must not skip silently under make: a missing Node fails them.
export OPTRALIS_REQUIRE_TIMESCALE = 1
WITH_SERVICES = $(GO) run ./internal/testenv/withservices

run:
	$(GO) build -o bin/optralis ./cmd/optralis
	./bin/optralis dev

# Everything: every package's tests, which include the timescale-mode suite.
test: vet test-go

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

test-go:
	$(WITH_SERVICES) $(GO) test -count=1 -timeout 20m ./...

# The migration and storage suite in timescale mode only: against the PGlite TimescaleDB
# sidecar (tools/tsdb-sidecar), or the real server of TIMESCALE_TEST_URL when set.
test-timescale:
	$(WITH_SERVICES) $(GO) test -count=1 -timeout 20m -run Timescale ./...

# TimescaleDB compression of realistic agent data (BENCH_MACHINES, BENCH_DAYS).
bench-compression:
	$(WITH_SERVICES) $(GO) test -run '^$$' -bench TimescaleCompression -benchtime 1x -timeout 60m ./internal/series

migrate:
	$(GO) run ./cmd/optralis migrate

# One bootstrap per Lambda: linux/arm64, static, stripped (GUIDE §7).
build: $(addprefix build-,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do printf '%-12s %s bytes\n' $$f $$(stat -c %s build/$$f/bootstrap); done

build-%:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o build/$*/bootstrap ./functions/$*

clean:
	rm -rf build

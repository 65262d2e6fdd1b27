# Optralis backend. `make run` starts the local stack; `make test` runs every suite
# against real PostgreSQL and Redis (throwaway servers unless TEST_DATABASE_URL /
# TEST_REDIS_URL are set).

GO        ?= go
FUNCTIONS := $(notdir $(wildcard functions/*))
LAMBDA_FLAGS := -trimpath -tags lambda.norpc -ldflags='-s -w'

.PHONY: run test test-go vet build migrate clean $(addprefix build-,$(FUNCTIONS))

run:
	$(GO) build -o bin/optralis ./cmd/optralis
	./bin/optralis dev

test: vet test-go

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

test-go:
	$(GO) run ./internal/testenv/withservices $(GO) test -count=1 -timeout 20m ./...

migrate:
	$(GO) run ./cmd/optralis migrate

# One bootstrap per Lambda: linux/arm64, static, stripped (GUIDE §7).
build: $(addprefix build-,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do printf '%-12s %s bytes\n' $$f $$(stat -c %s build/$$f/bootstrap); done

build-%:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o build/$*/bootstrap ./functions/$*

clean:
	rm -rf build

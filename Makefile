# DashStream gateway. `make test` is what CI runs (.ci/run): gofmt, vet,
# staticcheck, then go test -race with integration tests against a real Kafka
# and Redis started by scripts/, then short fuzz runs. See scripts/test.sh.

SHELL := /bin/bash
GO    ?= go

# Every go command here and in scripts/ runs the Go release of go.mod's toolchain
# line, exported as GOTOOLCHAIN (scripts/toolchain.sh says why; the go command
# fetches it from the Go module proxy once).
GO_TOOLCHAIN := $(shell awk '$$1 == "toolchain" { print $$2; exit }' go.mod)
ifeq ($(GO_TOOLCHAIN),)
$(error go.mod has no toolchain line (toolchain go1.N.P))
endif
export GOTOOLCHAIN := $(GO_TOOLCHAIN)

# Each fuzz target's run time in `make test` and `make fuzz`.
FUZZTIME ?= 30s
export FUZZTIME

.PHONY: test unit fmt-check vet staticcheck services-up services-down fuzz browser js-client chaos proto build demo \
	image release-snapshot deploy-check bench-subscriptions

## test: everything CI checks; services are stopped even when a phase fails
test:
	@bash scripts/test.sh all

## unit: go test -race -short without services (integration tests skip)
unit:
	env -u KAFKA_BROKERS -u REDIS_URL -u DASHSTREAM_INTEGRATION $(GO) test -race -short -count=1 ./...

fmt-check vet staticcheck services-up services-down fuzz browser:
	@bash scripts/test.sh $@

## js-client: the JavaScript client's checks and tests (clients/js), on the
## services of `make services-up`
js-client:
	@bash scripts/test.sh js-client

## chaos: the whole fault-injection suite (internal/chaos, at most 15 min);
## `make test` runs its fast part
chaos:
	@bash scripts/test.sh chaos

proto:
	bash proto/generate.sh

# The build stamps /version's git_sha and build_date (GOFLAGS may disable
# the go command's own VCS stamping).
BUILDINFO := github.com/dashflow/dashstream-gateway/internal/buildinfo
LDFLAGS   := -X $(BUILDINFO).GitSHA=$(shell git rev-parse HEAD 2>/dev/null) -X $(BUILDINFO).BuildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/dashstream ./cmd/dashstream

demo:
	$(GO) run ./cmd/dashstream demo

# The container image (Containerfile) built with buildah, as root; see scripts/image.sh.
IMAGE ?= dashstream:dev
image:
	bash scripts/image.sh $(IMAGE)

# Every release archive and checksums.txt into dist/, without a tag or publishing.
GORELEASER := github.com/goreleaser/goreleaser/v2@v2.15.1
release-snapshot:
	CGO_ENABLED=0 $(GO) run $(GORELEASER) release --snapshot --clean --skip=publish

## bench-subscriptions: the subscription benchmarks at full size (filtered, types, v1 vs v2, JSON, join) and their floors, one summary table
## (BENCH_ARGS=--quick: small sizes; run the full sizes on a quiet machine)
bench-subscriptions:
	bash scripts/bench-subscriptions.sh $(BENCH_ARGS)

## deploy-check: goreleaser, Helm chart, alert rules, systemd unit, dashboard metrics, image
deploy-check:
	bash scripts/deploy-check.sh

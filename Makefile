# videoshard developer entry points. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
TOOLS := $(CURDIR)/.tools

PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
STATICCHECK_VERSION := v0.8.2

.PHONY: help build test test-short lint proto proto-check demo bench fuzz soak clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the worker and master binaries into ./bin
	$(GO) build -o $(BIN)/ ./cmd/...

test: build ## run every test (unit and end-to-end, ffmpeg and prometheus included, installed if missing) with the race detector
	bash scripts/ensure-deps.sh
	$(GO) test -race -count=1 -timeout 20m ./...

lint: proto-check $(TOOLS)/staticcheck ## gofmt, go vet, staticcheck, and a stale-protobuf check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

proto: $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc ## regenerate proto/*.pb.go with pinned plugins
	protoc --proto_path=proto \
		--plugin=protoc-gen-go=$(TOOLS)/protoc-gen-go \
		--plugin=protoc-gen-go-grpc=$(TOOLS)/protoc-gen-go-grpc \
		--go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		proto/videoshard.proto

proto-check: proto ## fail if the committed generated code differs from a fresh generation
	@git diff --exit-code -- proto/ || { echo "proto/*.pb.go is stale: run 'make proto' and commit"; exit 1; }

clean:
	rm -rf $(BIN) $(TOOLS)

demo: ## the main job end to end: a worker encodes a clip with ffmpeg (installs ffmpeg if missing)
	bash scripts/demo.sh

bench: ## the benchmarks behind the figures in the issues, as a summary (scripts/bench.sh; ~5 min, needs ffmpeg)
	bash scripts/bench.sh

testdata: ## regenerate testdata/ clips from ffmpeg's lavfi sources
	bash scripts/make-testdata.sh

# Robustness: crash harness, load test, fuzzing.
.PHONY: crashtest loadtest fuzz

CRASH_CYCLES ?= 60
FUZZTIME ?= 30s
# Minimising each new input must not eat the run: slow targets (a store
# opened per input) would otherwise stall for up to a minute.
FUZZMINIMIZETIME ?= 5s
# package:target for every native fuzz target; their seed corpora live in
# <package>/testdata/fuzz/<target>/ and run with plain `go test`.
FUZZ_TARGETS := storage:FuzzValidateVideoID storage:FuzzResolveLocation storage:FuzzMetadataJSON \
	cmd/worker:FuzzConfig grpcapi:FuzzUploadFrames

crashtest: ## kill -9 the real worker under concurrent writes CRASH_CYCLES times (60) and check the store after each restart
	VIDEOSHARD_CRASH_CYCLES=$(CRASH_CYCLES) $(GO) test -count=1 -timeout 30m -run '^TestCrashKill9$$' -v ./cmd/worker/

loadtest: build ## 64 clients for 30 s against a simulated worker: ops/s, p50/p99 per op, errors, memory (scripts/loadtest.sh)
	bash scripts/loadtest.sh

fuzz: ## run every fuzz target for FUZZTIME (30s) each; a failure is saved under testdata/fuzz
	@failed=""; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./$$pkg/ || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failing targets:$$failed"; exit 1; fi

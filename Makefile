# berth: the two commands of README.md, and their parts.
#   make run    install runtime dependencies, build berthd (release), run it in the foreground
#   make test   install test dependencies, run every test (unit, integration, crictl, critest)

BERTHD_ARGS ?=

.PHONY: run test build deps-run deps-test clean

run: deps-run
	cargo build --release -p berthd -p berth-shim
	./target/release/berthd $(BERTHD_ARGS)

test: deps-test
	tests/run.sh

build:
	cargo build --workspace

deps-run:
	scripts/install-deps.sh run

deps-test:
	scripts/install-deps.sh test

clean:
	cargo clean

# berth: the two commands of README.md, and their parts.
#   make run      install runtime dependencies; build and install berthd, the small
#                 berth-shim and crictl (make install); run berthd in the foreground
#   make test     install test dependencies, run every test (unit, integration, crictl, critest)
#   make install  build berthd and berthctl (release) and berth-shim (profile shim, static)
#                 and install them into $(PREFIX)/bin, with crictl and /etc/crictl.yaml
#                 (scripts/install.sh)

BERTHD_ARGS ?=
PREFIX ?= /usr/local

.PHONY: run test build install deps-run deps-test clean

run: install
	$(PREFIX)/bin/berthd $(BERTHD_ARGS)

install: deps-run
	PREFIX=$(PREFIX) scripts/install.sh

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

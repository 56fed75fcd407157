# berth: the two commands of README.md, and their parts.
#   make run      install runtime dependencies; build and install berthd, the small
#                 berth-shim and crictl (make install); run berthd in the foreground
#   make test     install test dependencies, run every test (unit, integration, crictl, critest)
#   make install  build berthd and berthctl (release) and berth-shim (profile shim, static)
#                 and install them into $(PREFIX)/bin, with crictl and /etc/crictl.yaml
#                 (scripts/install.sh)
#   make node-e2e Kubernetes' whole non-serial node conformance set against berthd
#                 (tests/node-e2e/run.sh --full; about 1 h on 2 cores)
#   make node-test  the kind-style node: builds the node image (deploy/node/build.sh) and boots
#                 it with systemd-nspawn: berthd under systemd with the systemd cgroup driver,
#                 crictl's lifecycle, critest and kubelet with static pods inside
#                 (deploy/node/test.sh --kubelet; also the last step of make test)
#   make fuzz     the gRPC fuzzer for longer (FUZZ_SECONDS, default 1800); make fuzz-corpus
#                 replays only its corpus (tests/fuzz/README.md)

BERTHD_ARGS ?=
PREFIX ?= /usr/local
FUZZ_SECONDS ?= 1800

.PHONY: run test node-e2e node-test install fuzz fuzz-corpus build deps-run deps-test clean

run: install
	$(PREFIX)/bin/berthd $(BERTHD_ARGS)

install: deps-run
	PREFIX=$(PREFIX) scripts/install.sh

test: deps-test
	tests/run.sh

node-e2e: deps-test
	cargo build -p berthd -p berth-shim
	tests/node-e2e/run.sh --full

node-test: deps-test
	deploy/node/build.sh
	deploy/node/test.sh --kubelet

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

# dowguard — the front door. CI runs `.ci/run`, which runs `make test`.
#
#   make setup   check the Rust toolchain and components the repo needs
#   make lint    rustfmt --check and clippy with warnings as errors
#   make test    lint, every test, and the check that the invariant tests can fail
#   make bench   the benchmark figures quoted in the README
#   make build   release build of the workspace
#   make demo    the main job, run locally

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
# nextest when the machine has it (it does here and in CI), plain cargo test if not.
TEST_RUNNER := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "nextest run" || echo test)

.PHONY: help setup lint test test-rust mutations bench build demo clean

help:
	@grep -E '^#   make' $(MAKEFILE_LIST) | sed 's/^#   //'

setup:
	@command -v $(CARGO) >/dev/null || { echo "cargo is missing: install Rust with rustup"; exit 1; }
	@$(CARGO) --version
	@$(CARGO) fmt --version >/dev/null || { echo "rustfmt is missing: rustup component add rustfmt"; exit 1; }
	@$(CARGO) clippy --version >/dev/null || { echo "clippy is missing: rustup component add clippy"; exit 1; }
	$(CARGO) fetch --locked

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test-rust: setup
	$(CARGO) $(TEST_RUNNER) --workspace --locked
	$(CARGO) test --workspace --doc --locked

mutations: setup
	python3 shared/domain/scripts/mutations.py

test: lint test-rust mutations

bench: setup
	$(CARGO) bench --locked -p dowguard-domain --bench decide -- --noplot
	@python3 -c 'import json; e = json.load(open("target/criterion/decide/10k_targets_1h_windows/new/estimates.json")); \
	  print(f"decide pass, 10,000 targets x 60 one-minute windows: {e[\"mean\"][\"point_estimate\"] / 1e6:.2f} ms (target: <= 10 ms)")'

build: setup
	$(CARGO) build --workspace --release --locked

demo: setup
	$(CARGO) test --locked -p dowguard-domain --test decide -- --nocapture flood_is_throttled

clean:
	$(CARGO) clean

# dowguard — the front door. CI runs `.ci/run`, which runs `make test`.
#
#   make setup   check the Rust toolchain and components the repo needs
#   make lint    rustfmt --check and clippy with warnings as errors
#   make test    lint, every test, the check that the invariant tests can fail, cargo deny
#   make deny    licences, bans, sources and RustSec advisories of every dependency
#   make bench   the benchmark figures quoted in the README
#   make build   release build of the workspace
#   make demo    the main job, run locally

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
HARNESS_REQUIREMENTS := tests/harness/requirements.txt
# nextest when the machine has it (it does here and in CI), plain cargo test if not.
TEST_RUNNER := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "nextest run" || echo test)

.PHONY: help setup lint test test-rust mutations deny bench build demo clean

help:
	@grep -E '^#   make' $(MAKEFILE_LIST) | sed 's/^#   //'

setup: $(VENV)/.requirements.stamp
	@command -v $(CARGO) >/dev/null || { echo "cargo is missing: install Rust with rustup"; exit 1; }
	@$(CARGO) --version
	@$(CARGO) fmt --version >/dev/null || { echo "rustfmt is missing: rustup component add rustfmt"; exit 1; }
	@$(CARGO) clippy --version >/dev/null || { echo "clippy is missing: rustup component add clippy"; exit 1; }
	$(CARGO) fetch --locked

# The local AWS server for the integration tests (moto, pinned), in .venv;
# reinstalled only when the requirements change.
$(VENV)/.requirements.stamp: $(HARNESS_REQUIREMENTS)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(HARNESS_REQUIREMENTS)
	touch $@

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test-rust: setup
	$(CARGO) $(TEST_RUNNER) --workspace --locked
	$(CARGO) test --workspace --doc --locked

mutations: setup
	python3 shared/domain/scripts/mutations.py

# Dependencies: licences, bans (duplicate versions, wildcards), sources, and RustSec
# advisories from an offline snapshot of the advisory database. cargo-deny is built
# from crates.io into .tools once (pinned); the snapshot archive is unpacked where
# deny.toml's db-path says (the directory name is cargo-deny's for the RustSec URL).
DENY_VERSION := 0.20.2
TOOLS := .tools
ADVISORY_DB_ARCHIVE ?= ../shared/rustsec-advisory-db.tar.gz
ADVISORY_DBS := target/advisory-dbs
ADVISORY_DB := $(ADVISORY_DBS)/advisory-db-3157b0e258782691

$(TOOLS)/bin/cargo-deny:
	$(CARGO) install cargo-deny --locked --quiet --version $(DENY_VERSION) --root $(TOOLS)

$(ADVISORY_DB)/.unpacked: $(ADVISORY_DB_ARCHIVE)
	@test -f $< || { echo "the RustSec advisory snapshot $< is missing: set ADVISORY_DB_ARCHIVE"; exit 1; }
	rm -rf $(ADVISORY_DB) $(ADVISORY_DBS)/advisory-db
	mkdir -p $(ADVISORY_DBS)
	tar xzf $< -C $(ADVISORY_DBS)
	mv $(ADVISORY_DBS)/advisory-db $(ADVISORY_DB)
	touch $@

deny: setup $(TOOLS)/bin/cargo-deny $(ADVISORY_DB)/.unpacked
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(CARGO) deny --offline --locked check --show-stats

test: lint test-rust mutations deny

bench: setup
	$(CARGO) bench --locked -p dowguard-domain --bench decide -- --noplot
	$(CARGO) run --release --locked -p dowguard-cli -- simulate --library --plot docs/simulator-flood.svg
	$(CARGO) bench --locked -p dowguard-sim --bench year
	$(CARGO) test --locked -q -p dowguard-domain --lib guard_cost -- --nocapture | grep functions
	@$(PYTHON) -c 'import json; e = json.load(open("target/criterion/decide/10k_targets_1h_windows/new/estimates.json")); \
	  print(f"decide pass, 10,000 targets x 60 one-minute windows: {e[\"mean\"][\"point_estimate\"] / 1e6:.2f} ms (target: <= 10 ms)")'

build: setup
	$(CARGO) build --workspace --release --locked

demo: setup
	$(CARGO) run --locked -q -p dowguard-tests --example demo

clean:
	$(CARGO) clean

# dowguard — the front door. CI runs `.ci/run`, which runs `make test`.
#
#   make setup   check the Rust toolchain and components the repo needs
#   make lint    rustfmt --check and clippy with warnings as errors
#   make test    lint, every test, the check that the invariant tests can fail, cargo deny
#   make deny    licences, bans, sources and RustSec advisories of every dependency
#   make infra-check  sam validate --lint, cfn-lint (serverless rules), checkov on infra/template.yaml and infra/org.yaml
#   make org-package  the Organization's stack set: plain template, org.yaml and the zips in $(ORG_OUT) (offline)
#   make bench   the benchmark figures quoted in the README
#   make build   the Lambda bootstraps for arm64 as zips (cargo lambda), with their sizes
#   make demo    the main job, run locally

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
HARNESS_REQUIREMENTS := tests/harness/requirements.txt
# SAM CLI, aws-sam-translator, cargo-lambda and zig; and the template linters. Two
# environments because the SAM CLI's boto3 pins conflict with checkov's.
SAM_VENV := .venv-sam
SAM_REQUIREMENTS := infra/requirements-sam.txt
LINT_VENV := .venv-lint
LINT_REQUIREMENTS := infra/requirements-lint.txt
# SAM and the translator read a region and credentials even offline; nothing is sent.
OFFLINE_AWS := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline SAM_CLI_TELEMETRY=0
# Headless Chromium for the widgets' test: Debian's package (see its rule below).
CHROMIUM := /usr/bin/chromium
# nextest when the machine has it (it does here and in CI), plain cargo test if not.
TEST_RUNNER := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "nextest run" || echo test)

.PHONY: help setup lint test test-rust mutations deny infra-check org-package bench build demo clean

help:
	@grep -E '^#   make' $(MAKEFILE_LIST) | sed 's/^#   //'

setup: $(VENV)/.requirements.stamp $(SAM_VENV)/.requirements.stamp $(LINT_VENV)/.requirements.stamp $(CHROMIUM)
	@command -v $(CARGO) >/dev/null || { echo "cargo is missing: install Rust with rustup"; exit 1; }
	@$(CARGO) --version
	@$(CARGO) fmt --version >/dev/null || { echo "rustfmt is missing: rustup component add rustfmt"; exit 1; }
	@$(CARGO) clippy --version >/dev/null || { echo "clippy is missing: rustup component add clippy"; exit 1; }
	$(CARGO) fetch --locked

# Headless Chromium for the console widgets' test (tests/tests/widget.rs opens each
# widget and screenshots it): Debian's package, installed only where it is missing.
$(CHROMIUM):
	test -x $(CHROMIUM) || { apt-get update && apt-get install -y chromium; }

# The local AWS server for the integration tests (moto, pinned), in .venv;
# reinstalled only when the requirements change.
$(VENV)/.requirements.stamp: $(HARNESS_REQUIREMENTS)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(HARNESS_REQUIREMENTS)
	touch $@

$(SAM_VENV)/.requirements.stamp: $(SAM_REQUIREMENTS)
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	time $(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(SAM_REQUIREMENTS)
	touch $@

$(LINT_VENV)/.requirements.stamp: $(LINT_REQUIREMENTS)
	test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	time $(LINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(LINT_REQUIREMENTS)
	touch $@

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test-rust: setup
	$(CARGO) $(TEST_RUNNER) --workspace --locked
	$(CARGO) test --workspace --doc --locked
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p dowguard-domain --no-deps --locked

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

# The SAM template: SAM's own validation with cfn-lint, cfn-lint's serverless rules,
# and checkov. Suppressed findings carry their reasons in the template's Metadata.
# The exact IAM actions per role are checked by tests/tests/infra.rs (in test-rust).
infra-check: setup
	$(OFFLINE_AWS) $(SAM_VENV)/bin/sam validate --lint -t infra/template.yaml
	$(LINT_VENV)/bin/cfn-lint infra/template.yaml -a cfn_lint_serverless.rules
	$(LINT_VENV)/bin/checkov -f infra/template.yaml --framework cloudformation --skip-download --compact --quiet
	$(OFFLINE_AWS) $(SAM_VENV)/bin/sam validate --lint -t infra/org.yaml
	$(LINT_VENV)/bin/cfn-lint infra/org.yaml
	$(LINT_VENV)/bin/checkov -f infra/org.yaml --framework cloudformation --skip-download --compact --quiet
	$(OFFLINE_AWS) $(SAM_VENV)/bin/python infra/org_package.py $(ORG_OUT)/check >/dev/null
	$(LINT_VENV)/bin/cfn-lint $(ORG_OUT)/check/member.json
	$(LINT_VENV)/bin/checkov -f $(ORG_OUT)/check/member.json --framework cloudformation --skip-download --compact --quiet

# An Organization's deployment (docs/multi-account.md): infra/template.yaml transformed
# offline to plain CloudFormation (a service-managed stack set takes no transform), the
# management account's infra/org.yaml and the four function zips of `make build`, in
# $(ORG_OUT). No AWS credentials: uploading is the guide's next step.
ORG_OUT ?= target/org
org-package: build
	$(OFFLINE_AWS) $(SAM_VENV)/bin/python infra/org_package.py $(ORG_OUT) target/lambda
	@echo "next: upload the zips to s3://PREFIX-REGION/dowguard/ in every region and member.json to one bucket,"
	@echo "      then deploy org.yaml in the management account (docs/multi-account.md, steps 3-5)"

test: lint test-rust mutations deny infra-check

bench: setup
	$(CARGO) bench --locked -p dowguard-domain --bench decide -- --noplot
	$(CARGO) run --release --locked -p dowguard-cli -- simulate --library --plot docs/simulator-flood.svg
	$(CARGO) bench --locked -p dowguard-sim --bench year
	$(CARGO) bench --locked -p dowguard-sim --bench backtest
	$(CARGO) test --locked -q -p dowguard-domain --lib guard_cost -- --nocapture | grep -o '[0-9]* functions: .*'
	$(CARGO) run --release --locked -p dowguard-tests --example inventory_bench
	$(CARGO) build --release --locked -p dowguard-evaluator
	$(CARGO) run --release --locked -p dowguard-tests --example evaluator_rss
	@$(PYTHON) shared/domain/scripts/bench_figures.py target/criterion

# What `sam build` deploys: each function's `bootstrap` for provided.al2023 on arm64,
# cross-built with cargo-lambda and zig from .venv-sam, zipped in target/lambda/NAME/.
build: setup
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 --locked \
	  -p dowguard-evaluator -p dowguard-alarm-responder -p dowguard-inventory -p dowguard-widget --output-format zip
	@for zip in target/lambda/*/bootstrap.zip; do \
	  printf '%-48s %6s KiB\n' "$$zip" "$$(( $$(stat -c %s "$$zip") / 1024 ))"; done

demo: setup
	$(CARGO) run --locked -q -p dowguard-tests --example demo

clean:
	$(CARGO) clean

# Entry points for people and CI. Everything needs root (network namespaces).
#   make demo   bring up the built-in lab and run the main playbook against it
#   make test   every test (scripts/test.sh): unit, lab integration (sharded), firewalld (serial), module tests
#               and ansible-test sanity on each supported ansible-core, ansible-lint, molecule; a time table at the end
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: deps demo test unit integration sanity lint molecule compat bench lab-up lab-down build clean
deps:
	@bash scripts/bootstrap.sh
demo: deps
	@bash scripts/demo.sh
# deps is timed too: its seconds go into the time table that scripts/test.sh prints
test:
	@start=$$(date +%s); bash scripts/bootstrap.sh && MDMOPS_DEPS_SECONDS=$$(( $$(date +%s) - start )) bash scripts/test.sh
unit: deps
	@$(PY) -m pytest tests/unit
integration: deps
	@$(PY) -m pytest tests/integration
sanity: deps
	@bash scripts/sanity.sh
lint: deps
	@bash scripts/test.sh lint
molecule: deps
	@bash scripts/test.sh molecule
compat: deps
	@bash scripts/compat.sh
bench: deps
	@$(PY) bench/firewall_bench.py
	@$(PY) bench/push_bench.py
lab-up: deps
	@$(PY) -m lab up
lab-down:
	@$(PY) -m lab down
build: deps
	@.venv/bin/ansible-galaxy collection build --force --output-path dist .
clean: lab-down
	rm -rf .venv .venv-compat dist .pytest_cache

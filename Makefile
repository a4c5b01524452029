# Entry points for people and CI. Everything needs root (network namespaces).
#   make demo   bring up the built-in lab and run the main playbook against it
#   make test   every test: unit, lab integration, molecule, ansible-test sanity, ansible-lint, ansible-core 2.17/2.18
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: deps demo test unit integration sanity lint molecule compat bench lab-up lab-down build clean
deps:
	@bash scripts/bootstrap.sh
demo: deps
	@bash scripts/demo.sh
test: deps
	@bash scripts/test.sh
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
lab-up: deps
	@$(PY) -m lab up
lab-down:
	@$(PY) -m lab down
build: deps
	@.venv/bin/ansible-galaxy collection build --force --output-path dist .
clean: lab-down
	rm -rf .venv dist .pytest_cache

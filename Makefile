# rook-py developer tasks. `make demo` and `make test` are the two set-up commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install tools test test-real test-quick lint typecheck demo bench faults manifests clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# promtool and amtool from Debian's prometheus packages; tests that need them skip with a reason otherwise.
tools:
	@scripts/install-tools.sh

lint: install
	$(BIN)/ruff check rook_py tests bench cmd scripts
	$(BIN)/mypy rook_py/framework rook_py/envtest
	$(BIN)/lint-imports

test: install tools lint
	$(BIN)/python -m pytest -q

# The same suite against a real etcd + kube-apiserver ($$KUBEBUILDER_ASSETS, else ../shared/envtest-assets).
test-real: install tools
	@scripts/test-real.sh

test-quick: install
	$(BIN)/python -m pytest -q -x

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench

# Full counts; F7-F10 on a real control plane ($$KUBEBUILDER_ASSETS, else ../shared/envtest-assets).
faults: install
	@scripts/faults.sh

manifests: install
	$(BIN)/python scripts/gen_manifests.py
	$(BIN)/python scripts/gen_reference.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache

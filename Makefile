# Tests pin BLAS to one thread per worker: two xdist workers on two cores.
# The two commands of the README: `make demo` and `make test`. Both build .venv on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
UV     := $(VENV)/bin/uv
DEMO_OUT ?= demo-output

.PHONY: demo test validate bench lint lock clean

# Installs come from the lock file (exact versions and hashes of every dependency, for Python 3.12+):
# uv (the lock tool) is bootstrapped at the version the lock names, then `uv pip sync` makes the venv
# exactly the lock, then the package itself goes in without touching its dependencies.
# pyproject.toml keeps the lower bounds for library users; `make lock` re-resolves the newest versions.
$(STAMP): pyproject.toml $(LOCK)
	@PYBIN=$$(scripts/find-python) || exit 1; \
	  if [ ! -x $(PY) ]; then echo "creating $(VENV) with $$PYBIN"; "$$PYBIN" -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install --quiet --disable-pip-version-check "$$(grep -m1 '^uv==' $(LOCK) | cut -d' ' -f1)"
	$(UV) pip sync --quiet --python $(PY) --require-hashes $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)

lock: $(STAMP)
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.12 --universal --generate-hashes \
	  --upgrade --quiet --custom-compile-command "make lock" -o $(LOCK)
	@echo "$(LOCK) re-resolved; 'make test' installs it"

demo: $(STAMP)
	$(VENV)/bin/bayesbond demo --out $(DEMO_OUT)

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile -q

validate: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile -q -m validate

bench: $(STAMP)
	$(UV) pip install --quiet --python $(PY) -e '.[dev,bench]'  # the bench peers are not locked
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check bayesbond tests examples benchmarks

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info

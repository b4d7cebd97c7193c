# The README's two commands: `make demo` and `make test`. Everything else is
# reached through them, or is a developer's tool (`make bench`, `make lock`).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TYPECHECK := build/typecheck

.PHONY: test lint typecheck codegen codegen-check pytest demo demo-jpg demo-nih demo-chexpert bench lock clean

$(STAMP): pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "pip==26.3"
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,torch]'
	touch $@

test: $(STAMP) codegen-check lint typecheck pytest

codegen: $(STAMP)
	$(BIN)/datathon-etl codegen

codegen-check: $(STAMP)
	$(BIN)/datathon-etl codegen --check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy needs the installed module names (datathon_etl.*), so it reads the
# top-level folders through a link tree that mirrors the installed layout.
typecheck: $(STAMP)
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/datathon_etl
	for d in framework datasets codegen generated; do ln -s ../../../$$d $(TYPECHECK)/datathon_etl/$$d; done
	cd $(TYPECHECK) && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p datathon_etl
	MYPYPATH=$(TYPECHECK) $(BIN)/mypy tests bench

pytest: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m datathon_etl.datasets.mimic_cxr.demo

# The same, for the current PhysioNet release (MIMIC-CXR-JPG 2.x layout).
demo-jpg: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m datathon_etl.datasets.mimic_cxr_jpg.demo

# NIH ChestX-ray14 (findings multi-hot, split from list files) on a synthetic sample.
demo-nih: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m datathon_etl.datasets.nih_cxr14.demo

# CheXpert (CheXpert's codes, the release folder in the CSVs' paths) on a synthetic sample.
demo-chexpert: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m datathon_etl.datasets.chexpert.demo

bench: $(STAMP)
	$(BIN)/python -m bench

# torch's local version (+cpu) names a build, not a release: the pin is the release.
lock: $(STAMP)
	head -n 2 constraints.txt > constraints.txt.new
	$(BIN)/pip freeze --all --exclude-editable --exclude pip | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' \
		| sort -f >> constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) build demo-output bench-output *.egg-info

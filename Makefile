# Two commands on a fresh machine: `make demo` (install, then run the main job on embedded
# defaults) and `make test`. Everything installs into .venv from the pinned constraints.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test ui validate-defs clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,ner]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/deid-pipeline demo

test: $(STAMP)
	$(BIN)/pytest

ui: $(STAMP)
	@# The demo's instance (the one $$DAGSTER_HOME names, else .dagster_home) and its key,
	@# unless the environment brings one.
	home=$${DAGSTER_HOME:-$(CURDIR)/.dagster_home}; mkdir -p "$$home"; \
	[ -f "$$home/dagster.yaml" ] || cp infra/dagster.local.yaml "$$home/dagster.yaml"; \
	if [ -z "$$DEID_SECRET$$DEID_SECRET_FILE" ]; then \
		export DEID_SECRET_FILE="$$home/deid_secret"; fi; \
	DAGSTER_HOME="$$home" $(BIN)/dagster dev -w workspace.yaml

validate-defs: $(STAMP)
	$(BIN)/dagster definitions validate -w workspace.yaml

clean:
	rm -rf data .dagster_home

# The two commands of the README:
#   make app    set up (first time), generate the default corpora, start the app
#   make test   set up (first time), run the whole test suite
# Both create or refresh .venv on their own. AFFECTLAB_TORCH overrides the torch requirement.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
ADDRESS ?= 127.0.0.1
PYTEST_ARGS ?=

.PHONY: app test test-fast venv system-deps lint format clean

venv:
	@bash scripts/venv.sh

system-deps:
	@bash scripts/system-deps.sh

app: venv
	$(VENV)/bin/affectlab app --port $(PORT) --address $(ADDRESS)

test: venv system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check core app tests

format: venv
	$(VENV)/bin/ruff format core app tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

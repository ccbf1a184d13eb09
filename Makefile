# Placeholder, replaced in the next commit by the full run/test targets.
PY ?= python3
VENV := .venv
test:
	$(VENV)/bin/pytest
.PHONY: test

# Fresh machine: `make demo` or `make test` (both run infra/install.sh first).
PYTHON ?= python
export PYTHON

# Clients of the `make up` Ray cluster (demo, scripts): its address and token auth mode.
RAY_ADDRESS ?= 127.0.0.1:6385
RAY_AUTH_MODE ?= token

.PHONY: install up down status test lint demo

install:
	infra/install.sh

up: install
	$(PYTHON) -m infra.stack up

down:
	$(PYTHON) -m infra.stack down

status:
	$(PYTHON) -m infra.stack status

# The pytest session fixtures start their own Redis/Kafka/NTP on other ports (tests/conftest.py),
# so a running `make up` stack does not collide with them.
test: install
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy domain store actors serve_app.py infra benchmarks

# The demo is a crowd from one address: it lifts the per-client rate limits (settings) for its stack.
demo: export JOIN_RATE_PER_S ?= 1000000
demo: export STATUS_RATE_PER_S ?= 1000000
demo: up
	@if [ -f demo.py ]; then \
		RAY_ADDRESS=$(RAY_ADDRESS) RAY_AUTH_MODE=$(RAY_AUTH_MODE) $(PYTHON) demo.py; \
	else \
		echo "demo.py is not written yet; the stack is up (make down to stop it)"; \
	fi

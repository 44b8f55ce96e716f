# Fresh machine: `make demo` or `make test` (both run infra/install.sh first).
PYTHON ?= python
export PYTHON

.PHONY: install up down status env test test-chaos lint demo bench chaos-matrix backup restore

install:
	infra/install.sh

# HA=1: HA mode: Redis as a primary, two replicas and three Sentinels (infra/sentinel.py);
# Kafka as a three-node cluster, topics with three replicas and two in sync (infra/kafka_cluster.py).
up: install
	$(PYTHON) -m infra.stack up $(if $(filter 1,$(HA)),--ha)

down:
	$(PYTHON) -m infra.stack down

status:
	$(PYTHON) -m infra.stack status

# A consistent backup of the stack's state (Redis snapshot, ledger and small logs with their
# offsets, event definitions, a manifest), and its restore into empty services (infra/backup.py).
backup:
	$(PYTHON) -m infra.backup backup $(DIR)

restore:
	@test -n "$(DIR)" || { echo "usage: make restore DIR=<backup folder>"; exit 2; }
	$(PYTHON) -m infra.backup restore $(DIR)

# What a shell needs to talk to the stack: eval "$$(make -s env)"
env:
	@$(PYTHON) -m infra.stack env

# The pytest session fixtures start their own Redis/Kafka/NTP on other ports (tests/conftest.py),
# so a running `make up` stack does not collide with them.
test: install
	$(PYTHON) -m pytest -q

# Only the fault-injection tests (marker `chaos`, also part of `make test`): the small-scale matrix.
test-chaos: install
	$(PYTHON) -m pytest -q -m chaos

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy domain store actors replica api serve_app.py infra benchmarks tests

# The demo is a crowd from one address: it lifts the per-client rate limits (settings) for its stack.
# Its fans leave when a hold is refused, so their admissions lapse after 30 s (not 30 min) and
# give the seats they were counted against back to those still waiting.
demo: export JOIN_RATE_PER_S ?= 1000000
demo: export STATUS_RATE_PER_S ?= 1000000
demo: export SIGNIN_RATE_PER_S ?= 1000000
demo: export USER_RATE_PER_S ?= 1000000
demo: export ADMISSION_TTL_S ?= 30
demo: up
	$(PYTHON) demo.py

# The on-sale benchmark (benchmarks/onsale): its own Redis, Kafka, NTP, Ray and Serve on its own
# ports, the crowd, the audit, the baselines; the report under benchmarks/results/onsale/<time>/.
# BENCH_ARGS adds flags, e.g. BENCH_ARGS="--chaos kill-block@10 --base-url http://127.0.0.1:8000".
# One benchmark at a time on a machine: the shared lock waits for any other.
BENCH_USERS ?= 1000000
BENCH_SEATS ?= 20000
bench: install
	flock /tmp/ticketing-bench.lock $(PYTHON) -m benchmarks.onsale --users $(BENCH_USERS) \
		--seats $(BENCH_SEATS) $(BENCH_ARGS)

# One on-sale per fault (benchmarks/chaos_matrix.py, 20,000 users, ~2-3 min each), RTO / RPO table
# in benchmarks/results/chaos_matrix.{json,md}. CHAOS_ARGS e.g. "--only kill-room,restart-redis".
chaos-matrix: install
	flock /tmp/ticketing-bench.lock $(PYTHON) -m benchmarks.chaos_matrix $(CHAOS_ARGS)

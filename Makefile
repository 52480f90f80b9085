# One entry point for users and CI. Everything a target needs is set up by the target itself;
# when all is in place, setting up again takes a second (stamp files).
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
# Node 20 still runs the CDK but is past its end of life; the README says so once, instead of a
# banner on every synth.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# Extra arguments for the CDK CLI or the sandbox, e.g. make deploy ARGS="--profile dev"
ARGS ?=
CDK := cd cdk && npx --no-install cdk

.PHONY: setup test lint run bench synth bootstrap deploy diff destroy constraints clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements-dev.txt constraints.txt cdk/requirements.txt sandbox/requirements.txt sandbox/pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	# The sandbox package itself, editable: the same code as `python -m sandbox` from here, plus
	# the cdk-sandbox command and the cdk_sandbox pytest fixture, as a user installs them.
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e ./sandbox
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	touch $@

lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest $(ARGS)

synth: setup
	$(CDK) synth --quiet $(ARGS)

# The whole system on this machine: sandbox options through ARGS, e.g. ARGS="--port 4001 --reset".
# Watching by default: the sandbox synthesizes with --no-staging itself, so a saved handler is
# what the next invocation runs; ARGS=--no-watch synthesizes as a deploy does and runs that.
run: setup
	$(if $(filter --no-watch,$(ARGS)),$(CDK) synth --quiet)
	$(PY) -m sandbox up --watch $(ARGS)

# Latency, throughput and memory of the app in the sandbox, against a floor measured in the same
# run; a table on stdout, JSON and SVG under bench/results/. Options: ARGS="--help".
bench: synth
	$(PY) -m bench $(ARGS)

bootstrap: setup
	$(CDK) bootstrap $(ARGS)

deploy: setup
	$(CDK) deploy $(ARGS)

diff: setup
	$(CDK) diff $(ARGS)

destroy: setup
	$(CDK) destroy $(ARGS)

# Re-pin every Python package after changing a requirements file.
constraints: setup
	$(VENV)/bin/pip freeze --exclude-editable | sed '1i # Every Python package, direct or not, at the version CI tests with: '"'"'make constraints'"'"' rewrites it.' > constraints.txt

clean:
	rm -rf $(VENV) node_modules cdk/cdk.out .sandbox

# helpdesk-core developer and CI entry points.
#
#   make deps    install missing Debian packages (dovecot, postgresql, openssl, redis-server, chromium); needs root or sudo
#   make venv    create .venv and install the project + plugins in editable mode with test extras
#   make test    deps + venv, then run the whole pytest suite (PYTEST_ARGS=... to narrow it)
#   make demo    run demo/run.sh with the venv on PATH
#   make bench   run bench/run.py (BENCH_ARGS=... passed through)
#   make clean   remove the venv, caches and build artefacts
#
# The test suite starts its own private Dovecot, PostgreSQL and Redis on 127.0.0.1 (see
# helpdesk_core/testing); the system services are never used.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
.ONESHELL:
.DEFAULT_GOAL := test

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_ARGS  ?=
APT_PACKAGES := dovecot-core dovecot-imapd dovecot-pop3d postgresql openssl redis-server chromium fonts-dejavu-core

# Editable installs: the core with test extras, plus every plugin that has a pyproject.toml.
PLUGIN_DIRS  := $(patsubst %/pyproject.toml,%,$(wildcard plugins/mail_generic/pyproject.toml plugins/mail_google_oauth/pyproject.toml plugins/mail_microsoft_oauth/pyproject.toml))
VENV_STAMP   := $(VENV)/.installed

.PHONY: deps venv test demo bench clean

deps:
	@missing=()
	command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing+=("dovecot binary")
	[ -e /usr/lib/dovecot/imap ] || missing+=("/usr/lib/dovecot/imap")
	[ -e /usr/lib/dovecot/pop3 ] || missing+=("/usr/lib/dovecot/pop3")
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=("PostgreSQL initdb")
	command -v openssl >/dev/null 2>&1 || missing+=("openssl")
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=("redis-server")
	[ -x /usr/bin/chromium ] || missing+=("chromium (browser tests)")
	if [ $${#missing[@]} -eq 0 ]; then
	  echo "deps: dovecot (imap, pop3), postgresql, openssl, redis-server and chromium are installed"
	  exit 0
	fi
	echo "deps: missing: $${missing[*]}"
	SUDO=""
	if [ "$$(id -u)" -ne 0 ]; then
	  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
	    echo "deps: not root and no sudo: install as root: apt-get install $(APT_PACKAGES)" >&2; exit 1; fi
	fi
	# Keep apt from starting the system dovecot/postgresql/redis services on the standard ports.
	POLICY=/usr/sbin/policy-rc.d
	if [ ! -e $$POLICY ]; then
	  trap "$$SUDO rm -f $$POLICY" EXIT
	  printf '#!/bin/sh\nexit 101\n' | $$SUDO tee $$POLICY >/dev/null
	  $$SUDO chmod 755 $$POLICY
	  echo "deps: temporary $$POLICY (no service starts during the install)"
	fi
	echo "deps: apt-get install $(APT_PACKAGES)"
	$$SUDO apt-get -o DPkg::Lock::Timeout=300 update
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
	  --no-install-recommends $(APT_PACKAGES)

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGIN_DIRS))
	@if [ ! -x $(PY) ]; then
	  echo "venv: $(PYTHON) -m venv $(VENV)"
	  if ! $(PYTHON) -m venv $(VENV); then
	    rm -rf $(VENV)
	    echo "venv: the interpreter lacks venv/ensurepip; installing python3-venv"
	    SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo"
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
	      --no-install-recommends python3-venv
	    $(PYTHON) -m venv $(VENV)
	  fi
	fi
	@for d in plugins/mail_generic plugins/mail_google_oauth plugins/mail_microsoft_oauth; do
	  [ -f $$d/pyproject.toml ] || echo "venv: note: $$d/pyproject.toml not found, not installing $$d"
	done
	echo "venv: pip install -e '.[test]' $(addprefix -e ,$(PLUGIN_DIRS))"
	$(PY) -m pip install --quiet -e '.[test]' $(addprefix -e ,$(PLUGIN_DIRS))
	touch $@

test: deps venv
	@echo "test: $(PY) -m pytest $(PYTEST_ARGS)"
	$(PY) -m pytest $(PYTEST_ARGS)

demo: venv
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash demo/run.sh

bench: venv
	@$(PY) bench/run.py $(BENCH_ARGS)

clean:
	@rm -rf $(VENV) build dist .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
	echo "clean: removed $(VENV), caches and build artefacts"

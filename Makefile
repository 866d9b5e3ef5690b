# Seatdesk: `make run` serves the bot on its embedded defaults, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv system-deps node-deps package gallery migrate demo clean playground bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the browser tests need (Chromium for the Playground UI and the card renderer).
system-deps:
	@dpkg -s chromium fonts-liberation >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation >/dev/null; }
	@command -v npm >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

node-deps: node_modules/.installed

run: venv
	SEATDESK_ALLOW_ANONYMOUS=$${SEATDESK_ALLOW_ANONYMOUS:-1} $(BIN)/python -m bot serve

# The Teams client simulator for the bot `make run` serves: open http://127.0.0.1:$(PLAYGROUND_PORT).
# It is the bot's unauthenticated Bot Connector, so the preload keeps it on 127.0.0.1.
PLAYGROUND_PORT ?= 56150
BOT_PORT ?= $(or $(SEATDESK_PORT),3978)

playground: node-deps
	@mkdir -p var
	TEAMSAPPTESTER_BROWSER=$${TEAMSAPPTESTER_BROWSER:-none} \
	BOT_ENDPOINT=http://127.0.0.1:$(BOT_PORT)/api/messages \
	NODE_OPTIONS="-r $(CURDIR)/tests/e2e/force-loopback.cjs" \
	M365_AGENTS_PLAYGROUND_LOGFILE=$(CURDIR)/var/m365agentsplayground.log \
	node node_modules/@microsoft/m365agentsplayground/cli.js --port $(PLAYGROUND_PORT) -c msteams \
	  --service-url http://127.0.0.1:$(PLAYGROUND_PORT)/_connector --disable-telemetry

test: venv system-deps node-deps
	$(BIN)/python -m pytest
	bash .ci/test-postgres

# Speed: the stock botbuilder echo bot and Seatdesk, same run, same machine → bench/RESULTS.md.
# PostgreSQL too: SEATDESK_BENCH_POSTGRES_URL=$$(SEATDESK_PG_DURABLE=1 .ci/postgres) make bench
bench: venv
	$(BIN)/python -m bench.run

migrate: venv
	$(BIN)/python -m bot migrate

demo: venv
	$(BIN)/python -m bot demo

package: venv
	$(BIN)/python -m bot package

gallery: venv system-deps node-deps
	$(BIN)/python -m bot gallery

clean:
	rm -rf $(VENV) node_modules build var

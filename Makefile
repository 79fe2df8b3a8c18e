# The two commands of the README: `make demo` and `make test` (and `make fuzz`, a longer
# fuzz campaign of the input readers than the bounded one `make test` runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test fuzz install install-test system-deps reader-deps clean

# WeasyPrint renders with Pango (and subsets fonts with HarfBuzz); install them when missing.
SYSTEM_LIBS := libpango-1.0.so.0 libpangoft2-1.0.so.0 libharfbuzz-subset.so.0
system-deps:
	@missing=""; for lib in $(SYSTEM_LIBS); do ldconfig -p | grep -q "$$lib" || missing="$$missing $$lib"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system libraries for WeasyPrint:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core >/dev/null; \
	  else echo "missing system libraries:$$missing (install Pango and HarfBuzz-subset, e.g. apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0)"; exit 1; fi; \
	fi

# The report is checked as a reader sees it: headless Chromium opens the HTML, pdftoppm and
# pdftotext (poppler-utils) turn the PDF into pages. Installed when missing and running as root;
# otherwise those tests skip.
READER_BINS := chromium pdftoppm pdftotext
reader-deps:
	@missing=""; for bin in $(READER_BINS); do command -v "$$bin" >/dev/null || missing="$$missing $$bin"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing the report checks' browser and PDF tools:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium poppler-utils fonts-dejavu-core >/dev/null; \
	  else echo "missing:$$missing (apt-get install chromium poppler-utils); the browser and PDF-page tests will skip"; fi; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: system-deps $(BIN)/python
	$(BIN)/pip install --quiet .

install-test: system-deps reader-deps $(VENV)/.installed-test

# `make test` reinstalls the package (tests run the installed `greenops`) only when something the
# wheel is built from changed since the last install: pip's build and resolve take minutes.
# Folders are listed too, so that a removed or renamed module also counts as a change.
PACKAGE_SOURCES := pyproject.toml $(shell find reporting templates -name __pycache__ -prune -o -print 2>/dev/null)
$(VENV)/.installed-test: $(BIN)/python $(PACKAGE_SOURCES)
	$(BIN)/pip install --quiet ".[test]"
	touch $@

demo: install
	$(BIN)/greenops demo --out out

# Two workers (the machine has two cores); tests sharing an expensive fixture (the demo run,
# the hostile run...) stay on one worker: tests/conftest.py groups them.
TEST_WORKERS ?= 2
test: install-test
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

# Random (not derandomised) examples, FUZZ_EXAMPLES per unit of each test's weight; failures
# are kept in .hypothesis/ and replayed first next time. `make fuzz FUZZ_EXAMPLES=1000` for more.
FUZZ_EXAMPLES ?= 80
fuzz: install-test
	HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q \
	  tests/test_fuzz_readers.py --hypothesis-show-statistics

clean:
	rm -rf $(VENV) out build dist *.egg-info

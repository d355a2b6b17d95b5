# aimc-book: the two commands of the README are `make book` and `make test`; each sets up everything.
# Python 3.11 is the version the pins and CI test: `make PYTHON=python3.11 book` picks another interpreter.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
WIDGETS_JS := book/_static/jupyter-widgets/embed-amd.js
BUILD_FLAGS := --all -W -n --keep-going

.PHONY: doctor check-python setup widgets-js audit-js browser book book-fast book-student pdf downloads test test-unit benchmark reproduce reproduce-fast studies clean

# The interpreter first: everything else (the pre-flight check included) needs 3.11 or newer.
check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "error: $(PYTHON) is not Python 3.11 or newer ($$($(PYTHON) --version 2>&1)); the pinned dependencies need 3.11 (the version CI tests): install it and run \`make PYTHON=python3.11 $(or $(MAKECMDGOALS),book)\`" >&2; exit 1; }

# Pre-flight (book_tools/doctor.py, standard library only): names every missing prerequisite (venv and
# ensurepip, npm, disk space, CIFAR-10 or the network to download it) before anything is installed.
doctor: check-python
	@$(PYTHON) book_tools/doctor.py --venv $(VENV) --for $(if $(filter test,$(MAKECMDGOALS)),test,book)

setup: $(STAMP)

# The virtual environment: an unfinished one (a failed `venv`, no pip in it) is removed and made
# again, and a failed attempt leaves nothing behind. The stamp is written only when all installed.
$(STAMP): pyproject.toml constraints.txt
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "error: '$(PYTHON) -m venv' failed; on Debian or Ubuntu: sudo apt install python3-venv" >&2; exit 1; }; }
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[book,test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Widget JavaScript for the static site, from npm at pinned versions (package-lock.json), self-hosted.
widgets-js: $(WIDGETS_JS)

$(WIDGETS_JS): widgets/package.json widgets/package-lock.json widgets/install.sh
	bash widgets/install.sh

# npm's security audit of the pinned widget packages (needs the registry; the GitHub workflow runs it).
audit-js:
	cd widgets && npm audit --audit-level=moderate

# A Chromium or Chrome for the real-browser test and the PDF: one already on the machine (PATH,
# macOS applications, Playwright's cache), else Debian's chromium when root with apt-get, else
# Playwright's user-level download (book_tools/find_browser.py; AIMC_BROWSER=/path overrides).
browser: setup
	@$(PY) book_tools/find_browser.py --install

# The main job: the book on the shipped pretrained models, full test set.
book: doctor setup widgets-js
	rm -rf _build/html _build/.jupyter_cache
	$(VENV)/bin/jupyter-book build $(BUILD_FLAGS) .
	@echo "book built: _build/html/index.html"

# The fast-mode book (small subsets), built by the tests into its own folder.
book-fast: setup widgets-js
	rm -rf _build_fast
	AIMC_FAST=1 $(VENV)/bin/jupyter-book build $(BUILD_FLAGS) --path-output _build_fast .

# The student edition: the site without solutions (_build_student/_build/html) and the student
# notebooks to hand out (_build_student/notebooks), by book_tools/student_edition.py.
book-student: setup widgets-js
	rm -rf _build_student
	$(PY) book_tools/student_edition.py _build_student/notebooks
	$(PY) book_tools/student_edition.py --site _build_student/src
	$(VENV)/bin/jupyter-book build $(BUILD_FLAGS) --path-output _build_student _build_student/src
	@echo "student site built: _build_student/_build/html/index.html; notebooks in _build_student/notebooks"

# The book as one PDF for a course handout: the built site's pages in _toc.yml order, printed by
# headless Chromium (builds the book first if _build/html is not there).
pdf: setup browser
	test -f _build/html/index.html || $(MAKE) book
	$(PY) book_tools/print_pdf.py _build/html _build/aimc-book.pdf

# The site's downloads (linked in every page's footer, _config.yml): the PDF and the student notebooks
# (solutions removed, each with its Colab install cell) in one zip, inside the built site.
DOWNLOADS := _build/html/downloads
downloads: pdf
	rm -rf $(DOWNLOADS) _build/student-notebooks
	$(PY) book_tools/student_edition.py _build/student-notebooks/aimc-book-notebooks
	mkdir -p $(DOWNLOADS)
	cp _build/aimc-book.pdf $(DOWNLOADS)/aimc-book.pdf
	cd _build/student-notebooks && $(abspath $(PY)) -m zipfile -c $(abspath $(DOWNLOADS))/aimc-book-notebooks.zip aimc-book-notebooks
	@echo "downloads: $(DOWNLOADS)/aimc-book.pdf, $(DOWNLOADS)/aimc-book-notebooks.zip"

# All tests: library, shipped models on the real test set, notebooks (nbval, fast mode),
# the fast-mode book build and the real-browser test of the built site. Two pytest-xdist workers,
# one test file each at a time (nbval runs a notebook's cells in order in one kernel), one torch
# thread per worker (tests/conftest.py): the book build runs beside the other tests.
# The notebooks run on the learner's route: nbval executes them in the kernel `aimc-learner`
# (book_tools/learner_route.py), where aimc_lib comes from its freshly built wheel and the book's and
# the tests' packages (MyST-NB, Sphinx, nbval, pytest, ...) cannot be imported, as on Colab or Binder.
TEST_WORKERS ?= 2
LEARNER := _build/learner
test: doctor setup widgets-js browser
	$(PY) book_tools/learner_route.py $(LEARNER) >/dev/null
	JUPYTER_PATH=$(CURDIR)/$(LEARNER)/share/jupyter AIMC_FAST=1 $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile \
	  --nbval-kernel-name aimc-learner

test-unit: setup
	$(VENV)/bin/pytest tests -m "not book"

benchmark: setup
	$(PY) benchmarks/benchmark.py

# Regenerate both models and all results from scratch (hours on a 2-core CPU, minutes on a GPU).
reproduce: setup
	$(PY) scripts/reproduce.py

# Which part of the PCM model costs accuracy (studies of the results note; minutes on a GPU).
studies: setup
	$(PY) scripts/studies.py

# The same pipeline on tiny subsets (a couple of minutes): proves it runs end to end.
reproduce-fast: setup
	$(PY) scripts/reproduce.py --fast --out _build/reproduce-fast

clean:
	rm -rf _build _build_fast _build_student book/_static/jupyter-widgets book/_static/mathjax widgets/node_modules

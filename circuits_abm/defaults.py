"""Limits and defaults that the command line needs before anything heavy is imported.

``circuits-abm --help`` must answer in a blink, so the CLI reads its option bounds and
defaults from here rather than from the modules that use them (which import numpy, Mesa,
Numba and pandas).  Those modules import the same names from here.
"""

MAX_STEPS = 10_000_000  # ~16 bytes of schedule per step; ~20 minutes of simulation
# A run keeps its records in memory until it ends: a snapshot of the lineages per record
# and one row per phase and environment, about 1.7 KB each at the peak (measured on the
# standard scenario), so this bounds a run's records near 0.9 GB.
MAX_RECORDS = 500_000
# A sweep holds its tasks (about 2.3 KB each for four environments) and their records.
MAX_SWEEP_RUNS = 100_000
CATALOGUE_RUNS = 40  # a claim true in 96% of runs passes 0.7 at 40 runs with 99.9% probability
CATALOGUE_ROOT_SEED = 2026
EXECUTORS = ("serial", "processes", "dask")
# A sweep in which more than this share of the runs failed (or every run) is an error.
MAX_FAILED_SHARE = 0.5
EXPLORE_SCENARIO_VARIABLE = "CIRCUITS_ABM_EXPLORE"  # `circuits-abm explore NAME` -> the app

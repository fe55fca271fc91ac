"""Limits and defaults that the command line needs before anything heavy is imported.

``circuits-abm --help`` must answer in a blink, so the CLI reads its option bounds and
defaults from here rather than from the modules that use them (which import numpy, Mesa,
Numba and pandas).  Those modules import the same names from here.
"""

MAX_STEPS = 10_000_000  # ~16 bytes of schedule per step; ~20 minutes of simulation
CATALOGUE_RUNS = 40  # a claim true in 96% of runs passes 0.7 at 40 runs with 99.9% probability
CATALOGUE_ROOT_SEED = 2026
EXECUTORS = ("serial", "processes", "dask")
# A sweep in which more than this share of the runs failed (or every run) is an error.
MAX_FAILED_SHARE = 0.5
EXPLORE_SCENARIO_VARIABLE = "CIRCUITS_ABM_EXPLORE"  # `circuits-abm explore NAME` -> the app

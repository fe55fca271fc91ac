"""Batch parameter runs: sweep files, designs, resumable results, rates over seeds.

One module per part:

* ``spec``: the sweep file and the ``Sweep`` it resolves to (points and tasks);
* ``design``: grids, Latin hypercubes, Sobol, Saltelli and Morris designs, derived seeds;
* ``records``: a run's task and record, and the one list of the results table's columns;
* ``journal``: the output folder (the append-only journal, the tables, ``load_results``);
* ``aggregate``: regime rates with Wilson intervals per point, beside the theory;
* ``runner``: the submission loop over an executor (``circuits_abm.experiments.executors``)
  and ``sweep``, the call users make.

The names users need are imported here: ``load_sweep``, ``sweep_from_dict``, ``Sweep``,
``sweep``, ``run_sweep``, ``load_results``, ``SweepFailed`` and ``WorkersLost``.
"""

from circuits_abm.experiments.executors import SchedulerError, WorkersLost
from circuits_abm.experiments.sweep.journal import load_results
from circuits_abm.experiments.sweep.runner import SweepFailed, run_sweep, sweep
from circuits_abm.experiments.sweep.spec import Sweep, load_sweep, sweep_from_dict

__all__ = ["SchedulerError", "Sweep", "SweepFailed", "WorkersLost", "load_results",
           "load_sweep", "run_sweep", "sweep", "sweep_from_dict"]

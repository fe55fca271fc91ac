"""The points of a sweep and the seeds of its runs.

A grid is the product of the axes' values; a Latin-hypercube or Sobol design
(``scipy.stats.qmc``) scales points in the unit cube onto the axes' ranges; the sensitivity
designs (Saltelli, Morris) come from SALib through ``circuits_abm.analysis.sensitivity``, in
the order their analyses expect.  Every run's seed is a hash of the root seed, the point's
values and the replicate, so seeds are reproducible and stay the same when a grid grows.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import TYPE_CHECKING, Any

from circuits_abm.engine.scenario import ScenarioError

if TYPE_CHECKING:
    from circuits_abm.experiments.sweep.spec import SweepSpec


# A derived axis: `environments.count = N` replaces the base's environments by N
# interchangeable ones named e00, e01, ... (for sweeps over the number of environments).
COUNT_AXIS = "environments.count"

# Designs made for the sensitivity analysis (analysis.sensitivity): `samples` is Saltelli's
# N (N x (axes + 2) points) or the number of Morris trajectories (x (axes + 1) points).
SENSITIVITY_DESIGNS = ("saltelli", "morris")


def interchangeable_environments(count: Any) -> list[dict[str, str]]:
    """``count`` environments named e00, e01, ... with default fields (the ``COUNT_AXIS``)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ScenarioError(
            COUNT_AXIS, [f"`{COUNT_AXIS}`: needs a positive integer (got {count!r})"]
        )
    return [{"name": f"e{i:02d}"} for i in range(count)]


def design_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The parameter points: a grid product, a space-filling design scaled onto the ranges,
    or a sensitivity design (SALib's Saltelli sample or Morris trajectories, in their order,
    which the analysis relies on)."""
    names = list(spec.axes)
    if spec.design == "grid":
        grids = [spec.axes[n].grid_values() for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]
    if spec.design in SENSITIVITY_DESIGNS:
        from circuits_abm.analysis import sensitivity  # noqa: PLC0415 (needs SALib)

        axes = {n: spec.axes[n].model_dump() for n in names}
        sample = (sensitivity.saltelli_points if spec.design == "saltelli"
                  else sensitivity.morris_points)
        return sample(axes, spec.samples, spec.root_seed)
    from scipy.stats import qmc  # noqa: PLC0415 (only designs need scipy)

    if spec.design == "latin_hypercube":
        sampler = qmc.LatinHypercube(d=len(names), seed=spec.root_seed)
    else:
        sampler = qmc.Sobol(d=len(names), scramble=True, seed=spec.root_seed)
    unit = sampler.random(spec.samples)
    return [{n: spec.axes[n].from_unit(u) for n, u in zip(names, row, strict=True)} for row in unit]


def derive_seed(root_seed: int, point: dict[str, Any], replicate: int) -> int:
    """A seed that depends only on the root seed, the point's values and the replicate."""
    text = json.dumps([root_seed, sorted(point.items()), replicate], sort_keys=True)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")

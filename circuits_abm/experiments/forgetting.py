"""Forgetting against task similarity, in networks and in the agent-based model, beside two
published results (docs/neural.md, experiment b).

* **Overparameterised linear regression** (Evron et al., ICLR 2024): two tasks share one
  teacher ``w*`` but see data in different ``n``-dimensional subspaces of ``R^d``
  (``n < d``), at principal angle ``theta``.  A linear model trained by gradient descent to
  convergence on task A, then on task B, forgets A most at *intermediate* angles: at 0 the
  tasks are one task, at 90 degrees B's updates never touch A's subspace.  Gradient
  descent from zero converges to the projections ``w_A = P_A w*``, then
  ``w_B = w_A + P_B (w* - w_A)``, so the forgetting ``|X_A (w_B - w*)|^2 / n`` is known in
  closed form (``projected_forgetting``) beside the trained value.
* **Teacher-student with nonlinear features** (Lee, Goldt and Saxe, ICML 2021): a two-layer
  student with two erf units and one readout head per task learns teacher A, a single erf
  unit, by online SGD, then teacher B, whose feature vector overlaps A's by ``gamma``.  The
  shared first layer must either re-use the unit that learned A (similar features) or
  recruit the other one (dissimilar features); forgetting of A is largest in between.
* **Two environments in sequence** (teacher overlap = the scenario's sharing ``s``, long
  phases, A then B): the forgetting ``R_A(after A) - R_A(after B)`` and the transfer
  ``R_B(after A)`` (how good B already is before it is trained) of a dense network (no
  gate), a top-1 mixture (a gate on distinguishable cues: Hiratani, ICML 2024, finds that
  task-dependent gating improves retention at the cost of transfer) and the agent-based
  model, over seeds.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.scipy.special import erf

from circuits_abm.analysis.rates import half_width, wilson
from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.engine.scenario import Scenario
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.runs import run as run_agents
from circuits_abm.experiments.sweep.design import derive_seed

ANGLES = tuple(float(a) for a in np.linspace(0.0, 90.0, 10))
SHARINGS = (-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)
LEARNERS = {
    "dense network": {"arch": "mlp"},
    "top-1 mixture": {"arch": "moe", "routing": "top1", "experts": 2},
    "agent-based model": None,
}
PHASE = 1500  # steps per task: long enough for every learner to converge on it
FEATURE_SIMILARITIES = tuple(float(g) for g in np.linspace(0.0, 1.0, 11))
INPUTS = 100  # the teacher-student input dimension N
STUDENT_UNITS = 2
STUDENT_STEPS = 50_000  # online SGD examples per task (time 500 in units of N examples)


class Tables(NamedTuple):
    """The experiment's three tables, a row per run."""

    linear: pd.DataFrame  # overparameterised regression, per angle and seed
    features: pd.DataFrame  # teacher-student, per feature similarity and seed
    sequences: pd.DataFrame  # two environments in sequence, per learner, sharing and seed


def task_subspaces(angle: float, dimension: int, rank: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal bases ``(d, n)`` of two subspaces at principal angle ``angle`` (degrees)
    in every direction: ``U_B = cos(a) U_A + sin(a) V`` with ``V`` orthogonal to ``U_A``."""
    basis, _ = np.linalg.qr(rng.normal(size=(dimension, 2 * rank)))
    first, other = basis[:, :rank], basis[:, rank:]
    radians = np.radians(angle)
    return first, np.cos(radians) * first + np.sin(radians) * other


def projected_forgetting(first: np.ndarray, second: np.ndarray, teacher: np.ndarray) -> float:
    """The closed form: task A's error after training to convergence on A then on B from
    zero, with the data of each task spanning its subspace (an orthonormal basis)."""
    on_first, on_second = first @ first.T, second @ second.T
    after_first = on_first @ teacher
    after_second = after_first + on_second @ (teacher - after_first)
    return float(np.sum((first.T @ (after_second - teacher)) ** 2) / first.shape[1])


@partial(jax.jit, static_argnames="steps")
def _descend(weights: jax.Array, data: jax.Array, targets: jax.Array, rate: float,
             steps: int) -> jax.Array:
    def step(w, _):
        error = data @ w - targets
        return w - rate * data.T @ error / data.shape[0], None

    return jax.lax.scan(step, weights, None, length=steps)[0]


def overparameterised_forgetting(angle: float, seed: int, dimension: int = 64,
                                 rank: int = 8, steps: int = 3000) -> dict[str, float]:
    """Task A's error after gradient descent on A, then on B (``steps`` each, from zero), and
    the closed form, for subspaces at ``angle`` degrees; data are the subspaces' bases
    scaled so that one step of rate 1 is stable."""
    rng = np.random.default_rng(seed)
    first, second = task_subspaces(angle, dimension, rank, rng)
    teacher = rng.normal(size=dimension) / np.sqrt(rank)
    weights = jnp.zeros(dimension)
    for basis in (first, second):
        data = jnp.asarray(basis.T * np.sqrt(rank))  # n examples whose rows span the subspace
        weights = _descend(weights, data, data @ teacher, 0.5, steps=steps)
    trained = float(np.sum((first.T @ (np.asarray(weights) - teacher)) ** 2) / rank)
    return {"angle": angle, "seed": seed, "forgetting": trained,
            "closed_form": projected_forgetting(first, second, teacher)}


def _erf_units(x: jax.Array) -> jax.Array:
    """The teacher-student activation ``erf(x / sqrt 2)``."""
    return erf(x / jnp.sqrt(2.0))


@partial(jax.jit, static_argnames="steps")
def _student_after_two_teachers(key: jax.Array, teachers: jax.Array, rate: float,
                                steps: int) -> jax.Array:
    """Task A's generalisation error after learning A, task A's after then learning B, and
    task B's, for a student ``y = sum_k h_tk erf(w_k . x / sqrt(N) / sqrt 2)`` with shared
    first layer ``w`` and a head ``h_t`` per task, trained by online SGD (first layer at
    rate ``eta``, heads at ``eta / N``, the teacher-student convention)."""
    inputs = teachers.shape[1]
    init, heads_key, eval_key, run_key = jax.random.split(key, 4)
    params = (0.1 * jax.random.normal(init, (STUDENT_UNITS, inputs)),
              0.1 * jax.random.normal(heads_key, (2, STUDENT_UNITS)))
    held = jax.random.normal(eval_key, (2000, inputs))

    def output(p, task, x):
        return _erf_units(x @ p[0].T / jnp.sqrt(inputs)) @ p[1][task]

    def target(task, x):
        return _erf_units(x @ teachers[task] / jnp.sqrt(inputs))

    def error(p, task):
        return 0.5 * jnp.mean((output(p, task, held) - target(task, held)) ** 2)

    def learn(p, task, key):
        def step(p, k):
            x = jax.random.normal(k, (1, inputs))
            grads = jax.grad(lambda q: 0.5 * jnp.sum((output(q, task, x)
                                                      - target(task, x)) ** 2))(p)
            return (p[0] - rate * grads[0], p[1] - rate / inputs * grads[1]), None

        return jax.lax.scan(step, p, jax.random.split(key, steps))[0]

    first, second = jax.random.split(run_key)
    params = learn(params, 0, first)
    after_a = error(params, 0)
    params = learn(params, 1, second)
    return jnp.stack([after_a, error(params, 0), error(params, 1)])


def feature_teachers(similarity: float, rng: np.random.Generator,
                     inputs: int = INPUTS) -> np.ndarray:
    """Two teacher feature vectors of squared norm ``inputs`` whose normalised overlap is
    ``similarity``: ``w_B = gamma w_A + sqrt(1 - gamma^2) w_perp``."""
    first, other = rng.normal(size=(2, inputs))
    other -= (other @ first) / (first @ first) * first
    first *= np.sqrt(inputs) / np.linalg.norm(first)
    other *= np.sqrt(inputs) / np.linalg.norm(other)
    return np.stack([first, similarity * first + np.sqrt(1 - similarity**2) * other])


def feature_forgetting(similarity: float, seed: int, steps: int = STUDENT_STEPS,
                       rate: float = 1.0) -> dict[str, float]:
    """Lee, Goldt and Saxe's setting at one feature similarity: the student's error on
    teacher A after learning it and after then learning teacher B."""
    teachers = jnp.asarray(feature_teachers(similarity, np.random.default_rng(seed)))
    after_a, after_b, on_b = (float(v) for v in _student_after_two_teachers(
        jax.random.key(seed % 2**32), teachers, rate, steps=steps))
    return {"similarity": similarity, "seed": seed, "error_after_a": after_a,
            "forgetting": after_b - after_a, "error_on_b": on_b}


def two_tasks(sharing: float, distinguishability: float = 1.0) -> Scenario:
    """Environments a and b in sequence, ``PHASE`` steps each, teachers overlapping by
    ``sharing``."""
    return scenario_from_dict({
        "name": "two_tasks", "steps": 2 * PHASE,
        "environments": [{"name": "a", "kind": "sft"}, {"name": "b", "kind": "sft"}],
        "geometry": {"sharing": sharing, "distinguishability": distinguishability},
        "schedule": {"order": "sequence", "sequence": ["a", "b"], "phase_length": PHASE},
    }, source=f"two tasks at sharing {sharing}")


def sequential_run(learner: str, sharing: float, seed: int) -> dict[str, Any]:
    """One learner trained on a, then b: its forgetting of a and its transfer to b."""
    spec = two_tasks(sharing)
    settings = LEARNERS[learner]
    if settings is None:
        phases = run_agents(spec, seed=seed, progress=False).phases
    else:
        from circuits_abm.experiments import neural  # noqa: PLC0415 (JAX is loaded anyway)

        phases = neural.run(spec, seed=seed, settings=settings).phases
    reward = phases.set_index(["phase", "environment"]).population_reward
    return {"learner": learner, "sharing": sharing, "seed": seed,
            "forgetting": float(reward[(0, "a")] - reward[(1, "a")]),
            "transfer": float(reward[(0, "b")])}


def experiment(seeds: int = 20, workers: int = 1, root_seed: int = 2026,
               sharings: tuple[float, ...] = SHARINGS, progress: bool = True) -> Tables:
    """The three parts over ``seeds`` derived seeds: the overparameterised regression at
    every angle of ``ANGLES``, the teacher-student at every one of
    ``FEATURE_SIMILARITIES``, and every learner of ``LEARNERS`` at every one of
    ``sharings``."""
    linear = map_in_processes(
        overparameterised_forgetting,
        [(a, derive_seed(root_seed, {"angle": a}, r)) for a in ANGLES for r in range(seeds)],
        1, "overparameterised regression", "run", progress)
    features = map_in_processes(
        feature_forgetting,
        [(g, derive_seed(root_seed, {"feature similarity": g}, r))
         for g in FEATURE_SIMILARITIES for r in range(seeds)],
        workers, "teacher-student", "run", progress)
    sequences = map_in_processes(
        sequential_run,
        [(learner, s, derive_seed(root_seed, {"sharing": s}, r)) for learner in LEARNERS
         for s in sharings for r in range(seeds)],
        workers, "two tasks in sequence", "run", progress)
    return Tables(pd.DataFrame(linear), pd.DataFrame(features), pd.DataFrame(sequences))


def _peak(curve: pd.Series) -> tuple[float, bool]:
    """Where a mean curve peaks, and whether that is inside its range (not at an end)."""
    peak = float(curve.idxmax())
    return peak, bool(0 < list(curve.index).index(peak) < len(curve) - 1)


def _difference(first: pd.Series, second: pd.Series) -> tuple[float, float, float]:
    """The difference of two independent samples' means with its 95% interval (normal
    approximation with each sample's own variance)."""
    gap = float(first.mean() - second.mean())
    half = 1.96 * float(np.sqrt(first.var(ddof=1) / len(first)
                                + second.var(ddof=1) / len(second)))
    return gap, gap - half, gap + half


def summary(tables: Tables) -> dict[str, Any]:
    """The qualitative claims, each as counted over the seeds: where the overparameterised
    forgetting peaks; where the teacher-student's peaks, and how forgetting at the middle
    similarity (0.5, chosen before the runs) compares with both ends; whether each
    learner's forgetting in sequence peaks inside the sharing range; and how often gating
    retains more and transfers less than the dense network."""
    linear, features, sequences = tables
    peak, inside = _peak(linear.groupby("angle").forgetting.mean())
    feature_peak, feature_inside = _peak(features.groupby("similarity").forgetting.mean())
    at = {g: features[np.isclose(features.similarity, g)].forgetting for g in (0.0, 0.5, 1.0)}
    means = sequences.groupby(["learner", "sharing"])[["forgetting", "transfer"]].mean()
    learners = {}
    for learner in LEARNERS:
        curve = means.loc[learner].forgetting
        learners[learner] = {"peak_sharing": float(curve.idxmax()),
                             "peak_inside": bool(curve.idxmax() not in (curve.index.min(),
                                                                        curve.index.max()))}
    pairs = sequences.pivot_table(index=["sharing", "seed"], columns="learner",
                                  values=["forgetting", "transfer"])
    useful = pairs.index.get_level_values("sharing") > 0  # transfer has something to carry
    retains = (pairs.forgetting["top-1 mixture"] < pairs.forgetting["dense network"])[useful]
    transfers_less = (pairs.transfer["top-1 mixture"] < pairs.transfer["dense network"])[useful]
    return {
        "linear_peak_angle": peak, "linear_peak_inside": inside,
        "feature_peak_similarity": feature_peak, "feature_peak_inside": feature_inside,
        "middle_minus_dissimilar": _difference(at[0.5], at[0.0]),
        "middle_minus_identical": _difference(at[0.5], at[1.0]),
        "learners": learners,
        "gating_retains_more": wilson(int(retains.sum()), int(len(retains))).text(),
        "gating_transfers_less": wilson(int(transfers_less.sum()),
                                        int(len(transfers_less))).text(),
    }


def markdown(tables: Tables) -> str:
    """The measured curves as markdown tables (means over seeds with 95% intervals) and the
    counted claims of ``summary``."""
    linear, features, sequences = tables

    def cell(values: pd.Series) -> str:
        return f"{values.mean():.3f} ± {half_width(values):.3f}"

    seeds = int(linear.groupby("angle").size().min())
    lines = [f"Overparameterised regression ({seeds} seeds per angle): forgetting of task A.",
             "", "| angle | trained | closed form |", "|---|---|---|"]
    for angle, rows in linear.groupby("angle"):
        lines.append(f"| {angle:g}° | {cell(rows.forgetting)} | "
                     f"{rows.closed_form.mean():.4f} |")
    runs = int(features.groupby("similarity").size().min())
    lines += ["", f"Teacher-student with two erf units and a head per task ({runs} seeds per "
              "point): error on teacher A after learning it, forgetting of A after then "
              "learning B, and error on B.", "",
              "| feature similarity | error on A | forgetting of A | error on B |",
              "|---|---|---|---|"]
    for similarity, rows in features.groupby("similarity"):
        lines.append(f"| {similarity:g} | {cell(rows.error_after_a)} | "
                     f"{cell(rows.forgetting)} | {cell(rows.error_on_b)} |")
    learners = list(dict.fromkeys(sequences.learner))
    runs = int(sequences.groupby(["learner", "sharing"]).size().min())
    lines += ["", f"Two tasks in sequence ({runs} seeds per point): forgetting of a / reward on "
              "b before training it.", "",
              "| sharing | " + " | ".join(learners) + " |", "|---" * (len(learners) + 1) + "|"]
    for sharing, rows in sequences.groupby("sharing"):
        cells = [f"{cell(rows[rows.learner == name].forgetting)} / "
                 f"{cell(rows[rows.learner == name].transfer)}" for name in learners]
        lines.append(f"| {sharing:g} | " + " | ".join(cells) + " |")
    found = summary(tables)
    peaks = ", ".join(f"{name} at sharing {v['peak_sharing']:g}"
                      for name, v in found["learners"].items())
    lines += ["", f"The regression's forgetting peaks at {found['linear_peak_angle']:g}° "
              f"({'inside' if found['linear_peak_inside'] else 'at an end of'} the range). "
              f"The teacher-student's peaks at feature similarity "
              f"{found['feature_peak_similarity']:g} "
              f"({'inside' if found['feature_peak_inside'] else 'at an end of'} the range); "
              f"forgetting at similarity 0.5 minus at 0 is "
              f"{_interval(found['middle_minus_dissimilar'])} and minus at 1 is "
              f"{_interval(found['middle_minus_identical'])}. "
              f"Forgetting in sequence peaks: {peaks}. Paired by seed at positive sharing, "
              f"the top-1 mixture forgets less than the dense network in "
              f"{found['gating_retains_more']} of the runs and transfers less in "
              f"{found['gating_transfers_less']}."]
    return "\n".join(lines)


def _interval(difference: tuple[float, float, float]) -> str:
    """``gap [low, high]`` to three decimals."""
    gap, low, high = difference
    return f"{gap:.3f} [{low:.3f}, {high:.3f}]"

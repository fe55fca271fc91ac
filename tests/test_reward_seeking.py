"""The behavioural-selection model of reward seeking: reductions, approximations and its claims."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from circuits_abm.cli import app
from circuits_abm.engine.scenario import ScenarioError
from circuits_abm.reward_seeking import couplings
from circuits_abm.reward_seeking.couplings import (
    FourierFeatures,
    Sparse,
    fourier_error,
    kernel_coupling,
    rbf_kernel,
)
from circuits_abm.reward_seeking.crosscheck import CrossCheckExperiment, run_crosscheck
from circuits_abm.reward_seeking.dynamics import (
    critical_diversity,
    effective_learnability,
    homogeneous_system,
    integrate,
    reference_propensity,
    single_system,
)
from circuits_abm.reward_seeking.experiments import (
    HomogeneousExperiment,
    LogGrid,
    critical_diversities,
    load_experiment,
    run_homogeneous,
)
from circuits_abm.reward_seeking.heterogeneous import (
    GEOMETRIES,
    Heterogeneity,
    coordinates,
    heterogeneous_system,
    mean_propensities,
)

PRIORS = [0.1, 0.03, 0.01, 0.003, 0.001]


# --------------------------------------------------------------------------- reductions


@pytest.mark.parametrize("n", [1, 2, 7, 40, 300])
@pytest.mark.parametrize("transfer", [(1.0, 1.0, 0.0), (0.5, 0.2, 0.1), (0.0, 1.0, 0.3)])
def test_homogeneous_system_equals_single_environment_with_effective_learnabilities(n, transfer):
    c_z, c_s, c_l = transfer
    alpha_s, alpha_l = 1.7, 0.6
    many = integrate(homogeneous_system(n, transfer, alpha_s, alpha_l))
    one = integrate(single_system(
        alpha_s=effective_learnability(alpha_s, n, c_s),
        alpha_l=effective_learnability(alpha_l, n, c_l),
        alpha_z=effective_learnability(1.0, n, c_z)))
    for mine, reduced in ((many.z, one.z), (many.a, one.a), (many.b, one.b)):
        np.testing.assert_allclose(mine, np.full_like(mine, reduced[0, 0]), rtol=1e-9)


def test_euler_integration_agrees_with_lsoda_off_the_boundary():
    """The adaptive Euler step is accurate: LSODA (rtol 1e-8) gives the same final
    propensity to 0.01 wherever the outcome is not balanced on the knife edge, and the same
    winner everywhere on the grid."""
    grid = np.geomspace(0.01, 100, 9)
    alpha_s, alpha_l = (a.ravel() for a in np.meshgrid(grid, grid))
    euler = integrate(single_system(alpha_s, alpha_l)).propensity[:, 0]
    lsoda = np.array([reference_propensity(s, l_) for s, l_ in zip(alpha_s, alpha_l, strict=True)])
    assert np.array_equal(euler > 0.5, lsoda > 0.5)
    settled = (lsoda < 0.2) | (lsoda > 0.8)
    assert settled.mean() > 0.9
    assert np.max(np.abs(euler - lsoda)[settled]) < 0.01


# --------------------------------------------------------------------------- couplings


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_random_fourier_features_approximate_the_exact_kernel_product_within_15_percent(geometry):
    """At moderate N (600 environments) and D = 256 features, ``Φ Φᵀ x`` is within 15% of
    ``K x`` (relative L2 error) for a positive x, on every geometry and several draws;
    more features make it better (the error falls like 1/sqrt(D))."""
    rng = np.random.default_rng(3)
    coords = coordinates(geometry, 600, rng)
    x = rng.uniform(0.0, 1.0, size=600)
    errors = [fourier_error(coords, 1.0, 256, x, np.random.default_rng(s)) for s in range(5)]
    assert max(errors) < 0.15
    coarse = np.mean([fourier_error(coords, 1.0, 32, x, np.random.default_rng(s))
                      for s in range(5)])
    fine = np.mean([fourier_error(coords, 1.0, 2048, x, np.random.default_rng(s))
                    for s in range(5)])
    assert fine < coarse / 3


def test_truncated_sparse_kernel_matches_the_exact_short_range_kernel():
    coords = coordinates("plane", 1500, np.random.default_rng(0))
    exact = rbf_kernel(coords, 0.01)
    truncated = Sparse.of(coords, 0.01).matrix.toarray()
    assert np.max(np.abs(truncated - exact)) < 5e-4
    np.testing.assert_allclose(np.diag(truncated), 1.0)


def test_kernel_form_follows_size_and_range():
    rng = np.random.default_rng(0)
    small = coordinates("plane", 200, rng)
    large = coordinates("plane", 5000, rng)
    assert type(kernel_coupling(small, 1.0, 64, rng)).__name__ == "Dense"
    assert isinstance(kernel_coupling(large, 1.0, 64, rng), FourierFeatures)
    assert isinstance(kernel_coupling(large, 0.002, 64, rng), Sparse)
    no_transfer = kernel_coupling(large, 0.0, 64, rng)
    x = rng.uniform(size=5000)
    np.testing.assert_array_equal(no_transfer.apply(x), x)


# --------------------------------------------------------------------------- invariants


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 60),
    prior=st.floats(1e-4, 0.5),
    log_alpha_sd=st.floats(0.0, 1.5),
    seed=st.integers(0, 10_000),
    geometry=st.sampled_from(GEOMETRIES),
)
def test_heterogeneous_propensities_are_probabilities_and_reproducible(
    n, prior, log_alpha_sd, seed, geometry
):
    h = Heterogeneity(geometry=geometry, log_alpha_sd=log_alpha_sd)
    first = mean_propensities(n, [prior], h, seed, 0)
    again = mean_propensities(n, [prior], h, seed, 0)
    assert np.all(np.isfinite(first)) and np.all((first >= 0) & (first <= 1))
    np.testing.assert_array_equal(first, again)


def test_priors_integrated_together_match_priors_integrated_alone():
    """Batching initial conditions over the same environments changes nothing but speed:
    every column takes its own steps, so a column integrated in a batch follows the same
    trajectory as alone (to rounding in the batched matrix products)."""
    system = heterogeneous_system(50, PRIORS, Heterogeneity(geometry="plane", scale=4.0),
                                  np.random.default_rng(1))
    together = integrate(system).mean_propensity
    alone = [integrate(replace(system, z=system.z[:, [i]], a=system.a[:, [i]],
                               b=system.b[:, [i]])).mean_propensity[0]
             for i in range(len(PRIORS))]
    np.testing.assert_allclose(together, alone, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- the essay's claims


def _homogeneous(**overrides) -> HomogeneousExperiment:
    fields = dict(kind="homogeneous", ratios=[0.5, 1.0, 2.0],
                  priors=LogGrid(low=1e-3, high=0.1, count=7),
                  n=LogGrid(low=1, high=10_000, count=41), curve_priors=[0.01])
    return HomogeneousExperiment(**{**fields, **overrides})


def test_homogeneous_critical_diversity_falls_as_the_prior_rises():
    """N* falls with the prior close to N* ~ 1/p0 (docs/reward_seeking.md: log-log slope
    near -1, about 30 environments at p0 = 0.01 when both skills learn equally fast)."""
    spec = _homogeneous()
    summary = critical_diversities(run_homogeneous(spec), ["ratio", "prior"], spec.threshold)
    for ratio, rows in summary.groupby("ratio"):
        rows = rows.sort_values("prior")
        by_prior = rows["critical_n"].to_numpy(dtype=float)
        assert np.all(np.isfinite(by_prior))
        assert np.all(np.diff(by_prior) <= 0)
        assert by_prior[0] > 10 * by_prior[-1]
        slope = np.polyfit(np.log(rows["prior"].to_numpy(float)), np.log(by_prior), 1)[0]
        assert -1.15 < slope < -0.85, (ratio, slope)
    at_one_percent = summary[(summary.ratio == 1.0) & np.isclose(summary.prior, 0.01)]
    assert 20 <= float(at_one_percent.critical_n.iloc[0]) <= 45


def test_homogeneous_critical_diversity_falls_as_reward_seeking_skill_learns_faster():
    spec = _homogeneous()
    summary = critical_diversities(run_homogeneous(spec), ["ratio", "prior"], spec.threshold)
    table = summary.pivot(index="prior", columns="ratio", values="critical_n")
    assert np.all(table[0.5] >= table[1.0]) and np.all(table[1.0] >= table[2.0])
    assert np.any(table[0.5] > table[2.0])


def test_no_critical_diversity_when_reward_seeking_does_not_transfer_homogeneous():
    """With neither propensity nor skill of reward seeking transferring (c_z = c_S = 0) more
    environments add nothing: no N up to 10,000 crosses the threshold, at any prior."""
    spec = _homogeneous(transfer_z=0.0, transfer_s=0.0)
    summary = critical_diversities(run_homogeneous(spec), ["ratio", "prior"], spec.threshold)
    assert summary["critical_n"].isna().all()


def test_skill_transfer_lowers_the_critical_diversity():
    """Propensity transfer alone (c_z = 1, c_S = 0) can still cross; adding transfer of the
    reward-seeking skill never raises N* and lowers it at some prior."""
    keys = ["ratio", "prior"]
    without = critical_diversities(
        run_homogeneous(_homogeneous(transfer_s=0.0, ratios=[1.0])), keys, 0.5)
    with_ = critical_diversities(run_homogeneous(_homogeneous(ratios=[1.0])), keys, 0.5)
    a = without.set_index("prior")["critical_n"].astype(float)
    b = with_.set_index("prior")["critical_n"].astype(float)
    assert np.all(b <= a) and np.any(b < a)


def _heterogeneous_n_star(h: Heterogeneity, priors, ns, resamples: int) -> np.ndarray:
    """Median N* over resamples per prior (inf where fewer than half cross)."""
    stars = np.full((resamples, len(priors)), np.inf)
    for r in range(resamples):
        by_n = {n: mean_propensities(n, priors, h, seed=7, resample=r) for n in ns}
        for j in range(len(priors)):
            star = critical_diversity({n: v[j] for n, v in by_n.items()}, 0.5)
            stars[r, j] = np.inf if star is None else star
    return np.median(stars, axis=0)


@pytest.mark.parametrize("geometry,scale", [("plane", 4.0), ("clusters", 6.0)])
def test_heterogeneous_critical_diversity_falls_as_the_prior_rises(geometry, scale):
    """Median over 5 resamples on a log grid of N up to 1,000 (exact kernels)."""
    h = Heterogeneity(geometry=geometry, scale=scale)
    ns = LogGrid(low=1, high=1000, count=11).integers()
    stars = _heterogeneous_n_star(h, [0.1, 0.01, 0.001], ns, resamples=5)
    assert np.isfinite(stars[0]) and np.isfinite(stars[1])
    assert stars[0] <= stars[1] <= stars[2]
    assert stars[0] < stars[2]


def test_no_critical_diversity_when_reward_seeking_does_not_transfer_heterogeneous():
    h = Heterogeneity(geometry="plane", scale=4.0, length_z=0.0, length_s=0.0)
    ns = LogGrid(low=1, high=1000, count=11).integers()
    stars = _heterogeneous_n_star(h, [0.1, 0.01, 0.001], ns, resamples=3)
    assert np.all(np.isinf(stars))


def test_random_features_do_not_change_the_heterogeneous_outcome(monkeypatch):
    """Above 1,000 environments the long-range kernels use 256 random features: at N = 1,500
    the trained mean propensity is within 0.05 of the one with exact kernels."""
    h = Heterogeneity(geometry="plane", scale=4.0)
    approximate = mean_propensities(1500, [0.01, 0.001], h, seed=2, resample=0)
    monkeypatch.setattr(couplings, "EXACT_KERNEL_LIMIT", 2000)
    exact = mean_propensities(1500, [0.01, 0.001], h, seed=2, resample=0)
    np.testing.assert_allclose(approximate, exact, atol=0.05)


# --------------------------------------------------------------------------- cross-check


def test_agent_based_transferable_mechanism_wins_only_with_many_environments():
    """The ABM analogue, over three seeds: with 2 environments the specialists keep the
    population, with 64 the generalist takes it, and the mean field crosses in between."""
    spec = CrossCheckExperiment(kind="crosscheck", ns=[2, 64], seeds=[1, 2, 3])
    table = run_crosscheck(spec, progress=False)
    abm = table[table["source"] == "agent-based"].groupby("n")["final"]
    assert abm.max()[2] < 0.5 and abm.min()[64] > 0.5
    field = table[table["source"] == "mean-field"].set_index("n")["final"]
    assert field[2] < 0.5 < field[64]


# --------------------------------------------------------------------------- experiment files


@pytest.mark.parametrize("name", ["single", "homogeneous", "heterogeneous", "crosscheck"])
def test_shipped_experiment_files_validate(name):
    spec = load_experiment(ROOT / "scenarios" / "reward_seeking" / f"{name}.toml")
    assert spec.kind == name


@pytest.mark.parametrize(
    "text,expected",
    [
        ('kind = "homogeneous"\nratioz = [1.0]\n', ["`ratioz`: unknown field", "ratios"]),
        ('kind = "single"\n[initial]\nprior = 1.5\n', ["`initial.prior`", "1.5"]),
        ('kind = "heterogeneous"\ngeometries = [{ name = "torus" }]\n',
         ["`geometries.0.name`", "'line'", "'plane'", "'clusters'"]),
        ('kind = "homogeneous"\n[n]\nlow = 100\nhigh = 10\ncount = 5\n',
         ["`n`", "must not exceed"]),
        ('kind = "fancy"\n', ["`kind`", "single, homogeneous, heterogeneous, crosscheck"]),
    ],
)
def test_bad_experiment_files_fail_naming_file_field_and_allowed_values(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_experiment(path)
    message = str(err.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_cli_runs_an_experiment_and_rejects_a_bad_one(tmp_path):
    good = tmp_path / "single.toml"
    good.write_text('kind = "single"\nlocal_skills = [0.2]\n'
                    '[alpha_s]\nlow = 0.1\nhigh = 10\ncount = 5\n'
                    '[alpha_l]\nlow = 0.01\nhigh = 1\ncount = 5\n')
    result = CliRunner().invoke(app, ["reward-seeking", "run", str(good), "--out",
                                      str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(table) == 25 and table["final_propensity"].between(0, 1).all()
    assert (tmp_path / "out" / "single_heatmap.png").stat().st_size > 10_000
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "single"\nlocal_skill = [0.2]\n')
    result = CliRunner().invoke(app, ["reward-seeking", "validate", str(bad)])
    assert result.exit_code == 2 and "local_skill" in result.output


def test_integration_stops_early_once_nothing_moves():
    # With a fast reward-seeking skill the column comes to rest about t = 5000, far inside
    # a horizon of 100000, and stops there instead of stepping on to the horizon.
    trajectory = integrate(single_system(10.0, 0.1), horizon=1e5)
    assert trajectory.converged.all() and trajectory.time.max() < 1e4


# ------------------------------------------------------------------ the ODE against closed forms


def test_the_lsoda_cross_check_matches_the_closed_form_with_both_skills_frozen():
    # alpha_S = alpha_L = 0 freezes S = 0.5 and L = 0.2, so the propensity's logit obeys
    # dz/dt = alpha_z p (1 - p) (S - L).  Separating variables, with dz / (p (1 - p)) =
    # (2 + e^z + e^-z) dz:  G(z) = 2 z + e^z - e^-z grows by (S - L) t.  Solved at t = 300.
    from scipy.optimize import brentq
    from scipy.special import expit, logit

    from circuits_abm.reward_seeking.dynamics import reference_propensity

    def G(z):
        return 2 * z + math.exp(z) - math.exp(-z)

    target = G(logit(0.01)) + (0.5 - 0.2) * 300.0
    z = brentq(lambda x: G(x) - target, -50, 50, xtol=1e-14)
    assert reference_propensity(0.0, 0.0, horizon=300.0) == pytest.approx(expit(z), abs=1e-6)


def test_the_reward_seeking_flow_at_a_hand_computed_point():
    # Two environments, C = [[1, c], [c, 1]] for every property, c = 0.25.
    from scipy.special import logit

    from circuits_abm.reward_seeking.couplings import Homogeneous
    from circuits_abm.reward_seeking.dynamics import System, _flow

    p, s, l_ = np.array([[0.2], [0.6]]), np.array([[0.7], [0.4]]), np.array([[0.3], [0.5]])
    alpha_z, alpha_s, alpha_l = np.array([1.0, 2.0]), np.array([0.5, 1.5]), np.array([3.0, 1.0])
    coupling = Homogeneous(0.25)
    system = System(logit(p), logit(s), logit(l_), alpha_z, alpha_s, alpha_l,
                    coupling, coupling, coupling)
    own_z = [1.0 * 0.2 * 0.8 * (0.7 - 0.3), 2.0 * 0.6 * 0.4 * (0.4 - 0.5)]
    own_s = [0.5 * 0.2 * 0.7 * 0.3, 1.5 * 0.6 * 0.4 * 0.6]
    own_l = [3.0 * 0.8 * 0.3 * 0.7, 1.0 * 0.4 * 0.5 * 0.5]
    dz, da, db = _flow(system, p, s, l_)
    for got, own in ((dz, own_z), (da, own_s), (db, own_l)):
        expected = [own[0] + 0.25 * own[1], own[1] + 0.25 * own[0]]
        assert got.ravel() == pytest.approx(expected)


@pytest.mark.parametrize("integrator", ["euler", "lsoda"])
def test_with_frozen_skills_the_propensity_follows_its_closed_form(integrator):
    # alpha^S = alpha^L = 0 keeps S and L fixed, so dz/dt = k sigma(z) sigma(-z) with
    # k = S - L.  Separating variables: e^z + 2 z - e^-z grows by exactly k t.
    from scipy.special import expit, logit

    from circuits_abm.reward_seeking.dynamics import (
        Initial,
        integrate,
        reference_propensity,
        single_system,
    )

    initial, horizon = Initial(prior=0.01, skill_rs=0.5, skill_local=0.2), 20.0
    if integrator == "euler":
        z_end = integrate(single_system(0.0, 0.0, initial), horizon=horizon, max_move=1e-3,
                          tol=0.0).z[0, 0]
    else:
        z_end = logit(reference_propensity(0.0, 0.0, initial, horizon=horizon))

    def integral(z):
        return math.exp(z) + 2 * z - math.exp(-z)

    z0 = float(logit(0.01))
    assert integral(z_end) - integral(z0) == pytest.approx(0.3 * horizon, rel=2e-3)
    assert expit(z_end) > 0.01

"""Forgetting against task similarity (experiment b of docs/neural.md): the closed form of
overparameterised regression against a hand derivation and against gradient descent, the
sequence of two tasks against what a learner that converges on each task must show, and
the command that writes the comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from circuits_abm.cli import app
from circuits_abm.experiments import forgetting
from circuits_abm.experiments.sweep.design import derive_seed


@pytest.mark.parametrize(("angle", "seed"), [(10.0, 0), (45.0, 1), (63.0, 2), (90.0, 3)])
def test_the_closed_form_is_the_hand_derivation(angle, seed):
    """With ``U_B = cos(a) U_A + sin(a) V``: ``w_B - w* = -(I - P_B)(I - P_A) w*``, whose
    projection on A is ``-U_A^T P_B (I - P_A) w* = -cos(a) sin(a) V^T w*``, so task A's error
    is ``(sin a cos a)^2 |V^T w*|^2 / n``."""
    rng = np.random.default_rng(seed)
    first, second = forgetting.task_subspaces(angle, 20, 4, rng)
    teacher = rng.normal(size=20)
    radians = np.radians(angle)
    other = (second - np.cos(radians) * first) / np.sin(radians)
    hand = (np.sin(radians) * np.cos(radians)) ** 2 * np.sum((other.T @ teacher) ** 2) / 4
    assert forgetting.projected_forgetting(first, second, teacher) == pytest.approx(hand,
                                                                                   abs=1e-12)


@pytest.mark.parametrize("angle", [0.0, 30.0, 50.0, 80.0])
def test_gradient_descent_converges_to_the_closed_form(angle):
    """The trained weights reach the projections the closed form assumes: minimum-norm
    solutions from zero, task by task."""
    for seed in range(3):
        found = forgetting.overparameterised_forgetting(angle, seed)
        assert found["forgetting"] == pytest.approx(found["closed_form"], rel=1e-4, abs=1e-7)


def test_overparameterised_forgetting_peaks_between_the_ends():
    """Averaged over a teacher ``w* ~ N(0, I/n)``, ``E|V^T w*|^2 = 1``: the forgetting is
    ``sin^2(2a) / (4 n)``, zero at 0 and 90 degrees and largest at 45 (Evron et al.).  The
    mean over 200 seeds is within four standard errors of it."""
    rank = 8
    for angle in (20.0, 45.0, 70.0):
        values = np.array([forgetting.overparameterised_forgetting(angle, seed, rank=rank,
                                                                   steps=600)["forgetting"]
                           for seed in range(200)])
        expected = np.sin(np.radians(2 * angle)) ** 2 / (4 * rank)
        error = values.std(ddof=1) / np.sqrt(len(values))
        assert abs(values.mean() - expected) < 4 * error


@pytest.mark.parametrize("similarity", [0.0, 0.3, 0.8, 1.0])
def test_the_teachers_features_overlap_by_the_similarity(similarity):
    first, second = forgetting.feature_teachers(similarity, np.random.default_rng(4), 50)
    assert first @ first == pytest.approx(50) and second @ second == pytest.approx(50)
    assert first @ second / 50 == pytest.approx(similarity, abs=1e-12)


def test_the_student_learns_each_teacher_and_forgets_nothing_of_an_identical_one():
    """With identical features the first layer already computes what B needs, and only B's
    own head has to learn; with any features the student converges on each task."""
    for seed in range(3):
        same = forgetting.feature_forgetting(1.0, seed)
        assert same["error_after_a"] < 1e-3 and same["error_on_b"] < 1e-3
        assert abs(same["forgetting"]) < 5e-3


def test_intermediate_feature_similarity_forgets_most():
    """Lee, Goldt and Saxe's finding, as means over 20 derived seeds per point: forgetting at
    similarity 0.5 exceeds forgetting at 0 (the student recruits its free unit) and at 1
    (nothing to change), each by more than its 95% interval (measured: 0.13 against 0.05
    and 0.00)."""
    tables = {g: pd.Series([forgetting.feature_forgetting(g, derive_seed(7, {"g": g}, r))[
        "forgetting"] for r in range(20)]) for g in (0.0, 0.5, 1.0)}
    middle = tables[0.5]
    for end in (0.0, 1.0):
        other = tables[end]
        half = 1.96 * np.sqrt(middle.var() / len(middle) + other.var() / len(other))
        assert middle.mean() - other.mean() > half, (end, middle.mean(), other.mean())


@pytest.fixture(scope="module")
def two_sharings():
    """Every learner at sharing 0 and 0.5, three derived seeds each."""
    return forgetting.experiment(seeds=3, sharings=(0.0, 0.5), progress=False)


def test_a_learner_that_converges_on_each_task_forgets_one_minus_the_sharing(two_sharings):
    """``R_a(theta) = <theta, d_a> - |theta|^2 / 2``: ``1/2`` at ``d_a``, ``s - 1/2`` at
    ``d_b``.  A learner that converges on a and then on b, with nothing task-specific kept,
    forgets ``1 - s`` and starts b at ``s - 1/2``.  This holds by construction of the tasks;
    the test checks that each learner converges (within 0.15, several standard errors)."""
    sequences = two_sharings.sequences
    means = sequences.groupby(["learner", "sharing"])[["forgetting", "transfer"]].mean()
    for (learner, sharing), row in means.iterrows():
        assert row.forgetting == pytest.approx(1 - sharing, abs=0.15), learner
        assert row.transfer == pytest.approx(sharing - 0.5, abs=0.15), learner


def test_the_summary_counts_gating_against_the_dense_network_seed_by_seed(two_sharings):
    """The counts are paired by seed at positive sharing: three pairs at sharing 0.5."""
    sequences = two_sharings.sequences
    found = forgetting.summary(two_sharings)
    assert found["linear_peak_inside"]
    retains = int(found["gating_retains_more"].split("/")[0])
    paired = sequences[sequences.sharing > 0].pivot_table(index="seed", columns="learner",
                                                          values="forgetting")
    assert retains == int((paired["top-1 mixture"] < paired["dense network"]).sum())
    assert found["gating_retains_more"].startswith(f"{retains}/3 ")


def test_the_command_writes_the_table_between_the_markers_and_the_figure(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text("before\n<!-- neural-forgetting:start -->\nold\n"
                   "<!-- neural-forgetting:end -->\nafter\n")
    figure = tmp_path / "forgetting.png"
    result = CliRunner().invoke(app, ["neural", "forgetting", "--seeds", "2", "--workers", "1",
                                      "--sharings", "1", "--figure", str(figure),
                                      "--doc", str(doc)])
    assert result.exit_code == 0, result.output
    text = doc.read_text()
    assert "old" not in text and "| 1 |" in text and text.endswith("after\n")
    assert figure.stat().st_size > 10_000


@pytest.mark.parametrize("sharings", ["0,x", "0,1.5"])
def test_the_command_refuses_sharings_it_cannot_train(sharings):
    result = CliRunner().invoke(app, ["neural", "forgetting", "--sharings", sharings])
    assert result.exit_code == 2
    assert "--sharings" in result.output

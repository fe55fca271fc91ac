"""Training a network on a scenario's schedule, one update per step, by plain gradient
descent (optax), and scoring it in every environment at every phase end.

Each step draws ``batch_size`` examples: an environment from the step's objective (one
environment, or a mixture's weights), an input ``z ~ N(0, I)`` with that environment's cue,
and its teacher's target.  The loss of an example depends on the environment's kind:

* **SFT** (and any non-RL kind): the regression loss ``(f - y)^2 / 2``;
* **RL**: REINFORCE on a Gaussian policy.  The network's output is the policy's mean; an
  action ``a ~ N(f, s^2)`` is drawn and rewarded ``-(a - y)^2 / 2``, and the update is
  ``(r - b) grad log pi(a)`` with ``b`` the mean reward of the batch's other RL
  examples.  It sees only rewards, never ``y``; in expectation it follows the same
  gradient as SFT, with more noise.

A motivation the environment names with payment ``m`` adds ``(b - m)^2 / 2`` for the
network's behaviour ``b`` to the SFT loss, and a drawn behaviour action to the RL reward
(``-(a_b - m)^2 / 2``), so reward seeking is trained where it pays and nowhere else.

The whole run is one compiled ``lax.scan`` over its steps (``jax.jit``, compiled once per
architecture and run length in a process and reused for every seed).  At the last step of
each phase the network is scored in every environment on a fixed set of inputs
(``circuits_abm.networks.readouts`` turns the scores into the run tables).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from circuits_abm.networks import networks
from circuits_abm.networks.settings import NeuralSettings
from circuits_abm.networks.tasks import Tasks


class Scores(NamedTuple):
    """A network's scores at every phase end (rows in phase order)."""

    reward: np.ndarray  # (phases, environments): the whole network's R_e
    routing: np.ndarray  # (phases, environments, experts): mean path probability
    expert_reward: np.ndarray  # (phases, environments, experts): each expert's own R_e
    capability: np.ndarray  # (phases, environments): R_e on the teacher alone
    motivation: np.ndarray  # (phases, environments, motivations): mean behaviour


def optimizer(settings: NeuralSettings) -> optax.GradientTransformation:
    """Plain gradient descent (or Adam) with decoupled weight decay."""
    step = optax.sgd if settings.optimizer == "sgd" else optax.adam
    return optax.chain(optax.add_decayed_weights(settings.weight_decay),
                       step(settings.learning_rate))


def example_losses(settings: NeuralSettings, params: dict, z: jax.Array, q: jax.Array,
                   y: jax.Array, rl: jax.Array, noise: jax.Array,
                   pays: jax.Array | None = None, named: jax.Array | None = None) -> jax.Array:
    """Per example: the regression loss, or for RL examples the REINFORCE surrogate whose
    gradient is ``-(r - b) grad log pi(a)``.  ``pays`` and ``named`` (``(batch,
    motivations)``) add each named motivation: ``(b - m)^2 / 2`` to the regression loss,
    and to an RL example's reward ``-(a_b - m)^2 / 2`` for a behaviour action ``a_b``
    drawn around ``b`` (``noise`` is ``(batch,)`` or ``(batch, 1 + motivations)``).
    Behaviours an environment does not name are neither rewarded nor drawn there."""
    out = networks.apply(settings, params, z, q)
    batch, count = z.shape[0], out.behaviour.shape[1]
    pays = jnp.zeros((batch, count)) if pays is None else pays
    named = jnp.zeros((batch, count), bool) if named is None else named
    noise = noise.reshape(batch, -1)
    means = jnp.concatenate([out.answer[:, None], out.behaviour], axis=1)  # (batch, 1 + M)
    targets = jnp.concatenate([y[:, None], pays], axis=1)
    counts = jnp.concatenate([jnp.ones((batch, 1), bool), named], axis=1)
    draws = noise[:, : 1 + count] if noise.shape[1] > 1 else jnp.concatenate(
        [noise, jnp.zeros((batch, count))], axis=1)
    action = jax.lax.stop_gradient(means) + settings.policy_noise * draws
    reward = -0.5 * jnp.sum(jnp.where(counts, (action - targets) ** 2, 0.0), axis=1)
    # Leave-one-out baseline: the mean reward of the batch's other RL examples (a baseline
    # that included the example's own reward would bias its update).
    rl_count = jnp.sum(rl)
    total = jnp.sum(jnp.where(rl, reward, 0.0))
    baseline = jnp.where(rl_count > 1, (total - reward) / jnp.maximum(rl_count - 1, 1), 0.0)
    log_policy = -0.5 * jnp.sum(jnp.where(counts, ((action - means) / settings.policy_noise)
                                          ** 2, 0.0), axis=1)
    surrogate = -jax.lax.stop_gradient(reward - baseline) * log_policy
    regression = 0.5 * jnp.sum(jnp.where(counts, (means - targets) ** 2, 0.0), axis=1)
    return jnp.where(rl, surrogate, regression)


def score(settings: NeuralSettings, params: dict, teachers: jax.Array, cues: jax.Array,
          z: jax.Array, motive: jax.Array | None = None,
          named: jax.Array | None = None) -> tuple[jax.Array, ...]:
    """In every environment, on the fixed inputs ``z``: ``R_e`` of the network (its
    capability plus ``E[m b - b^2 / 2]`` for each motivation the environment names), the
    mean routing, each expert's own capability ``R_e``, the network's capability alone and
    its mean behaviour per motivation."""
    environments = teachers.shape[0]
    motive = jnp.zeros((environments, 0)) if motive is None else motive
    named = jnp.zeros(motive.shape, bool) if named is None else named

    def one(env: jax.Array):
        y = z @ teachers[env]
        q = jnp.broadcast_to(cues[env], (z.shape[0], cues.shape[1]))
        out = networks.apply(settings, params, z, q)
        scale = 0.5 * jnp.mean(y**2)
        capability = scale - 0.5 * jnp.mean((out.answer - y) ** 2)
        each = scale - 0.5 * jnp.mean((out.experts - y[:, None]) ** 2, axis=0)
        earned = jnp.mean(motive[env] * out.behaviour - 0.5 * out.behaviour**2, axis=0)
        whole = capability + jnp.sum(jnp.where(named[env], earned, 0.0))
        return (whole, jnp.mean(out.paths, axis=0), each, capability,
                jnp.mean(out.behaviour, axis=0))

    return jax.vmap(one)(jnp.arange(environments))


@partial(jax.jit, static_argnums=0)
def _train(settings: NeuralSettings, params: dict, key: jax.Array, teachers: jax.Array,
           cues: jax.Array, motive: jax.Array, named: jax.Array, step_version: jax.Array,
           step_mix: jax.Array, phase_end: jax.Array, rl: jax.Array, eval_z: jax.Array):
    opt = optimizer(settings)
    environments, experts, count = teachers.shape[1], settings.mechanisms, motive.shape[2]
    empty = (jnp.zeros(environments), jnp.zeros((environments, experts)),
             jnp.zeros((environments, experts)), jnp.zeros(environments),
             jnp.zeros((environments, count)))

    def step(carry, inputs):
        params, opt_state, key = carry
        version, mix, ends = inputs
        key, pick, draw, act = jax.random.split(key, 4)
        env = jax.random.choice(pick, environments, (settings.batch_size,), p=mix)
        z = jax.random.normal(draw, (settings.batch_size, teachers.shape[2]))
        y = jnp.sum(z * teachers[version][env], axis=1)
        q = cues[version][env]
        noise = jax.random.normal(act, (settings.batch_size, 1 + count))
        grads = jax.grad(lambda p: jnp.mean(example_losses(
            settings, p, z, q, y, rl[env], noise, motive[version][env],
            named[version][env])))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        scores = jax.lax.cond(
            ends, lambda: score(settings, params, teachers[version], cues[version], eval_z,
                                motive[version], named[version]),
            lambda: empty)
        return (params, opt_state, key), scores

    (params, _, _), scores = jax.lax.scan(
        step, (params, opt.init(params), key), (step_version, step_mix, phase_end))
    return params, scores


def train(settings: NeuralSettings, tasks: Tasks, seed: int) -> tuple[dict, Scores]:
    """Train a fresh network of ``settings`` on ``tasks`` with ``seed`` (initial weights,
    batches, actions and the scoring inputs all come from it); return the final parameters
    and the scores at every phase end."""
    key = jax.random.key(seed % 2**32)
    init_key, run_key, eval_key = jax.random.split(key, 3)
    params = networks.init(settings, init_key, tasks.teachers.shape[2], tasks.cues.shape[2],
                           len(tasks.motivations))
    eval_z = jax.random.normal(eval_key, (settings.eval_examples, tasks.teachers.shape[2]))
    params, scores = _train(
        settings, params, run_key, jnp.asarray(tasks.teachers), jnp.asarray(tasks.cues),
        jnp.asarray(tasks.motive), jnp.asarray(tasks.named), jnp.asarray(tasks.step_version),
        jnp.asarray(tasks.step_mix), jnp.asarray(tasks.phase_end), jnp.asarray(tasks.rl),
        eval_z)
    ends = tasks.phase_end
    return params, Scores(*(np.asarray(values)[ends] for values in scores))

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


def optimizer(settings: NeuralSettings) -> optax.GradientTransformation:
    """Plain gradient descent (or Adam) with decoupled weight decay."""
    step = optax.sgd if settings.optimizer == "sgd" else optax.adam
    return optax.chain(optax.add_decayed_weights(settings.weight_decay),
                       step(settings.learning_rate))


def example_losses(settings: NeuralSettings, params: dict, z: jax.Array, q: jax.Array,
                   y: jax.Array, rl: jax.Array, noise: jax.Array) -> jax.Array:
    """Per example: the regression loss, or for RL examples the REINFORCE surrogate whose
    gradient is ``-(r - b) grad log pi(a)``."""
    f, _, _ = networks.apply(settings, params, z, q)
    action = jax.lax.stop_gradient(f) + settings.policy_noise * noise
    reward = -0.5 * (action - y) ** 2
    # Leave-one-out baseline: the mean reward of the batch's other RL examples (a baseline
    # that included the example's own reward would bias its update).
    count = jnp.sum(rl)
    total = jnp.sum(jnp.where(rl, reward, 0.0))
    baseline = jnp.where(count > 1, (total - reward) / jnp.maximum(count - 1, 1), 0.0)
    log_policy = -0.5 * ((action - f) / settings.policy_noise) ** 2
    surrogate = -jax.lax.stop_gradient(reward - baseline) * log_policy
    return jnp.where(rl, surrogate, 0.5 * (f - y) ** 2)


def score(settings: NeuralSettings, params: dict, teachers: jax.Array, cues: jax.Array,
          z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``R_e`` of the network and of each expert alone, and the mean routing, in every
    environment, on the fixed inputs ``z``."""

    def one(env: jax.Array):
        y = z @ teachers[env]
        q = jnp.broadcast_to(cues[env], (z.shape[0], cues.shape[1]))
        f, paths, experts = networks.apply(settings, params, z, q)
        scale = 0.5 * jnp.mean(y**2)
        whole = scale - 0.5 * jnp.mean((f - y) ** 2)
        each = scale - 0.5 * jnp.mean((experts - y[:, None]) ** 2, axis=0)
        return whole, jnp.mean(paths, axis=0), each

    return jax.vmap(one)(jnp.arange(teachers.shape[0]))


@partial(jax.jit, static_argnums=0)
def _train(settings: NeuralSettings, params: dict, key: jax.Array, teachers: jax.Array,
           cues: jax.Array, step_version: jax.Array, step_mix: jax.Array,
           phase_end: jax.Array, rl: jax.Array, eval_z: jax.Array):
    opt = optimizer(settings)
    environments, experts = teachers.shape[1], settings.mechanisms
    empty = (jnp.zeros(environments), jnp.zeros((environments, experts)),
             jnp.zeros((environments, experts)))

    def step(carry, inputs):
        params, opt_state, key = carry
        version, mix, ends = inputs
        key, pick, draw, act = jax.random.split(key, 4)
        env = jax.random.choice(pick, environments, (settings.batch_size,), p=mix)
        z = jax.random.normal(draw, (settings.batch_size, teachers.shape[2]))
        y = jnp.sum(z * teachers[version][env], axis=1)
        q = cues[version][env]
        noise = jax.random.normal(act, (settings.batch_size,))
        grads = jax.grad(lambda p: jnp.mean(
            example_losses(settings, p, z, q, y, rl[env], noise)))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        scores = jax.lax.cond(
            ends, lambda: score(settings, params, teachers[version], cues[version], eval_z),
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
    params = networks.init(settings, init_key, tasks.teachers.shape[2], tasks.cues.shape[2])
    eval_z = jax.random.normal(eval_key, (settings.eval_examples, tasks.teachers.shape[2]))
    params, (reward, routing, expert_reward) = _train(
        settings, params, run_key, jnp.asarray(tasks.teachers), jnp.asarray(tasks.cues),
        jnp.asarray(tasks.step_version), jnp.asarray(tasks.step_mix),
        jnp.asarray(tasks.phase_end), jnp.asarray(tasks.rl), eval_z)
    ends = tasks.phase_end
    return params, Scores(np.asarray(reward)[ends], np.asarray(routing)[ends],
                          np.asarray(expert_reward)[ends])

"""Gradient routing in a network: a monitored direction in the hidden layer, the update rules
``plain``, ``block`` and ``route``, and routing by labelled data (Cloud et al. 2024).

The network is one tanh layer of ``width`` units on the input ``x = (z, q_e)`` (the content
and the environment's cue, as in ``circuits_abm.networks.tasks``), with two read-outs of
the hidden state ``h``:

* the **answer** ``f = <w_f, h>``, trained toward the environment's teacher (capability);
* the **behaviour** ``b = <w_b, h>`` along a fixed random unit readout ``w_b`` (the
  motivation, such as reward seeking).  An environment that names the motivation with
  payment ``m`` rewards ``m b - b^2 / 2`` (the agent-based model's form: the behaviour
  saturates at ``b = m``); one that does not name it rewards nothing about it.

Every example's loss is the negative of its reward, ``(f - y)^2 / 2`` plus
``(b - m)^2 / 2`` where the motivation is named: the exact gradient of the reward (RL
environments are not sampled here, unlike ``circuits_abm.networks.training``).

The **monitor** watches one unit direction ``u`` of the hidden state: the behaviour's
readout turned by ``angle`` degrees toward a fixed random direction orthogonal to it, which
changes no behaviour (at 0 it sees exactly what the readout reads; at 90 nothing that
matters).  The rules act on the gradient that reaches ``h`` (activation-level masking):

* ``plain``: unchanged;
* ``block``: the part along ``u`` is dropped, so the first layer never learns from it;
* ``route``: the part along ``u`` goes into an **adapter** instead, a rank-``rank`` update of
  the first layer (``x A B``, ``B`` starting at zero, LoRA-style) that counts while
  training and is **discarded** after it; the rest trains the first layer.

Under ``block`` and ``route`` at 0 degrees the behaviour's own gradient lies along ``u`` and
is removed from the first layer exactly: that much holds by construction.  What the first
layer's *other* updates do to ``b`` does not: a change of the first layer moves ``h``
through the nonlinearity, along directions the gradient did not ask for, so the
behaviour can leak through pathways the monitor does not watch, and how much is an
outcome of training.

**Routing by data** (``labelled`` in ``(0, 1]``): a share of the examples from environments
that pay for the motivation is flagged; a flagged example's gradient reaches only the
adapter (and the answer's readout), an unflagged one's only the first layer.  *Absorption*
is the adapter taking more of the behaviour than its share of the examples.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from circuits_abm.engine.scenario import Scenario
from circuits_abm.networks.tasks import scheduled_tasks

RULES = ("plain", "block", "route", "data")


class RoutingTasks(NamedTuple):
    """A scenario's environments, with each one's payment for the monitored motivation."""

    names: tuple[str, ...]
    held_out: np.ndarray  # (environments,) bool
    teachers: np.ndarray  # (environments, content)
    cues: np.ndarray  # (environments, cue length)
    pays: np.ndarray  # (environments,) the payment m, 0 where not named
    named: np.ndarray  # (environments,) bool: the environment names the motivation
    step_mix: np.ndarray  # (steps, environments)


class Readings(NamedTuple):
    """The network at each checkpoint (rows), in every environment (columns): the mean
    change of the behaviour since the start with and without the adapter, and the reward on
    the answer (capability) with and without it."""

    steps: np.ndarray  # (checkpoints,)
    behaviour: np.ndarray  # (checkpoints, environments): with the adapter
    behaviour_discarded: np.ndarray  # without it
    capability: np.ndarray
    capability_discarded: np.ndarray


def routing_tasks(spec: Scenario, steps: int, rng: np.random.Generator) -> RoutingTasks:
    """``spec``'s tasks with the payments for its monitored motivation (the first declared
    one when the monitor names none).  The geometry is the start's: interventions are not
    modelled here."""
    tasks = scheduled_tasks(spec, steps, rng)
    name = spec.monitored or (spec.motivations[0].name if spec.motivations else None)
    by_name = {e.name: e for e in spec.environments}
    pays = np.array([by_name[n].motivations.get(name, 0.0) for n in tasks.names])
    named = np.array([name in by_name[n].motivations for n in tasks.names])
    return RoutingTasks(tasks.names, tasks.held_out, tasks.teachers[0], tasks.cues[0],
                        pays, named, tasks.step_mix)


def monitor_direction(readout: jax.Array, other: jax.Array, angle: float) -> jax.Array:
    """The readout's unit direction turned by ``angle`` degrees toward ``other`` (a unit
    vector orthogonal to it)."""
    radians = jnp.deg2rad(angle)
    return jnp.cos(radians) * readout + jnp.sin(radians) * other


def init(key: jax.Array, inputs: int, width: int, rank: int) -> tuple[dict, jax.Array,
                                                                        jax.Array]:
    """Trainable parameters (first layer, adapter, answer readout), the behaviour's unit
    readout and a unit direction orthogonal to it."""
    keys = jax.random.split(key, 5)
    params = {
        "w1": jax.random.normal(keys[0], (inputs, width)) / jnp.sqrt(inputs),
        "b1": jnp.zeros(width),
        "a": jax.random.normal(keys[1], (inputs, rank)) / jnp.sqrt(inputs),
        "b": jnp.zeros((rank, width)),
        "wf": jax.random.normal(keys[2], (width,)) / jnp.sqrt(width),
    }
    readout = jax.random.normal(keys[3], (width,))
    readout = readout / jnp.linalg.norm(readout)
    other = jax.random.normal(keys[4], (width,))
    other = other - jnp.dot(other, readout) * readout
    return params, readout, other / jnp.linalg.norm(other)


def _along(v: jax.Array, u: jax.Array) -> jax.Array:
    """The part of each row of ``v`` along the unit vector ``u``."""
    return (v @ u)[:, None] * u


def hidden(rule: str, params: dict, x: jax.Array, u: jax.Array, flagged: jax.Array,
           adapter: float = 1.0) -> jax.Array:
    """The hidden state ``tanh(x W1 + b1 + adapter * x A B)`` (its value), with the rule's
    routing of the gradient that reaches it: into the first layer (``W1, b1``) and into the
    adapter (``A, B``).  ``flagged`` (per example) matters only to ``data``."""
    base = x @ params["w1"] + params["b1"]
    extra = adapter * (x @ params["a"]) @ params["b"]
    if rule == "plain":
        return jnp.tanh(base)
    if rule == "block":
        h = jnp.tanh(base)
        return h - _along(h - jax.lax.stop_gradient(h), u)
    value = jax.lax.stop_gradient(jnp.tanh(base + extra))
    through_base = jnp.tanh(base + jax.lax.stop_gradient(extra))
    through_adapter = jnp.tanh(jax.lax.stop_gradient(base) + extra)
    to_base = through_base - jax.lax.stop_gradient(through_base)
    to_adapter = through_adapter - jax.lax.stop_gradient(through_adapter)
    if rule == "route":
        return value + (to_base - _along(to_base, u)) + _along(to_adapter, u)
    keep = flagged[:, None]
    return value + (1.0 - keep) * to_base + keep * to_adapter


def example_losses(rule: str, params: dict, readout: jax.Array, u: jax.Array, x: jax.Array,
                   y: jax.Array, pay: jax.Array, named: jax.Array,
                   flagged: jax.Array) -> jax.Array:
    """Per example: ``(f - y)^2 / 2``, plus ``(b - m)^2 / 2`` where the motivation is named."""
    h = hidden(rule, params, x, u, flagged)
    answer = h @ params["wf"]
    behaviour = h @ readout
    return 0.5 * (answer - y) ** 2 + jnp.where(named, 0.5 * (behaviour - pay) ** 2, 0.0)


def readings(params: dict, readout: jax.Array, tasks: tuple, z: jax.Array,
             start: jax.Array) -> tuple[jax.Array, ...]:
    """Mean behaviour change since ``start`` (per environment) and capability reward, with
    the adapter and with it discarded, on the fixed inputs ``z``."""
    teachers, cues = tasks

    def one(env):
        x = jnp.concatenate([z, jnp.broadcast_to(cues[env], (z.shape[0], cues.shape[1]))], 1)
        y = z @ teachers[env]
        out = []
        for adapter in (1.0, 0.0):
            h = jnp.tanh(x @ params["w1"] + params["b1"]
                         + adapter * (x @ params["a"]) @ params["b"])
            reward = 0.5 * jnp.mean(y**2) - 0.5 * jnp.mean((h @ params["wf"] - y) ** 2)
            out += [jnp.mean(h @ readout), reward]
        return jnp.stack(out)

    values = jax.vmap(one)(jnp.arange(teachers.shape[0]))  # (environments, 4)
    return (values[:, 0] - start, values[:, 2] - start, values[:, 1], values[:, 3])


@partial(jax.jit, static_argnames=("rule", "batch", "checkpoints", "width", "rank"))
def _train(rule: str, key: jax.Array, teachers: jax.Array, cues: jax.Array, pays: jax.Array,
           named: jax.Array, step_mix: jax.Array, angle: float, labelled: float,
           learning_rate: float, batch: int, checkpoints: int, width: int, rank: int):
    environments, content = teachers.shape
    init_key, eval_key, run_key = jax.random.split(key, 3)
    params, readout, other = init(init_key, content + cues.shape[1], width, rank)
    u = monitor_direction(readout, other, angle)
    eval_z = jax.random.normal(eval_key, (512, content))
    start = readings(params, readout, (teachers, cues), eval_z, 0.0)[0]
    opt = optax.sgd(learning_rate)

    def step(carry, mix):
        params, state, key = carry
        key, pick, draw, flag = jax.random.split(key, 4)
        env = jax.random.choice(pick, environments, (batch,), p=mix)
        z = jax.random.normal(draw, (batch, content))
        x = jnp.concatenate([z, cues[env]], axis=1)
        y = jnp.sum(z * teachers[env], axis=1)
        flagged = ((pays[env] > 0) & (jax.random.uniform(flag, (batch,)) < labelled)
                   ).astype(jnp.float32)
        grads = jax.grad(lambda p: jnp.mean(example_losses(
            rule, p, readout, u, x, y, pays[env], named[env], flagged)))(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state, key), None

    def segment(carry, mixes):
        carry, _ = jax.lax.scan(step, carry, mixes)
        return carry, readings(carry[0], readout, (teachers, cues), eval_z, start)

    length = step_mix.shape[0] // checkpoints
    segments = step_mix[: length * checkpoints].reshape(checkpoints, length, environments)
    _, recorded = jax.lax.scan(segment, (params, opt.init(params), run_key), segments)
    return recorded


def train(tasks: RoutingTasks, rule: str, angle: float, seed: int, labelled: float = 1.0,
          width: int = 32, rank: int = 4, learning_rate: float = 0.05, batch: int = 32,
          checkpoints: int = 8) -> Readings:
    """Train a fresh network under ``rule`` (``plain``, ``block``, ``route`` or ``data``)
    with the monitor at ``angle`` degrees (or, for ``data``, a share ``labelled`` of the
    paying examples flagged), and read it at ``checkpoints`` evenly spaced steps."""
    if rule not in RULES:
        raise ValueError(f"rule {rule!r}: choose one of {', '.join(RULES)}")
    steps = tasks.step_mix.shape[0]
    recorded = _train(rule, jax.random.key(seed % 2**32), jnp.asarray(tasks.teachers),
                      jnp.asarray(tasks.cues), jnp.asarray(tasks.pays),
                      jnp.asarray(tasks.named), jnp.asarray(tasks.step_mix), angle, labelled,
                      learning_rate, batch, checkpoints, width, rank)
    length = steps // checkpoints
    return Readings(np.arange(1, checkpoints + 1) * length,
                    *(np.asarray(values) for values in recorded))

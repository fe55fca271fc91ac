"""Standard networks, as pure JAX functions of a parameter tree: they know nothing of the
agent-based model.

* ``mlp``: ``f(u) = w2 . tanh(W1 u + b1) + b2``, one learner;
* ``moe``: ``f = sum_k g_k(x) f_k(u)``, experts ``f_k`` of the MLP's shape under a softmax
  gate ``g(x) = softmax(Wg x + bg)`` on the whole input ``x = (z, q)``;
* ``nested``: a softmax gate over groups, each group a ``moe``:
  ``f = sum_g g_g(x) sum_k g_gk(x) f_gk(u)``.

The learners' input ``u`` is the content ``z`` alone (``cue = "gate"``: only gates see the
context, like the agent-based model's mechanisms and routers) or the whole ``x``
(``cue = "all"``).

With ``routing = "top1"`` each input reaches only its most probable expert (its output
scaled by that probability, so the gate still learns from it: Fedus, Zoph and Shazeer's
Switch routing), and the path probabilities are that hard choice.

Each expert also has a behaviour output per declared motivation (a second linear readout
of its hidden layer, starting at zero), mixed by the same path probabilities.

``apply`` returns ``Outputs``: the output, the probability with which the input reaches
each expert (the product of the gates on its path: the routing the agent-based records
write), each expert's own output (scored on its own as a mechanism) and the behaviours.
Weights start at ``N(0, 1/fan_in)``, gates at zero (uniform routing), so any split is
learned, not built.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from circuits_abm.networks.settings import NeuralSettings


def _expert(key: jax.Array, inputs: int, width: int, motivations: int) -> dict[str, jax.Array]:
    first, second = jax.random.split(key)
    return {
        "w1": jax.random.normal(first, (inputs, width)) / jnp.sqrt(inputs),
        "b1": jnp.zeros(width),
        "w2": jax.random.normal(second, (width,)) / jnp.sqrt(width),
        "b2": jnp.zeros(()),
        "wm": jnp.zeros((width, motivations)),  # behaviours start at 0, as in the model
        "bm": jnp.zeros(motivations),
    }


def _experts(key: jax.Array, count: int, inputs: int, width: int,
             motivations: int) -> dict[str, jax.Array]:
    """``count`` experts with their parameters stacked on a leading axis."""
    return jax.vmap(lambda k: _expert(k, inputs, width, motivations))(
        jax.random.split(key, count))


def init(settings: NeuralSettings, key: jax.Array, content: int, cue: int,
         motivations: int = 0) -> dict:
    """A fresh parameter tree for ``settings.arch`` on content of length ``content`` and
    cues of length ``cue``, with a behaviour output per motivation."""
    width, m = settings.width, motivations
    inputs = content + cue  # what the gates see
    learner = inputs if settings.cue == "all" else content  # what the experts see
    if settings.arch == "mlp":
        return {"expert": _expert(key, learner, width, m)}
    if settings.arch == "moe":
        return {"experts": _experts(key, settings.experts, learner, width, m),
                "gate": {"w": jnp.zeros((inputs, settings.experts)),
                         "b": jnp.zeros(settings.experts)}}
    keys = jax.random.split(key, settings.groups)
    return {
        "experts": jax.vmap(lambda k: _experts(k, settings.experts, learner, width, m))(keys),
        "gate": {"w": jnp.zeros((inputs, settings.groups)), "b": jnp.zeros(settings.groups)},
        "inner": {"w": jnp.zeros((settings.groups, inputs, settings.experts)),
                  "b": jnp.zeros((settings.groups, settings.experts))},
    }


class Outputs(NamedTuple):
    """What a network does with a batch: its output, the probability with which each input
    reaches each expert, each expert's own output, and the behaviour per motivation."""

    answer: jax.Array  # (batch,)
    paths: jax.Array  # (batch, experts)
    experts: jax.Array  # (batch, experts)
    behaviour: jax.Array  # (batch, motivations)


def _expert_output(expert: dict[str, jax.Array], x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One expert's answer ``(batch,)`` and behaviours ``(batch, motivations)`` for a batch
    ``x`` of shape ``(batch, inputs)``."""
    hidden = jnp.tanh(x @ expert["w1"] + expert["b1"])
    return hidden @ expert["w2"] + expert["b2"], hidden @ expert["wm"] + expert["bm"]


def apply(settings: NeuralSettings, params: dict, z: jax.Array, q: jax.Array) -> Outputs:
    """The network's ``Outputs`` for content ``z`` and cues ``q``, each ``(batch, length)``."""
    x = jnp.concatenate([z, q], axis=1)
    u = x if settings.cue == "all" else z
    if settings.arch == "mlp":
        out, behaviour = _expert_output(params["expert"], u)
        return Outputs(out, jnp.ones((x.shape[0], 1)), out[:, None], behaviour)
    if settings.arch == "moe":
        experts, behaviours = jax.vmap(_expert_output, in_axes=(0, None), out_axes=1)(
            params["experts"], u)
        gate = jax.nn.softmax(x @ params["gate"]["w"] + params["gate"]["b"], axis=-1)
        return _mixed(settings, gate, experts, behaviours)
    per_group, behaviours = jax.vmap(jax.vmap(_expert_output, in_axes=(0, None), out_axes=1),
                                     in_axes=(0, None), out_axes=1)(params["experts"], u)
    outer = jax.nn.softmax(x @ params["gate"]["w"] + params["gate"]["b"], axis=-1)  # (B, G)
    inner = jax.nn.softmax(jnp.einsum("bi,gik->bgk", x, params["inner"]["w"])
                           + params["inner"]["b"], axis=-1)  # (B, G, K)
    batch = x.shape[0]
    return _mixed(settings, (outer[:, :, None] * inner).reshape(batch, -1),
                  per_group.reshape(batch, -1),
                  behaviours.reshape(batch, -1, behaviours.shape[-1]))


def _mixed(settings: NeuralSettings, paths: jax.Array, experts: jax.Array,
           behaviours: jax.Array) -> Outputs:
    """The outputs from path probabilities and expert outputs, both ``(batch, experts)``,
    and expert behaviours ``(batch, experts, motivations)``: every expert weighted by its
    probability, or only the most probable one."""
    if settings.routing == "top1":
        chosen = jax.nn.one_hot(jnp.argmax(paths, axis=1), paths.shape[1])
        weights = chosen * paths
        return Outputs(jnp.sum(weights * experts, axis=1), chosen, experts,
                       jnp.einsum("be,bem->bm", weights, behaviours))
    return Outputs(jnp.sum(paths * experts, axis=1), paths, experts,
                   jnp.einsum("be,bem->bm", paths, behaviours))

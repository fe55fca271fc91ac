"""The settings of a neural run: the architecture and how it is trained.

They are not part of a scenario (the scenario says what is trained and when; these say what
learns it).  ``circuits-abm neural run`` takes them as options and a sweep file as its
``[neural]`` table; every field has a default, and a bad value is an error naming the
field and what is allowed, like a scenario's.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ARCHITECTURES = ("mlp", "moe", "nested")


class NeuralSettings(BaseModel):
    """What learns the scenario, and how.

    * ``arch``: ``mlp`` (one dense network: one mechanism), ``moe`` (``experts`` experts
      under a softmax gate on the input) or ``nested`` (a gate over ``groups`` mixtures of
      ``experts`` experts each);
    * ``width``: hidden units of the MLP and of each expert (one tanh layer);
    * ``optimizer``: ``sgd`` (plain gradient descent) or ``adam``, at ``learning_rate``,
      with decoupled ``weight_decay``;
    * ``batch_size``: examples per step (one step of the scenario is one update);
    * ``policy_noise``: the standard deviation of the Gaussian policy in RL environments
      (exploration; REINFORCE's variance grows as it shrinks);
    * ``eval_examples``: inputs on which each environment is scored at every phase end;
    * ``cue``: what sees the environment's cue.  ``gate`` (default): only the gates, as in
      the agent-based model, where a mechanism acts on the content alone and only routers
      tell contexts apart (the MLP then sees no cue at all); ``all``: every part, as in a
      standard dense network, which can then condition on the context without a gate;
    * ``routing``: ``soft`` (the output mixes every expert by its gate probability) or
      ``top1`` (each input goes to its most probable expert only, scaled by that
      probability, as in Switch Transformers; the routing tables then count where inputs
      actually went).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    arch: Literal["mlp", "moe", "nested"] = "moe"
    width: Annotated[int, Field(ge=1, le=512)] = 16
    experts: Annotated[int, Field(ge=2, le=32)] = 4
    groups: Annotated[int, Field(ge=2, le=8)] = 2
    optimizer: Literal["sgd", "adam"] = "sgd"
    learning_rate: Annotated[float, Field(gt=0.0, le=10.0)] = 0.05
    weight_decay: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32
    policy_noise: Annotated[float, Field(gt=0.0, le=10.0)] = 0.5
    eval_examples: Annotated[int, Field(ge=16, le=65536)] = 512
    cue: Literal["gate", "all"] = "gate"
    routing: Literal["soft", "top1"] = "soft"

    @property
    def mechanisms(self) -> int:
        """How many experts the network has (one for the MLP)."""
        return {"mlp": 1, "moe": self.experts, "nested": self.groups * self.experts}[self.arch]

    def structure(self) -> str:
        """The network in the structure grammar: ``n`` for the MLP (one learner), a router
        over its experts for a mixture (``R[n,n,n,n]``, ``R[R[n,n],R[n,n]]``)."""
        experts = "R[" + ",".join(["n"] * self.experts) + "]"
        return {"mlp": "n", "moe": experts,
                "nested": "R[" + ",".join([experts] * self.groups) + "]"}[self.arch]

    def paths(self) -> list[str]:
        """Each expert's path in the routing tables, as the agent-based records write them
        (``root`` for the MLP, ``k`` for expert k, ``g.k`` inside group g)."""
        if self.arch == "mlp":
            return ["root"]
        if self.arch == "moe":
            return [str(k) for k in range(self.experts)]
        return [f"{g}.{k}" for g in range(self.groups) for k in range(self.experts)]

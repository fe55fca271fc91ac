"""The same scenarios in networks trained by gradient descent (JAX and optax, on the CPU).

This package computes; ``circuits_abm.experiments.neural`` (``ca.neural``) runs, stores and
sweeps.

A scenario's environments become tasks built from its own geometry (``tasks``): each
environment's demand vector is a linear teacher, so the teachers overlap exactly as the
demand Gram matrix says, and its cue vector is part of the input, so a network can tell the
environments apart exactly as much as the cue Gram matrix allows.  SFT environments train
by regression on the teacher, RL environments by REINFORCE on a Gaussian policy whose reward
is the teacher's.  The networks (``networks``) are standard: a dense MLP, a mixture of
experts with a softmax gate on the input, and a two-level mixture; they know nothing of
the agent-based model.  ``training`` trains one on the scenario's schedule, and
``readouts`` writes what it did into the run tables the classifier reads, so one classifier
reads both worlds.  ``circuits_abm.experiments.neural`` runs and sweeps them.
``gradient_routing`` is a network of its own for one motivation and a monitor in its hidden
layer (``circuits_abm.experiments.neural_routing`` compares it with the agent-based model).

Needs the ``neural`` extra (``pip install 'circuits_abm[neural]'``; part of ``make venv``).
"""

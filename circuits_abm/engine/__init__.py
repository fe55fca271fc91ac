"""The engine: a scenario in, a Mesa model that steps a population of circuits out.

Read in this order: ``scenario`` (the validated input), ``rules`` (the learning rules),
``environments`` and ``schedule`` (what the population is trained on, and when),
``circuits`` (the trees: mechanisms and routers, as Mesa agents), ``population`` (the trees
flattened into arrays), ``learning`` and ``selection`` (the compiled numerics of one step),
``variation`` (offspring), ``monitoring`` (the monitor and motivations), ``records`` (what a
run writes down), ``model`` (the step that ties them together) and ``reference`` (a plain
Python step kept as a cross-check of the compiled one).  Nothing here imports from the
layers above it.
"""

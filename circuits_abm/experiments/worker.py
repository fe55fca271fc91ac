"""What a sweep's fork server holds before it forks worker processes.

``make_executor`` asks the fork server to import this module.  Importing it loads the
package and runs a 20-step model of the standard scenario once, so every compiled kernel,
the classification and the theory are in memory.  Each worker is forked from that
process, so it starts ready: it runs seed after seed with nothing left to load, instead
of paying the kernels' loading from Numba's cache (about a third of a second) on its
first run.
"""

from circuits_abm.experiments.runs import run

run("standard", steps=20, progress=False)

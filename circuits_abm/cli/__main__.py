"""``python -m circuits_abm.cli``: the same command line as ``circuits-abm``."""

from circuits_abm.cli import main

main()

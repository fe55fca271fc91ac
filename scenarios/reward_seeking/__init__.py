"""Built-in reward-seeking experiment files, shipped as package data (circuits_abm.builtin)."""

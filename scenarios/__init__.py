"""Built-in scenario files, shipped as package data of circuits_abm (circuits_abm.builtin)."""

"""Built-in holdout scenarios (circuits-abm holdout), shipped as package data (circuits_abm.builtin)."""

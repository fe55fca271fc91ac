"""Figures drawn from stored runs and sweeps (matplotlib); the top layer below the CLI."""

"""Experiments built on the engine and the analysis: ``runs`` (one run, its result folder
and provenance), ``sweeps`` (designs over parameters, many seeds, resumable), ``catalogue``
(claims as rates over derived seeds) and ``storage`` (atomic files and folder locks)."""

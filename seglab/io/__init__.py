"""Files and names: the one atomic write and .npz cache format (:mod:`~seglab.io.atomic_files`), best-effort
cache writes (:mod:`~seglab.io.cache_write`), NaN -> null (:mod:`~seglab.io.json_values`), safe output folders
(:mod:`~seglab.io.output_paths`), display-safe names (:mod:`~seglab.io.names`) and the one rule for untrusted
server paths (:mod:`~seglab.io.allowed_paths`).

Import the modules themselves: ``allowed_paths`` reads dataset specs, which themselves use ``names``.
"""

"""The engine runs models: ``TrainConfig`` (:mod:`~seglab.engine.config`), optimisers and schedules
(:mod:`~seglab.engine.optim`, :mod:`~seglab.engine.recipe`), the ``Trainer`` (:mod:`~seglab.engine.trainer`),
checkpoints, run folders and background runs, inference (:mod:`~seglab.engine.predict`), cached evaluation
(:mod:`~seglab.engine.evaluation`) and export.

Import the modules themselves (``from seglab.engine.trainer import Trainer``); the everyday names are also
on :mod:`seglab` itself.
"""

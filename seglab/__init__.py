"""seglab: an interactive visual debugging lab for semantic segmentation.

The library is usable without the Streamlit app: datasets and label maps (:mod:`seglab.data`),
metrics (:mod:`seglab.metrics.confusion`), dataset statistics (:mod:`seglab.analysis.stats`), visual helpers
(:mod:`seglab.viz`), models, losses, optimisers, the trainer, runs and inference.
"""

import os

# On a small shared CPU (a 2-core laptop running the app, a browser and a training run), OpenMP
# threads that spin while waiting stall torch for seconds whenever another process holds a core;
# passive waiting keeps steps steady. Only a default: it must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

"""seglab: an interactive visual debugging lab for semantic segmentation.

The library is usable without the Streamlit app: datasets and label maps (:mod:`seglab.data`),
metrics (:mod:`seglab.metrics`), dataset statistics (:mod:`seglab.stats`), visual helpers
(:mod:`seglab.viz`), models, losses, optimisers, the trainer, runs and inference.
"""

__version__ = "0.1.0"

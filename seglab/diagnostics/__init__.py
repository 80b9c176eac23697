"""Diagnostics beyond mIoU, gathered in the evaluation's single pass and cached with it.

- :mod:`~seglab.diagnostics.objects`: ground-truth objects found or missed by size, false blobs, lesion-wise Dice.
- :mod:`~seglab.diagnostics.boundary`: Boundary IoU (Cheng et al. 2021) and the BF score (Csurka et al. 2013).
- :mod:`~seglab.diagnostics.calibration`: top-label ECE, reliability bins, confidently wrong pixels.
- :mod:`~seglab.diagnostics.slices`: metrics per slice of the split (sequence, brightness, classes, tags).
- :mod:`~seglab.diagnostics.accumulator`: all of them from one pass; :mod:`~seglab.diagnostics.report`: JSON.
"""

from seglab.diagnostics.accumulator import Diagnostics, DiagnosticsAccumulator
from seglab.diagnostics.report import DiagnosticOptions, diagnostics_summary

__all__ = ["DiagnosticOptions", "Diagnostics", "DiagnosticsAccumulator", "diagnostics_summary"]

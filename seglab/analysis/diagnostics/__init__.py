"""Diagnostics beyond mIoU, gathered in the evaluation's single pass and cached with it.

- :mod:`~seglab.analysis.diagnostics.objects`: ground-truth objects found or missed by size, false blobs,
  lesion-wise Dice.
- :mod:`~seglab.analysis.diagnostics.boundary`: Boundary IoU (Cheng et al. 2021) and the BF score (Csurka et al. 2013).
- :mod:`~seglab.analysis.diagnostics.calibration`: top-label ECE, reliability bins, confidently wrong pixels.
- :mod:`~seglab.analysis.diagnostics.slices`: metrics per slice of the split (sequence, brightness, classes, tags).
- :mod:`~seglab.analysis.diagnostics.accumulator`: all of them from one pass;
  :mod:`~seglab.analysis.diagnostics.report`: JSON.
"""

from seglab.analysis.diagnostics.accumulator import Diagnostics, DiagnosticsAccumulator
from seglab.analysis.diagnostics.report import DiagnosticOptions, diagnostics_summary

__all__ = ["DiagnosticOptions", "Diagnostics", "DiagnosticsAccumulator", "diagnostics_summary"]

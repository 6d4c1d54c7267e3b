"""Ternary and binary-weight EP (ALGORITHMS.md §4): ternarisation, the 2T2R read-error model,
error-aware training and the export for the hardware flow (docs/ternary.md).

Importing the package is cheap; the torch-based modules load on first use:
:mod:`.ternarize`, :mod:`.errors`, :mod:`.network`, :mod:`.train`, :mod:`.export`;
``python -m golden.ternary --help`` lists the commands.
"""

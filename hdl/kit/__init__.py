"""The core kit: the parts an accelerator core is assembled from (docs/ep-core.md, "Components").

Each part is a ``wiring.Component`` with a Signature and a docstring stating its contract and
latency; its twin piece lives beside the core's twin (``golden.ep_core``) and its own
Amaranth-simulator test is ``tests/test_kit_<part>.py``. The EP core (:mod:`hdl.ep_core`), its
ternary variant and the EqSpike core share these parts.
"""

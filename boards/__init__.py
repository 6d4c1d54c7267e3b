"""Board wrappers of the EP core: UART (:mod:`.uart`), host link (:mod:`.hostlink`, :mod:`.protocol`),
board tops (:mod:`.top`), the host driver (:mod:`.host`), simulated transports (:mod:`.simlink`),
a mock core (:mod:`.mock_core`) and the synthesis flow (:mod:`.synth`, ``python -m boards``).
See docs/boards.md. Importing the package imports nothing heavy."""

"""Kit part: the scalar row path's activation ρ and ±β nudge of the EP core (docs/ep-core.md, "Components")."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fixed import saturate, shift_round

ROUNDINGS = ("floor", "half_up")


class Activation(wiring.Component):
    """ρ: ``state = clip(shift_round(pre, shift_k, rounding), 0, 2^state_bits − 1)``.

    Contract (twin piece: :func:`golden.ep_core.activation.activation`, which
    :class:`golden.ep_core.EPCoreTwin` applies to every layer's pre-activations):

    * ``shifts`` maps each layer k to its activation shift (``spec.activation_shift(k)``; ≤ 0 is an
      exact left shift). With one layer the shift is fixed and there is no ``layer`` port; with
      several, ``layer`` selects it (a layer outside ``shifts`` gives shift result 0, so state 0).
    * ``pre`` is a signed ``pre_bits`` value; the shifted value is formed in ``pre_bits + 1`` bits
      (no wrap for any shift ≥ 0; a left shift must fit them, as the spec's sizes ensure) and
      saturated to ``[0, 2^state_bits − 1]``, never wrapped.

    Latency: 0 (combinational; the core registers the state where it writes it). No handshake: it
    takes a value every cycle.
    """

    def __init__(self, shifts: dict[int, int], rounding: str, pre_bits: int, state_bits: int):
        if not shifts:
            raise ValueError("shifts must name at least one layer, not {}")
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, not {rounding!r}")
        if pre_bits < 2 or state_bits < 1:
            raise ValueError(f"pre_bits must be >= 2 and state_bits >= 1, not {pre_bits} and {state_bits}")
        self.shifts = dict(shifts)
        self.rounding = rounding
        self.pre_bits = pre_bits
        self.state_bits = state_bits
        sig = {"pre": In(signed(pre_bits)), "state": Out(state_bits)}
        if len(self.shifts) > 1:
            sig["layer"] = In(range(max(self.shifts) + 1))
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        width = self.pre_bits + 1
        top = (1 << self.state_bits) - 1
        if len(self.shifts) == 1:
            (shift,) = self.shifts.values()
            m.d.comb += self.state.eq(saturate(shift_round(self.pre, shift, self.rounding, width),
                                               0, top, self.state_bits))
            return m
        shifted = Signal(signed(width), name="act_sh")
        with m.Switch(self.layer):
            for k, shift in self.shifts.items():
                with m.Case(k):
                    m.d.comb += shifted.eq(shift_round(self.pre, shift, self.rounding, width))
        m.d.comb += self.state.eq(saturate(shifted, 0, top, self.state_bits))
        return m


class Nudge(wiring.Component):
    """The ±β nudge of the output layer: ``nudge = ±((match ? 2^state_bits : 0) − state) << (shift0 − beta_shift)``.

    Contract (twin piece: :func:`golden.ep_core.activation.nudge`, which :class:`golden.ep_core.EPCoreTwin`
    adds to the top layer's pre-activations in a nudged phase):

    * ``match`` says the output unit is the label's (target 1.0 = 2^state_bits, else 0), ``state`` is
      its current state; ``bsign`` 0: no nudge (0), 1: +β, 2 (or 3): −β.
    * The shift is ``shift0 − beta_shift`` (``shift0`` = ``spec.nudge_shift(0)``; ``beta_shift`` is the
      latched ``REG_BETA_SHIFT``, ≤ ``shift0`` as the register check ensures), formed in
      ``range(shift0 + 1)``.
    * ``nudge`` is ``out_bits`` wide (the accumulator: the spec sizes it so that nothing wraps);
      ``full`` is the signed ``(target − state) << shift``, unwrapped (any sign), for the formal
      harness's overflow taps.

    Latency: 0 (combinational). No handshake.
    """

    def __init__(self, state_bits: int, shift0: int, beta_bits: int, out_bits: int):
        if state_bits < 1 or shift0 < 0 or beta_bits < 1 or out_bits < 2:
            raise ValueError("state_bits, beta_bits must be >= 1, shift0 >= 0 and out_bits >= 2, "
                             f"not {state_bits}, {beta_bits}, {shift0} and {out_bits}")
        self.state_bits, self.shift0 = state_bits, shift0
        full_bits = len(Signal(signed(state_bits + 2)) << Signal(range(shift0 + 1)))
        super().__init__({"match": In(1), "state": In(state_bits), "bsign": In(2), "beta_shift": In(beta_bits),
                          "nudge": Out(signed(out_bits)), "full": Out(signed(full_bits))})

    def elaborate(self, platform):
        m = Module()
        diff = Signal(signed(self.state_bits + 2), name="ndiff")
        m.d.comb += diff.eq(Mux(self.match, 1 << self.state_bits, 0) - self.state)
        nsh = Signal(range(self.shift0 + 1), name="nsh")
        m.d.comb += nsh.eq(self.shift0 - self.beta_shift)
        m.d.comb += self.full.eq(diff << nsh)
        m.d.comb += self.nudge.eq(Mux(self.bsign == 0, 0, Mux(self.bsign == 1, diff << nsh, -(diff << nsh))))
        return m

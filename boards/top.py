"""Board top levels: the EP core (or its mock) behind the host link and a UART.

* :class:`LinkedCore` — :class:`~boards.hostlink.HostLink` + a core, with byte-stream ports
  (what the fast simulations drive).
* :class:`UARTLinkedCore` — the same behind :class:`~boards.uart.UARTRx`/:class:`~boards.uart.UARTTx`,
  with the serial lines as ports (what a board pins out; simulated bit by bit in one test).
* :class:`BoardTop` — an elaboratable for amaranth-boards platforms: board clock, power-on
  reset plus a user button as reset, the ``uart`` resource, status LEDs.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth.build import ResourceError
from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import io, stream, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from spec.ep_core import EPCoreSpec

from .hostlink import VIEW_KINDS, HostLink, connect_core
from .uart import UARTRx, UARTTx, bridge_for_platform, default_baud, uart_divisor


class LinkedCore(wiring.Component):
    """A core behind a :class:`HostLink`.

    Parameters
    ----------
    core : wiring.Component
        Has the EP core's signature (``hdl.ep_core.EPCore`` or ``boards.mock_core.MockEPCore``).
    spec : EPCoreSpec
    rx_fifo_depth, timeout_cycles, store_samples : passed to :class:`HostLink`.

    Members
    -------
    rx : In(stream.Signature(8)) — bytes from the host. tx : Out(stream.Signature(8)) — bytes to it.
    core_busy : Out(1). error : Out(1) — pulse on a protocol error.
    """

    def __init__(self, core, spec: EPCoreSpec, *, rx_fifo_depth: int = 512, timeout_cycles: int | None = None,
                 store_samples: int = 0):
        self.core = core
        self.spec = spec
        self.link = HostLink(spec, rx_fifo_depth=rx_fifo_depth, timeout_cycles=timeout_cycles,
                             store_samples=store_samples)
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "core_busy": Out(1), "error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link
        m.submodules.core = self.core
        connect_core(m, link, self.core)
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))
        m.d.comb += [self.core_busy.eq(link.core_busy), self.error.eq(link.error)]
        return m


class UARTLinkedCore(wiring.Component):
    """A :class:`LinkedCore` behind an 8N1 UART.

    Parameters
    ----------
    core, spec, rx_fifo_depth, timeout_cycles, store_samples : as :class:`LinkedCore`.
    divisor : int
        Clock cycles per bit.

    Members
    -------
    rx : In(1) — serial line from the host (idle high). tx : Out(1) — serial line to the host.
    core_busy : Out(1).
    fault : Out(1) — sticky until reset: a byte was lost (overrun), a stop bit was bad, or the link
        reported a protocol error.
    """

    def __init__(self, core, spec: EPCoreSpec, *, divisor: int, rx_fifo_depth: int = 512,
                 timeout_cycles: int | None = None, store_samples: int = 0):
        self.divisor = divisor
        self.uart_rx = UARTRx(divisor=divisor)
        self.uart_tx = UARTTx(divisor=divisor)
        self.linked = LinkedCore(core, spec, rx_fifo_depth=rx_fifo_depth, timeout_cycles=timeout_cycles,
                                 store_samples=store_samples)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "core_busy": Out(1), "fault": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = self.uart_rx
        m.submodules.uart_tx = tx = self.uart_tx
        m.submodules.linked = linked = self.linked
        wiring.connect(m, rx.data, linked.rx)
        wiring.connect(m, linked.tx, tx.data)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), self.core_busy.eq(linked.core_busy)]
        with m.If(rx.overrun | rx.frame_error | linked.error):
            m.d.sync += self.fault.eq(1)
        return m


# reset buttons (active high after the platform's inversion): ULX3S "FIRE 1", iCEBreaker's user button
RESET_BUTTONS = {"ulx3s": ("button_fire", 0), "icebreaker": ("button", 0)}


class BoardTop(Elaboratable):
    """Top level for an amaranth-boards platform.

    Parameters
    ----------
    core_factory : callable
        ``core_factory(spec)`` returns a component with the EP core's signature.
    spec : EPCoreSpec
    baud : int or None
        UART rate; the divisor is ``round(f_clk / baud)``. Refused when the board's USB-UART bridge
        (:data:`boards.uart.BRIDGES`) cannot go that fast or the FPGA's rate and the bridge's differ
        by more than 2 %. ``None`` (default): the fastest rate both make exactly
        (:func:`boards.uart.default_baud`; ULX3S at 25 MHz: 1 Mbaud, at 50 MHz: 2 Mbaud;
        iCEBreaker: 3 Mbaud). The rate used is in :attr:`baud` after elaboration.
    rx_fifo_depth : int
        Receive FIFO of the host link (512 bytes = one iCE40 EBR).
    timeout_s : float or None
        The link's mid-command timeout in seconds (default 0.1 s).
    clock_mhz : float or None
        Core clock. ``None``: the board oscillator, reset by the platform's power-on logic (the
        platform subclasses in :mod:`boards.synth` add a user button as reset). A frequency: a PLL
        (:mod:`boards.pll`; ECP5 boards) makes it from the oscillator, and the sync domain is held in
        reset until the PLL locks or while the user button is pressed. LEDs: 0 = core busy,
    1 = fault (sticky: UART overrun/framing or protocol error), 2 = a slow heartbeat blink
    (where the board has a third LED).
    store_samples : int
        Slots of the link's sample store in block RAM (0: none; ``docs/boards.md``, "Streaming a test
        set from block RAM"). Checked against the board's block RAM beside the core
        (:func:`boards.fit.check_store_fits`) when the platform is elaborated.
    """

    def __init__(self, core_factory: Callable, spec: EPCoreSpec, *, baud: int | None = None, rx_fifo_depth: int = 512,
                 timeout_s: float | None = 0.1, clock_mhz: float | None = None, store_samples: int = 0):
        if clock_mhz is not None and not (isinstance(clock_mhz, (int, float)) and clock_mhz > 0):
            raise ValueError(f"clock_mhz must be a positive number of MHz or None, not {clock_mhz!r}")
        if not (isinstance(spec, EPCoreSpec) or getattr(spec, "kind", None) in VIEW_KINDS):
            raise TypeError(f"spec must be an EPCoreSpec or a core's link view (boards.eqspike_top.EqSpikeLinkSpec, "
                            f"boards.galton_top.GaltonLinkSpec), not {type(spec).__name__}")
        self.core_factory = core_factory
        self.spec = spec
        self.baud = baud
        self.rx_fifo_depth = rx_fifo_depth
        self.timeout_s = timeout_s
        self.clock_mhz = clock_mhz
        self.store_samples = store_samples
        self.pll_config = None

    def elaborate(self, platform):
        if self.clock_mhz is not None:
            check_pll_platform(platform)
        clk_freq = platform.default_clk_frequency
        if self.clock_mhz is not None:
            from .pll import ecp5_pll_config

            clk_freq = ecp5_pll_config(clk_freq / 1e6, float(self.clock_mhz)).f_out_mhz * 1e6
        # the rate is checked before anything is built (a refused rate leaves no unused elaboratable)
        if self.store_samples:
            from .fit import check_store_fits, platform_board

            check_store_fits(platform_board(platform), self.spec, self.store_samples)
        bridge = bridge_for_platform(platform)
        if self.baud is None:
            self.baud = default_baud(clk_freq, bridge)
        divisor = uart_divisor(clk_freq, self.baud, bridge=bridge)
        m = Module()
        if self.clock_mhz is not None:
            clk_freq = self._pll_domain(m, platform)
        timeout = None if self.timeout_s is None else max(1, int(self.timeout_s * clk_freq))
        m.submodules.top = top = UARTLinkedCore(self.core_factory(self.spec), self.spec, divisor=divisor,
                                                rx_fifo_depth=self.rx_fifo_depth, timeout_cycles=timeout,
                                                store_samples=self.store_samples)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [top.rx.eq(rx_buf.i), tx_buf.o.eq(top.tx)]
        heartbeat = Signal(range(int(clk_freq)))
        m.d.sync += heartbeat.eq(heartbeat + 1)
        leds = [top.core_busy, top.fault, heartbeat[-1]]
        for i, value in enumerate(leds):
            try:
                pin = platform.request("led", i, dir="-")
            except ResourceError:  # fewer LEDs on this board
                break
            m.submodules[f"led{i}_buf"] = led = io.Buffer("o", pin)
            m.d.comb += led.o.eq(value)
        return m

    def _pll_domain(self, m: Module, platform) -> float:
        """The sync domain from a PLL; returns its frequency in Hz."""
        self.pll_config = pll_sync_domain(m, platform, self.clock_mhz)
        return self.pll_config.f_out_mhz * 1e6


def check_pll_platform(platform) -> None:
    """Refuse PLL clocking (``clock_mhz``) on a platform :func:`pll_sync_domain` does not support."""
    if getattr(platform, "family", None) != "ecp5":
        raise ValueError(f"clock_mhz: PLL clocking is implemented for ECP5 boards (ulx3s) only, not "
                         f"{platform.device}; leave clock_mhz unset to run from the oscillator")


def pll_sync_domain(m: Module, platform, clock_mhz: float):
    """Drive ``m``'s sync domain from an ECP5 PLL at ``clock_mhz`` made from the board oscillator.

    The domain is held in reset (through a reset synchroniser) until the PLL locks and while the
    platform's reset button (``platform.default_rst``) is pressed. Shared by :class:`BoardTop` and
    :class:`boards.galton_top.GaltonBoardTop` (a :class:`BoardTop`). Returns the :class:`boards.pll.PLLConfig` (nextpnr
    derives the output clock's constraint from its dividers).

    Raises
    ------
    ValueError
        If the platform is not an ECP5 one, or the PLL cannot make ``clock_mhz``.
    """
    from .pll import ecp5_pll, ecp5_pll_config

    check_pll_platform(platform)
    cfg = ecp5_pll_config(platform.default_clk_frequency / 1e6, float(clock_mhz))
    clk_pin = platform.request(platform.default_clk, 0, dir="-")
    m.submodules.clk_in_buf = clk_buf = io.Buffer("i", clk_pin)
    clk_out, locked = ecp5_pll(m, clk_buf.i, cfg)
    m.domains.sync = cd = ClockDomain("sync")
    m.d.comb += cd.clk.eq(clk_out)
    arst = ~locked
    if platform.default_rst is not None:
        rst_pin = platform.request(platform.default_rst, 0, dir="-")
        m.submodules.rst_in_buf = rst_buf = io.Buffer("i", rst_pin)
        arst = arst | rst_buf.i
    m.submodules.rst_sync = ResetSynchronizer(arst, domain="sync")
    return cfg

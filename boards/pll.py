"""Clock generation for board tops: the ECP5 ``EHXPLLL`` in its simplest use (CLKOP fed back).

The board oscillators are slow (ULX3S: 25 MHz), so a core whose Fmax is higher runs from a PLL:
``f_out = f_in · CLKFB_DIV / CLKI_DIV`` with the VCO at ``f_out · CLKOP_DIV``. :func:`ecp5_pll_config`
chooses the dividers (data-sheet ranges: input 8–400 MHz, phase detector 3.125–400 MHz, VCO 400–800 MHz,
output 3.125–400 MHz), preferring an exact frequency, then the highest phase-detector frequency.
nextpnr derives the output clock's constraint from the input's and these dividers, so the timing
report covers the PLL's domain.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Instance, Module, Signal

PFD_MHZ = (3.125, 400.0)
VCO_MHZ = (400.0, 800.0)
OUT_MHZ = (3.125, 400.0)
IN_MHZ = (8.0, 400.0)


@dataclass(frozen=True)
class PLLConfig:
    f_in_mhz: float
    f_out_mhz: float  # achieved
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def vco_mhz(self) -> float:
        return self.f_out_mhz * self.clkop_div


def ecp5_pll_config(f_in_mhz: float, f_out_mhz: float, *, tolerance: float = 0.005) -> PLLConfig:
    """Dividers of an EHXPLLL producing ``f_out_mhz`` from ``f_in_mhz`` within ``tolerance`` (relative).

    Raises
    ------
    ValueError
        If a frequency is outside the PLL's ranges or no divider set reaches the tolerance.
    """
    if not (IN_MHZ[0] <= f_in_mhz <= IN_MHZ[1]):
        raise ValueError(f"f_in_mhz must be within {IN_MHZ[0]}–{IN_MHZ[1]} MHz for the ECP5 PLL, not {f_in_mhz}")
    if not (OUT_MHZ[0] <= f_out_mhz <= OUT_MHZ[1]):
        raise ValueError(f"clock_mhz must be within {OUT_MHZ[0]}–{OUT_MHZ[1]} MHz for the ECP5 PLL, not {f_out_mhz}")
    best = None
    for clki in range(1, 129):
        pfd = f_in_mhz / clki
        if not (PFD_MHZ[0] <= pfd <= PFD_MHZ[1]):
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            if not (OUT_MHZ[0] <= out <= OUT_MHZ[1]):
                continue
            for clkop in range(1, 129):
                if VCO_MHZ[0] <= out * clkop <= VCO_MHZ[1]:
                    err = abs(out - f_out_mhz) / f_out_mhz
                    key = (round(err, 12), -pfd)
                    if best is None or key < best[0]:
                        best = (key, PLLConfig(f_in_mhz, out, clki, clkfb, clkop))
                    break
    if best is None or best[0][0] > tolerance:
        got = "none" if best is None else f"{best[1].f_out_mhz:.4f} MHz"
        raise ValueError(f"clock_mhz {f_out_mhz} cannot be made from {f_in_mhz} MHz within {tolerance:.1%} "
                         f"(closest: {got})")
    return best[1]


def ecp5_pll(m: Module, clk_in: Signal, cfg: PLLConfig, *, name: str = "pll") -> tuple[Signal, Signal]:
    """Add an EHXPLLL to ``m``; returns ``(clk_out, locked)``."""
    clk_out = Signal(name=f"{name}_clkop")
    locked = Signal(name=f"{name}_locked")
    m.submodules[name] = Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=f"{cfg.f_in_mhz:g}",
        a_FREQUENCY_PIN_CLKOP=f"{cfg.f_out_mhz:g}",
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
        p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB", p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
        p_CLKI_DIV=cfg.clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=cfg.clkop_div,
        p_CLKOP_CPHASE=cfg.clkop_div - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=cfg.clkfb_div,
        i_RST=0, i_STDBY=0, i_CLKI=clk_in, o_CLKOP=clk_out, i_CLKFB=clk_out,
        i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
        i_ENCLKOP=0, o_LOCK=locked,
    )
    return clk_out, locked

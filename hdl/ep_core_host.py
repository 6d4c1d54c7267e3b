"""Host-side operations on an :class:`hdl.ep_core.EPCore` in the Amaranth simulator.

The same operations a real host performs over its link (load weights, set registers, send
samples, collect predictions and state dumps, read weights back), written as async helpers for
``Simulator.add_testbench``. Payloads are packed with the spec's field lists, the one definition
of the port layouts shared with the cocotb benches.
"""

from __future__ import annotations

from spec.ep_core import (
    REG_BETA_SHIFT,
    REG_CTRL,
    REG_LR_SHIFT,
    REG_SEED,
    REG_T1,
    REG_T2,
    EPCoreSpec,
    pack_fields,
    unpack_fields,
)

from .simhost import StreamHost


class AmaranthHost(StreamHost):
    """Drive the core's streams with optional seeded random stalls (:class:`hdl.simhost.StreamHost`).

    ``idle_prob``: probability that the host leaves ``valid`` low for a cycle before a beat;
    ``stall_prob``: probability that it holds ``ready`` low on a cycle while receiving.
    """

    def __init__(self, dut, spec: EPCoreSpec, *, seed: int | None = None, idle_prob: float = 0.0,
                 stall_prob: float = 0.0):
        super().__init__(dut, spec, seed=seed, idle_prob=idle_prob, stall_prob=stall_prob)

    async def set_regs(self, ctx, regs) -> None:
        await self.write_reg(ctx, REG_CTRL, int(regs.train) | (int(regs.symmetric) << 1) | (int(regs.dump) << 2)
                             | (int(regs.random_sign) << 3))
        await self.write_reg(ctx, REG_T1, regs.T1)
        await self.write_reg(ctx, REG_T2, regs.T2)
        await self.write_reg(ctx, REG_BETA_SHIFT, regs.beta_shift)
        await self.write_reg(ctx, REG_LR_SHIFT, regs.lr_shift)

    async def reseed(self, ctx, seed: int) -> None:
        """Write REG_SEED: restarts a PRNG core's random stream (``EPCoreTwin.reseed``)."""
        await self.write_reg(ctx, REG_SEED, seed)

    async def load_words(self, ctx, words: list[int]) -> None:
        f = self.spec.wcmd_fields()
        for addr, w in enumerate(words):
            await self.put(ctx, self.dut.wcmd, pack_fields(f, {"data": w, "addr": addr, "write": 1}))

    async def read_words(self, ctx) -> list[int]:
        f = self.spec.wcmd_fields()
        out = []
        for addr in range(self.spec.memory_words):
            await self.put(ctx, self.dut.wcmd, pack_fields(f, {"addr": addr, "write": 0}))
            out.append(await self.recv(ctx, self.dut.wrsp))
        return out

    def sample_beats(self, x: list[int], label: int) -> list[int]:
        s = self.spec
        P = s.lanes
        f = s.input_fields()
        beats = []
        for t in range(s.tiles(0)):
            vals = {f"pixels[{i}]": (x[t * P + i] if t * P + i < len(x) else 0) for i in range(P)}
            vals["label"] = label
            beats.append(pack_fields(f, vals))
        return beats

    async def send_sample(self, ctx, x: list[int], label: int) -> None:
        for b in self.sample_beats(x, label):
            await self.put(ctx, self.dut.inp, b)

    async def recv_pred(self, ctx) -> int:
        return unpack_fields(self.spec.output_fields(), await self.recv(ctx, self.dut.out))["pred"]

    async def recv_dump(self, ctx) -> dict:
        """All dump beats of one phase: {(layer, tile): [P states]} plus the phase number."""
        s = self.spec
        f = s.dump_fields()
        n = sum(s.tiles(k) for k in range(1, s.n_layers + 1))
        out, phase = {}, None
        for _ in range(n):
            d = unpack_fields(f, await self.recv(ctx, self.dut.dump))
            phase = d["phase"]
            out[(d["layer"], d["tile"])] = [d[f"states[{i}]"] for i in range(s.lanes)]
        return {"phase": phase, "tiles": out}


def dump_to_states(spec: EPCoreSpec, dump: dict) -> list[list[int]]:
    """Per-layer state lists (padding removed) from :meth:`AmaranthHost.recv_dump`'s result."""
    out = []
    for k in range(1, spec.n_layers + 1):
        vals = []
        for t in range(spec.tiles(k)):
            vals += dump["tiles"][(k, t)]
        out.append(vals[:spec.layers[k]])
    return out

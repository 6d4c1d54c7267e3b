"""Seeded fuzzing of the host link (protocol version 2) against the simulated board.

:class:`FuzzTransport` sits between :class:`boards.host.EPCoreHost` and a
:class:`boards.simlink.StreamSimTransport` and mangles the host's frames on their way to the
device: garbage bytes before a frame, a frame cut short, extra bytes after it, one bit flipped
(bad CRC), a valid frame with another sequence number, a replay of an earlier frame, a frame lost.
:func:`run_fuzz` drives rounds of weight writes, inferences and read-backs through it against
:class:`boards.mock_core.MockEPCore` (whose results :func:`boards.mock_core.mock_prediction`
models), keeps a shadow of every weight the host wrote, and between rounds opens a second host
session or resets the board in the middle of a frame. It counts:

* ``hangs``: a host call that ended in :class:`boards.host.LinkTimeout` although the device was
  only fuzzed (every wait is bounded by the transport's ``max_wait_cycles``);
* ``stray_writes``: weight words that differ from the shadow at a read-back (with mangling off);
* ``lost_samples`` / ``repeated_samples``: predictions missing or extra against the samples sent
  (from the predictions returned and the core's sample counter);
* ``wrong_predictions``, ``unrecovered``: any other LinkError in a fuzzed round;
* ``old_session_errors``: a host whose session was taken over (second session, reset) raised a
  clear LinkError on its next call, as it must (``old_session_silent`` counts the other outcome).
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque

from spec.ep_core import REG_SAMPLES, EPCoreSpec

from .host import EPCoreHost, FramedLinkHost, LinkError, LinkTimeout
from .mock_core import MockEPCore, mock_prediction
from .protocol import CMD_INFO, CMD_SYNC, CMD_WRITE_WORD, crc16, frame
from .simlink import StreamSimTransport
from .top import LinkedCore

MUTATIONS = ("garbage", "truncate", "oversize", "bitflip", "badseq", "replay", "drop")


class FuzzTransport:
    """Mangle a fraction ``p`` of the frames written (one ``write`` = one frame) while ``active``."""

    def __init__(self, inner, rng: random.Random, p: float):
        self.inner, self.rng, self.p = inner, rng, p
        self.active = False
        self.counts: Counter = Counter()
        self.history: deque[bytes] = deque(maxlen=64)  # earlier data frames (for replays)
        self.writes = 0

    @property
    def malformed(self) -> int:
        return sum(self.counts.values())

    def write(self, data: bytes) -> None:
        data = bytes(data)
        self.writes += 1
        if self.active and data and self.rng.random() < self.p:
            kind = self.rng.choice(MUTATIONS)
            if kind == "replay" and not self.history:
                kind = "bitflip"
            self.counts[kind] += 1
            data = self._mutate(kind, data)
        elif len(data) >= 4 and data[0] not in (CMD_SYNC, CMD_INFO) and crc16(data) == 0:
            self.history.append(data)
        self.inner.write(data)

    def _mutate(self, kind: str, data: bytes) -> bytes:
        rng = self.rng
        if kind == "garbage":
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 25))) + data
        if kind == "truncate":
            return data[: rng.randrange(1, len(data))] if len(data) > 1 else b""
        if kind == "oversize":
            return data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 25)))
        if kind == "bitflip":
            i = rng.randrange(8 * len(data))
            b = bytearray(data)
            b[i // 8] ^= 1 << (i % 8)
            return bytes(b)
        if kind == "badseq":  # a well-formed frame (good CRC) with another sequence number
            if len(data) < 4:
                return b""
            return frame(data[0], (data[1] + rng.randrange(1, 256)) & 0xFF, data[2:-2])
        if kind == "replay":  # an earlier frame again, then this one
            return rng.choice(list(self.history)) + data
        return b""  # drop

    def read(self, n: int) -> bytes:
        return self.inner.read(n)

    def reset_input_buffer(self) -> None:
        self.inner.reset_input_buffer()

    def wait_device_timeout(self) -> None:
        self.inner.wait_device_timeout()


FUZZ_SPEC = EPCoreSpec(layers=(10, 6, 3), lanes=4)  # 27 weight words of 64 bits, 3 input beats


def _sample(spec: EPCoreSpec, rng: random.Random) -> list[int]:
    if rng.random() < 0.2:
        return [0] * spec.layers[0]
    return [rng.randrange(1, 1 << spec.input_bits) if rng.random() < 0.3 else 0 for _ in range(spec.layers[0])]


def run_fuzz(*, seed: int = 0, min_malformed: int = 200, p: float = 0.2, spec: EPCoreSpec = FUZZ_SPEC,
             rx_fifo_depth: int = 64, timeout_cycles: int = 120, max_wait_cycles: int = 1500,
             events_every: int = 12, check_every: int = 4, idle_prob: float = 0.1, stall_prob: float = 0.1,
             log=None) -> dict:
    """Fuzz until at least ``min_malformed`` frames were mangled; return the counts (see the module)."""
    rng = random.Random(seed)
    FramedLinkHost.seq_rng = random.Random(seed + 1)
    dut = LinkedCore(MockEPCore(spec, delay=5), spec, rx_fifo_depth=rx_fifo_depth, timeout_cycles=timeout_cycles)
    sim = StreamSimTransport(dut, seed=seed, idle_prob=idle_prob, stall_prob=stall_prob,
                             max_wait_cycles=max_wait_cycles, lossy=True)
    ft = FuzzTransport(sim, rng, p)
    t0 = time.monotonic()

    def open_host() -> EPCoreHost:
        h = EPCoreHost(ft, spec)
        h.session_attempts = 12
        return h

    host = open_host()
    W = spec.memory_words
    wb = host.format.word_bits
    shadow = [rng.getrandbits(wb) for _ in range(W)]
    host.load_weights(shadow)
    res = Counter()
    max_call_cycles = 0
    samples_expected = host.read_reg(REG_SAMPLES)

    maybe: dict[int, int] = {}  # words of a call that raised: sent, so either value is right

    def check_weights(h: EPCoreHost) -> None:
        ft.active = False
        got = h.read_weights()
        for a, (g, w) in enumerate(zip(got, shadow, strict=True)):
            if g != w and maybe.get(a) != g:
                res["stray_writes"] += 1
        shadow[:] = got if not res["stray_writes"] else shadow
        maybe.clear()
        res["read_backs"] += 1

    def after_error(kind: str, e: Exception) -> EPCoreHost:
        res[kind] += 1
        res[f"{kind}: {str(e)[:90]}"] += 1
        ft.active = False
        h = open_host()
        check_weights(h)
        return h

    rounds = 0
    while ft.malformed < min_malformed:
        rounds += 1
        c0 = sim.cycles
        try:
            ft.active = True
            # weight writes: the shadow takes them once load_weights (which syncs) has returned
            base = rng.randrange(W)
            words = [rng.getrandbits(wb) for _ in range(rng.randrange(1, min(6, W - base) + 1))]
            maybe.update({base + i: w for i, w in enumerate(words)})
            host.load_weights(words, base=base)
            shadow[base : base + len(words)] = words
            res["words_written"] += len(words)
            # samples: one prediction each, in order
            xs = [_sample(spec, rng) for _ in range(rng.randrange(1, 5))]
            ys = [rng.randrange(spec.n_classes) for _ in xs]
            preds = host.infer(xs, ys)
            want = [mock_prediction(spec, x, y, False) for x, y in zip(xs, ys, strict=True)]
            samples_expected += len(xs)
            res["samples"] += len(xs)
            if len(preds) != len(want) or preds != want:
                res["wrong_predictions"] += 1
            n = host.read_reg(REG_SAMPLES)
            if n < samples_expected:
                res["lost_samples"] += samples_expected - n
            elif n > samples_expected:
                res["repeated_samples"] += n - samples_expected
            samples_expected = n
            if rounds % check_every == 0:
                check_weights(host)
        except LinkTimeout as e:
            host = after_error("hangs", e)
            samples_expected = host.read_reg(REG_SAMPLES)
        except LinkError as e:
            host = after_error("unrecovered", e)
            samples_expected = host.read_reg(REG_SAMPLES)
        max_call_cycles = max(max_call_cycles, sim.cycles - c0)
        ft.active = False

        if rounds % events_every == 0:
            old = host
            if (rounds // events_every) % 2:
                res["second_sessions"] += 1
                old.write_reg(0, old.read_reg(0))  # leave a frame in flight, never acknowledged
                host = open_host()
            else:
                res["resets"] += 1
                a = rng.randrange(W)
                f = frame(CMD_WRITE_WORD, old._seq, a.to_bytes(old.format.addr_bytes, "little")
                          + (shadow[a] ^ 1).to_bytes(old.format.word_bytes, "little"))
                sim.write(f[: rng.randrange(1, len(f))])  # a frame cut by the reset: must not land
                sim.run_cycles(rng.randrange(1, 40))
                sim.reset_device()
                ft.counts["reset mid-frame"] += 1
            try:  # the host whose session was taken over (or reset) must refuse to go on
                old.read_reg(REG_SAMPLES)
                res["old_session_silent"] += 1
            except LinkError as e:
                res["old_session_errors"] += 1
                res[f"old session: {str(e)[:60]}"] += 1
            host = open_host()
            samples_expected = host.read_reg(REG_SAMPLES)
            check_weights(host)
        if log and rounds % 200 == 0:
            log(f"round {rounds}: {ft.malformed} malformed frames, {dict(res)}")

    check_weights(host)
    return {
        "seed": seed,
        "p": p,
        "settings": {"rx_fifo_depth": rx_fifo_depth, "timeout_cycles": timeout_cycles,
                     "max_wait_cycles": max_wait_cycles, "events_every": events_every, "check_every": check_every,
                     "idle_prob": idle_prob, "stall_prob": stall_prob},
        "rounds": rounds,
        "malformed_frames": ft.malformed,
        "mutations": dict(sorted(ft.counts.items())),
        "frames_written": ft.writes,
        "cycles": sim.cycles,
        "max_cycles_per_round": max_call_cycles,
        "bytes_lost_to_full_fifo": sim.lost,
        "hangs": res.pop("hangs", 0),
        "stray_writes": res.pop("stray_writes", 0),
        "lost_samples": res.pop("lost_samples", 0),
        "repeated_samples": res.pop("repeated_samples", 0),
        "wrong_predictions": res.pop("wrong_predictions", 0),
        "unrecovered": res.pop("unrecovered", 0),
        "counts": dict(sorted(res.items())),
        "wall_s": round(time.monotonic() - t0, 1),
    }

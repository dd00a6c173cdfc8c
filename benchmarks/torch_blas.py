"""Give PyTorch its best BLAS kernel before timing it, and say which kernel it ran.

Debian's python3-torch does its matrix products in whatever libblas.so.3 the system
provides. Two things can make it far slower than it should be, and neither shows unless
someone looks:

- the reference (netlib) BLAS is the one installed (python3-torch only *recommends*
  OpenBLAS): ~5 GFLOP/s for a 512^3 float64 product where OpenBLAS does ~50;
- OpenBLAS does not recognise the CPU and falls back to an old core ("Prescott", "generic",
  or an AVX2 core on an AVX-512 CPU): ~10 GFLOP/s where its AVX-512 kernel does ~65.

`setup()` is called by the benchmark scripts before any timing. It loads torch,
reads which BLAS library torch loaded and which OpenBLAS core that library picked, measures
a 512^3 float64 product, and when the kernel is a fallback, re-executes the script with the
fix in the environment (both can only take effect before OpenBLAS loads):

- reference BLAS loaded, OpenBLAS installed: LD_LIBRARY_PATH leads torch to OpenBLAS's
  libblas.so.3 (the system's default stays as it is);
- OpenBLAS on a fallback core, CPU with AVX-512 (or AVX2): OPENBLAS_CORETYPE=SkylakeX
  (or Haswell). A user who set OPENBLAS_CORETYPE keeps theirs.

The re-executed process measures again; `header_lines()` then reports both. Also:
`torch.set_num_threads(n)` does not reach OpenBLAS's own thread pool (the pthreads build
starts one thread per core), so `set_threads(torch, n)` sets both.

When torch is not importable, `setup()` first re-executes the script under Debian's
/usr/bin/python3, installing python3-torch and OpenBLAS there when run as root.

Standard library only (torch is imported by `setup()`).
"""

import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys
import time

SYSTEM_PYTHON = "/usr/bin/python3"
REEXEC_FLAG = "GROKALIGN_TORCH_REEXEC"


def ensure_torch(script):
    """Make torch importable, re-executing under the system Python (and installing Debian's
    python3-torch there, when running as root) if needed."""
    try:
        import torch  # noqa: F401

        return
    except ImportError:
        pass
    here = os.path.realpath(sys.executable)
    if os.environ.get(REEXEC_FLAG) != "1" and os.path.exists(SYSTEM_PYTHON) and here != os.path.realpath(
        SYSTEM_PYTHON
    ):
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import torch"], capture_output=True)
        if probe.returncode == 0:
            env = dict(os.environ, **{REEXEC_FLAG: "1"})
            print(f"torch is not importable from {sys.executable}; re-running under {SYSTEM_PYTHON}",
                  file=sys.stderr)
            os.execve(SYSTEM_PYTHON, [SYSTEM_PYTHON, script] + sys.argv[1:], env)
    # Not available from the system Python either: install the Debian package.
    # OpenBLAS too: python3-torch only recommends it, and the reference BLAS is ~10x slower.
    install = ["apt-get", "install", "-y", "python3-torch", "libopenblas0-pthread"]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing python3-torch: " + " ".join(install), file=sys.stderr)
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(install, check=True)
        env = dict(os.environ, **{REEXEC_FLAG: "1"})
        os.execve(SYSTEM_PYTHON, [SYSTEM_PYTHON, script] + sys.argv[1:], env)
    sys.exit("PyTorch is not available. Install Debian's package and run this script with "
             f"{SYSTEM_PYTHON}:\n    sudo " + " ".join(install))


STATE_ENV = "GROKALIGN_TORCH_BLAS_STATE"  # JSON carried across the re-exec
CORE_ENV = "OPENBLAS_CORETYPE"

# OpenBLAS cores that use the CPU's widest vector unit, by the best one to ask for.
AVX512_CORES = {"skylakex", "cooperlake", "sapphirerapids"}
AVX2_CORES = AVX512_CORES | {"haswell", "zen", "excavator"}


def cpu_info():
    """Model name and flags from /proc/cpuinfo (empty on systems without it)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def best_core(flags):
    """The OpenBLAS core to ask for on a CPU with these flags, and the cores that are as good."""
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"} <= flags:
        return "SkylakeX", AVX512_CORES, "AVX-512"
    if {"avx2", "fma"} <= flags:
        return "Haswell", AVX2_CORES, "AVX2"
    return None, set(), "no AVX2"


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _mapped_libraries():
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[-1].startswith("/") and parts[-1] not in paths:
                    paths.append(parts[-1])
    except OSError:
        pass
    return paths


def _gemm_library():
    """The library whose dgemm_ torch's own calls resolve to.

    Several BLAS-like libraries can be loaded at once (e.g. the reference libblas.so.3 beside
    an OpenBLAS that came in through liblapack.so.3), so look the symbol up from libtorch_cpu,
    the way its references are resolved, and ask the dynamic linker which file holds it."""
    mapped = _mapped_libraries()
    anchors = [p for p in mapped if os.path.basename(p).startswith("libtorch_cpu")] or [None]
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except AttributeError:
        return None, mapped
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    for anchor in anchors:
        try:
            fn = getattr(ctypes.CDLL(anchor), "dgemm_")
        except (OSError, AttributeError):
            continue
        info = _DlInfo()
        if dladdr(ctypes.cast(fn, ctypes.c_void_p), ctypes.byref(info)) and info.dli_fname:
            return os.path.realpath(info.dli_fname.decode()), mapped
    return None, mapped


def _openblas_handle(path):
    """ctypes handle of `path` when it is (or links) OpenBLAS, else None."""
    if not path:
        return None
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        return lib
    except (OSError, AttributeError):
        return None


def _openblas_dirs():
    """Debian's OpenBLAS builds installed beside the reference BLAS, best first."""
    multiarch = f"{platform.machine()}-linux-gnu"
    out = []
    for flavour in ("openblas-pthread", "openblas-openmp", "openblas-serial"):
        d = f"/usr/lib/{multiarch}/{flavour}"
        if os.path.exists(os.path.join(d, "libblas.so.3")):
            out.append(d)
    return out


def _torch_blas_info(torch):
    show = torch.__config__.show()
    info = "unknown"
    for part in show.replace("\n", ",").split(","):
        if "BLAS_INFO=" in part:
            info = part.strip().split("=", 1)[1]
    return info


def _describe(torch):
    """Which BLAS torch's products run on, its core, and a 512^3 float64 product's rate."""
    torch.ones(4, 4, dtype=torch.float64) @ torch.ones(4, 4, dtype=torch.float64)  # loads the BLAS
    path, mapped = _gemm_library()
    lib = _openblas_handle(path)
    d = {"path": path or "unknown", "torch_blas_info": _torch_blas_info(torch)}
    base = os.path.basename(path or "").lower()
    if lib is not None:
        d["kind"] = "openblas"
        d["core"] = lib.openblas_get_corename().decode()
        d["config"] = lib.openblas_get_config().decode().strip()
    elif "mkl" in base:
        d["kind"] = "mkl"
    elif base.startswith("libblas.so") and "/blas/" in (path or ""):
        d["kind"] = "reference"  # Debian's netlib build lives in .../blas/
    elif path is None and any("mkl" in os.path.basename(p).lower() for p in mapped):
        d["kind"] = "mkl"  # statically resolved inside torch: no dgemm_ to look up
    else:
        d["kind"] = "other"
    d["gflops"] = matmul_gflops(torch)
    return d


def set_threads(torch, n):
    """torch's intra-op threads and OpenBLAS's own pool (which torch does not set)."""
    torch.set_num_threads(n)
    lib = _openblas_handle(_gemm_library()[0])
    if lib is not None:
        lib.openblas_set_num_threads(ctypes.c_int(n))


def matmul_gflops(torch, n=512, dtype=None, seconds=0.3):
    """GFLOP/s of an n^3 product on one thread (best of a few batches): it names the kernel."""
    dtype = dtype or torch.float64
    saved = torch.get_num_threads()
    set_threads(torch, 1)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    best, spent = 0.0, 0.0
    while spent < seconds:
        t0 = time.perf_counter()
        for _ in range(3):
            a @ b
        dt = time.perf_counter() - t0
        spent += dt
        best = max(best, 3 * 2 * n**3 / dt / 1e9)
    set_threads(torch, saved)
    return best


def setup(argv=None, script=None):
    """Import torch on its best BLAS kernel, re-executing the script once or twice if needed.

    Returns torch. Call before anything that should not run twice (it may exec)."""
    argv = sys.argv if argv is None else argv
    script = os.path.abspath(script or argv[0])
    ensure_torch(script)
    state = json.loads(os.environ.get(STATE_ENV, "{}"))
    import torch

    now = _describe(torch)
    state.setdefault("before", now)
    state.setdefault("actions", [])
    state["user_core"] = state.get("user_core", os.environ.get(CORE_ENV))
    _, flags = cpu_info()
    best, good, _ = best_core(flags)
    env = dict(os.environ)
    action = None
    if now["kind"] == "reference" and not state.get("tried_openblas"):
        dirs = _openblas_dirs()
        state["tried_openblas"] = True
        if dirs:
            env["LD_LIBRARY_PATH"] = dirs[0] + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
            action = (f"torch loaded the reference BLAS ({now['gflops']:.1f} GFLOP/s); "
                      f"re-executed with LD_LIBRARY_PATH={dirs[0]} (OpenBLAS)")
    elif (now["kind"] == "openblas" and best and now["core"].lower() not in good
          and not state.get("user_core") and not state.get("set_core")):
        env[CORE_ENV] = best
        state["set_core"] = best
        action = (f"OpenBLAS picked the {now['core']} core ({now['gflops']:.1f} GFLOP/s) on a CPU with "
                  f"{'AVX-512' if best == 'SkylakeX' else 'AVX2'}; re-executed with {CORE_ENV}={best}")
    if action:
        state["actions"].append(action)
        env[STATE_ENV] = json.dumps(state)
        print(action, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, script] + list(argv[1:]), env)
    state["after"] = now
    os.environ[STATE_ENV] = json.dumps(state)  # for header_lines and child processes
    return torch


def header_lines(torch):
    """What the PyTorch side ran on: CPU, torch's BLAS, the OpenBLAS core, the fix applied."""
    state = json.loads(os.environ.get(STATE_ENV, "{}"))
    after = state.get("after") or _describe(torch)
    before = state.get("before", after)
    model, flags = cpu_info()
    best, _, isa = best_core(flags)
    par = [ln.strip() for ln in torch.__config__.parallel_info().splitlines()
           if "parallel backend" in ln or "MKL" in ln or "hardware_concurrency" in ln]
    lines = [f"CPU: {model} ({os.cpu_count()} logical CPUs; widest vector ISA: {isa})",
             f"torch {torch.__version__} ({sys.executable}); torch build: BLAS_INFO={after['torch_blas_info']}; "
             + "; ".join(par)]
    libs = after["path"]
    if after["kind"] == "openblas":
        lines.append(f"torch's BLAS: {after['config']} (core in use: {after['core']}) from {libs}")
    elif after["kind"] == "reference":
        lines.append(f"torch's BLAS: the reference (netlib) BLAS from {libs}. WARNING: PyTorch's products "
                     "run ~10x slower than on OpenBLAS; install Debian's libopenblas0-pthread "
                     "for a fair comparison")
    else:
        lines.append(f"torch's BLAS: {after['kind']} from {libs}")
    core = os.environ.get(CORE_ENV)
    if state.get("set_core"):
        lines.append(f"{CORE_ENV}={core}: set by this script (best core for {isa})")
    elif core:
        lines.append(f"{CORE_ENV}={core}: set by the user, kept")
    else:
        lines.append(f"{CORE_ENV} not set: OpenBLAS's own choice kept" if after["kind"] == "openblas"
                     else f"{CORE_ENV} not set")
    for a in state.get("actions", []):
        lines.append("fix: " + a)
    if state.get("actions"):
        lines.append(f"512^3 float64 product, one thread: {before['gflops']:.1f} GFLOP/s before, "
                     f"{after['gflops']:.1f} GFLOP/s after")
    else:
        lines.append(f"512^3 float64 product, one thread: {after['gflops']:.1f} GFLOP/s")
    return lines


if __name__ == "__main__":
    t = setup()
    print("\n".join(header_lines(t)))

"""One device and precision policy for train, sample, evaluate, bench and the Colorizer.

`mixed_precision: auto` (every recipe's default) picks bf16 autocast only where bf16 is fast:
CUDA GPUs that support it, and CPUs whose bf16 units (AVX512-BF16 or AMX, as torch reports them)
measure faster than fp32 in a ~10 ms probe. The units alone do not decide it: a 2-core Intel Xeon
with AVX512-BF16 and no AMX ran a bf16 convolution at 1.4x and the training loop at 1.35x the time
of fp32, while an AMD EPYC with the same flag trained 1.2x faster in bf16. Without the units — most
laptops — bf16 autocast is emulated at 50-130x the cost of fp32, so auto means fp32 there (with
TF32 matmul and convolution on CUDA GPUs that have it). An explicit `bf16` on a CPU that would
emulate it is honoured, with a one-line warning that gives the measured cost.
"""

from __future__ import annotations

import contextlib
import functools
import time
import warnings
from dataclasses import dataclass

import torch

from colorgan.errors import ColorganError

PRECISIONS = ("auto", "no", "bf16")
"""Recipe values of `train.mixed_precision`: `no` is fp32 (Accelerate's word for it)."""


class SlowPrecisionWarning(UserWarning):
    """bf16 was asked for on a device that emulates it."""


def resolve_device(requested: str | torch.device | None = None) -> torch.device:
    """`None`/`auto`: CUDA when there is a GPU, else the CPU; otherwise the named device, checked."""
    if requested is None or str(requested) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as err:
        raise ColorganError(f"--device {requested}: {err}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ColorganError(f"--device {requested}: no CUDA GPU is available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ColorganError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA "
                                f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif device.type != "cpu":
        raise ColorganError(f"--device {requested}: expected cpu, cuda or cuda:N")
    return device


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 runs on hardware units here (not emulated), as torch reports it."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        # The units (AVX512-BF16 or AMX) and torch's kernels allowed to use them: ATen's level is
        # below AVX512 on a CPU without, or when a user caps it (ATEN_CPU_CAPABILITY=avx2).
        cpu = torch.cpu
        units = any(getattr(cpu, name, lambda: False)()
                    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
        return units and torch.backends.cpu.get_cpu_capability() == "AVX512"
    return False


BF16_FASTER = 0.9
"""`auto` takes bf16 on a CPU with bf16 units when the probe's bf16 time is below this share of its
fp32 time: a clear gain, worth bf16's coarser arithmetic (a tie goes to fp32). The kinds measured sit
far from it: 1.4-1.8 (Xeon, no AMX; 1.8 with one thread) and 50-130 (emulated)."""


def generators_restored(device: torch.device):
    """A context after which torch's CPU generator, and `device`'s if it is a GPU, are as they were
    before it: for work that draws random numbers beside a run (the `auto` probe, the EMA's
    statistics pass) without moving the stream its augmentation and dropout draw from."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def bf16_cost(device: torch.device, repeats: int = 5) -> float:
    """Time of a 64-channel 3x3 convolution (2 x 64 x 32 x 32) under bf16 autocast ÷ its fp32 time.

    The two alternate and each keeps its fastest of `repeats` runs, so a shared machine's drift
    falls on both alike (on the Xeon: 1.38-1.51 over six probes, a few ms each).

    Its random input and weights are drawn inside `fork_rng`, which puts torch's generator back as
    it was: `train` probes after seeding it (where bf16 is native, once per process), and a draw
    left behind made the same recipe and seed train differently under `auto` than under the
    precision `auto` chose, and differently again in a process's second run."""
    with generators_restored(device):
        x = torch.randn(2, 64, 32, 32, device=device)
        conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device)

    def timed(enabled: bool) -> float:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled):
            start = time.perf_counter()
            conv(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter() - start

    timed(True), timed(False)  # first calls choose and build the kernels
    times = [(timed(True), timed(False)) for _ in range(repeats)]
    return min(bf16 for bf16, _ in times) / max(min(fp32 for _, fp32 in times), 1e-9)


@functools.cache
def measured_bf16_cost(device: torch.device) -> float:
    """`bf16_cost` once per process and device, so every run in a process (a test, `bench speed`'s
    two loops) resolves `auto` alike."""
    return bf16_cost(device)


def auto_precision(device: torch.device) -> tuple[str, str]:
    """What `auto` is on `device`: (`bf16` or `no`, why)."""
    if not bf16_is_native(device):
        return "no", "auto: bf16 would be emulated here"
    if device.type == "cpu":
        cost = measured_bf16_cost(device)
        if cost >= BF16_FASTER:
            return "no", f"auto: bf16 is native here but measured slower, a convolution {cost:.2f}x its fp32 time"
        return "bf16", f"auto: bf16 is native here, a convolution {cost:.2f}x its fp32 time"
    return "bf16", "auto: bf16 is native here"


@dataclass(frozen=True)
class Precision:
    """The resolved choice for one device: what autocast does and why."""

    device: torch.device
    mixed_precision: str  # "bf16" or "no" (fp32)
    reason: str
    autocast_cache: bool = True  # off for a step captured as a CUDA graph (colorgan.graph_step)

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.mixed_precision == "bf16" else torch.float32

    @property
    def name(self) -> str:
        """What run.json and bench report: bf16, tf32 or fp32."""
        if self.mixed_precision == "bf16":
            return "bf16"
        return "tf32" if self.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32 else "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The whole training step (or a forward pass) runs inside this one context."""
        if self.mixed_precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=self.autocast_cache)

    def describe(self) -> str:
        return f"device {self.device}, precision {self.name} ({self.reason})"


def memory_format(channels_last: object, device: torch.device) -> torch.memory_format:
    """`train.channels_last: auto` is channels-last on CUDA (cuDNN's native layout for bf16/TF32
    convolutions, measured faster there) and NCHW on the CPU (measured slower there: 138 -> 116 img/s
    in bf16); true/false force it."""
    on = device.type == "cuda" if channels_last == "auto" else bool(channels_last)
    return torch.channels_last if on else torch.contiguous_format


def graph_obstacle(device: torch.device, world: int, grad_accum: int) -> str | None:
    """Why the whole step cannot be captured as one CUDA graph here (`compile: graph`), or None: it
    takes one process on a CUDA GPU that steps its optimizers at every micro-batch."""
    if device.type != "cuda" or world > 1 or grad_accum > 1:
        return f"here: {device.type}, {world} process(es), grad_accum {grad_accum}"
    return None


def compile_mode(compile: object, device: torch.device, world: int = 1, grad_accum: int = 1) -> object:
    """`train.compile` resolved. `auto` is `graph` (the whole step as one CUDA graph,
    colorgan.graph_step) wherever `graph_obstacle` finds none — small batches are launch-bound on a
    GPU (H100, the seed net at batch 1: 258 img/s against 54 eager, and 133 with torch.compile's
    graphs of each model after a 36 s compile) — `reduce-overhead` for one GPU process that
    accumulates, and off elsewhere: on the CPU the kernels, not the launches, take the time, and
    several processes under graphs were not measured."""
    if compile == "auto":
        if device.type != "cuda" or world > 1:
            return False
        return "reduce-overhead" if graph_obstacle(device, world, grad_accum) else "graph"
    return compile


def enable_tf32(device: torch.device) -> None:
    """fp32 matmuls and convolutions in TF32 on CUDA GPUs that have it (Ampere and newer): its
    ~1e-3 relative error is far below a GAN's training noise, and it is several times faster."""
    if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def resolve_precision(requested: str, device: torch.device, auto: tuple[str, str] | None = None) -> Precision:
    """`auto` -> `auto_precision` (or `auto`, when given: what rank 0 or the run being resumed chose);
    `bf16`/`no` as asked (bf16 warns if emulated).

    fp32 on a CUDA GPU with TF32 means TF32 (`enable_tf32`). Inference (the Colorizer,
    `sample`, `evaluate`, validation) runs in fp32/TF32 on the same device policy: bf16's 8-bit
    mantissa is worth about one uint8 level at the output, and inference is cheap.
    """
    if requested not in PRECISIONS:
        raise ColorganError(f"train.mixed_precision: expected one of {', '.join(PRECISIONS)}, got {requested!r}")
    enable_tf32(device)
    if requested == "auto":
        return Precision(device, *(auto or auto_precision(device)))
    if requested == "bf16" and not bf16_is_native(device):
        cost = bf16_cost(device)
        warnings.warn(f"train.mixed_precision: bf16 is emulated on this {device.type} (a convolution took "
                      f"{cost:.0f}x its fp32 time); use auto or no", SlowPrecisionWarning, stacklevel=2)
        return Precision(device, "bf16", f"asked for; emulated, {cost:.0f}x fp32")
    return Precision(device, requested, "asked for")

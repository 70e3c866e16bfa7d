"""The one device and precision policy: auto picks bf16 only where it is native and measured faster,
an emulated bf16 warns with its measured cost, devices are checked with one-line errors, run.json
records it, and a resumed run keeps the precision it started with."""

import json

import pytest
import torch

from colorgan import hardware
from colorgan.errors import ColorganError
from colorgan.hardware import SlowPrecisionWarning, resolve_device, resolve_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize("native, cost, expected", [(True, 0.55, "bf16"), (True, 1.45, "no"), (True, 0.9, "no"),
                                                   (False, 0.55, "no")])
def test_auto_takes_bf16_where_it_is_native_and_measured_faster(monkeypatch, native, cost, expected):
    monkeypatch.setattr(hardware, "bf16_is_native", lambda device: native)
    monkeypatch.setattr(hardware, "measured_bf16_cost", lambda device: cost)
    precision = resolve_precision("auto", CPU)
    assert precision.mixed_precision == expected
    assert precision.name == ("bf16" if expected == "bf16" else "fp32")
    assert precision.reason.startswith("auto:")
    if native:
        assert f"{cost:.2f}x its fp32 time" in precision.reason
        assert ("measured slower" in precision.reason) is (expected == "no")


def test_the_probe_is_measured_once_per_process_and_device():
    assert hardware.measured_bf16_cost(CPU) == hardware.measured_bf16_cost(CPU) > 0


def test_a_resumed_auto_run_keeps_the_precision_it_started_with(monkeypatch, tmp_path, tiny_recipe):
    """The probe may say otherwise later (another machine, a busy one): the checkpoint continues
    exactly only in the precision it was made in."""
    from colorgan import recipe as recipes
    from colorgan.train import train

    tiny_recipe["train"].update(max_steps=3, checkpoint_every=1, mixed_precision="auto")
    recipe = recipes.from_dict(tiny_recipe)
    monkeypatch.setattr(hardware, "bf16_is_native", lambda device: True)
    monkeypatch.setattr(hardware, "measured_bf16_cost", lambda device: 1.45)
    train(recipe, out=tmp_path / "run", stop_at=1)
    monkeypatch.setattr(hardware, "measured_bf16_cost", lambda device: 0.55)
    assert resolve_precision("auto", CPU).mixed_precision == "bf16"
    reasons = []
    for stop_at in (2, None):  # resumed twice: the first reason is kept, not nested
        train(recipe, out=tmp_path / "run", resume="latest", stop_at=stop_at)
        info = json.loads((tmp_path / "run" / "run.json").read_text())
        assert info["precision"] == "fp32" and info["resumed_from"]
        reasons.append(info["precision_reason"])
    assert reasons[0] == reasons[1] == ("auto: as when this run started (auto: bf16 is native here but measured "
                                        "slower, a convolution 1.45x its fp32 time)")


@pytest.mark.parametrize("units, level, native", [(True, "AVX512", True), (True, "AVX2", False),
                                                  (False, "AVX512", False), (False, "AVX2", False)])
def test_bf16_is_native_needs_the_units_and_avx512_kernels(monkeypatch, units, level, native):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: units)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: level)
    assert hardware.bf16_is_native(CPU) is native


def test_an_emulated_bf16_is_honoured_with_its_measured_cost(monkeypatch):
    monkeypatch.setattr(hardware, "bf16_is_native", lambda device: False)
    monkeypatch.setattr(hardware, "bf16_cost", lambda device: 57.3)
    with pytest.warns(SlowPrecisionWarning, match=r"emulated on this cpu \(a convolution took 57x its fp32 time\)"):
        precision = resolve_precision("bf16", CPU)
    assert precision.mixed_precision == "bf16" and "57x" in precision.reason


def test_the_probe_measures_a_ratio():
    assert hardware.bf16_cost(CPU, repeats=1) > 0


def test_explicit_fp32_never_autocasts():
    precision = resolve_precision("no", CPU)
    assert precision.dtype == torch.float32
    with precision.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_bf16_autocast_makes_matmuls_bf16(monkeypatch):
    monkeypatch.setattr(hardware, "bf16_is_native", lambda device: True)
    monkeypatch.setattr(hardware, "measured_bf16_cost", lambda device: 0.5)
    with resolve_precision("auto", CPU).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


@pytest.mark.parametrize("device, message", [("cuda", "no CUDA GPU is available here"),
                                             ("toaster", "--device toaster:"),
                                             ("meta", "expected cpu, cuda or cuda:N")])
def test_bad_devices_are_one_line(device, message):
    with pytest.raises(ColorganError, match=message):
        resolve_device(device)


def test_default_device_here_is_the_cpu():
    assert resolve_device(None) == CPU and resolve_device("auto") == CPU


def test_run_json_records_the_resolved_precision(tmp_path, tiny_recipe):
    from colorgan import recipe as recipes
    from colorgan.train import train

    tiny_recipe["train"].update(max_steps=1, mixed_precision="auto", compile="auto")
    result = train(recipes.from_dict(tiny_recipe), out=tmp_path / "run")
    info = json.loads((result.run / "run.json").read_text())
    expected = "bf16" if hardware.auto_precision(CPU)[0] == "bf16" else "fp32"
    assert info["precision"] == expected and info["device"] == "cpu" and info["channels_last"] is False
    assert info["compile"] is False  # auto: CUDA graphs on one GPU only


def test_compile_auto_is_a_cuda_graph_for_one_gpu_process_only():
    cuda = torch.device("cuda")
    assert hardware.compile_mode("auto", cuda) == "graph"
    assert hardware.compile_mode("auto", cuda, grad_accum=2) == "reduce-overhead"
    assert hardware.graph_obstacle(cuda, 1, 1) is None
    assert hardware.graph_obstacle(cuda, 2, 1) == "here: cuda, 2 process(es), grad_accum 1"
    assert hardware.graph_obstacle(CPU, 1, 4) == "here: cpu, 1 process(es), grad_accum 4"
    assert hardware.compile_mode("auto", cuda, world=2) is False
    assert hardware.compile_mode("auto", CPU) is False
    assert [hardware.compile_mode(c, CPU) for c in (False, True, "reduce-overhead", "graph")] == [
        False, True, "reduce-overhead", "graph"]


@pytest.mark.parametrize("requested, home, expected", [
    ("auto", "cuda", "graph"), ("auto", "cpu", "reduce-overhead"), ("graph", "cuda", "graph"),
    ("graph", "cpu", "train.compile: graph needs the training set on the GPU, and it takes more than a quarter"),
])
def test_a_training_set_left_in_host_memory_rules_out_the_whole_step_graph(tiny_recipe, requested, home, expected):
    """Where the training set stays in host memory (too large for the GPU), `auto` falls back to
    reduce-overhead and an explicit `graph` is refused: decided in `train` before the run folder
    is made. Only the decision runs here (no GPU is touched): the set's home is given."""
    from types import SimpleNamespace

    from colorgan.recipe import from_dict
    from colorgan.train import _resolved_compile

    t = from_dict(tiny_recipe, [f"train.compile={requested}"]).train
    batches = SimpleNamespace(home=torch.device(home))
    if expected.startswith("train.compile"):
        with pytest.raises(ColorganError, match=expected):
            _resolved_compile(t, torch.device("cuda"), 1, batches)
    else:
        assert _resolved_compile(t, torch.device("cuda"), 1, batches) == expected


def test_a_whole_step_graph_on_the_cpu_is_one_line_and_writes_nothing(tmp_path, tiny_recipe, write_recipe):
    """`train.compile: graph` is a CUDA graph of one process's step: refused before the run folder
    exists on the CPU (the GPU tests in tests/test_gpu.py train with it)."""
    from click.testing import CliRunner

    from colorgan.cli import cli

    tiny_recipe["train"]["compile"] = "graph"
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(write_recipe(tiny_recipe)), "--out", str(run)])
    assert result.exit_code == 2
    assert "train.compile: graph captures the whole step of one process on a CUDA GPU" in result.output
    assert "(here: cpu, 1 process(es), grad_accum 1); use auto" in result.output
    assert not run.exists()


def test_the_probe_leaves_torchs_generator_as_it_was():
    before = torch.get_rng_state()
    hardware.bf16_cost(CPU, repeats=1)
    assert torch.equal(torch.get_rng_state(), before)

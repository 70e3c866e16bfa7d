"""On a CUDA GPU (marker `gpu`, skipped elsewhere): training picks the device and precision policy,
the non-finite guard stops the run without a per-step host sync, and the run folder says what ran.

These run `colorgan` in a subprocess that sees the GPU (the test process itself runs on the CPU).
"""

import json
import subprocess
import sys

import pytest

from test_faults import NAN_PLUGIN

pytestmark = pytest.mark.gpu


def colorgan(args, env, cwd=None):
    return subprocess.run([sys.executable, "-m", "colorgan", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def run_script_on_the_gpu(path, source, env):
    """Run `source` as a script in a process that sees the GPU; it must exit 0 printing "ok" last."""
    path.write_text(source)
    done = subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr[-3000:]


def test_training_on_the_gpu_resolves_bf16_and_channels_last(tmp_path, tiny_recipe, write_recipe, gpu_env):
    tiny_recipe["train"]["mixed_precision"] = "auto"
    run = tmp_path / "run"
    done = colorgan(["train", write_recipe(tiny_recipe), "--out", run], gpu_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "colorgan: device cuda" in done.stderr and "precision bf16" in done.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["device"].startswith("cuda") and info["precision"] == "bf16" and info["channels_last"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["d_loss"] == r["d_loss"] for r in records if "d_loss" in r)  # not NaN
    assert (run / "model.safetensors").is_file()


def test_fp32_on_the_gpu_is_tf32(tmp_path, tiny_recipe, write_recipe, gpu_env):
    run = tmp_path / "run"
    done = colorgan(["train", write_recipe(tiny_recipe), "--out", run], gpu_env)  # tiny: "no"
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["precision"] == "tf32"


def test_the_guard_stops_a_non_finite_run_on_the_gpu(tmp_path, tiny_recipe, write_recipe, gpu_env):
    (tmp_path / "nan_loss_plugin.py").write_text(NAN_PLUGIN)
    tiny_recipe.update(plugins=["nan_loss_plugin"], loss={"type": "nan-after", "after": 4})
    tiny_recipe["train"].update(checkpoint_every=2)
    run = tmp_path / "run"
    env = dict(gpu_env, PYTHONPATH=str(tmp_path))
    done = colorgan(["train", write_recipe(tiny_recipe), "--out", run], env)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "stopped at step 4: non-finite loss (d_loss=nan" in done.stderr
    assert (run / "checkpoints" / "step-000002").is_dir() and not (run / "checkpoints" / "step-000004").exists()


def test_sample_and_evaluate_on_the_gpu(tmp_path, tiny_recipe, write_recipe, gpu_env):
    run = tmp_path / "run"
    assert colorgan(["train", write_recipe(tiny_recipe), "--out", run], gpu_env).returncode == 0
    done = colorgan(["evaluate", run / "model.safetensors", "--json", "--device", "cuda"], gpu_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["n"] > 0


def test_compile_with_cuda_graph_trees_trains_on_the_gpu(tmp_path, tiny_recipe, write_recipe, gpu_env):
    """`train.compile: reduce-overhead` (torch.compile with CUDA graphs of each model) completes a run
    with its validations, sample sheets, checkpoints and model file."""
    tiny_recipe["train"].update(compile="reduce-overhead", mixed_precision="auto")
    run = tmp_path / "run"
    done = colorgan(["train", write_recipe(tiny_recipe), "--out", run], gpu_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["compile"] == "reduce-overhead"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val_psnr" in r] == [3, 6]
    assert all(r["d_loss"] == r["d_loss"] for r in records if "d_loss" in r)  # not NaN
    assert (run / "model.safetensors").is_file() and (run / "checkpoints" / "step-000006").is_dir()


NAN_ON_DEVICE_PLUGIN = '''
import torch
from colorgan.registry import LOSSES

@LOSSES.register("nan-after-on-device")
class NanAfterOnDevice:
    """LSGAN whose discriminator loss turns NaN from its `after`-th call on, counted in a device
    tensor: a CUDA graph replays the count, where a Python counter would be frozen at capture."""

    def __init__(self, after=6):
        self.after, self.calls = after, None

    def d_loss(self, real, fake):
        if self.calls is None:
            self.calls = torch.zeros((), device=real.device)
        self.calls.add_(1)
        loss = ((real - 1) ** 2).mean() + (fake ** 2).mean()
        return loss * torch.where(self.calls >= self.after, float("nan"), 1.0)  # a NaN factor, not a NaN gradient

    def g_loss(self, fake):
        return ((fake - 1) ** 2).mean()
'''


@pytest.mark.parametrize("objective", [None, [{"type": "l1", "weight": 100.0}, {"type": "region", "weight": 100.0}]],
                         ids=["gan-l1", "no-discriminator"])
def test_a_graphed_run_trains_validates_and_resumes_on_the_gpu(tmp_path, tiny_recipe, write_recipe, gpu_env,
                                                               objective):
    """`train.compile: auto` is `graph` on one GPU: the whole step as one CUDA graph, captured after 3
    eager steps, runs a recipe with a learning-rate schedule, bf16, augmentation and SPADE-style
    conditioning to its model file, and a run paused at step 3 resumes (capturing again) to the
    same end; with a discriminator and without one (real-icons' objective: one optimizer captured)."""
    if objective is not None:
        tiny_recipe["objective"] = objective
    tiny_recipe["train"].update(compile="auto", mixed_precision="auto", lr_schedule="linear", decay_start=0.0)
    tiny_recipe["generator"]["condition"] = "spade"
    tiny_recipe["data"]["augment"] = {"hflip": True, "warp": 1.0}
    path = write_recipe(tiny_recipe)
    run = tmp_path / "run"
    done = colorgan(["train", path, "--out", run], gpu_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["compile"] == "graph"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val_psnr" in r] == [3, 6]
    losses = [r for r in records if "g_loss" in r]
    assert losses and all(r[k] == r[k] for r in losses for k in ("d_loss", "g_loss") if k in r)  # not NaN
    assert all(("d_loss" in r) == (objective is None) for r in losses)
    assert (run / "model.safetensors").is_file() and (run / "checkpoints" / "step-000006").is_dir()
    assert (run / "checkpoints" / "step-000006" / "model_1.safetensors").is_file() == (objective is None)
    paused = tmp_path / "paused"
    assert colorgan(["train", path, "--out", paused, "--stop-at", "3"], gpu_env).returncode == 0
    done = colorgan(["train", path, "--out", paused, "--resume", "latest"], gpu_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (paused / "model.safetensors").is_file()


def test_the_guard_stops_a_graphed_run_at_its_non_finite_step(tmp_path, tiny_recipe, write_recipe, gpu_env):
    """A NaN in a replayed step (step 6: steps 1-3 are eager, 4 is captured) is never applied, and
    the run stops naming that step and the last good checkpoint."""
    (tmp_path / "nan_device_plugin.py").write_text(NAN_ON_DEVICE_PLUGIN)
    tiny_recipe.update(plugins=["nan_device_plugin"], loss={"type": "nan-after-on-device", "after": 6})
    tiny_recipe["train"].update(compile="graph", checkpoint_every=2, max_steps=8)
    run = tmp_path / "run"
    done = colorgan(["train", write_recipe(tiny_recipe), "--out", run], dict(gpu_env, PYTHONPATH=str(tmp_path)))
    assert done.returncode == 2, done.stderr[-3000:]
    assert "stopped at step 6: non-finite loss (d_loss=nan" in done.stderr
    assert (run / "checkpoints" / "step-000004").is_dir() and not (run / "checkpoints" / "step-000006").exists()


GRAPHED_TOY = '''
import torch
from colorgan.graph_step import GraphedStep
from colorgan.guard import NonFiniteGuard

def trained(graphed):
    torch.manual_seed(0)
    device = torch.device("cuda")
    model = torch.nn.Linear(8, 1).to(device)
    data = torch.randn(32, 8, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 if s < 6 else 0.0)
    guard = NonFiniteGuard()

    def run_step(rows, step):
        loss = model(data.index_select(0, rows)).square().mean()
        losses = torch.stack([loss.detach(), loss.detach()])
        guard.observe(losses)
        loss.backward()
        optimizer.found_inf = guard.close_window(step)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return losses

    step = GraphedStep(run_step, [optimizer], guard, device) if graphed else run_step
    weights, losses = [], []
    for number in range(1, 11):
        rows = torch.randint(0, 32, (4,), device=device)
        losses.append(step(rows, number))
        schedule.step()
        weights.append(model.weight.detach().clone())
    assert guard.read() == []
    saved = optimizer.state_dict()["param_groups"][0]
    return weights, torch.stack(losses), saved

eager, eager_losses, _ = trained(False)
graphed, graphed_losses, saved = trained(True)
print("largest difference", max((a - b).abs().max().item() for a, b in zip(eager, graphed)))
assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(eager, graphed))
assert torch.allclose(eager_losses, graphed_losses, atol=1e-6) and len(set(graphed_losses[:, 0].tolist())) > 5
assert not torch.equal(graphed[4], graphed[5]) and all(torch.equal(graphed[5], w) for w in graphed[6:])
assert saved["lr"] == 0.0 and isinstance(saved["lr"], float) and saved["capturable"] is False
print("ok")
'''


def test_a_graphed_step_replays_the_eager_one_with_its_learning_rate(tmp_path, gpu_env):
    """GraphedStep on a toy model: each replay takes its own rows and the schedule's learning rate
    (zero from step 7 on: the weights stop), matches the eager steps, and its optimizer's state
    dict is an eager one (a float lr, not capturable)."""
    run_script_on_the_gpu(tmp_path / "toy.py", GRAPHED_TOY, gpu_env)


EMA_PASS_ON_CUDA = """
import torch
from colorgan.ema import EMA

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                            torch.nn.Dropout(0.5)).cuda()
ema = EMA(model, decay=0.9)
ema.module.forward = lambda sketch, cond: torch.nn.Sequential.forward(ema.module, sketch)
batches = lambda: [{"sketch": torch.randn(2, 1, 8, 8, device="cuda"), "cond": None}]
batch = batches()  # drawn before the pass: the pass itself must leave both generators as they were
before = torch.cuda.get_rng_state(), torch.get_rng_state()
ema.fit_norm_statistics(1, lambda: batch)
assert torch.equal(torch.cuda.get_rng_state(), before[0]), "the CUDA generator moved"
assert torch.equal(torch.get_rng_state(), before[1]), "the CPU generator moved"
assert not torch.equal(ema.module[1].running_mean, model[1].running_mean), "no statistics were fitted"
print("ok")
"""


def test_the_ema_statistics_pass_leaves_the_cuda_generator_as_it_was(tmp_path, gpu_env):
    """`generators_restored` on a GPU: the EMA's BatchNorm pass draws dropout masks on the device,
    and training's CUDA stream (augmentation, dropout) continues as if it had not run."""
    run_script_on_the_gpu(tmp_path / "ema_pass.py", EMA_PASS_ON_CUDA, gpu_env)


CHANNELS_LAST_NORM_ON_CUDA = """
import torch
from colorgan.registry.instance_norm import InstanceNorm2d

torch.manual_seed(0)
aten = torch.nn.InstanceNorm2d(64, affine=True).cuda()
torch.nn.init.normal_(aten.weight, 1.0, 0.3)
ours = InstanceNorm2d(64).cuda()
ours.load_state_dict(aten.state_dict())
x = (torch.randn(2, 64, 128, 128, device="cuda") * 2 + 3).contiguous(memory_format=torch.channels_last)
g = torch.randn_like(x)
for dtype, tolerance in ((torch.float32, 1e-4), (torch.bfloat16, 0.05)):
    results = []
    for norm in (aten, ours):
        norm.zero_grad()
        xx = x.detach().clone().requires_grad_()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            y = norm(xx.to(dtype))
        (y.float() * g).sum().backward()
        results.append((y.float(), xx.grad, norm.weight.grad.clone()))
    assert results[1][0].is_contiguous(memory_format=torch.channels_last), "left channels-last"
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=tolerance, atol=tolerance * max(1.0, a.abs().max().item()) / 10)

# Captured in a CUDA graph (what compile: graph does to the whole step) and replayed on new input.
static = x.detach().clone().requires_grad_()
side = torch.cuda.Stream()
side.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(side):
    for _ in range(3):
        ours(static).sum().backward()
torch.cuda.current_stream().wait_stream(side)
graph = torch.cuda.CUDAGraph()
with torch.cuda.graph(graph):
    out = ours(static)
static.data.copy_(x * 0.5 - 1)
graph.replay()
torch.testing.assert_close(out, aten(static.detach()), rtol=1e-4, atol=1e-4)
print("ok")
"""


def test_the_channels_last_instance_norm_matches_aten_on_the_gpu_and_in_a_cuda_graph(tmp_path, gpu_env):
    """registry/instance_norm.py's path on CUDA (fp32 and bf16 autocast): ATen's values and
    gradients, the map left channels-last, and a graph capture replaying it on new input."""
    run_script_on_the_gpu(tmp_path / "norm.py", CHANNELS_LAST_NORM_ON_CUDA, gpu_env)

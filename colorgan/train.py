"""`colorgan train`: the Accelerate loop for the two models and two optimizers.

The same code runs on one CPU, one GPU, `torchrun --nproc_per_node N` or `accelerate launch`.
A step is one optimizer update of both models (after `train.grad_accum` micro-batches); the
checkpoint of step k holds everything needed to continue exactly: weights, optimizers,
schedulers, RNG states, EMA and `Progress` (step, epoch, batches consumed in the epoch).
"""

from __future__ import annotations

import math
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, broadcast_object_list, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from colorgan import checkpoint, run_state
from colorgan.build import build_parts
from colorgan.data import load_dataset, make_collate
from colorgan.errors import ColorganError, RecipeError
from colorgan.optim import adam, lr_lambda
from colorgan.recipe import Recipe, validate
from colorgan.samples import pick_samples, render
from colorgan.step import NonFiniteLoss, StepModels, gan_step
from colorgan.tracking import log_image, tracker_setup
from colorgan.validation import lower_is_better, validate_generator


@dataclass
class TrainResult:
    run: Path
    step: int
    model: Path | None
    exit_code: int = 0  # 130 after SIGINT, 143 after SIGTERM: a checkpoint was written first


class _StopSignal:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the next step boundary and returns."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self) -> "_StopSignal":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def default_run_dir(recipe: Recipe) -> Path:
    return Path("runs") / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _shared_run_dir(out: Path | None, recipe: Recipe) -> Path:
    """Every rank must agree on the run folder; a time-stamped default is decided by rank 0."""
    chosen = [str(out) if out is not None else str(default_run_dir(recipe))]
    if PartialState().num_processes > 1:
        broadcast_object_list(chosen, from_process=0)
    return Path(chosen[0])


def train(recipe: Recipe, out: Path | None = None, resume: str | None = None, overwrite: bool = False,
          stop_at: int | None = None, time_limit: float | None = None) -> TrainResult:
    """Train `recipe`.

    `stop_at` pauses after that step (checkpoint written, no model: resume later); `time_limit`
    (seconds) ends the run early as if it were complete (checkpoint and model written), which is
    how `colorgan bench quality` trains for a fixed wall-clock budget.
    """
    validate(recipe)
    t = recipe.train
    if t.threads:
        torch.set_num_threads(t.threads)
    # Without cpu=True, Accelerate treats a torchrun launch on a machine without GPUs as N separate
    # single-process runs; with it, a real gloo process group of N ranks.
    use_cpu = not (torch.cuda.is_available() or torch.backends.mps.is_available())
    state = PartialState(cpu=use_cpu)
    run = _shared_run_dir(out, recipe)
    resume_from = run_state.prepare_run_folder(run, recipe, resume, overwrite)

    # Everything the inputs can get wrong (dataset, component options, batch size) is found before
    # the run folder is touched, so a refused run leaves no files behind.
    set_seed(recipe.seed)
    data = load_dataset(recipe.data, recipe.seed)
    parts = build_parts(recipe, data.schema)
    if t.sync_batchnorm:
        if state.device.type != "cuda":
            raise RecipeError("train.sync_batchnorm: SyncBatchNorm needs GPUs; on the CPU leave it false")
        parts.generator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(parts.generator)
        parts.discriminator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(parts.discriminator)
    if len(data.train) < t.batch_size * state.num_processes:
        raise ColorganError(
            f"{data.root}: {len(data.train)} training rows, fewer than one batch "
            f"({t.batch_size} x {state.num_processes} processes); lower train.batch_size"
        )
    state.wait_for_everyone()
    if state.is_main_process:
        run_state.create_run_folder(run, recipe, clear=overwrite and resume is None)
    state.wait_for_everyone()
    log_with, init_kwargs = tracker_setup(recipe, run)
    if state.num_processes == 1:
        # Accelerate keeps one global state per process; a second run in the same process (the
        # Python API, `bench`) may ask for another mixed precision, so start it afresh.
        AcceleratorState._reset_state()
    accelerator = Accelerator(
        cpu=use_cpu,
        mixed_precision=t.mixed_precision,
        gradient_accumulation_steps=t.grad_accum,
        log_with=log_with,
        project_dir=str(run),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=recipe.seed),
        # Without SyncBatchNorm each rank keeps its own BatchNorm statistics (chosen, not defaulted).
        kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
        dynamo_backend="inductor" if t.compile else None,
    )
    world = accelerator.num_processes
    loader = DataLoader(data.train, batch_size=t.batch_size, shuffle=True, drop_last=True,
                        collate_fn=make_collate(parts.generator.encode), num_workers=recipe.data.num_workers,
                        generator=torch.Generator().manual_seed(recipe.seed))
    device = accelerator.device
    g_opt = adam(parts.generator.parameters(), recipe.optimizer, recipe.optimizer.lr, device)
    d_opt = adam(parts.discriminator.parameters(), recipe.optimizer,
                 recipe.optimizer.d_lr or recipe.optimizer.lr, device)
    steps_per_epoch = math.ceil((len(data.train) // (t.batch_size * world)) / t.grad_accum)
    total = t.max_steps if t.max_steps is not None else t.epochs * steps_per_epoch
    # Accelerate steps a prepared scheduler once per process per update: count in those units.
    schedule = lr_lambda(t.lr_schedule, total * world, t.decay_start)
    g_sched = torch.optim.lr_scheduler.LambdaLR(g_opt, schedule)
    d_sched = torch.optim.lr_scheduler.LambdaLR(d_opt, schedule)
    G, D, g_opt, d_opt, g_sched, d_sched, loader = accelerator.prepare(
        parts.generator, parts.discriminator, g_opt, d_opt, g_sched, d_sched, loader)
    G_raw, D_raw = accelerator.unwrap_model(G), accelerator.unwrap_model(D)
    for model in (G_raw, D_raw):
        # The whole step runs inside one `accelerator.autocast()`; the per-model autocast and
        # fp32-output wrappers `prepare` adds for mixed precision would only cast back and forth.
        if hasattr(model, "_original_forward"):
            model.forward = model._original_forward
    models = StepModels(G, D, D_raw, g_opt, d_opt, g_sched, d_sched, parts.loss)

    progress = run_state.Progress()
    accelerator.register_for_checkpointing(progress)
    ema = None
    if t.ema is not None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(G_raw, multi_avg_fn=get_ema_multi_avg_fn(t.ema), use_buffers=True)
        accelerator.register_for_checkpointing(ema)
    if resume_from is not None:
        accelerator.load_state(str(resume_from))
        if accelerator.is_main_process:  # steps after the checkpoint are about to be logged again
            run_state.truncate_metrics(run / "metrics.jsonl", progress.step)
    accelerator.init_trackers(recipe.name, config=_flat(recipe.to_dict()), init_kwargs=init_kwargs)
    if accelerator.is_main_process:
        run_state.write_json(run / "schema.json", data.schema.to_dict())
        run_state.write_json(run / "run.json", {
            "world_size": world, "device": str(device), "mixed_precision": t.mixed_precision,
            "torch": torch.__version__, "steps": total, "steps_per_epoch": steps_per_epoch,
            "resumed_from": str(resume_from) if resume_from else None})
    samples = pick_samples(data.test if len(data.test) else data.train, data.schema)

    def all_finite(value: torch.Tensor) -> bool:
        ok = torch.isfinite(value.detach().float()).all().float()
        if world > 1:
            ok = accelerator.reduce(ok.to(device), "sum") / world
        return bool(ok.item() == 1.0)

    def any_rank(flag: bool) -> bool:
        if world == 1:
            return flag
        return bool(accelerator.reduce(torch.tensor([float(flag)], device=device), "sum").item() > 0)

    def eval_generator():
        return ema.module if ema is not None else G_raw

    def export(path: Path) -> Path:
        return checkpoint.export(eval_generator(), recipe, data.schema, path)

    def on_sync_step(losses, last_log) -> float:
        step = progress.step
        if accelerator.is_main_process and (step % t.sample_every == 0 or step == total):
            sheet = render(eval_generator(), samples, device)
            (run / "samples").mkdir(exist_ok=True)
            sheet.save(run / "samples" / f"step-{step:06d}.png")
            log_image(accelerator, "samples", sheet, step)
        if step % t.log_every == 0 or step == total:
            now = time.perf_counter()
            images = (step - last_log[0]) * t.batch_size * t.grad_accum * world
            values = {k: v.item() for k, v in losses.items()}
            values.update(epoch=progress.epoch, lr=g_sched.get_last_lr()[0], world_size=world,
                          images_per_s=images / max(now - last_log[1], 1e-9))
            accelerator.log(values, step=step)
            bar.set_postfix(d=f"{values['d_loss']:.3f}", g=f"{values['g_loss']:.3f}",
                            img_s=f"{values['images_per_s']:.1f}")
            last_log[:] = [step, now]
        if len(data.test) and (step % t.eval_every == 0 or step == total):
            if accelerator.is_main_process:
                metrics = validate_generator(eval_generator(), data.test, device, recipe)
                accelerator.log(metrics, step=step)
                _keep_best(metrics)
            accelerator.wait_for_everyone()
        return step

    def _keep_best(metrics: dict[str, float]) -> None:
        if t.keep_best is None:
            return
        if t.keep_best not in metrics:
            raise RecipeError(f"train.keep_best: no metric {t.keep_best!r}; metrics: {', '.join(metrics)}")
        value = metrics[t.keep_best]
        sign = 1 if lower_is_better(t.keep_best) else -1
        if progress.best is None or sign * value < sign * progress.best:
            progress.best = value
            export(run / "best.safetensors")

    def save() -> Path:
        return run_state.save_checkpoint(accelerator, run, progress.step, t.keep_checkpoints)

    started = time.perf_counter()
    exit_code = 0
    bar = tqdm(total=total, initial=progress.step, disable=not accelerator.is_local_main_process,
               desc=recipe.name, unit="step")
    last_log = [progress.step, time.perf_counter()]
    G.train()
    D.train()
    with _StopSignal() as stop:
        try:
            while progress.step < total and exit_code == 0:
                loader.set_epoch(progress.epoch)
                batches = (accelerator.skip_first_batches(loader, progress.batches_in_epoch)
                           if progress.batches_in_epoch else loader)
                for batch in batches:
                    with accelerator.accumulate(G, D):
                        losses, skipped = gan_step(accelerator, models, batch, t.l1_weight, t.grad_clip,
                                                   all_finite, t.skip_nonfinite)
                    progress.batches_in_epoch += 1
                    if skipped:
                        accelerator.log({"skipped_nonfinite": 1, "batch": progress.batches_in_epoch},
                                        step=progress.step + 1)
                    if not accelerator.sync_gradients:
                        continue
                    progress.step += 1
                    if ema is not None:
                        ema.update_parameters(G_raw)
                    bar.update(1)
                    on_sync_step(losses, last_log)
                    if time_limit is not None and any_rank(time.perf_counter() - started >= time_limit):
                        total = progress.step
                    pause = stop_at is not None and progress.step >= stop_at
                    if any_rank(stop.signum is not None):
                        exit_code = 128 + (stop.signum or signal.SIGTERM)
                    if progress.step % t.checkpoint_every == 0 or progress.step >= total or pause or exit_code:
                        save()
                    if progress.step >= total or pause or exit_code:
                        break
                else:
                    progress.epoch += 1
                    progress.batches_in_epoch = 0
                    continue
                break
        except NonFiniteLoss as err:
            last = run_state.latest_checkpoint(run)
            raise NonFiniteLoss(
                f"{run}: stopped at step {progress.step + 1}: {err}; last good checkpoint: {last or 'none'} "
                "(set train.skip_nonfinite: true to skip such steps)"
            ) from None
        except OSError as err:  # a sample sheet or metrics line on a full or read-only disk
            if err.errno not in run_state.STORAGE_ERRNOS:
                raise
            raise ColorganError(
                f"{err.filename or run}: cannot write ({err.strerror}); "
                f"last complete checkpoint: {run_state.latest_checkpoint(run) or 'none'}"
            ) from None
        finally:
            bar.close()
    model = None
    if progress.step >= total and exit_code == 0:
        if accelerator.is_main_process:
            model = run / "model.safetensors"
            best = run / "best.safetensors"
            if t.keep_best is not None and ema is None and best.is_file():
                shutil.copyfile(best, model)
            else:
                export(model)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(run, progress.step, model, exit_code)


def _flat(data: dict, prefix: str = "") -> dict:
    """Nested recipe -> flat `section.key` config for trackers (they take scalars)."""
    flat = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(_flat(v, key + "."))
        else:
            flat[key] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return flat

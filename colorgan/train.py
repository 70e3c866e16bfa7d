"""`colorgan train`: the Accelerate loop for the two models and two optimizers.

The same code runs on one CPU, one GPU, `torchrun --nproc_per_node N` or `accelerate launch`.
A step is one optimizer update of both models (after `train.grad_accum` micro-batches); the
checkpoint of step k holds everything needed to continue exactly: weights, optimizers,
schedulers, RNG states, EMA and `Progress` (step, epoch, batches consumed in the epoch).

Reading order: `train()` sets a run up and calls `Trainer.fit`, the loop; what happens after a
step (log, sample sheet, validation, checkpoint) is decided by `colorgan.schedule` and done by the
`Trainer` method of the same name. The loop waits for the device only in those events (nanoGPT's
rule): losses stay on the device, and the non-finite guard (`colorgan.guard`) is read there too.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import (DataLoaderConfiguration, DistributedDataParallelKwargs, broadcast, broadcast_object_list,
                               set_seed)
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from colorgan import checkpoint, run_state
from colorgan.build import build_parts, resolve_fill, warn_batchnorm_at_batch_one
from colorgan.cpu_memory import keep_freed_memory
from colorgan.data import load_dataset
from colorgan.data.device_batches import DeviceBatches, RowNumbers
from colorgan.ema import EMA
from colorgan.errors import ColorganError, RecipeError
from colorgan.graph_step import GraphedStep
from colorgan.guard import NonFiniteGuard, NonFiniteLoss
from colorgan.hardware import (Precision, auto_precision, compile_mode, graph_obstacle, memory_format,
                               resolve_device, resolve_precision)
from colorgan.optim import Horizon, adam, lr_lambda
from colorgan.recipe import Recipe, TrainConfig, check_against_schema, validate
from colorgan.samples import pick_samples, render
from colorgan.schedule import Schedule
from colorgan.step import StepModels, gan_step, loss_names
from colorgan.tracking import log_image, tracker_setup
from colorgan.validation import lower_is_better, validate_generator

STATISTICS_ROWS = 512
"""Training rows the EMA's BatchNorm statistics are recomputed from (the whole set when smaller)."""

RESUMED_AUTO = "auto: as when this run started"
"""How run.json names an `auto` precision taken over from the run being resumed."""


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
          stop_at: int | None = None, device: str | torch.device | None = None,
          after_log: Callable[[], None] | None = None) -> TrainResult:
    """Train `recipe`.

    `after_log`, if given, runs on the main process after each logging step, outside the timed
    interval that `images_per_s` reports: `colorgan bench speed` times its plain loop there, so
    that both loops meet the same machine (a shared machine's speed drifts within seconds).

    `stop_at` pauses after that step (checkpoint written, no model: resume later). The recipe's
    `train.max_minutes` ends the run early as if it were complete (checkpoint and model written),
    its learning-rate schedule fitted to end with it (`Trainer.fit`). `device` (cpu, cuda; default
    CUDA when there is a GPU) is one per process: under torchrun each rank takes its own GPU.
    """
    validate(recipe)
    t = recipe.train
    if t.threads:
        torch.set_num_threads(t.threads)
    wanted = resolve_device(device)
    if wanted.type == "cpu":
        keep_freed_memory()
    # Without cpu=True, Accelerate treats a torchrun launch on a machine without GPUs as N separate
    # single-process runs; with it, a real gloo process group of N ranks. The group is created here
    # (the Accelerator below reuses this state and would ignore an InitProcessGroupKwargs), so the
    # recipe's timeout goes here: a rank that hangs ends the run after train.dist_timeout seconds
    # instead of gloo's 30 minutes.
    state = PartialState(cpu=wanted.type == "cpu", timeout=timedelta(seconds=t.dist_timeout))
    run = _shared_run_dir(out, recipe)
    resume_from = run_state.prepare_run_folder(run, recipe, resume, overwrite)

    # Everything the inputs can get wrong (dataset, component options, batch size) is found before
    # the run folder is touched, so a refused run leaves no files behind.
    set_seed(recipe.seed)
    data = load_dataset(recipe.data, recipe.seed)
    check_against_schema(recipe, data.schema)
    parts = build_parts(recipe, data.schema)
    warn_batchnorm_at_batch_one(parts, t.batch_size)
    if t.sync_batchnorm:
        if state.device.type != "cuda":
            raise RecipeError("train.sync_batchnorm: SyncBatchNorm needs GPUs; on the CPU leave it false")
        parts.generator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(parts.generator)
        if parts.discriminator is not None:
            parts.discriminator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(parts.discriminator)
    if len(data.train) < t.batch_size * state.num_processes:
        raise ColorganError(
            f"{data.root}: {len(data.train)} training rows, fewer than one batch "
            f"({t.batch_size} x {state.num_processes} processes); lower train.batch_size"
        )
    batches = DeviceBatches(data.train, parts.generator.encode, state.device, recipe.data.augment,
                            regions=parts.objective.needs_region)
    recipe, fill_choice = resolve_fill(recipe, parts, batches)  # the run saves and exports what `auto` chose
    if fill_choice and state.is_main_process:
        print(f"colorgan: {fill_choice}", file=sys.stderr)
    compile = _resolved_compile(t, state.device, state.num_processes, batches)
    state.wait_for_everyone()
    if state.is_main_process and resume_from is None:  # a resume writes nothing before its checkpoint loads
        run_state.create_run_folder(run, recipe, clear=overwrite or resume == "auto")
    state.wait_for_everyone()
    accelerator = _accelerator(recipe, run, wanted)
    precision = resolve_precision(t.mixed_precision, accelerator.device,
                                  _agreed_auto(t.mixed_precision, accelerator, run, resume_from))
    accelerator.print(f"colorgan: {precision.describe()}", file=sys.stderr)
    trainer = Trainer(recipe, run, accelerator, precision, data, parts, batches, compile, after_log)
    if resume_from is not None:
        trainer.resume(resume_from)
    trainer.write_run_info(resume_from)
    return trainer.fit(stop_at)


def _resolved_compile(t: TrainConfig, device: torch.device, world: int, batches: DeviceBatches) -> object:
    """`train.compile` as this run will use it (`compile_mode`), decided before the run folder is
    touched so that a refused recipe leaves no files. The whole-step graph needs one process on a
    CUDA GPU stepping at every micro-batch, and reads its rows from the training set on the GPU:
    a set kept in host memory (too large for a quarter of the GPU's) turns `auto` into
    reduce-overhead and refuses an explicit `graph`."""
    if t.compile == "graph" and (why := graph_obstacle(device, world, t.grad_accum)):
        raise RecipeError(f"train.compile: graph captures the whole step of one process on a CUDA GPU with "
                          f"train.grad_accum 1 ({why}); use auto, reduce-overhead, true or false")
    mode = compile_mode(t.compile, device, world, t.grad_accum)
    if mode == "graph" and batches.home.type != "cuda":
        if t.compile != "auto":
            raise RecipeError("train.compile: graph needs the training set on the GPU, and it takes more than a "
                              "quarter of the GPU's free memory; use auto or reduce-overhead")
        return "reduce-overhead"
    return mode


def _agreed_auto(requested: str, accelerator: Accelerator, run: Path,
                 resume_from: Path | None) -> tuple[str, str] | None:
    """What `auto` is for this run, the same on every rank: what the run chose when it started (a
    checkpoint continues exactly only in the precision it was made in), else rank 0's measurement
    (`hardware.auto_precision` times bf16 on the CPU, and ranks must not differ)."""
    if requested != "auto":
        return None
    choice: list[tuple[str, str] | None] = [None]
    if accelerator.is_main_process:
        earlier = run_state.read_run_info(run) if resume_from is not None else {}
        if earlier.get("mixed_precision") in ("bf16", "no"):
            reason = earlier.get("precision_reason", "")
            if not reason.startswith(RESUMED_AUTO):  # a run resumed again keeps its first reason
                reason = f"{RESUMED_AUTO} ({reason})"
            choice = [(earlier["mixed_precision"], reason)]
        else:
            choice = [auto_precision(accelerator.device)]
    if accelerator.num_processes > 1:
        broadcast_object_list(choice, from_process=0)
    return choice[0]


def _accelerator(recipe: Recipe, run: Path, device: torch.device) -> Accelerator:
    """Accelerate for processes, devices, accumulation, trackers and state; precision is ours.

    Mixed precision stays "no" here: the step runs inside one `Precision.autocast()`, so the
    per-model autocast wrappers `prepare` would add are not wanted, and a second run in the same
    process (the Python API, `bench`) can choose another precision without resetting Accelerate.
    """
    t = recipe.train
    log_with, init_kwargs = tracker_setup(recipe, run)
    accelerator = Accelerator(
        cpu=device.type == "cpu",
        mixed_precision="no",
        gradient_accumulation_steps=t.grad_accum,
        log_with=log_with,
        project_dir=str(run),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=recipe.seed,
                                                  non_blocking=device.type == "cuda"),
        # Without SyncBatchNorm each rank keeps its own BatchNorm statistics (chosen, not defaulted).
        kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
    )
    if accelerator.device.type != device.type:
        raise ColorganError(f"this process already trains on {accelerator.device}; "
                            f"train on {device} in a new process")
    accelerator.init_trackers(recipe.name, config=_flat(recipe.to_dict()), init_kwargs=init_kwargs)
    return accelerator


class Trainer:
    """A run in progress: the prepared models, optimizers and data, and what each event does."""

    def __init__(self, recipe: Recipe, run: Path, accelerator: Accelerator, precision: Precision,
                 data, parts, batches: DeviceBatches, compile: object,
                 after_log: Callable[[], None] | None = None) -> None:
        t = recipe.train
        self.recipe, self.run, self.accelerator, self.precision, self.data = recipe, run, accelerator, precision, data
        self.device = device = accelerator.device
        self.world = world = accelerator.num_processes
        self.layout = layout = memory_format(t.channels_last, device)
        # The discriminator, when the objective reads one, follows the generator in every list
        # below: Accelerate numbers checkpoint files in that order (model_1: the discriminator).
        nets = [net for net in (parts.generator, parts.discriminator) if net is not None]
        for net in nets:
            net.to(device=device, memory_format=layout)
        self.batches, self.compile = batches, compile  # decided in `train`, before the run folder
        # Row numbers reach the GPU from pinned memory without blocking: a pageable copy would make
        # the host wait for the GPU to go idle at every step.
        loader = DataLoader(RowNumbers(len(data.train)), batch_size=t.batch_size, shuffle=True, drop_last=True,
                            generator=torch.Generator().manual_seed(recipe.seed), pin_memory=device.type == "cuda")
        opt = recipe.optimizer
        optimizers = [adam(net.parameters(), opt, opt.lr if net is parts.generator else opt.d_lr or opt.lr, device)
                      for net in nets]
        self.steps_per_epoch = math.ceil((len(data.train) // (t.batch_size * world)) / t.grad_accum)
        self.total = t.max_steps if t.max_steps is not None else t.epochs * self.steps_per_epoch
        # Accelerate steps a prepared scheduler once per process per update: count in those units.
        self.horizon = Horizon(self.total * world)  # moved in by a time budget (`_fit_schedule_to_budget`)
        schedule = lr_lambda(t.lr_schedule, self.horizon, t.decay_start)
        schedulers = [torch.optim.lr_scheduler.LambdaLR(o, schedule) for o in optimizers]
        *prepared, self.loader = accelerator.prepare(*nets, *optimizers, *schedulers, loader)
        n = len(nets)
        self.prepared = tuple(prepared[:n])  # what `accumulate` needs (DDP's no_sync), compiled or not
        optimizers, schedulers = prepared[n:2 * n], prepared[2 * n:]
        # stepped by the loop, outside the (maybe graphed) step
        self.schedulers = dict(zip(("g", "d"), schedulers))
        (G, D), (g_opt, d_opt) = (*self.prepared, None)[:2], (*optimizers, None)[:2]  # D, d_opt: maybe None
        self.G_raw, D_raw = accelerator.unwrap_model(G), None if D is None else accelerator.unwrap_model(D)
        if self.compile in (True, "reduce-overhead"):
            mode = "reduce-overhead" if self.compile == "reduce-overhead" else None  # CUDA graphs
            G, D, D_raw = (None if m is None else torch.compile(m, mode=mode) for m in (G, D, D_raw))
        self.models = StepModels(G, D, D_raw, g_opt, d_opt, parts.loss, parts.objective)
        self.loss_names = loss_names(parts.objective)
        self.schedule = Schedule.from_recipe(t, validates=len(data.test) > 0)
        self.guard = NonFiniteGuard(self.loss_names, (lambda x: accelerator.reduce(x, "sum")) if world > 1 else None)
        self.step = self._eager_step
        if self.compile == "graph":
            self.precision = dataclasses.replace(precision, autocast_cache=False)
            self.step = GraphedStep(self._eager_step, optimizers, self.guard, device)
        self.progress = run_state.Progress()
        accelerator.register_for_checkpointing(self.progress)
        self.ema = EMA(self.G_raw, t.ema) if t.ema is not None else None
        self.samples = pick_samples(data.test if len(data.test) else data.train, data.schema)
        self.after_log = after_log  # see `train`

    # --- setup ---------------------------------------------------------------------------------

    def resume(self, folder: Path) -> None:
        self.accelerator.load_state(str(folder))
        if self.ema is not None:
            self.ema.load(folder)
        if self.accelerator.is_main_process:  # steps after the checkpoint are about to be logged again
            run_state.truncate_metrics(self.run / "metrics.jsonl", self.progress.step)

    def write_run_info(self, resume_from: Path | None) -> None:
        if not self.accelerator.is_main_process:
            return
        if resume_from is not None:  # the checkpoint loaded: now the run may take this recipe
            run_state.write_text_atomic(self.run / "recipe.yaml", self.recipe.to_yaml())
        run_state.write_json(self.run / "schema.json", self.data.schema.to_dict())
        run_state.write_json(self.run / "run.json", {
            "world_size": self.world, "device": str(self.device), "precision": self.precision.name,
            "mixed_precision": self.precision.mixed_precision, "precision_reason": self.precision.reason,
            "channels_last": self.layout == torch.channels_last, "compile": self.compile, "torch": torch.__version__,
            "steps": self.total, "steps_per_epoch": self.steps_per_epoch,
            "resumed_from": str(resume_from) if resume_from else None})

    # --- the loop ------------------------------------------------------------------------------

    def fit(self, stop_at: int | None) -> TrainResult:
        """Train to the recipe's last step, its time budget (`train.max_minutes`), or a pause.

        The budget counts training time across resumes (`Progress.seconds`, checkpointed), like
        Lightning's `max_time`, so a resumed run gets what is left of it, and one that spent it
        trains nothing more. Where it binds, the run is not reproducible to the bit: how many steps
        it trains, and the schedule fitted to them, follow the clock.
        """
        t, accelerator, progress = self.recipe.train, self.accelerator, self.progress
        started = time.perf_counter()
        self.fit_started = (progress.step, progress.seconds, started)  # this process's start, for the clock
        self.last_log = (progress.step, started)
        if self._budget_spent(started):  # a resumed run that used its budget before
            self.total = progress.step
        self.bar = tqdm(total=self.total, initial=progress.step, desc=self.recipe.name, unit="step",
                        disable=not accelerator.is_local_main_process)
        for model, _ in self.models.trained():
            model.train()
        # A finished run resumed (a re-submitted job, an elastic restart after the last checkpoint)
        # trains nothing more: it only writes its model again.
        exit_code, ending = 0, ("end" if progress.step >= self.total else None)
        with _StopSignal() as stop:
            try:
                while ending is None:
                    self.loader.set_epoch(progress.epoch)
                    batches = (accelerator.skip_first_batches(self.loader, progress.batches_in_epoch)
                               if progress.batches_in_epoch else self.loader)
                    for rows in batches:
                        with accelerator.accumulate(*self.prepared):
                            losses = self.step(rows, progress.step + 1)
                            for scheduler in self.schedulers.values():
                                scheduler.step()  # Accelerate's: counts micro-batches, steps when the window closes
                        progress.batches_in_epoch += 1
                        if not accelerator.sync_gradients:
                            continue
                        progress.step += 1
                        if self.ema is not None:
                            self.ema.update()
                        self.bar.update(1)
                        if t.max_minutes is not None and self._any_rank(self._budget_spent(time.perf_counter())):
                            self.total = progress.step
                        if self._any_rank(stop.signum is not None):
                            exit_code = 128 + (stop.signum or signal.SIGTERM)
                        ending = ("end" if progress.step >= self.total else
                                  "pause" if exit_code or (stop_at is not None and progress.step >= stop_at)
                                  else None)
                        for event in self.schedule.due(progress.step, ending):
                            getattr(self, event)(losses)
                        if ending:
                            break
                    else:
                        progress.epoch += 1
                        progress.batches_in_epoch = 0
            except OSError as err:  # a sample sheet or metrics line on a full or read-only disk
                if err.errno not in run_state.STORAGE_ERRNOS:
                    raise
                raise ColorganError(
                    f"{err.filename or self.run}: cannot write ({err.strerror}); "
                    f"last complete checkpoint: {run_state.latest_checkpoint(self.run) or 'none'}"
                ) from None
            except RuntimeError as err:
                if self.world == 1 or not _lost_peer(err):
                    raise
                cause = str(err).strip().splitlines()[0].split(". ")[0]  # gloo's first sentence, without its jokes
                raise ColorganError(
                    f"{self.run}: rank {accelerator.process_index} of {self.world} stopped after step "
                    f"{progress.step}: another process died, hung past train.dist_timeout "
                    f"({t.dist_timeout:g} s) or lost its node ({cause}); "
                    f"last complete checkpoint: {run_state.latest_checkpoint(self.run) or 'none'}; "
                    "restart every node with --resume latest"
                ) from None
            finally:
                self.bar.close()
        model = self.finish() if ending == "end" else None
        accelerator.wait_for_everyone()
        accelerator.end_training()
        return TrainResult(self.run, progress.step, model, exit_code)

    def _eager_step(self, rows: torch.Tensor, step: int) -> torch.Tensor:
        """One micro-batch of optimizer step `step` (`gan_step`): its losses, on the device."""
        batch = self._batch(rows)
        if self.compile == "reduce-overhead":
            # A new step: CUDA graph trees may reuse the last step's output memory
            # (nothing of it is kept: the losses come back as a fresh stacked tensor).
            torch.compiler.cudagraph_mark_step_begin()
        return gan_step(self.accelerator, self.models, batch, self.precision, self.recipe.train.grad_clip,
                        self.guard, step)

    def _batch(self, rows: torch.Tensor, augmented: bool = True) -> dict[str, torch.Tensor]:
        """The rows' images gathered on the device, in the models' memory layout."""
        batch = self.batches.batch(rows, augmented)
        if self.layout is torch.contiguous_format:
            return batch
        return {k: v.contiguous(memory_format=self.layout) if v.dim() == 4 else v for k, v in batch.items()}

    def _any_rank(self, flag: bool) -> bool:
        """A host flag, true if true on any rank (a collective only when there are several)."""
        if self.world == 1:
            return flag
        total = self.accelerator.reduce(torch.tensor([float(flag)], device=self.device), "sum")
        return bool(total.item() > 0)

    # --- events (colorgan.schedule decides when) -----------------------------------------------

    def _check_guard(self) -> None:
        """Read the device-side non-finite flags: stop naming the step, or log the skipped ones."""
        bad = self.guard.read()
        if not bad:
            return
        if not self.recipe.train.skip_nonfinite:
            step, losses = bad[0]
            values = ", ".join(f"{k}={v}" for k, v in losses.items())
            raise NonFiniteLoss(
                f"{self.run}: stopped at step {step}: non-finite loss ({values}); the update was not "
                f"applied; last good checkpoint: {run_state.latest_checkpoint(self.run) or 'none'} "
                "(set train.skip_nonfinite: true to skip such steps)")
        for step, _ in bad:
            self.accelerator.log({"skipped_nonfinite": 1}, step=step)

    def log(self, losses: torch.Tensor) -> None:
        self._check_guard()
        step, (last_step, last_time) = self.progress.step, self.last_log
        now = time.perf_counter()
        t = self.recipe.train
        images = (step - last_step) * t.batch_size * t.grad_accum * self.world
        values = dict(zip(self.loss_names, losses.float().cpu().tolist()))
        values.update(epoch=self.progress.epoch, lr=self.schedulers["g"].get_last_lr()[0],
                      world_size=self.world, images_per_s=images / max(now - last_time, 1e-9))
        self.accelerator.log(values, step=step)
        if t.max_minutes is not None:
            self._fit_schedule_to_budget(now)
        shown = {"d": f"{values['d_loss']:.3f}"} if "d_loss" in values else {}
        self.bar.set_postfix(**shown, g=f"{values['g_loss']:.3f}", img_s=f"{values['images_per_s']:.1f}")
        if self.after_log is not None and self.accelerator.is_main_process:
            self.after_log()
            now = time.perf_counter()  # the next interval starts after it
        self.last_log = (step, now)

    def _seconds_trained(self, now: float) -> float:
        """Training time of the whole run at `now`: before this process (checkpointed) and in it."""
        _, before, started = self.fit_started
        return before + now - started

    def _seconds_left(self, now: float) -> float:
        """What is left at `now` of `train.max_minutes` (set) for the whole run."""
        return self.recipe.train.max_minutes * 60 - self._seconds_trained(now)

    def _budget_spent(self, now: float) -> bool:
        return self.recipe.train.max_minutes is not None and self._seconds_left(now) <= 0

    def _fit_schedule_to_budget(self, now: float) -> None:
        """End the learning-rate schedule where this run's pace says the time budget ends (`Horizon`).

        The pace is every step since the run started, over all the time it took (sample sheets and
        validation included, as they will be again). Rank 0 decides, so every rank decays alike.
        """
        first, _, started = self.fit_started
        step = self.progress.step
        reachable = step + self._seconds_left(now) * (step - first) / max(now - started, 1e-9)
        if self.world > 1:
            reachable = broadcast(torch.tensor([reachable], device=self.device, dtype=torch.float64)).item()
        self.horizon.steps = min(self.total, max(step, round(reachable))) * self.world

    def sample(self, losses: torch.Tensor) -> None:
        if not self.accelerator.is_main_process:
            return
        started = time.perf_counter()
        sheet = render(self.eval_generator(), self.samples, self.device)
        (self.run / "samples").mkdir(exist_ok=True)
        # zlib level 1: two thirds of the default's time for ~1.5x the bytes; sheets are written often.
        sheet.save(self.run / "samples" / f"step-{self.progress.step:06d}.png", compress_level=1)
        log_image(self.accelerator, "samples", sheet, self.progress.step)
        self.accelerator.log({"sample_seconds": time.perf_counter() - started}, step=self.progress.step)

    def validate(self, losses: torch.Tensor) -> None:
        if self.accelerator.is_main_process:
            started = time.perf_counter()
            metrics = validate_generator(self.eval_generator(), self.data.test, self.device, self.recipe)
            self.accelerator.log({**metrics, "val_seconds": time.perf_counter() - started}, step=self.progress.step)
            self._keep_best(metrics)
        self.accelerator.wait_for_everyone()

    def checkpoint(self, losses: torch.Tensor) -> None:
        self._check_guard()  # never save weights a non-finite step could have reached
        self.progress.seconds = self._seconds_trained(time.perf_counter())
        run_state.save_checkpoint(self.accelerator, self.run, self.progress.step, self.recipe.train.keep_checkpoints,
                                  also=self._save_average if self.ema is not None else None)

    # --- models --------------------------------------------------------------------------------

    def eval_generator(self):
        """What is sampled, validated and exported: the EMA, its BatchNorm statistics fitted to the
        averaged weights (see colorgan.ema), when the recipe keeps one; else the trained generator."""
        return self._fitted_average() if self.ema is not None else self.G_raw

    def _fitted_average(self):
        self.ema.fit_norm_statistics(self.progress.step, self._statistics_batches)
        return self.ema.module

    def _save_average(self, folder: Path) -> None:
        self._fitted_average()  # a checkpoint's average carries statistics that fit it, for `colorgan export`
        self.ema.save(folder)

    def _statistics_batches(self):
        """Unaugmented training batches for the EMA's BatchNorm statistics: up to STATISTICS_ROWS
        rows spread evenly over the set, in whole batches of the training batch size (a BatchNorm
        that trains never sees a smaller batch)."""
        size, count = self.recipe.train.batch_size, len(self.data.train)
        rows = torch.linspace(0, count - 1, min(count, STATISTICS_ROWS)).round().long().unique()
        rows = rows[: max(size, len(rows) // size * size)]
        return (self._batch(chunk, augmented=False) for chunk in rows.split(size))

    def _keep_best(self, metrics: dict[str, float]) -> None:
        key = self.recipe.train.keep_best
        if key is None:
            return
        if key not in metrics:
            raise RecipeError(f"train.keep_best: no metric {key!r}; metrics: {', '.join(metrics)}")
        sign = 1 if lower_is_better(key) else -1
        if self.progress.best is None or sign * metrics[key] < sign * self.progress.best:
            self.progress.best = metrics[key]
            checkpoint.export(self.eval_generator(), self.recipe, self.data.schema, self.run / "best.safetensors")

    def finish(self) -> Path | None:
        """The model file: the EMA generator, else the best (keep_best), else the last."""
        if not self.accelerator.is_main_process:
            return None
        model, best = self.run / "model.safetensors", self.run / "best.safetensors"
        if self.recipe.train.keep_best is not None and self.ema is None and best.is_file():
            shutil.copyfile(best, model)
        else:
            checkpoint.export(self.eval_generator(), self.recipe, self.data.schema, model)
        return model


def _lost_peer(err: RuntimeError) -> bool:
    """A collective that failed because of another process: torch's distributed errors (NCCL),
    and gloo's plain RuntimeErrors (a peer's closed connection, a timeout), which name gloo's source."""
    return isinstance(err, torch.distributed.DistError) or "/gloo/" in str(err)


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

"""The `colorgan` command. Thin: parse, call a library function, print.

Any `ColorganError` (bad recipe, dataset, model file, argument) becomes one line on stderr and
exit code 2 — no traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import click

from colorgan import __version__
from colorgan.errors import ColorganError, one_line, os_error_line, shown

RANKINGS = ("psnr", "accuracy")  # colorgan.evaluate.RANKINGS, spelled out: importing it would load torch for --help


class BadInput(click.ClickException):
    exit_code = 2


def _ours_in_one_line(show: Callable[..., None]) -> Callable[..., None]:
    """`warnings.showwarning` that prints colorgan's own warnings (emulated bf16, BatchNorm at
    batch 1, a fill that does not suit the art) as one line of advice on stderr, without the
    library's source line, and passes other packages' warnings to `show`."""

    def show_warning(message, category, *args, **kwargs) -> None:
        if category.__module__.partition(".")[0] == "colorgan":
            click.echo(f"colorgan: warning: {message}", err=True)
        else:
            show(message, category, *args, **kwargs)

    return show_warning


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _ours_in_one_line(warnings.showwarning)
                return super().invoke(ctx)
        except ColorganError as err:
            raise BadInput(one_line(str(err))) from None
        except OSError as err:  # the system refused a path (full disk, permissions, a name too long)
            if err.errno is None:  # a library's own OSError: not the storage, a bug
                raise
            raise BadInput(one_line(os_error_line(err))) from None


overrides_option = click.option(
    "-o", "--override", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a recipe key, e.g. -o train.epochs=5 -o generator.depth=6.",
)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="colorgan")
def cli() -> None:
    """colorgan: colour colourless character art with a conditional GAN."""


# --- components ---------------------------------------------------------------------------------

_KINDS = {"condition": "conditions", "generator": "generators", "discriminator": "discriminators",
          "loss": "losses", "objective": "objectives"}


@cli.command()
@click.argument("kind", required=False)
def components(kind: str | None) -> None:
    """List every registered component: kind, name, origin, summary.

    KIND narrows the list: conditions, generators, discriminators, losses or objectives.
    """
    from colorgan.registry import REGISTRIES
    from colorgan.registry.core import did_you_mean
    from colorgan.registry.plugins import broken_plugins

    kinds = list(REGISTRIES)
    if kind is not None:
        kind = _KINDS.get(kind, kind)
        if kind not in REGISTRIES:
            raise BadInput(f"unknown kind {kind!r}{did_you_mean(kind, kinds)}; kinds: {', '.join(kinds)}")
        kinds = [kind]
    rows = [(k, e.name, e.origin, e.summary) for k in kinds for e in
            sorted(REGISTRIES[k].entries().values(), key=lambda e: e.name)]
    widths = [max(len(r[i]) for r in rows + [("kind", "name", "origin", "")]) for i in range(3)]
    header = ("kind", "name", "origin", "summary")
    for row in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
    for broken in broken_plugins():
        click.echo(f"warning: {broken}", err=True)


# --- recipes ------------------------------------------------------------------------------------


@cli.group(cls=_Group)
def recipe() -> None:
    """Check recipes."""


@recipe.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@overrides_option
def recipe_check(path: Path, overrides: tuple[str, ...]) -> None:
    """Validate RECIPE (with overrides) and print the resolved YAML."""
    from colorgan import recipe as recipes

    click.echo(recipes.load_validated(path, overrides).to_yaml(), nl=False)


# --- training -----------------------------------------------------------------------------------


@cli.command()
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(path_type=Path))
@overrides_option
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (default runs/<name>-<time>).")
@click.option("--resume", metavar="latest|auto|PATH",
              help="Continue a run exactly from its latest (or a given) checkpoint; auto: the latest if there is "
                   "one, else start afresh (for torchrun --max-restarts, whose restarted workers repeat the command).")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out.")
@click.option("--stop-at", type=click.IntRange(min=1), help="Pause after this step (checkpoint written; resume later).")
@click.option("--device", help="cpu or cuda (default: cuda if available; under torchrun each rank its own GPU).")
def train(recipe_path: Path, overrides: tuple[str, ...], out: Path | None, resume: str | None,
          overwrite: bool, stop_at: int | None, device: str | None) -> None:
    """Train RECIPE: writes samples, checkpoints, metrics.jsonl and model.safetensors to the run folder."""
    from colorgan import recipe as recipes
    from colorgan.train import train as run_training

    if resume is not None and out is None:
        raise BadInput("--resume needs --out RUN (the run folder to continue)")
    result = run_training(recipes.load_validated(recipe_path, overrides), out=out, resume=resume,
                          overwrite=overwrite, stop_at=stop_at, device=device)
    from accelerate import PartialState

    if PartialState().is_main_process:
        if result.exit_code:
            click.echo(f"interrupted at step {result.step}; checkpoint written. "
                       f"Resume: colorgan train {recipe_path} --out {result.run} --resume latest", err=True)
        elif result.model is not None:
            click.echo(f"model: {result.model}")
        else:
            click.echo(f"paused at step {result.step}: {result.run}")
    if result.exit_code:
        raise SystemExit(result.exit_code)


# --- data ---------------------------------------------------------------------------------------


@cli.group(cls=_Group)
def data() -> None:
    """Draw the built-in icon set; check a dataset folder."""


@data.command("icons")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--size", default=64, show_default=True, help="Image size in pixels (32..512).")
@click.option("--characters", default=10, show_default=True, help="How many different characters.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same bytes.")
def data_icons(out: Path, size: int, characters: int, seed: int) -> None:
    """Draw the built-in icons (sketches + 5 hair x 5 shirt colourings) into OUT."""
    from colorgan.data.icons import draw_icons

    folder = draw_icons(out, size=size, characters=characters, seed=seed)
    click.echo(f"wrote {characters * 25} rows to {folder / 'Metadata.csv'}")


@data.command("check")
@click.argument("path", type=click.Path(path_type=Path))
def data_check(path: Path) -> None:
    """Print a dataset's rows, characters, attributes, image sizes and every problem found."""
    from colorgan.data.check import check_dataset

    report = check_dataset(path)
    for line in report.lines():
        click.echo(line)
    if report.problems:
        raise BadInput(f"{shown(path)}: {len(report.problems)} problem(s) found")


# --- using a model ------------------------------------------------------------------------------


@cli.command("export")
@click.argument("source", metavar="RUN_OR_CHECKPOINT", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--onnx", "onnx_out", type=click.Path(path_type=Path), metavar="OUT.onnx",
              help="Also export the generator to ONNX (needs: pip install colorgan[onnx]).")
def export_cmd(source: Path, out: Path, onnx_out: Path | None) -> None:
    """Write a model file from a run folder (its model, else its latest checkpoint) or a checkpoint folder."""
    import importlib.util

    from colorgan.checkpoint import export_from_run

    if onnx_out is not None and importlib.util.find_spec("onnx") is None:
        raise BadInput("--onnx needs the onnx package: pip install colorgan[onnx]")
    path = export_from_run(source, out)
    click.echo(f"model: {path}")
    if onnx_out is not None:
        from colorgan.onnx_export import export_onnx

        result = export_onnx(path, onnx_out)
        check = (f"matches PyTorch (max difference {result.max_difference:.1e})" if result.checked
                 else "not checked: onnxruntime is not installed")
        click.echo(f"onnx: {result.path} ({check})")


max_model_gb_option = click.option(
    "--max-model-gb", type=click.FloatRange(min=0, min_open=True), metavar="GB",
    help="Refuse a model file whose model would need more memory than this (default: "
         "$COLORGAN_MAX_MODEL_GB, else 4). Raise it only for a file you trust.")


@cli.command("sample")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("-c", "--condition", "conditions", multiple=True, metavar="ATTR=VALUE",
              help="A colour condition, e.g. -c hair=crimson -c shirt=navy.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("samples"), show_default=True,
              help="Output folder.")
@click.option("--sweep", "sweeps", multiple=True, metavar="ATTR",
              help="Write a grid over every value of ATTR (give twice for rows x columns).")
@click.option("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--keep-alpha", is_flag=True, help="Keep the input's transparency (RGBA output).")
@click.option("--overwrite", is_flag=True, help="Replace output files that exist (never read-only ones).")
@max_model_gb_option
def sample_cmd(model: Path, inputs: tuple[str, ...], conditions: tuple[str, ...], out: Path,
               sweeps: tuple[str, ...], device: str | None, batch_size: int, keep_alpha: bool,
               overwrite: bool, max_model_gb: float | None) -> None:
    """Colour INPUT sketches (files, folders or globs) with MODEL; all outputs or none."""
    from colorgan.sampling import parse_conditions, sample_files

    written = sample_files(model, inputs, parse_conditions(conditions), out, sweeps, device, batch_size, keep_alpha,
                           overwrite, max_model_gb)
    for path in written:
        click.echo(str(path))


@cli.command("info")
@click.argument("model", type=click.Path(path_type=Path))
def info_cmd(model: Path) -> None:
    """Print what a model file holds: schema, components, image size, format version, recipe."""
    from colorgan.sampling import describe_model

    click.echo(describe_model(model))


@cli.command("evaluate")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data_path", metavar="[DATA]", required=False, type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["test", "train", "all"]), default="test", show_default=True,
              help="test/train: the model recipe's split of DATA; all: every row (a dataset the model never saw).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--device", help="cpu, cuda, ... (default: cuda if available).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--per-character", is_flag=True, help="Also each character's scores, worst first (see --rank-by).")
@click.option("--rank-by", type=click.Choice(RANKINGS),
              help="Order of --per-character: lowest PSNR (the default), or lowest condition accuracy (the "
                   "characters drawn in the wrong colours), first.")
def evaluate_cmd(model: Path, data_path: Path | None, split: str, as_json: bool, device: str | None,
                 batch_size: int, per_character: bool, rank_by: str | None) -> None:
    """Score MODEL on DATA (default: the dataset in its recipe): PSNR, SSIM, L1, condition error/accuracy."""
    import json

    from colorgan.evaluate import evaluate, format_table

    if rank_by is not None and not per_character:
        raise BadInput("--rank-by orders the characters of --per-character; add --per-character")
    result = evaluate(model, data_path, split, device=device, batch_size=batch_size, per_character=per_character,
                      rank_by=rank_by or "psnr")
    click.echo(json.dumps(result) if as_json else format_table(result))


@cli.command("report")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="PNG to write (default RUN/report.png).")
@click.option("--sheets", type=click.IntRange(min=0), default=4, show_default=True,
              help="How many sample sheets to show, evenly spaced over training.")
@click.option("--worst", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also show the N worst held-out characters (ranked as `colorgan evaluate --per-character` "
                   "ranks them) beside their targets; needs RUN/model.safetensors.")
@click.option("--rank-by", type=click.Choice(RANKINGS),
              help="Order of --worst: lowest PSNR first (the default), or lowest condition accuracy first, "
                   "showing the images whose colours missed.")
def report_cmd(run: Path, out: Path | None, sheets: int, worst: int, rank_by: str | None) -> None:
    """Draw RUN's loss and validation curves and its sample sheets over training into one PNG."""
    from colorgan.report import make_report

    if rank_by is not None and not worst:
        raise BadInput("--rank-by orders the characters of --worst N; add --worst N")
    click.echo(f"report: {make_report(run, out, sheets, worst, rank_by or 'psnr').path}")


# --- serving -----------------------------------------------------------------------------------


@cli.command("serve")
@click.argument("models", metavar="MODEL...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any other than loopback lets other machines use the page.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True)
@click.option("--device", help="cpu, cuda, ... (default: cuda if available).")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Largest request body (an uploaded sketch) accepted.")
@max_model_gb_option
def serve_cmd(models: tuple[Path, ...], host: str, port: int, device: str | None, max_upload_mb: float,
              max_model_gb: float | None) -> None:
    """Colour sketches in the browser: a page and a JSON/PNG API for MODEL files (needs colorgan[serve])."""
    from colorgan.serve.server import serve

    serve(list(models), host, port, device, int(max_upload_mb * 1e6), max_model_gb)


# --- benchmarks ---------------------------------------------------------------------------------


@cli.group(cls=_Group)
def bench() -> None:
    """Measure speed and quality on this machine (never in tests: here)."""


bench_device_option = click.option(
    "--device", help="cpu, cuda or cuda:N: where to train and time (default: training's, cuda if available).")


def _print_flat(result: dict) -> None:
    for key, value in result.items():
        click.echo(f"{key:<26} {value:.4g}" if isinstance(value, float) else f"{key:<26} {value}")


@bench.command("speed")
@click.option("--recipe", "recipe_path", type=click.Path(path_type=Path), default=Path("recipes/quickstart.yaml"),
              show_default=True)
@overrides_option
@click.option("--steps", type=click.IntRange(min=4), default=60, show_default=True,
              help="Steps of colorgan's loop to time.")
@bench_device_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_speed(recipe_path: Path, overrides: tuple[str, ...], steps: int, device: str | None, as_json: bool) -> None:
    """Training and sampling images/s, colorgan's loop vs a plain PyTorch loop, FLOPs, roofline: on one device."""
    from colorgan import recipe as recipes
    from colorgan.bench import speed

    import json

    result = speed(recipes.load_validated(recipe_path, overrides), steps=steps, device=device)
    if as_json:
        click.echo(json.dumps(result))
    else:
        _print_flat(result)


@bench.command("quality")
@click.option("--recipe", "recipe_path", type=click.Path(path_type=Path), default=Path("recipes/quickstart.yaml"),
              show_default=True)
@overrides_option
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              help="Wall-clock training budget.")
@click.option("--out", type=click.Path(path_type=Path), help="Keep the run folder here (default: temporary).")
@bench_device_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_quality(recipe_path: Path, overrides: tuple[str, ...], minutes: float, out: Path | None,
                  device: str | None, as_json: bool) -> None:
    """Train for a time budget, then score the held-out split (the metrics of `evaluate`)."""
    from colorgan import recipe as recipes
    from colorgan.bench import TrainingInterrupted, quality

    import json

    from colorgan.evaluate import format_table

    try:
        result = quality(recipes.load_validated(recipe_path, overrides), minutes, out, device=device)
    except TrainingInterrupted as stopped:
        click.echo(str(stopped) + (f"; checkpoint in {out}" if out else ""), err=True)
        raise SystemExit(stopped.exit_code) from None
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(format_table(result))
        _print_flat({k: result[k] for k in ("steps", "images_seen", "minutes")})


@bench.command("serve")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--requests", type=click.IntRange(min=1), default=200, show_default=True, help="Requests in all.")
@click.option("--clients", type=click.IntRange(min=1, max=64), default=4, show_default=True,
              help="Concurrent clients, each on its own connection.")
@click.option("--max-seconds", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Stop sending after this long, however many requests are left.")
@bench_device_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_serve_cmd(model: Path, requests: int, clients: int, max_seconds: float, device: str | None,
                    as_json: bool) -> None:
    """Requests/s, p50/p95 latency, errors and memory of `colorgan serve MODEL` on 127.0.0.1."""
    import json

    from colorgan.serve.bench import bench_serve
    from colorgan.serve.server import check_extra

    check_extra()
    result = bench_serve(model, requests, clients, max_seconds, device)
    if as_json:
        click.echo(json.dumps(result))
    else:
        _print_flat(result)
    if result["errors"]:
        raise BadInput(f"{result['errors']} of {result['requests']} requests failed: {result['first_error']}")


def main() -> None:
    cli(prog_name="colorgan")

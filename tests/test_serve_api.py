"""`colorgan serve`'s API through Starlette's TestClient: what it answers, and how it refuses.

Models here are untrained (the API is the Colorizer's, pixel for pixel, whatever the weights);
`trained_model` is the one that has learned colours, for the live-server and browser tests.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[dev]'")
from starlette.testclient import TestClient  # noqa: E402

from colorgan import checkpoint  # noqa: E402
from colorgan import recipe as recipes  # noqa: E402
from colorgan.build import build_generator  # noqa: E402
from colorgan.cli import cli  # noqa: E402
from colorgan.data.schema import ConditionSchema  # noqa: E402
from colorgan.serve.app import create_app  # noqa: E402
from colorgan.serve.models import load_models  # noqa: E402
from conftest import TINY  # noqa: E402
from hardening_helpers import bomb_png, tiny_model_file  # noqa: E402

ICONS = {"hair": ["blue", "crimson", "darkgreen", "deepskyblue", "gold"],
         "shirt": ["darkslateblue", "darkturquoise", "olive", "orangered", "violet"]}
GOOD = {"example": "0", "hair": "crimson", "shirt": "olive"}


def model_file(path: Path, schema=ICONS, **changes) -> Path:
    """An untrained model file of the tiny recipe with `changes` (whose dataset need not exist)."""
    recipe = recipes.from_dict({**copy.deepcopy(TINY), "data": {"path": "no/such/data", "image_size": 32},
                                **changes})
    schema = ConditionSchema.from_mapping(schema)
    return checkpoint.export(build_generator(recipe, schema), recipe, schema, path)


def trained_model(root: Path) -> Path:
    """A tiny model trained long enough to colour shirts as asked (shirt accuracy 1.00 over the
    set; hair needs far longer): 32 px, 2 characters, nothing held out. One thread: on a shared
    2-core machine that took 3.5 s where two threads took 40 s. Trained once per session, in `root`."""
    from colorgan.train import train

    done = root / "trained" / "model.safetensors"
    if not done.is_file():
        recipe = copy.deepcopy(TINY)
        recipe["data"]["holdout"] = {"kind": "none"}
        recipe["optimizer"] = {"lr": 0.003}
        recipe["objective"] = [{"type": "gan", "weight": 1.0}, {"type": "l1", "weight": 300.0}]
        recipe["train"].update(max_steps=120, batch_size=8, log_every=40,
                               sample_every=1000, eval_every=1000, checkpoint_every=1000, threads=1)
        train(recipes.from_dict(recipe), out=root / "trained")
    return done


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    return {"icons": tiny_model_file(root),  # its dataset is in root/data
            "rgb": model_file(root / "rgb.safetensors", condition={"type": "rgb", "dropout": 0.3})}


@pytest.fixture(scope="module")
def models(files):
    return load_models([files["icons"]], device="cpu")


@pytest.fixture(scope="module")
def client(models):
    return TestClient(create_app(models, max_upload_bytes=200_000), base_url="http://127.0.0.1")


def png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pixels(response) -> list:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return list(Image.open(io.BytesIO(response.content)).convert("RGB").getdata())


def test_models_describe_each_attributes_control(files):
    both = load_models([files["icons"], files["rgb"]], device="cpu")
    found = TestClient(create_app(both), base_url="http://127.0.0.1").get("/api/models").json()
    icons, rgb = found["models"]
    assert (icons["name"], rgb["name"]) == ("model", "rgb")
    assert [(a["name"], a["values"], a["control"], a["optional"]) for a in icons["attributes"]] == [
        ("hair", ICONS["hair"], "choice", False), ("shirt", ICONS["shirt"], "choice", False)]
    assert {(a["control"], a["optional"]) for a in rgb["attributes"]} == {("colour", True)}
    assert icons["components"]["generator"]["type"] == "unet"
    assert icons["size_bytes"] == files["icons"].stat().st_size and icons["parameters"] > 0
    assert found["max_upload_bytes"] == 10_000_000


def test_examples_are_the_models_dataset_sketches_else_the_builtin_icons(client, files):
    found = client.get("/api/examples").json()
    assert found["source"] == f"dataset {files['icons'].parent / 'data'}"
    assert [e["name"] for e in found["examples"]] == ["char-00", "char-01"]
    sketch = Image.open(io.BytesIO(client.get(found["examples"][1]["url"]).content))
    assert sketch.size == (32, 32)
    elsewhere = load_models([files["rgb"]], device="cpu")["rgb"].examples  # its dataset is not here
    assert elsewhere.source == "built-in icons" and len(elsewhere.paths) == 10


def test_colorize_is_the_colorizer_for_an_example_and_an_upload(client, models, files):
    colorizer = models["model"].colorizer
    sketch = files["icons"].parent / "data" / "sketches" / "char-00.png"
    expected = list(colorizer.colorize(sketch, hair="crimson", shirt="olive").getdata())
    assert pixels(client.post("/api/colorize", data=GOOD)) == expected
    upload = {"sketch": ("char-00.png", sketch.read_bytes(), "image/png")}
    given = {k: v for k, v in GOOD.items() if k != "example"}
    assert pixels(client.post("/api/colorize", data=given, files=upload)) == expected


def test_an_upload_keeps_its_size_and_mode_handling(client, models):
    wide = Image.new("LA", (60, 20), (0, 0))
    response = client.post("/api/colorize", data={"hair": "gold", "shirt": "violet"},
                           files={"sketch": ("wide.png", png_of(wide), "image/png")})
    assert Image.open(io.BytesIO(response.content)).size == (60, 20)


def test_sweep_is_the_colorizers_grid(client, models, files):
    sketch = files["icons"].parent / "data" / "sketches" / "char-01.png"
    expected = models["model"].colorizer.sweep(sketch, "hair", "shirt")
    form = {"example": "1", "sweep": ["hair", "shirt"]}
    assert pixels(client.post("/api/sweep", data=form)) == list(expected.getdata())
    row = client.post("/api/sweep", data={"example": "1", "sweep": "shirt", "hair": "gold"})
    assert Image.open(io.BytesIO(row.content)).size[0] > 5 * 32


def test_an_rgb_model_takes_any_colour_and_leaves_attributes_unset(files):
    served = load_models([files["rgb"]], device="cpu")
    client = TestClient(create_app(served), base_url="http://127.0.0.1")
    colorizer = served["rgb"].colorizer
    sketch = served["rgb"].examples.paths[0]
    asked = client.post("/api/colorize", data={"example": "0", "hair": "#ff8800", "shirt": ""})
    assert pixels(asked) == list(colorizer.colorize(sketch, hair="#ff8800").getdata())


def test_several_models_are_told_apart_by_name(files):
    both = load_models([files["icons"], files["rgb"]], device="cpu")
    client = TestClient(create_app(both), base_url="http://127.0.0.1")
    assert client.post("/api/colorize", data={**GOOD, "model": "rgb"}).status_code == 200
    unnamed = client.post("/api/colorize", data=GOOD)
    assert unnamed.status_code == 400 and "models: model, rgb" in unnamed.json()["error"]


def _huge_header(tmp_path: Path) -> bytes:
    return bomb_png(tmp_path / "bomb.png").read_bytes()


def _large_header(tmp_path: Path) -> bytes:
    return bomb_png(tmp_path / "large.png", 5000, 5000).read_bytes()


BAD = [  # (what, form fields, files, status, words the one line must hold)
    ("not an image", {"hair": "gold", "shirt": "olive"}, {"sketch": ("notes.txt", b"hello", "text/plain")},
     400, "upload 'notes.txt': not an image"),
    ("a huge image header", {"hair": "gold", "shirt": "olive"}, {"sketch": ("bomb.png", _huge_header, "image/png")},
     400, "upload 'bomb.png': refused as a possible decompression bomb"),
    ("a header over the server's pixel limit", {"hair": "gold", "shirt": "olive"},
     {"sketch": ("large.png", _large_header, "image/png")}, 400, "image is 5000x5000, more than the 16777216 pixels"),
    ("a file over the size limit", {"hair": "gold", "shirt": "olive"},
     {"sketch": ("big.png", b"\x89PNG" + bytes(300_000), "image/png")}, 413, "upload too large: the limit is 0.2 MB"),
    ("an unknown value", {**GOOD, "hair": "pink"}, {}, 400, "unknown value 'pink' for attribute 'hair'; valid: blue"),
    ("an unknown attribute", {**GOOD, "hat": "red"}, {}, 400, "unknown attribute 'hat'; attributes: hair, shirt"),
    ("a missing attribute", {"example": "0", "hair": "gold"}, {}, 400, "missing condition 'shirt'"),
    ("an unknown example", {**GOOD, "example": "7"}, {}, 400, "unknown example '7'; examples are 0..1"),
    ("no sketch", {"hair": "gold", "shirt": "olive"}, {}, 400, "no sketch: upload an image"),
    ("an unknown model", {**GOOD, "model": "other"}, {}, 400, "unknown model 'other'; models: model"),
]


@pytest.mark.parametrize("what, fields, upload, status, words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_json_line_and_the_server_keeps_serving(client, tmp_path, what, fields, upload,
                                                                  status, words):
    upload = {k: (name, data(tmp_path) if callable(data) else data, kind) for k, (name, data, kind) in upload.items()}
    response = client.post("/api/colorize", data=fields, files=upload or None)
    assert (response.status_code, list(response.json())) == (status, ["error"])
    assert words in response.json()["error"] and "\n" not in response.json()["error"]
    assert client.post("/api/colorize", data=GOOD).status_code == 200


def test_a_chunked_body_is_cut_off_at_the_limit(client):
    chunks = (b"x" * 50_000 for _ in range(10))  # no Content-Length: stopped while reading
    response = client.post("/api/colorize", content=chunks,
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413 and "upload too large" in response.json()["error"]


def test_a_bad_sweep_is_refused(client):
    unknown = client.post("/api/sweep", data={"example": "0", "sweep": "hat"})
    assert unknown.status_code == 400 and "unknown attribute 'hat'" in unknown.json()["error"]
    three = client.post("/api/sweep", data={"example": "0", "sweep": ["hair", "shirt", "hair"]})
    assert "give one or two attributes, got 3" in three.json()["error"]


def test_the_page_loads_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    static = Path(__file__).parents[1] / "colorgan" / "serve" / "static"
    for name in ("index.html", "style.css", "app.js"):
        text = client.get(f"/{name}").text
        assert text == (static / name).read_text() and "http:" not in text and "https:" not in text


def test_other_host_names_are_refused_on_loopback(client):
    assert client.get("/api/models", headers={"host": "attacker.example"}).status_code == 400


def test_serve_refuses_bad_model_files_and_names_it(tmp_path, files):
    runner = CliRunner()
    missing = runner.invoke(cli, ["serve", str(tmp_path / "none.safetensors")])
    assert missing.exit_code == 2 and "model file not found" in missing.output
    over = runner.invoke(cli, ["serve", str(files["icons"]), "--max-model-gb", "0.000001"])
    assert over.exit_code == 2 and "more than the 1e-06 GB allowed" in over.output
    clash = model_file(tmp_path / "clash.safetensors", {"model": ["a", "b"], "hair": ["red"]})
    refused = runner.invoke(cli, ["serve", str(clash)])
    assert refused.exit_code == 2 and "attribute 'model' has the name of a form field" in refused.output


def test_serve_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "m.safetensors")])
    assert result.exit_code == 2 and "pip install 'colorgan[serve]'" in result.output


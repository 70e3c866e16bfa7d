"""Export a model's generator (with its condition encoder) to ONNX: `pip install colorgan[onnx]`.

The graph takes two inputs and gives one output, all with a dynamic batch axis:

- `sketch`: float32 (B, sketch_channels, size, size) in [-1, 1], the fitted sketch;
- `encoded`: the condition encoder's host-side `encode` output: for `onehot` and `embedding`
  int64 (B, n_attributes) value indices (a value's index in the sorted value list of its
  attribute, as in the `colorgan.schema` metadata; -1 = unspecified where the model allows it),
  for `rgb` float32 Lab colours;
- `image`: float32 (B, 3 or 4, size, size) in [-1, 1].

The condition encoder's forward is inside the graph, so a runtime only has to look indices up in
the schema. The model's metadata (`colorgan.*` keys: recipe, schema, image size, channels,
format version) is copied into the ONNX file's `metadata_props`.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from colorgan.errors import ColorganError

TOLERANCE = 1e-4
INSTALL = "pip install colorgan[onnx]"


@dataclass
class OnnxResult:
    path: Path
    checked: bool           # compared with PyTorch through onnxruntime
    max_difference: float | None


class _Graph(torch.nn.Module):
    """ConditionalGenerator without the condition-vector output."""

    def __init__(self, generator: torch.nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, sketch: torch.Tensor, encoded: torch.Tensor) -> torch.Tensor:
        return self.generator(sketch, encoded)[0]


def export_onnx(model, out: str | Path, opset: int = 17, check: bool = True) -> OnnxResult:
    """Write `out` (.onnx) from a model file path or a `Colorizer`; verify with onnxruntime if present."""
    if importlib.util.find_spec("onnx") is None:
        raise ColorganError(f"ONNX export needs the onnx package: {INSTALL}")
    import onnx

    from colorgan.inference import Colorizer
    from colorgan.model_file import describe

    colorizer = model if isinstance(model, Colorizer) else Colorizer.load(model, "cpu")
    out = Path(out)
    generator = copy.deepcopy(colorizer.generator).to("cpu").eval()
    size, channels = colorizer.image_size, colorizer.sketch_channels
    first = {a: v[0] for a, v in colorizer.schema.attributes}
    sketch = torch.rand(2, channels, size, size) * 2 - 1
    encoded = generator.encode([first, first])
    graph = _Graph(generator).eval()
    tmp = out.with_name(f".{out.name}.tmp")
    kwargs = dict(
        input_names=["sketch", "encoded"], output_names=["image"], opset_version=opset,
        dynamic_axes={"sketch": {0: "batch"}, "encoded": {0: "batch"}, "image": {0: "batch"}},
    )
    try:
        with torch.no_grad():
            try:
                torch.onnx.export(graph, (sketch, encoded), str(tmp), dynamo=False, **kwargs)
            except TypeError:  # torch without the `dynamo` switch: the TorchScript exporter anyway
                torch.onnx.export(graph, (sketch, encoded), str(tmp), **kwargs)
        proto = onnx.load(str(tmp))
        meta = describe(colorizer.recipe, colorizer.schema)
        meta["colorgan.onnx_inputs"] = json.dumps({"sketch": [channels, size, size], "encoded": str(encoded.dtype)})
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        tmp.replace(out)
    except ColorganError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as err:  # noqa: BLE001 - exporter failures come in many types
        tmp.unlink(missing_ok=True)
        raise ColorganError(f"{out}: ONNX export failed ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    if not check or importlib.util.find_spec("onnxruntime") is None:
        return OnnxResult(out, False, None)
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = graph(sketch, encoded).numpy()
    got = session.run(["image"], {"sketch": sketch.numpy(), "encoded": encoded.numpy()})[0]
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= TOLERANCE:
        raise ColorganError(f"{out}: ONNX output differs from PyTorch by {diff:.2e} (more than {TOLERANCE})")
    return OnnxResult(out, True, diff)

"""Condition encoders: registry build, encoding, unknown values, leaving attributes out, dropout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colorgan.data.schema import ConditionSchema
from colorgan.errors import ConditionError, RegistryError
from colorgan.registry import CONDITIONS

# The seed's shape: 5 hair x 5 shirt colours, CSS names (values are sorted by the schema).
SCHEMA = ConditionSchema.from_mapping(
    {
        "hair": ["black", "brown", "crimson", "gold", "silver"],
        "shirt": ["navy", "olive", "orange", "teal", "white"],
    }
)
BATCH = [{"hair": "crimson", "shirt": "navy"}, {"hair": "silver", "shirt": "white"}]
NAMES = ["onehot", "embedding", "rgb"]


def build(name, **options):
    return CONDITIONS.build({"type": name, **options}, schema=SCHEMA)


def construct(name, schema=SCHEMA, **options):
    """Straight through the class: bad option values are ValueErrors (the registry wraps them)."""
    return CONDITIONS.get(name)(schema, **options)


def test_all_builtins_registered():
    assert set(NAMES) <= set(CONDITIONS.names())
    for name in NAMES:
        assert CONDITIONS.entry(name).summary  # one-line summary for `colorgan components`
        assert CONDITIONS.entry(name).origin == "built-in"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_encode_forward_shape_and_gradients(name, dropout):
    enc = build(name, dropout=dropout)
    assert enc.supports_unspecified is (dropout > 0)
    encoded = enc.encode(BATCH)
    assert encoded.device.type == "cpu"
    batch = torch.utils.data.default_collate([encoded[0], encoded[1]])  # collatable
    assert torch.equal(batch, encoded)
    out = enc.train()(encoded)
    assert out.shape == (2, enc.dim) and out.dtype == torch.float32
    params = list(enc.parameters())
    if params:
        out.sum().backward()
        for p in params:
            assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_unknown_attribute_and_missing_attribute(name):
    enc = build(name)
    with pytest.raises(ConditionError, match="unknown attribute 'hat'"):
        enc.encode([{"hair": "black", "shirt": "navy", "hat": "red"}])
    with pytest.raises(ConditionError, match="missing condition 'shirt'"):
        enc.encode([{"hair": "black"}])
    with pytest.raises(ConditionError, match="missing condition 'hair'"):
        enc.encode([{"hair": None, "shirt": "navy"}])


def test_onehot_positions():
    enc = build("onehot")
    assert enc.dim == 10
    out = enc(enc.encode(BATCH))
    expected = torch.zeros(2, 10)
    expected[0, 2] = expected[0, 5 + 0] = 1  # crimson is hair #2, navy shirt #0
    expected[1, 4] = expected[1, 5 + 4] = 1  # silver, white
    assert torch.equal(out, expected)


@pytest.mark.parametrize("name", ["onehot", "embedding"])
def test_index_encoders_refuse_unknown_value_listing_valid(name):
    enc = build(name)
    assert enc.encode(BATCH).tolist() == [[2, 0], [4, 4]]
    with pytest.raises(ConditionError) as err:
        enc.encode([{"hair": "green", "shirt": "navy"}])
    message = str(err.value)
    assert "'green'" in message and "hair" in message
    for value in ("black", "brown", "crimson", "gold", "silver"):
        assert value in message


def test_embedding_options():
    enc = build("embedding", dim={"hair": 4, "shirt": 6})
    assert enc.dim == 10
    out = enc(enc.encode(BATCH))
    assert torch.equal(out[:, :4], enc.embeddings[0].weight[[2, 4]])
    assert torch.equal(out[:, 4:], enc.embeddings[1].weight[[0, 4]])
    summed = build("embedding", dim=8, combine="sum")
    assert summed.dim == 8
    out = summed(summed.encode(BATCH[:1]))
    assert torch.allclose(out[0], summed.embeddings[0].weight[2] + summed.embeddings[1].weight[0])
    with pytest.raises(ValueError, match="combine"):
        construct("embedding", combine="mean")
    with pytest.raises(ValueError, match="one width"):
        construct("embedding", dim={"hair": 4}, combine="sum")
    with pytest.raises(ValueError, match="unknown attribute 'hat'"):
        construct("embedding", dim={"hat": 4})
    with pytest.raises(ValueError, match="dim"):
        construct("embedding", dim=0)


def test_rgb_is_lab_and_accepts_unseen_colours():
    skcolor = pytest.importorskip("skimage.color")
    enc = build("rgb")
    assert enc.dim == 6 and not list(enc.parameters())
    encoded = enc.encode([{"hair": "#123456", "shirt": "teal"}, {"hair": "Crimson", "shirt": "navy"}])
    out = enc(encoded)
    for row, colours in zip(out, [((0x12, 0x34, 0x56), (0, 128, 128)), ((220, 20, 60), (0, 0, 128))]):
        lab = skcolor.rgb2lab(np.array([colours], dtype=np.float64) / 255.0)[0]
        expected = torch.tensor(lab / np.array([100.0, 128.0, 128.0]), dtype=torch.float32).reshape(-1)
        assert torch.allclose(row, expected, atol=1e-5)
    with pytest.raises(ConditionError, match="not a colour"):
        enc.encode([{"hair": "notacolour", "shirt": "teal"}])


def test_rgb_refuses_schema_value_that_is_not_a_colour():
    schema = ConditionSchema.from_mapping({"hair": ["black"], "skin": ["light", "medium-dark"]})
    with pytest.raises(ValueError, match="skin.*'light'"):
        construct("rgb", schema)


@pytest.mark.parametrize("name", NAMES)
def test_unspecified_with_dropout(name):
    enc = build(name, dropout=0.3).eval()
    encoded = enc.encode([{"hair": "crimson"}, {"hair": None, "shirt": "navy"}, {"hair": "crimson", "shirt": "navy"}])
    out = enc(encoded)
    assert out.shape == (3, enc.dim)
    # An attribute left out is encoded differently from every given value.
    assert not torch.equal(out[0], out[2]) and not torch.equal(out[1], out[2])
    if name == "onehot":
        assert torch.equal(out[0, 5:], torch.zeros(5)) and torch.equal(out[1, :5], torch.zeros(5))
    if name == "rgb":
        assert enc.dim == 8
        assert torch.equal(out[0, 4:], torch.zeros(4)) and out[0, 3] == 1  # flag: given
    if name == "embedding":
        assert torch.equal(out[0, 16:], enc.embeddings[1].weight[5])  # the extra "unspecified" row


@pytest.mark.parametrize("name", NAMES)
def test_dropout_rate_train_vs_eval(name):
    p = 0.3
    enc = build(name, dropout=p)
    encoded = enc.encode([{"hair": "crimson", "shirt": "navy"}] * 2000)
    reference = enc.eval()(encoded[:1])
    enc.eval()
    assert torch.equal(enc(encoded), reference.expand(2000, -1))  # eval: nothing dropped
    enc.train()
    torch.manual_seed(0)
    first = enc(encoded)
    torch.manual_seed(0)
    assert torch.equal(enc(encoded), first)  # seeded: deterministic
    # Per attribute block: share of samples whose block differs from the given value's block.
    width = enc.dim // 2
    changed = (first.detach() != reference.detach()).reshape(2000, 2, width).any(dim=2).float()
    assert abs(changed.mean().item() - p) < 0.04


def test_bad_options():
    with pytest.raises(ValueError, match="dropout"):
        construct("onehot", dropout=1.5)
    with pytest.raises(ValueError, match="dropout"):
        construct("rgb", dropout="lots")
    with pytest.raises(RegistryError, match="dropout"):  # through the registry: one error type
        build("embedding", dropout=-0.1)
    with pytest.raises(RegistryError) as err:
        CONDITIONS.build({"type": "onehot", "width": 3}, schema=SCHEMA)
    assert "dropout" in str(err.value)

"""Metadata.csv reading: schema inference, accepted variants, and one clear error per bad input."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from colorgan.data import check_dataset, read_metadata
from colorgan.errors import DataError

HEADER = "input,output,hair,shirt"


def make_folder(root, lines, images=("s.png", "a.png", "b.png", "c.png")):
    """A dataset folder with tiny images and a Metadata.csv holding `lines`."""
    root.mkdir(parents=True, exist_ok=True)
    for name in images:
        Image.new("RGB", (4, 4), "white").save(root / name)
    (root / "Metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def error(folder) -> str:
    with pytest.raises(DataError) as info:
        read_metadata(folder)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_schema_keeps_column_order_sorts_values_and_reads_strings(tmp_path):
    folder = make_folder(tmp_path / "d", [
        "input,output,shirt,hair,size",
        "s.png,a.png,red,NA,01",
        "s.png,b.png,blue,none,2",
        "s.png,c.png,red,none,01",
    ])
    frame, schema = read_metadata(folder)
    assert schema.names == ["shirt", "hair", "size"]
    assert schema.to_dict() == {"shirt": ["blue", "red"], "hair": ["NA", "none"], "size": ["01", "2"]}
    assert list(frame["output"]) == ["a.png", "b.png", "c.png"]
    assert list(frame.index) == [0, 1, 2]


def test_bom_and_unambiguous_semicolons_are_accepted(tmp_path):
    bom = make_folder(tmp_path / "bom", [HEADER, "s.png,a.png,red,blue"])
    (bom / "Metadata.csv").write_bytes(b"\xef\xbb\xbf" + (bom / "Metadata.csv").read_bytes())
    assert read_metadata(bom)[1].names == ["hair", "shirt"]
    semi = make_folder(tmp_path / "semi", ["input;output;hair", "s.png;a.png;red,ish"])
    frame, schema = read_metadata(semi)
    assert schema.to_dict() == {"hair": ["red,ish"]}


def test_ambiguous_separator_is_a_clear_error(tmp_path):
    folder = make_folder(tmp_path / "d", ["input output;hair", "s.png a.png;red"])
    message = error(folder)
    assert "Metadata.csv" in message and "input;output" in message


def test_missing_folder_and_file_and_empty_file(tmp_path):
    assert "dataset folder not found" in error(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "Metadata.csv: not found" in error(tmp_path / "empty")
    (tmp_path / "empty" / "Metadata.csv").write_text("\n")
    assert "Metadata.csv: empty file" in error(tmp_path / "empty")


@pytest.mark.parametrize("header, expected", [
    ("input,hair,shirt", "missing column 'output'"),
    ("img,out,hair", "missing column 'input' and 'output'"),
    ("input,output", "no condition column"),
    ("input,output,hair,hair", "'hair' appears twice"),
])
def test_bad_header(tmp_path, header, expected):
    row = ",".join(["s.png", "a.png", "x", "y"][: header.count(",") + 1])
    folder = make_folder(tmp_path / "d", [header, row])
    message = error(folder)
    assert expected in message and "Metadata.csv" in message


@pytest.mark.parametrize("row, expected", [
    ("s.png,missing.png,red,blue", "line 3: output image 'missing.png' not found"),
    ("../s.png,a.png,red,blue", "line 3: input path '../s.png' leaves the dataset folder"),
    ("/etc/passwd,a.png,red,blue", "line 3: input path '/etc/passwd' leaves the dataset folder"),
    ("s.png,a.png,,blue", "line 3: empty value for attribute 'hair'"),
    ("s.png,a.png,red", "line 3: 3 fields, but the header has 4"),
    ("s.png,c.png,red,blue", "line 3: same input and conditions as line 2 but a different output"),
])
def test_bad_row_names_file_and_line(tmp_path, row, expected):
    folder = make_folder(tmp_path / "d", [HEADER, "s.png,a.png,red,blue", row])
    message = error(folder)
    assert message.startswith(str(folder / "Metadata.csv"))
    assert expected in message


def test_identical_duplicate_rows_are_not_a_conflict(tmp_path):
    folder = make_folder(tmp_path / "d", [HEADER, "s.png,a.png,red,blue", "s.png,a.png,red,blue"])
    assert len(read_metadata(folder)[0]) == 2


def test_symlink_leaving_the_folder_is_refused_but_inside_is_fine(tmp_path):
    outside = tmp_path / "outside.png"
    Image.new("L", (4, 4)).save(outside)
    folder = make_folder(tmp_path / "d", [HEADER, "s.png,a.png,red,blue", "s.png,link.png,red,green"])
    os.symlink(outside, folder / "link.png")
    assert "line 3: output path 'link.png' leaves the dataset folder" in error(folder)
    (folder / "link.png").unlink()
    os.symlink(folder / "b.png", folder / "link.png")
    assert len(read_metadata(folder)[0]) == 2


def test_split_column_values(tmp_path):
    good = make_folder(tmp_path / "good", [
        HEADER + ",split", "s.png,a.png,red,blue,train", "s.png,b.png,red,green,test",
    ])
    frame, schema = read_metadata(good)
    assert schema.names == ["hair", "shirt"] and list(frame["split"]) == ["train", "test"]
    bad = make_folder(tmp_path / "bad", [HEADER + ",split", "s.png,a.png,red,blue,validation"])
    assert "line 2: split 'validation' is not one of train, test" in error(bad)


def test_check_collects_every_problem_and_describes_the_images(tmp_path):
    folder = make_folder(tmp_path / "d", [
        HEADER,
        "s.png,a.png,red,blue",
        "s.png,gone.png,red,green",
        "../s.png,b.png,red,pink",
        "s.png,bad.png,,blue",
        "s.png,a.png,red",
    ])
    (folder / "bad.png").write_bytes(b"not a png")
    report = check_dataset(folder)
    assert report.rows == 4 and report.characters == 2
    assert report.attributes == {"hair": ["red"], "shirt": ["blue", "green", "pink"]}
    joined = "\n".join(report.problems)
    assert len(report.problems) == 5
    for expected in ("line 6: 3 fields", "line 5: empty value", "line 3: output image 'gone.png' not found",
                     "line 4: input path '../s.png' leaves", "bad.png: not an image"):
        assert expected in joined
    assert report.sizes == {"4x4": 3} and report.modes == {"RGB": 3}  # s, a, b
    assert "problems: 5" in report.lines()


def test_check_of_a_missing_file_is_one_problem(tmp_path):
    report = check_dataset(tmp_path)
    assert len(report.problems) == 1 and "Metadata.csv: not found" in report.problems[0]
    assert "problems: 1" in report.lines()

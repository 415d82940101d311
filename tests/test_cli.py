import pandas as pd

from skmm.cli import main


def test_list_names_every_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "image encoders:" in out and "cnn" in out and "torchvision" in out
    assert "text encoders:" in out and "gru" in out
    assert "fusions:" in out and "gated" in out


def test_make_shapes_writes_csv_and_images(tmp_path, capsys):
    assert main(["make-shapes", "--out", str(tmp_path), "--n-samples", "12"]) == 0
    df = pd.read_csv(tmp_path / "shapes.csv")
    assert len(df) == 12 and set(df.columns) == {"image_path", "caption", "label"}
    assert all((tmp_path / "images").joinpath(p.split("/")[-1]).exists() for p in df["image_path"])

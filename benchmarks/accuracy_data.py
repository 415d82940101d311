"""Data sets and shifted test sets of the accuracy suite (benchmarks/accuracy.py).

Each data set is a DataFrame with ``image_path``, ``text``, ``label`` and ``split``
columns.  ``clipart`` is built by ``/work/shared/data/clipart/build.py`` (Open Clip
Art, Debian), ``tabler`` and ``mdi`` by ``benchmarks/data/<name>/build.py`` (npm
icon packages), ``shapes`` by :func:`skmm.datasets.make_shapes`.

Shifted test sets change one modality of the test rows only:

- ``image``: the pictures greyscaled, colour-inverted and blurred (Gaussian,
  radius 1.5 px at 64 px), written once as PNGs next to the data;
- ``text``: each text truncated to its first word.
"""

import os
import subprocess
import sys

import pandas as pd
from PIL import Image, ImageFilter, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
# the clipart builder lives next to the checkout (as for benchmarks/clipart.py); SKMM_CLIPART_BUILD overrides
CLIPART_BUILD = os.environ.get("SKMM_CLIPART_BUILD") or next(
    (p for p in (os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data", "clipart", "build.py"),
                 "/work/shared/data/clipart/build.py") if os.path.exists(p)), "build.py")
BUILDERS = {
    "clipart": (CLIPART_BUILD, "clipart.csv"),
    "tabler": (os.path.join(HERE, "data", "tabler", "build.py"), "tabler.csv"),
    "mdi": (os.path.join(HERE, "data", "mdi", "build.py"), "mdi.csv"),
}
DATASETS = ["clipart", "tabler", "mdi", "shapes"]


def load(name, root):
    """(train, test) DataFrames of data set ``name``, built under ``root/name`` when missing."""
    if name == "shapes":
        from skmm.datasets import make_shapes

        df = make_shapes(800, random_state=0, directory=os.path.join(root, "shapes"), image_size=32)
        df = df.rename(columns={"caption": "text"})
        df["split"] = ["test" if i % 4 == 0 else "train" for i in range(len(df))]
    else:
        script, csv = BUILDERS[name]
        path = os.path.join(root, name, csv)
        if not os.path.exists(path):
            subprocess.run([sys.executable, script, "--out", os.path.join(root, name)], check=True)
        df = pd.read_csv(path, keep_default_na=False)
    df["text"] = df["text"].astype(str)
    keep = ["image_path", "text", "label"]
    return (df[df["split"] == "train"][keep].reset_index(drop=True),
            df[df["split"] == "test"][keep].reset_index(drop=True))


def shift_images(test, directory, size=64):
    """``test`` with each picture greyscaled, inverted and blurred (files written once under ``directory``)."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i, path in enumerate(test["image_path"]):
        out = os.path.join(directory, f"{i}.png")
        if not os.path.exists(out):
            try:
                with Image.open(path) as im:
                    im.draft("RGB", (size * 4, size * 4))
                    im = im.convert("RGBA")
                    canvas = Image.new("RGBA", im.size, "white")
                    canvas.alpha_composite(im)
                    im = canvas.convert("L")
                    im.thumbnail((size * 4, size * 4))
                    im = ImageOps.invert(im).filter(ImageFilter.GaussianBlur(1.5 * im.width / size))
                    im.save(out)
            except Exception:  # noqa: BLE001 - an unreadable source stays unreadable (a missing image)
                out = ""
        paths.append(out)
    return test.assign(image_path=paths)


def shift_texts(test):
    """``test`` with each text truncated to its first word."""
    return test.assign(text=test["text"].str.split().str[0].fillna(""))

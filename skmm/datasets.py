"""Small image+text data sets made on the spot, for demos and tests.

Nothing here downloads: :func:`make_shapes` draws its images with Pillow and
writes its captions from templates, deterministically under ``random_state``.
"""

import os
import tempfile

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from sklearn.utils import check_random_state

__all__ = ["BRANDS", "COLOURS", "SHAPES", "make_shapes", "make_wide_shapes"]

#: Shapes drawn in the images, in the order the label grid uses them.
SHAPES = ("circle", "square", "triangle")

#: Colour words used in the captions, in the order the label grid uses them.
COLOURS = ("red", "blue", "green")

# n_classes -> (number of shapes, number of colours). 2 is an XOR over the
# 2 x 2 grid; the others label each (colour, shape) cell on its own.
_GRIDS = {2: (2, 2), 4: (2, 2), 6: (3, 2), 9: (3, 3)}

# Caption templates: varied wording around the one colour word, so a text
# model has to find it rather than read a single token. None of the filler
# words is a colour or a shape.
_TEMPLATES = (
    "a {colour} thing on the table",
    "a {adjective} {colour} object next to the window",
    "photo of something {colour}, taken {when}",
    "the item is {colour} and looks {adjective}",
    "someone left a {adjective} {colour} toy here {when}",
    "{colour}, {adjective}, found in the kitchen",
    "my {colour} one from the market",
    "this {adjective} piece is painted {colour}",
)
_ADJECTIVES = ("small", "worn", "shiny", "plastic", "wooden", "tiny", "heavy", "new")
_WHEN = ("yesterday", "this morning", "last week", "at night", "today")

# Pairs (shape index, colour index) labelled "yes" when n_classes=2: the
# diagonal of the 2 x 2 grid, so each shape and each colour is "yes" exactly
# half of the time.
_XOR_YES = {(0, 0), (1, 1)}


def make_shapes(
    n_samples=200,
    *,
    random_state=None,
    directory=None,
    image_size=32,
    n_classes=4,
):
    """Make a small image+text classification set whose label needs both.

    Each row has a PNG image showing one shape (drawn in a random dark grey,
    with small jitter in position and size and a little pixel noise) and a
    caption naming a colour among varied filler words. The label combines
    the two, so that the image alone or the caption alone can only narrow it
    down to about half of the classes, while both together determine it.

    * ``n_classes=2``: 2 shapes x 2 colours; label ``"yes"`` for
      (circle, red) and (square, blue), else ``"no"`` (an XOR: either
      modality alone is at chance, 1/2).
    * ``n_classes=4``: 2 shapes x 2 colours; label ``"<colour>-<shape>"``
      such as ``"red-circle"``. Either modality alone reaches 1/2.
    * ``n_classes=6``: 3 shapes x 2 colours. Image alone 1/2, caption
      alone 1/3.
    * ``n_classes=9``: 3 shapes x 3 colours. Either modality alone 1/3.

    With both modalities the label is determined (accuracy 1).

    Parameters
    ----------
    n_samples : int, default=200
        Number of rows; at least the number of (shape, colour) cells. Cells,
        and therefore classes, are balanced to within one row.
    random_state : int, RandomState instance or None, default=None
        Seeds everything drawn. The same ``random_state`` and ``directory``
        give identical files and an identical frame.
    directory : str or os.PathLike, optional
        Where to write the PNG files (created if needed; existing files with
        the same names are overwritten). By default a new temporary directory
        ``tempfile.mkdtemp(prefix="skmm-shapes-")``, which the caller may
        delete when done.
    image_size : int, default=32
        Side of the square images, at least 16.
    n_classes : {2, 4, 6, 9}, default=4
        Number of classes, see the table above.

    Returns
    -------
    pandas.DataFrame
        Columns ``image_path`` (absolute paths of the PNG files), ``caption``
        and ``label`` (all str), one row per sample.

    Raises
    ------
    ValueError
        ``n_classes`` is not one of 2, 4, 6, 9, or ``n_samples`` or
        ``image_size`` is too small.

    Examples
    --------
    >>> from skmm.datasets import make_shapes
    >>> df = make_shapes(8, random_state=0)
    >>> list(df.columns)
    ['image_path', 'caption', 'label']
    >>> sorted(df["label"].unique())
    ['blue-circle', 'blue-square', 'red-circle', 'red-square']
    """
    if n_classes not in _GRIDS:
        raise ValueError(
            f"n_classes must be one of {sorted(_GRIDS)}, got {n_classes!r}."
        )
    n_shapes, n_colours = _GRIDS[n_classes]
    n_cells = n_shapes * n_colours
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or (
        n_samples < n_cells
    ):
        raise ValueError(
            f"n_samples must be an integer >= {n_cells} for n_classes={n_classes}, "
            f"got {n_samples!r}."
        )
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or (
        image_size < 16
    ):
        raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}.")

    rng = check_random_state(random_state)
    if directory is None:
        directory = tempfile.mkdtemp(prefix="skmm-shapes-")
    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(directory, exist_ok=True)

    # Every cell the same number of times (up to one), in random order.
    cells = rng.permutation(np.arange(n_samples) % n_cells)
    shape_ids, colour_ids = np.divmod(cells, n_colours)

    paths, captions, labels = [], [], []
    for i, (shape_id, colour_id) in enumerate(zip(shape_ids, colour_ids)):
        shape, colour = SHAPES[shape_id], COLOURS[colour_id]
        path = os.path.join(directory, f"shape_{i:05d}.png")
        _draw_shape(shape, image_size, rng).save(path)
        paths.append(path)
        captions.append(_caption(colour, rng))
        if n_classes == 2:
            labels.append("yes" if (shape_id, colour_id) in _XOR_YES else "no")
        else:
            labels.append(f"{colour}-{shape}")

    return pd.DataFrame({"image_path": paths, "caption": captions, "label": labels})


#: Brands of :func:`make_wide_shapes`; the first two count as "on".
BRANDS = ("acme", "bolt", "core", "dyna")


def make_wide_shapes(n_samples=200, *, random_state=None, directory=None, image_size=32):
    """Make a wide table whose label needs two pictures, a text, a number and a category.

    Each row has five binary facts: the shape in the ``front`` picture and in
    the ``back`` picture (circle or square), the colour named in the
    ``title`` (red or blue), whether ``price`` is over 50, and whether
    ``brand`` is one of the first two :data:`BRANDS`.  The label is how many
    of them are "on" (circle, circle, red, over 50, first two brands), as a
    string "0" to "5": a model that drops any kind of column cannot know it,
    a model that reads them all can.

    Parameters
    ----------
    n_samples : int, default=200
        Number of rows (at least 2).
    random_state : int, RandomState instance or None, default=None
        Seeds everything drawn.
    directory : str or os.PathLike, optional
        Where to write the PNG files; a new temporary directory by default.
    image_size : int, default=32
        Side of the square images, at least 16.

    Returns
    -------
    pandas.DataFrame
        Columns ``front``, ``back`` (absolute paths), ``title`` (str),
        ``price`` (float), ``brand`` (str) and ``label`` (str).

    Examples
    --------
    >>> from skmm.datasets import make_wide_shapes
    >>> df = make_wide_shapes(8, random_state=0)
    >>> list(df.columns)
    ['front', 'back', 'title', 'price', 'brand', 'label']
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}.")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 16:
        raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}.")
    rng = check_random_state(random_state)
    if directory is None:
        directory = tempfile.mkdtemp(prefix="skmm-wide-shapes-")
    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(directory, exist_ok=True)
    bits = rng.randint(0, 2, size=(n_samples, 5))
    rows = []
    for i, (front, back, red, dear, known) in enumerate(bits):
        paths = []
        for side, on in (("front", front), ("back", back)):
            path = os.path.join(directory, f"{side}_{i:05d}.png")
            _draw_shape(SHAPES[0] if on else SHAPES[1], image_size, rng).save(path)
            paths.append(path)
        price = rng.uniform(55, 100) if dear else rng.uniform(0, 45)
        brand = BRANDS[rng.randint(2) + (0 if known else 2)]
        title = _caption(COLOURS[0] if red else COLOURS[1], rng)
        rows.append((*paths, title, round(float(price), 2), brand, str(int(front + back + red + dear + known))))
    return pd.DataFrame(rows, columns=["front", "back", "title", "price", "brand", "label"])


def _caption(colour, rng):
    template = _TEMPLATES[rng.randint(len(_TEMPLATES))]
    return template.format(
        colour=colour,
        adjective=_ADJECTIVES[rng.randint(len(_ADJECTIVES))],
        when=_WHEN[rng.randint(len(_WHEN))],
    )


def _draw_shape(shape, size, rng):
    """A light background with one dark grey shape, jittered, plus noise."""
    background = int(rng.randint(200, 256))
    ink = int(rng.randint(20, 110))
    img = Image.new("L", (size, size), background)
    draw = ImageDraw.Draw(img)

    # Half-width between 25% and 38% of the image, centre within +-12%, so
    # the shape always stays inside the frame.
    half = size * rng.uniform(0.25, 0.38)
    cx = size / 2 + size * rng.uniform(-0.12, 0.12)
    cy = size / 2 + size * rng.uniform(-0.12, 0.12)
    box = (cx - half, cy - half, cx + half, cy + half)
    if shape == "circle":
        draw.ellipse(box, fill=ink)
    elif shape == "square":
        draw.rectangle(box, fill=ink)
    else:
        corners = [(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
        draw.polygon(corners, fill=ink)

    pixels = np.asarray(img, dtype=np.float64)
    pixels = pixels + rng.normal(0.0, 6.0, size=pixels.shape)
    grey = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    # Same grey in all three channels: the colour lives in the caption only.
    return Image.fromarray(np.stack([grey] * 3, axis=-1))

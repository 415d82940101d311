"""What the icon-set builders share: fetch an npm package, render SVGs, split by text groups.

The builders (``tabler/build.py``, ``mdi/build.py``) turn an npm icon package into an
image+text classification set: one row per icon, its picture rendered from the SVG
to a PNG, its text made of the icon's name and its tags/aliases, its label the
category the package's authors gave it.  Everything is pinned (package version,
render size, split seed), so a build is reproducible.

The split keeps near-duplicate texts on one side: rows are grouped by their
normalised name (lower case, style words such as "outline", "filled", "off",
"variant" and digits removed, so ``account-network`` and ``account-network-outline``
form one group), and scikit-learn's ``StratifiedGroupKFold(4, shuffle=True,
random_state=0)`` gives its first fold as the test rows (about 25%, classes
balanced between the two sides, no group on both).
"""
import csv
import os
import re
import subprocess
import sys
import tarfile
from collections import Counter, defaultdict

STYLE_WORDS = {"outline", "outlined", "filled", "fill", "off", "variant", "alt", "box", "circle", "square"}


def fetch_npm(package, version, workdir):
    """``npm pack package@version`` into ``workdir`` (once), extracted; the extracted package folder."""
    folder = os.path.join(workdir, f"{package.replace('@', '').replace('/', '-')}-{version}")
    if not os.path.isdir(os.path.join(folder, "package")):
        os.makedirs(folder, exist_ok=True)
        out = subprocess.run(["npm", "pack", f"{package}@{version}", "--pack-destination", folder],
                             capture_output=True, text=True, check=True)
        tgz = os.path.join(folder, out.stdout.strip().splitlines()[-1])
        with tarfile.open(tgz) as tar:
            tar.extractall(folder, filter="data")
    return os.path.join(folder, "package")


def words(name):
    """'account-network-outline' -> ['account', 'network', 'outline']."""
    return [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]


def group_key(name):
    """The near-duplicate group of an icon name: its words without style words and digits."""
    kept = [w for w in words(name) if w not in STYLE_WORDS and not w.isdigit()]
    return " ".join(kept) or name


def without_label_words(tokens, label):
    """Text tokens minus the words of the label (so the text does not spell the class out)."""
    banned = set(words(label)) | {w.rstrip("s") for w in words(label)}
    return [t for t in tokens if t not in banned and t.rstrip("s") not in banned]


def select(rows, min_count, cap, seed=0):
    """Keep classes with at least ``min_count`` rows, at most ``cap`` rows each (a seeded choice)."""
    import random

    by_label = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    rng = random.Random(seed)
    kept = []
    for label in sorted(by_label):
        members = sorted(by_label[label], key=lambda r: r["id"])
        if len(members) < min_count:
            continue
        if len(members) > cap:
            members = rng.sample(members, cap)
        kept.extend(members)
    return sorted(kept, key=lambda r: r["id"])


def render(rows, out_dir, size):
    """Render each row's SVG to ``out_dir/<id>.png`` (``size`` px, white background) with rsvg-convert."""
    os.makedirs(out_dir, exist_ok=True)
    for i, row in enumerate(rows):
        png = os.path.join(out_dir, f"{row['id']}.png")
        if not os.path.exists(png):
            subprocess.run(["rsvg-convert", "-w", str(size), "-h", str(size), "-b", "white", "-o", png,
                            row["svg"]], check=True)
        row["image_path"] = os.path.abspath(png)
        if (i + 1) % 500 == 0:
            print(f"rendered {i + 1}/{len(rows)}", file=sys.stderr, flush=True)


def split(rows, seed=0):
    """Mark each row train or test: StratifiedGroupKFold over near-duplicate groups, first fold = test."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = [group_key(r["name"]) for r in rows]
    labels = [r["label"] for r in rows]
    folds = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=seed)
    _, test = next(folds.split(rows, labels, groups))
    test = set(test.tolist())
    for i, row in enumerate(rows):
        row["split"] = "test" if i in test else "train"
        row["group"] = groups[i]


def write(rows, path, provenance):
    """Write the CSV (id, image_path, text, label, group, split) and print a summary."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "image_path", "text", "label", "group", "split"],
                           extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    counts = Counter(r["split"] for r in rows)
    print(f"{path}: {len(rows)} rows ({counts['train']} train / {counts['test']} test), "
          f"{len({r['label'] for r in rows})} labels; {provenance}", file=sys.stderr)

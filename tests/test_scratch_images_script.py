"""benchmarks/scratch_images.py: its silhouette and k-means features and its reading of a network's image head.

The benchmark (BENCHMARKS.md, accuracy-scratch) is run by hand on the suite's data sets;
here its three pieces of arithmetic run on tiny local data.
"""

import numpy as np

from helpers import load_benchmark
from skmm import FusionClassifier, ImageEncoder
from skmm.datasets import make_shapes


def _script():
    return load_benchmark("scratch_images")


def test_silhouettes_do_not_change_when_a_picture_is_greyscaled_or_inverted():
    rng = np.random.default_rng(0)
    pictures = np.ones((3, 3, 8, 8))  # white backgrounds
    pictures[:, :, 2:6, 2:6] = rng.uniform(0, 0.8, size=(3, 3, 4, 4))  # coloured shapes in the middle
    grey = np.repeat((0.299 * pictures[:, :1] + 0.587 * pictures[:, 1:2] + 0.114 * pictures[:, 2:]), 3, axis=1)
    inverted = 1.0 - pictures
    silhouettes = _script().silhouettes
    plain = silhouettes(pictures.reshape(3, -1), 8)
    assert plain.shape == (3, 64)
    np.testing.assert_allclose(silhouettes(grey.reshape(3, -1), 8), plain, atol=1e-12)
    np.testing.assert_allclose(silhouettes(inverted.reshape(3, -1), 8), plain, atol=1e-12)
    assert plain[:, 0].max() == 0 and np.allclose(plain.max(axis=1), 1)  # background 0, each scaled to 1
    # and it still tells pictures apart
    assert not np.allclose(plain[0], plain[1])


def test_image_head_probabilities_are_the_image_branchs_alone(tmp_path):
    df = make_shapes(60, random_state=0, directory=str(tmp_path), image_size=16)
    X, y = df[["image_path", "caption"]], df["label"]
    clf = FusionClassifier(image=ImageEncoder("cnn", image_size=16, augment="none"), text="tfidf", stacking=None,
                           blend=None, max_epochs=3, random_state=0).fit(X, y)
    head = _script().image_head_proba
    proba = head(clf, clf.model_inputs(X))
    assert proba.shape == (len(X), len(clf.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # the texts play no part: replacing them leaves the image head's output unchanged
    other = X.assign(caption=["something else entirely"] * len(X))
    np.testing.assert_allclose(head(clf, clf.model_inputs(other)), proba, atol=1e-6)
    # but the pictures do
    shuffled = X.assign(image_path=X["image_path"].to_numpy()[::-1])
    assert not np.allclose(head(clf, clf.model_inputs(shuffled)), proba, atol=1e-4)


def test_kmeans_features_are_learned_from_pictures_alone_and_ignore_brightness():
    rng = np.random.default_rng(0)
    size, k = 10, 8
    pictures = rng.uniform(0.1, 0.8, size=(140, 3 * size * size)).astype(np.float32)
    features = _script().kmeans_features(pictures[:40], size, k=k, samples=2_000)
    out = features(pictures)
    assert out.shape == (140, 4 * k)  # k activations summed over each of the four quadrants
    assert (out >= 0).all() and out.sum(axis=1).min() > 0
    # each picture's features are its own, whatever the batch of 128 it is computed in
    np.testing.assert_allclose(features(pictures[130:]), out[130:], rtol=1e-4, atol=1e-4)
    # each window is normalised: a brighter copy of a picture has the same features
    np.testing.assert_allclose(features(pictures[:5] + 0.15), out[:5], rtol=1e-3, atol=1e-3)
    # the same training pictures and seed learn the same centroids; other pictures learn others
    np.testing.assert_allclose(_script().kmeans_features(pictures[:40], size, k=k, samples=2_000)(pictures[:5]), out[:5],
                               rtol=1e-5, atol=1e-5)
    other = _script().kmeans_features(pictures[40:80], size, k=k, samples=2_000)(pictures[:5])
    assert not np.allclose(other, out[:5], atol=1e-3)

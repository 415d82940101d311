"""Tests for the built-in text backbones: skmm.backbones.vectorizers and skmm.backbones.sequence."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skmm.backbones import TextBackbone
from skmm.registry import text_backbones

SPARSE = ["tfidf", "hashing"]
TOKEN = ["embedding-bag", "gru", "lstm"]
ALL = SPARSE + TOKEN

TEXTS = [
    "a red car on the road",
    "the blue boat sails",
    "red apples and green pears",
    "a small blue car",
    "green grass, red roses",
    "boats and cars",
]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def make(name, **kwargs):
    kwargs.setdefault("random_state", 0)
    if name in TOKEN:
        kwargs.setdefault("dim", 8)
        kwargs.setdefault("max_length", 6)
    if name == "hashing":
        kwargs.setdefault("n_features", 64)
    return text_backbones.get(name)(None, **kwargs)


def features(backbone, texts):
    prepared = backbone.prepare(texts)
    if backbone.module is None:
        return torch.as_tensor(prepared)
    with torch.no_grad():
        return backbone.module(torch.as_tensor(prepared))


@pytest.mark.parametrize("name", ALL)
def test_fit_prepare_shapes_and_dtypes(name):
    bb = make(name)
    assert isinstance(bb, TextBackbone)
    assert bb.fit(TEXTS) is bb
    prepared = bb.prepare(TEXTS[:3])
    if name in SPARSE:
        assert prepared.dtype == np.float32 and prepared.shape == (3, bb.out_dim)
        assert bb.module is None and bb.trainable is False
    else:
        assert prepared.dtype == np.int64 and prepared.shape == (3, 6)
        assert isinstance(bb.module, torch.nn.Module) and bb.trainable is True
        assert bb.out_dim == 8
    out = features(bb, TEXTS[:3])
    assert out.dtype == torch.float32 and out.shape == (3, bb.out_dim)
    assert torch.isfinite(out).all()


def test_sparse_out_dims():
    tfidf = make("tfidf").fit(TEXTS)
    assert tfidf.out_dim == len(tfidf.vectorizer.vocabulary_)
    assert make("hashing").fit(TEXTS).out_dim == 64
    assert text_backbones.get("hashing")(None).fit(TEXTS).out_dim == 2**12


@pytest.mark.parametrize("name", ALL)
def test_empty_strings_give_zero_features(name):
    bb = make(name).fit(TEXTS)
    out = features(bb, ["", "red car", "   "])
    assert torch.all(out[0] == 0) and torch.all(out[2] == 0)
    assert torch.any(out[1] != 0)
    if name in TOKEN:
        assert not bb.prepare(["", "!!!"]).any()


@pytest.mark.parametrize("name", ALL)
def test_all_empty_training_texts_are_a_clear_error(name):
    with pytest.raises(ValueError, match=repr(name)):
        make(name).fit(["", " ", ""])


@pytest.mark.parametrize("name", ALL)
def test_deterministic_under_random_state(name):
    kwargs = {"n_components": 3} if name in SPARSE else {}
    a = features(make(name, **kwargs).fit(TEXTS), TEXTS)
    b = features(make(name, **kwargs).fit(TEXTS), TEXTS)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", TOKEN)
def test_random_state_changes_weights_and_global_rng_is_untouched(name):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = make(name, random_state=0).fit(TEXTS)
    assert torch.equal(torch.rand(3), expected)
    b = make(name, random_state=1).fit(TEXTS)
    assert not torch.equal(features(a, TEXTS), features(b, TEXTS))


@pytest.mark.parametrize("name", TOKEN)
def test_truncation_padding_and_unknown_words(name):
    bb = make(name, max_length=4).fit(["alpha beta gamma delta epsilon"])
    ids = bb.prepare(["Alpha BETA zeta", "alpha beta gamma delta epsilon zeta"])
    vocab = bb.vocabulary_
    assert ids.shape == (2, 4)
    assert ids[0].tolist() == [vocab["alpha"], vocab["beta"], 1, 0]
    assert ids[1].tolist() == [vocab[w] for w in ["alpha", "beta", "gamma", "delta"]]
    assert min(vocab.values()) == 2


def test_vocabulary_order_is_by_frequency_then_alphabetical():
    bb = make("embedding-bag", min_freq=1, max_vocab=3).fit(["b a c", "c b", "c d"])
    assert bb.vocabulary_ == {"c": 2, "b": 3, "a": 4}
    bb = make("embedding-bag", min_freq=2).fit(["b a c", "c b", "c d"])
    assert bb.vocabulary_ == {"c": 2, "b": 3}


@pytest.mark.parametrize("name", ALL)
def test_fingerprint_stable_and_sensitive(name):
    fp = make(name).fit(TEXTS).fingerprint()
    assert isinstance(fp, str) and fp == make(name).fit(TEXTS).fingerprint()
    # other fitted vocabulary / state
    if name != "hashing":  # hashing learns nothing without SVD
        assert make(name).fit(TEXTS[:3]).fingerprint() != fp
    # other parameters
    other = {"tfidf": {"sublinear_tf": False}, "hashing": {"n_features": 32}}.get(name, {"dim": 10})
    assert make(name, **other).fit(TEXTS).fingerprint() != fp


def test_fingerprint_follows_svd_and_training():
    fp = make("hashing", n_components=2).fit(TEXTS).fingerprint()
    assert fp != make("hashing", n_components=2).fit(TEXTS[:4]).fingerprint()
    assert fp != make("hashing", n_components=3).fit(TEXTS).fingerprint()
    bb = make("gru").fit(TEXTS)
    before = bb.fingerprint()
    with torch.no_grad():
        bb.module.embedding.weight[2] += 1
    assert bb.fingerprint() != before


@pytest.mark.parametrize("name", ALL)
def test_unfitted_backbone_raises(name):
    bb = make(name)
    with pytest.raises(NotFittedError):
        bb.prepare(["x"])
    with pytest.raises(NotFittedError):
        bb.fingerprint()


@pytest.mark.parametrize("name", SPARSE)
def test_svd_path(name):
    bb = make(name, n_components=3).fit(TEXTS)
    out = bb.prepare(TEXTS)
    assert bb.out_dim == 3 and out.shape == (6, 3) and out.dtype == np.float32


@pytest.mark.parametrize("name", SPARSE)
def test_svd_components_are_capped_with_a_warning(name):
    with pytest.warns(UserWarning, match="n_components=50 is too large"):
        bb = make(name, n_components=50).fit(TEXTS)
    assert bb.out_dim == len(TEXTS) - 1
    assert bb.prepare(TEXTS).shape == (6, 5)


def test_tfidf_char_ngrams_via_backbone_kwargs():
    bb = make("tfidf", analyzer="char_wb", ngram_range=(2, 3)).fit(["red", "rod"])
    assert {" r", "re", "red", "ro"} <= set(bb.vectorizer.vocabulary_)
    # "rad" shares " r" and "d " with the vocabulary, so it is not a zero vector
    assert bb.prepare(["rad"]).any()
    assert bb.vectorizer.sublinear_tf is True


def test_tfidf_min_df_and_max_features():
    bb = make("tfidf", min_df=2).fit(TEXTS)
    assert "red" in bb.vectorizer.vocabulary_ and "apples" not in bb.vectorizer.vocabulary_
    assert make("tfidf", max_features=3).fit(TEXTS).out_dim == 3


@pytest.mark.parametrize(
    "name, bad",
    [("tfidf", "dim_x"), ("hashing", "vocabulary"), ("embedding-bag", "bidirectional"), ("gru", "hidden"), ("lstm", "n_features")],
)
def test_unknown_backbone_kwarg_is_a_type_error(name, bad):
    with pytest.raises(TypeError, match=f"unexpected backbone_kwargs '{bad}'"):
        text_backbones.get(name)(None, **{bad: 1})


@pytest.mark.parametrize("name", ALL)
def test_spec_is_rejected(name):
    with pytest.raises(ValueError, match="takes no spec"):
        text_backbones.get(f"{name}:something")("something")


@pytest.mark.parametrize(
    "kwargs", [{"dim": 0}, {"max_length": -1}, {"dim": 7}, {"num_layers": 0}, {"bidirectional": "yes"}]
)
def test_bad_token_params_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        make("gru", **kwargs)


def test_odd_dim_is_fine_one_way():
    bb = make("lstm", dim=7, bidirectional=False).fit(TEXTS)
    assert features(bb, TEXTS).shape == (6, 7)


def test_n_components_is_validated_for_sparse():
    with pytest.raises(ValueError, match="n_components"):
        make("tfidf", n_components=0)


def test_texts_must_be_strings():
    bb = make("tfidf")
    with pytest.raises(TypeError, match="single str"):
        bb.fit("one text")
    with pytest.raises(TypeError, match="item 1 is a NoneType"):
        bb.fit(["ok", None])


@pytest.mark.parametrize("name", TOKEN)
def test_gradient_reaches_the_embedding(name):
    bb = make(name).fit(TEXTS)
    out = bb.module(torch.as_tensor(bb.prepare(TEXTS + [""])))
    out.pow(2).sum().backward()
    grad = bb.module.embedding.weight.grad
    assert grad is not None and grad[2:].abs().sum() > 0
    assert torch.all(grad[0] == 0)  # padding row stays fixed


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_recurrent_stacks_and_one_direction(name):
    bb = make(name, num_layers=2, bidirectional=False).fit(TEXTS)
    assert features(bb, TEXTS).shape == (6, 8)
    assert bb.module.rnn.num_layers == 2 and not bb.module.rnn.bidirectional


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_recurrent_output_ignores_padding_and_batch(name):
    bb = make(name, max_length=10).fit(TEXTS)
    alone = features(bb, ["red car"])
    batched = features(bb, ["red car", "a small blue car on the road today"])
    torch.testing.assert_close(alone[0], batched[0], rtol=1e-5, atol=1e-6)
    assert features(bb, []).shape == (0, 8)


def test_gru_learns_whether_red_appears():
    rng = np.random.RandomState(0)
    words = ["blue", "green", "car", "boat", "big", "small", "old", "new", "fast", "slow"]
    texts, labels = [], []
    for i in range(60):
        sentence = list(rng.choice(words, size=rng.randint(2, 6)))
        if i % 2:
            sentence.insert(rng.randint(len(sentence) + 1), "red")
        texts.append(" ".join(sentence))
        labels.append(i % 2)
    bb = text_backbones.get("gru")(None, max_length=8, dim=16, random_state=0).fit(texts)
    head = torch.nn.Linear(bb.out_dim, 2)
    model = torch.nn.Sequential(bb.module, head)
    x, y = torch.as_tensor(bb.prepare(texts)), torch.as_tensor(labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(100):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.9


@pytest.mark.parametrize("name", ALL)
def test_backbones_pickle(name):
    import pickle

    bb = make(name).fit(TEXTS)
    clone = pickle.loads(pickle.dumps(bb))
    assert clone.fingerprint() == bb.fingerprint()
    torch.testing.assert_close(features(clone, TEXTS), features(bb, TEXTS))

"""Tiny pretrained-format models for offline tests, examples and benchmarks.

Each builder makes a model with random weights (seeded, a few thousand
parameters by default) and saves it to a directory exactly as its library saves a
real checkpoint, so that the directory loads through the same code path as
downloaded weights: ``TextEncoder("hf:<dir>")``, ``ImageEncoder("clip:<dir>")``,
``TextEncoder("st:<dir>")``.  Nothing is downloaded.  The features mean nothing;
the shapes, the preprocessing and the loading are real.

They need the library of the format (transformers; sentence-transformers for
:func:`save_tiny_sentence_transformer`).

Examples
--------
>>> import tempfile
>>> from skmm import TextEncoder
>>> from skmm.testing import save_tiny_bert
>>> path = save_tiny_bert(tempfile.mkdtemp())
>>> TextEncoder(f"hf:{path}", max_length=8).fit_transform(["the red shirt"]).shape
(1, 32)
"""

import string
import tempfile
from pathlib import Path

from .backbones.optional import import_optional
from .utils.seeding import seeded

__all__ = [
    "WORDS",
    "save_tiny_bert",
    "save_tiny_clip",
    "save_tiny_convnext",
    "save_tiny_sentence_transformer",
    "save_tiny_vit",
]

#: The default vocabulary of :func:`save_tiny_bert` (besides BERT's special tokens).
WORDS = tuple("the a cat dog red blue shirt shoe big small photo of".split())

_BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _transformers():
    return import_optional("transformers", "hf")


def _directory(directory):
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_tiny_bert(directory, *, words=WORDS, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=64, random_state=0):
    """Save a tiny BERT and its WordPiece tokenizer (whole words only) to ``directory``.

    Parameters
    ----------
    directory : str or path
        Created if missing.
    words : sequence of str
        The vocabulary, after BERT's special tokens; other words are ``[UNK]``.
    hidden_size, num_hidden_layers, num_attention_heads, intermediate_size : int
        The :class:`transformers.BertConfig` sizes.
    random_state : int
        Seeds the weights (torch's global RNG is left alone).

    Returns
    -------
    str
        ``directory``, for ``"hf:<directory>"``.
    """
    transformers = _transformers()
    path = _directory(directory)
    vocab = [*_BERT_SPECIALS, *words]
    (path / "vocab.txt").write_text("\n".join(vocab))
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=hidden_size,
                                     num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                                     intermediate_size=intermediate_size)
    with seeded(random_state):
        model = transformers.BertModel(config)
    model.save_pretrained(path)
    transformers.BertTokenizer(vocab=str(path / "vocab.txt")).save_pretrained(path)
    return str(path)


def save_tiny_vit(directory, *, image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=64, image_mean=None, image_std=None, num_labels=None,
                  random_state=0):
    """Save a tiny ViT (with its image processor when ``image_mean``/``image_std`` are given).

    ``num_labels`` saves an image classifier (``ViTForImageClassification``) instead
    of the bare model: a checkpoint without pooler weights.  Returns ``directory``.
    """
    transformers = _transformers()
    path = _directory(directory)
    config = dict(image_size=image_size, patch_size=patch_size, hidden_size=hidden_size,
                  num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                  intermediate_size=intermediate_size)
    with seeded(random_state):
        if num_labels is None:
            model = transformers.ViTModel(transformers.ViTConfig(**config))
        else:
            model = transformers.ViTForImageClassification(transformers.ViTConfig(**config, num_labels=num_labels))
    model.save_pretrained(path)
    if image_mean is not None or image_std is not None:
        transformers.ViTImageProcessor(size={"height": image_size, "width": image_size}, image_mean=image_mean,
                                       image_std=image_std).save_pretrained(path)
    return str(path)


def save_tiny_convnext(directory, *, hidden_sizes=(8, 16), depths=(1, 1), image_size=32, random_state=0):
    """Save a tiny ConvNeXt (no image processor: ImageNet statistics apply).  Returns ``directory``."""
    transformers = _transformers()
    path = _directory(directory)
    config = transformers.ConvNextConfig(hidden_sizes=list(hidden_sizes), depths=list(depths),
                                         num_stages=len(hidden_sizes), image_size=image_size)
    with seeded(random_state):
        model = transformers.ConvNextModel(config)
    model.save_pretrained(path)
    return str(path)


def save_tiny_clip(directory, *, image_size=32, projection_dim=24, hidden_size=32, context_length=16,
                   random_state=0):
    """Save a tiny CLIP, its tokenizer and its image processor to ``directory``.

    The tokenizer is a byte-pair one over single letters and a few merges ("cat",
    "dog").  Both towers have ``hidden_size`` units, 2 layers and 2 heads; their
    projections map to ``projection_dim``.  Returns ``directory``.
    """
    transformers = _transformers()
    path = _directory(directory)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    merges = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tower = dict(hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=2,
                 num_attention_heads=2)
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=context_length, bos_token_id=0,
                         eos_token_id=1, pad_token_id=1, **tower),
        vision_config=dict(image_size=image_size, patch_size=8, **tower),
        projection_dim=projection_dim,
    )
    with seeded(random_state):
        model = transformers.CLIPModel(config)
    model.save_pretrained(path)
    transformers.CLIPTokenizer(vocab=vocab, merges=merges).save_pretrained(path)
    transformers.CLIPImageProcessor(size={"shortest_edge": image_size},
                                    crop_size={"height": image_size, "width": image_size}).save_pretrained(path)
    return str(path)


def save_tiny_sentence_transformer(directory, *, bert=None, max_seq_length=12, random_state=0):
    """Save a sentence-transformers model (BERT, mean pooling, normalisation) to ``directory``.

    ``bert`` is a :func:`save_tiny_bert` directory (by default a fresh one, seeded
    from ``random_state``); the saved model holds a copy of it.  Returns ``directory``.
    """
    st = import_optional("sentence_transformers", "st")
    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Normalize, Pooling, Transformer

    path = _directory(directory)
    with tempfile.TemporaryDirectory() as tmp:
        if bert is None:
            bert = save_tiny_bert(tmp, random_state=random_state)
        transformer = Transformer(str(bert), max_seq_length=max_seq_length)
        width = _transformers().AutoConfig.from_pretrained(bert).hidden_size
        model = st.SentenceTransformer(modules=[transformer, Pooling(width), Normalize()], device="cpu")
        model.save(str(path))
    return str(path)

"""Parameter descriptions shared by skmm's estimators, so each is written once.

:class:`~skmm.FusionClassifier` and :class:`~skmm.FusionRegressor` take the same
encoders, fusion and training parameters; their docstrings are assembled from
:data:`SHARED_PARAMETERS` (the parameters before the target-specific ones) and
:data:`TRAINING_PARAMETERS` (those after them), in signature order.
"""

__all__ = ["CLASSIFIER_BLEND", "CLASSIFIER_MODALITY_DROPOUT", "CLASSIFIER_UNIMODAL_LOSS", "SHARED_PARAMETERS", "TRAINING_PARAMETERS", "replace_entries"]

#: why the uni-modal auxiliary losses help: the tail of every estimator's ``unimodal_loss`` entry
_UNIMODAL_WHY = """        Jointly trained fusion nets tend to lean on the modality that fits the
        training rows fastest and leave the others under-trained; these losses
        make every branch learn the task on its own.  With ``fusion="late"``
        and a weight of a few units this approaches the classic late fusion of
        separately trained classifiers.  No effect on the single-modality
        ablations.
"""

#: image ... warmup_epochs, in numpydoc form (indented for a class docstring).
SHARED_PARAMETERS = """    image : ImageEncoder, str or None, default=None
        The image encoder; a string is a backbone name.  None means
        ``ImageEncoder("cnn")``, trained end to end.  Its ``augment`` ("auto")
        also applies here: a CNN trained from scratch sees cropped, flipped and
        photometrically changed pictures; a frozen encoder's head trains on a
        mix of plain pictures and photometric views of them, encoded once
        (:mod:`skmm.estimators.views`), so a picture recoloured or blurred at
        prediction time drags the prediction down less.
    text : TextEncoder, str or None, default=None
        The text encoder; None means ``TextEncoder("gru")``, trained end to end.
    image_col, text_col : str or None, default=None
        Name the image-path and text columns to read only those two (naming
        one leaves the other to detection), modalities named "image" and
        "text"; the other columns of X are ignored, and a UserWarning names
        them (except a column equal to ``y``).  Giving them with ``columns``
        is an error.
    columns : dict, "auto" or None, default=None
        The roles of the columns of X: column -> role, the roles being
        "image" (paths, or lists of paths), "text", "numeric" and
        "categorical"; only the columns named are read.  "auto", or None
        with ``image_col`` and ``text_col`` None, detects every column's
        role (:func:`skmm.io.roles.detect_roles`) and reads every usable
        column; identifiers and the column equal to ``y`` are left out, and
        a short-string column that is neither text nor category raises a
        ValueError naming it and ``columns=``.  Each column read is one
        modality of the network, named after the column, except that with
        None a table whose usable columns are one image and/or one text
        column keeps the modalities "image" and "text".  Columns of one kind
        share one encoder (``image``/``text``: one set of weights, one cache)
        unless ``encoders`` gives one its own.  Numeric columns are
        mean-imputed with a missing indicator and standardised; categorical
        ones get learned embeddings, a category unseen in fit the "unknown"
        one.  ``column_roles_`` says what each column was read as, or why it
        was left out.  A DataFrame of numbers only is one numeric block.
    encoders : dict or None, default=None
        Column -> its own ImageEncoder / TextEncoder (or a backbone name),
        instead of the shared ``image``/``text`` encoder (wide tables).
    image_root : str, path or None, default=None
        Directory relative image paths are resolved against, at fit and at
        predict (absolute paths are used as they are), so a data set and its
        CSV can move together; settable after loading with ``set_params``.
    picture_pooling : {"mean", "attention"}, default="mean"
        How an image column whose cells hold several
        pictures (a list of paths, or paths separated by ``";"`` in a CSV
        string) pools them.  Each picture is encoded on its own, and the
        row's pictures averaged, or weighed by a learned attention score; a
        cell with no readable picture is a missing modality for that row.
        Trainable image branches of such columns train without augmentation.
    fusion : str, default="concat"
        A name in :data:`skmm.registry.fusions`: "concat", "sum", "gated",
        "attention", "bilinear", "tensor", "film", "late", or the single-modality
        ablations "image" and "text".
    dim : int, default=128
        Width every modality is projected to before fusion.
    hidden_dim : int, default=128
        Hidden width of the head (0 for a linear head).
    dropout : float, default=0.1
        Dropout in the projections and the head.
    modality_dropout : float, default=0.0
        Probability of hiding a modality of a training row, so the model learns to
        cope without it.
    fusion_kwargs : dict or None, default=None
        Options of the fusion module.
    unimodal_loss : float, default=0.0
        Weight of uni-modal auxiliary losses.  When > 0, every modality the
        fusion uses also gets an output head of its own (``late`` fusion's
        per-modality heads; an extra linear head on the projected embedding,
        used in training only, for the other fusions), and the training loss
        becomes the fused loss plus ``unimodal_loss`` times the mean of the
        per-modality losses (cross-entropy for classes, binary cross-entropy
        for labels, the regression loss for a regressor; rows without that
        modality left out).
""" + _UNIMODAL_WHY + """    max_epochs : int, default=20
        Passes over the training rows (fewer with early stopping).
    batch_size : int, default=32
        Rows per training step.
    lr : float, default=1e-3
        Learning rate of AdamW, cosine-annealed over ``max_epochs``.
    weight_decay : float, default=1e-4
        AdamW's decoupled weight decay.
    backbone_lr : float or None, default=None
        Learning rate of trainable encoders (None: ``lr``).
    grad_clip : float or None, default=None
        Clip the gradient norm to this value.
    warmup_epochs : int, default=0
        Epochs of linear learning-rate warm-up before the cosine decay (useful
        when fine-tuning pretrained backbones).
"""

#: validation_fraction ... verbose.
TRAINING_PARAMETERS = """    validation_fraction : float or None, default=None
        Hold out this fraction (stratified by class for one label per row) and stop early when its loss has not
        improved for ``n_iter_no_change`` epochs, keeping the best epoch's weights.
    n_iter_no_change : int, default=5
        Epochs without improvement on the held-out rows before training stops
        (with ``validation_fraction``).
    early_stopping_scoring : str or None, default=None
        With ``validation_fraction``: stop on this scikit-learn scorer of the
        held-out rows (e.g. ``"f1_macro"``, higher is better) instead of their loss.
    callbacks : list or None, default=None
        Extra skorch callbacks.
    device : str, default="auto"
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:<n>".  Encoders whose
        own ``device`` is "auto" run here too.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of the net's forward pass, in training and prediction:
        "auto" is bf16 autocast on CUDA and float32 elsewhere; "bfloat16" uses
        bf16 autocast on the CPU too (on CPUs with AMX or AVX512-BF16, trainable
        convolutional branches train about twice as fast); "float32" never uses
        bf16.  Losses and probabilities stay float32.  Encoders whose own
        ``precision`` is "auto" take this one.
    accelerator : accelerate.Accelerator or None, default=None
        Train through Hugging Face Accelerate (skorch's ``AccelerateMixin``):
        launched with ``accelerate launch`` or ``torchrun`` on several
        processes (GPUs, machines, or CPU processes with gloo), each process
        trains on its share of every epoch's batches and the gradients are
        averaged, so all processes end with the same weights; the
        accelerator's ``mixed_precision`` replaces ``precision`` in training,
        and it places the network (``device`` is then ignored; encoders whose
        ``device`` is "auto" run on the accelerator's device).  After ``fit``
        the network is unwrapped into an ordinary one: the model predicts,
        pickles like any other, and a pickled model does not keep the
        accelerator (None after loading); for ``skmm.save``, which stores
        parameters as plain data, ``set_params(accelerator=None)`` first.  Needs ``pip install
        "skmm[accelerate]"``; see docs/scaling.md.
    on_error : {"raise", "warn", "ignore"} or None, default=None
        Policy for image files that are missing, unreadable, truncated, not
        images or over the encoder's ``max_image_pixels``, at fit and at predict:
        "raise" stops (before any training) with an error naming the row, the
        column and the path; "warn" and "ignore" treat that row's image as
        missing, "warn" saying how many and which.  An image encoder whose own
        ``on_error`` is None takes this one; None here means "raise".  Set it
        before ``fit``: it is part of the fitted encoders.
    random_state : int, RandomState or None, default=None
        Seeds weights, shuffling and dropout: equal seeds give equal models.
        Encoders whose own ``random_state`` is None are seeded from it.
    verbose : int, default=0
        1 prints skorch's per-epoch table and encoding progress.
"""


def replace_entries(text, *entries):
    """``text`` (numpydoc parameter entries) with the entries named by ``entries`` replaced by them.

    Each of ``entries`` is a whole entry (``"    name : type, default=...\\n"`` and
    its description): an estimator whose default differs from the shared one
    documents its own.
    """
    lines = text.splitlines(keepends=True)
    for entry in entries:
        name = entry.split(":", 1)[0].strip()
        start = next(i for i, line in enumerate(lines) if line.startswith(f"    {name} :"))
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("    ") and not lines[i].startswith("     ")),
            len(lines),
        )
        lines[start:end] = entry.splitlines(keepends=True)
    return "".join(lines)


# FusionClassifier's own defaults of two shared parameters (chosen on benchmarks/accuracy.py)
CLASSIFIER_MODALITY_DROPOUT = """    modality_dropout : float, default=0.2
        Probability of hiding a modality of a training row, so the model learns to
        cope without it, and does not lean on one modality alone (the default,
        0.2, was chosen with ``unimodal_loss=1.0`` on the accuracy suite,
        ``benchmarks/accuracy.py``: it helps most when one modality is broken at
        test time).
"""
CLASSIFIER_UNIMODAL_LOSS = """    unimodal_loss : float, default=1.0
        Weight of uni-modal auxiliary losses (0 turns them off).  When > 0, every modality the
        fusion uses also gets a class head of its own (``late`` fusion's
        per-modality heads; an extra linear head on the projected embedding,
        used in training only, for the other fusions), and the training loss
        becomes the fused loss plus ``unimodal_loss`` times the mean of the
        per-modality cross-entropies (binary cross-entropies for a multilabel
        ``y``; rows without that modality left out).
""" + _UNIMODAL_WHY
# FusionClassifier's final prediction with stacked text models (skmm/estimators/blend.py)
CLASSIFIER_BLEND = """    blend : "auto" or None, default="auto"
        Blend the network's class probabilities with those of the stacked text
        models (``stacking``), log-linearly: ``p`` proportional to
        ``(p_net ** w * p_text ** (1 - w)) ** s``, fitted on training rows the
        network did not train on: a stratified 20% kept out of its training
        (the ``validation_fraction`` rows, when set), where the text models'
        probabilities are out-of-fold.  Each weight ``w`` gets the sharpness
        ``s`` with the lowest log-loss on those rows; the smallest weight
        whose log-loss is within one standard error of the lowest is
        ``blend_weight_`` (0: the text models alone, 1: the network alone),
        its sharpness ``blend_scale_``.  "auto" blends only when a branch is
        trained (the default CNN and GRU from scratch, or fine-tuned
        backbones) and text models are stacked: such a network learns its
        training rows by heart and would otherwise trust its branches over the
        linear model (BENCHMARKS.md, accuracy summary); with frozen encoders
        it trains on every row and ``blend_weight_`` is 1.  None turns it off.
"""

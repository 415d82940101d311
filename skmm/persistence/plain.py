"""Plain data to JSON and numeric arrays, and back, without running any code.

What :func:`skmm.save` writes is a tree of JSON values (``model.json``) plus
numeric arrays (``arrays.safetensors``).  Values JSON cannot say are written as a
one-key object naming what they are:

=============================  ================================================
value                          written as
=============================  ================================================
tuple                          ``{"__tuple__": [...]}``
dict with a non-str key        ``{"__dict__": [[key, value], ...]}``
numeric or bool ndarray        ``{"__array__": "<key in arrays.safetensors>"}``
str / object ndarray           ``{"__ndarray__": {"dtype", "shape", "values"}}``
numpy scalar                   ``{"__scalar__": ["<dtype>", value]}``
numpy dtype or scalar type     ``{"__dtype__": ["<dtype>", "dtype" or "type"]}``
int / float / bool / str type  ``{"__type__": "float"}``
slice                          ``{"__slice__": [start, stop, step]}``
pathlib path                   ``{"__path__": "..."}``
an estimator                   ``{"__object__": {...}}`` (see :mod:`.objects`)
=============================  ================================================

Anything else is a TypeError naming where it was found.  Reading back builds
only these kinds of values: a file cannot make the loader create any other object.
"""

import builtins
import pathlib

import numpy as np

__all__ = ["Decoder", "Encoder"]

_SCALAR_TYPES = (bool, int, float, str)
_TAGS = ("__tuple__", "__dict__", "__array__", "__ndarray__", "__scalar__", "__dtype__", "__type__", "__slice__",
         "__path__", "__object__")
_ARRAY_KINDS = "biuf"  # what safetensors stores; everything else goes inline in the JSON


class Encoder:
    """Plain data -> JSON values; numeric arrays are collected in :attr:`arrays`.

    Parameters
    ----------
    encode_object : callable
        ``encode_object(obj, where)`` -> the JSON value of an estimator, or raises
        TypeError; called for every value that is not plain data.
    """

    def __init__(self, encode_object):
        self.arrays = {}
        self._encode_object = encode_object

    def __call__(self, value, where):
        """The JSON value of ``value``; ``where`` names it in errors (``"FusionClassifier.callbacks"``)."""
        if value is None or type(value) in _SCALAR_TYPES:
            return value
        if isinstance(value, list) and type(value) is list:
            return [self(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if type(value) is tuple:
            return {"__tuple__": [self(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if type(value) is dict:
            if all(type(k) is str and not (k.startswith("__") and k.endswith("__")) for k in value):
                return {k: self(v, f"{where}[{k!r}]") for k, v in value.items()}
            return {"__dict__": [[self(k, f"{where} key"), self(v, f"{where}[{k!r}]")] for k, v in value.items()]}
        if isinstance(value, np.ndarray) and type(value) is np.ndarray:
            return self._array(value, where)
        if isinstance(value, np.generic):
            if value.dtype.kind not in _ARRAY_KINDS + "U":
                raise TypeError(f"{where}: a numpy {value.dtype} scalar cannot be saved as plain data")
            return {"__scalar__": [value.dtype.str, value.item()]}
        if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
            return {"__dtype__": [np.dtype(value).str, "dtype" if isinstance(value, np.dtype) else "type"]}
        if any(value is t for t in (bool, int, float, str)):
            return {"__type__": value.__name__}
        if type(value) is slice:
            return {"__slice__": [self(value.start, where), self(value.stop, where), self(value.step, where)]}
        if isinstance(value, pathlib.PurePath):
            return {"__path__": str(value)}
        return self._encode_object(value, where)

    def _array(self, arr, where):
        if arr.dtype.kind in _ARRAY_KINDS:
            key = f"a{len(self.arrays)}"
            self.arrays[key] = np.ascontiguousarray(arr)
            return {"__array__": key}
        if arr.dtype.kind == "U" or arr.dtype == object:
            values = arr.tolist()
            for item in arr.ravel().tolist():
                if item is not None and type(item) not in _SCALAR_TYPES:
                    raise TypeError(
                        f"{where}: an object array holding {type(item).__name__} cannot be saved as plain data"
                    )
            return {"__ndarray__": {"dtype": arr.dtype.str, "shape": list(arr.shape), "values": values}}
        raise TypeError(f"{where}: a numpy array of dtype {arr.dtype} cannot be saved as plain data")


class Decoder:
    """JSON values -> plain data, the inverse of :class:`Encoder`.

    Parameters
    ----------
    arrays : dict
        The arrays of ``arrays.safetensors``; each may be used once.
    decode_object : callable
        ``decode_object(record, where)`` -> the estimator an ``{"__object__": record}`` stands for.
    """

    def __init__(self, arrays, decode_object):
        self.arrays = arrays
        self.used = set()
        self._decode_object = decode_object

    def __call__(self, value, where):
        if value is None or type(value) in _SCALAR_TYPES:
            return value
        if type(value) is list:
            return [self(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if type(value) is not dict:
            raise ValueError(f"model.json: {where} holds a {type(value).__name__}, not a JSON value skmm writes")
        tags = [k for k in value if k in _TAGS]
        if not tags:
            if any(k.startswith("__") and k.endswith("__") for k in value):
                raise ValueError(f"model.json: {where} has an unknown tag {sorted(value)!r}")
            return {k: self(v, f"{where}[{k!r}]") for k, v in value.items()}
        if len(value) != 1:
            raise ValueError(f"model.json: {where} mixes the tag {tags[0]!r} with other keys")
        tag, body = tags[0], value[tags[0]]
        if tag == "__object__":
            return self._decode_object(body, where)  # errors there name what they are about
        try:
            return getattr(self, f"_{tag.strip('_')}")(body, where)
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            if isinstance(exc, ValueError) and str(exc).startswith("model.json"):
                raise
            raise ValueError(f"model.json: {where} is not a valid {tag} value ({exc})") from None

    def _tuple(self, body, where):
        return tuple(self(v, f"{where}[{i}]") for i, v in enumerate(_list(body)))

    def _dict(self, body, where):
        out = {}
        for pair in _list(body):
            key, item = _list(pair, 2)
            out[self(key, f"{where} key")] = self(item, f"{where}[{key!r}]")
        return out

    def _array(self, key, where):
        if type(key) is not str or key not in self.arrays:
            raise ValueError(f"model.json: {where} names the array {key!r}, which arrays.safetensors lacks")
        if key in self.used:
            raise ValueError(f"model.json: {where} names the array {key!r} a second time")
        self.used.add(key)
        return np.array(self.arrays[key], copy=True)  # writable, and detached from the file

    def _ndarray(self, body, where):
        dtype = np.dtype(body["dtype"])
        if not (dtype.kind == "U" or dtype == object):
            raise ValueError(f"dtype {dtype} is not a string or object dtype")
        values = body["values"]
        for item in _flat(values):
            if item is not None and type(item) not in _SCALAR_TYPES:
                raise ValueError(f"an inline array holds {type(item).__name__}")
        shape = tuple(int(n) for n in _list(body["shape"]))
        if dtype == object:
            arr = np.empty(shape, dtype=object)
            flat = list(_flat(values))
            if len(flat) != arr.size:
                raise ValueError(f"{len(flat)} values for shape {shape}")
            arr.ravel()[:] = flat  # element by element: never a nested array
            return arr
        return np.array(values, dtype=dtype).reshape(shape)

    def _scalar(self, body, where):
        dtype, item = _list(body, 2)
        dtype = _plain_dtype(dtype)
        if dtype.kind not in _ARRAY_KINDS + "U" or type(item) not in _SCALAR_TYPES:
            raise ValueError(f"{dtype} {item!r} is not a numeric, bool or str scalar")
        return dtype.type(item)

    def _dtype(self, body, where):
        name, form = _list(body, 2)
        dtype = _plain_dtype(name)
        if form not in ("dtype", "type"):
            raise ValueError(f"form {form!r}")
        return dtype if form == "dtype" else dtype.type

    def _type(self, name, where):
        if name not in ("bool", "int", "float", "str"):
            raise ValueError(f"type {name!r}")
        return getattr(builtins, name)

    def _slice(self, body, where):
        start, stop, step = (self(v, where) for v in _list(body, 3))
        if not all(v is None or type(v) is int for v in (start, stop, step)):
            raise ValueError("slice bounds must be integers or null")
        return slice(start, stop, step)

    def _path(self, body, where):
        if type(body) is not str:
            raise ValueError("a path must be a string")
        return pathlib.Path(body)


def _list(value, length=None):
    if type(value) is not list or (length is not None and len(value) != length):
        raise ValueError(f"expected a list{'' if length is None else f' of {length}'}, got {value!r:.60}")
    return value


def _flat(values):
    if type(values) is list:
        for v in values:
            yield from _flat(v)
    else:
        yield values


def _plain_dtype(name):
    if type(name) is not str:
        raise ValueError(f"dtype name {name!r}")
    dtype = np.dtype(name)
    if dtype.kind not in _ARRAY_KINDS + "U" and dtype != object:
        raise ValueError(f"dtype {dtype} is not plain data")
    return dtype

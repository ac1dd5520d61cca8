"""Conversions between Python values and the shoal.v1 messages.

Metadata values: ``str``, ``int`` (int64), ``float`` (finite), ``bool`` and a
list or tuple of ``str``. ``bool`` is checked before ``int`` (in Python
``True`` is an ``int``): ``True`` is stored as a bool, never as 1. numpy
scalars are accepted as their Python equivalents.
"""
import math
import numbers

import numpy as np

from shoal.v1 import types_pb2

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def _scalar_kind(value):
    """'bool', 'int', 'float', 'str' or None for a Python or numpy scalar."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (numbers.Integral, np.integer)):
        return "int"
    if isinstance(value, (numbers.Real, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    return None


def check_int64(value, where):
    value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{where}: {value} does not fit in a 64-bit integer")
    return value


def check_finite(value, where):
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not a finite number")
    return value


def scalar_to_value(value, where):
    """A ``types_pb2.Value`` for a scalar (str, int, float, bool); ValueError otherwise."""
    kind = _scalar_kind(value)
    if kind == "bool":
        return types_pb2.Value(bool_value=bool(value))
    if kind == "int":
        return types_pb2.Value(int_value=check_int64(value, where))
    if kind == "float":
        return types_pb2.Value(double_value=check_finite(value, where))
    if kind == "str":
        return types_pb2.Value(string_value=value)
    raise ValueError(f"{where}: {value!r} ({type(value).__name__}) is not a str, int, float or bool")


def to_value(value, where):
    """A ``types_pb2.Value`` for a metadata value, lists of strings included."""
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where}: a list value must hold only strings, got {value!r}")
        return types_pb2.Value(string_list=types_pb2.StringList(values=list(value)))
    return scalar_to_value(value, where)


def from_value(value):
    """The Python value of a ``types_pb2.Value`` (a list for a StringList)."""
    kind = value.WhichOneof("kind")
    if kind == "string_list":
        return list(value.string_list.values)
    if kind is None:
        return None
    return getattr(value, kind)


def metadata_to_proto(metadata, where="metadata"):
    """A ``{str: Value}`` dict for a metadata dict (None: empty)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: expected a dict, got {type(metadata).__name__}")
    out = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"{where}: keys must be non-empty strings, got {key!r}")
        out[key] = to_value(value, f"{where}[{key!r}]")
    return out


def metadata_from_proto(metadata):
    """A plain dict for a proto metadata map."""
    return {key: from_value(value) for key, value in metadata.items()}


def as_matrix(vectors, count=None, dimension=None, what="vectors"):
    """A float32 (n, d) array for a 2-D numpy array or a list of sequences."""
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}: not a matrix of numbers ({error})") from None
    if array.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array (one row per vector), got shape {array.shape}")
    if count is not None and array.shape[0] != count:
        raise ValueError(f"{what}: {array.shape[0]} vectors for {count} ids")
    if dimension is not None and array.shape[0] and array.shape[1] != dimension:
        raise ValueError(f"{what}: vectors have {array.shape[1]} components, the collection's dimension is {dimension}")
    return array


def as_vector(vector, dimension=None, what="vector"):
    """A float32 1-D array for a numpy array or a sequence of numbers."""
    try:
        array = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}: not a vector of numbers ({error})") from None
    if array.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D vector, got shape {array.shape}")
    if dimension is not None and array.shape[0] != dimension:
        raise ValueError(f"{what}: {array.shape[0]} components, the collection's dimension is {dimension}")
    return array

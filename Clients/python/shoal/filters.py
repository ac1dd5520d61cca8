"""Chroma-style ``where`` dicts → the ``shoal.v1.Filter`` tree.

Grammar (every malformed input raises ``ValueError`` naming the place)::

    where     := {clause, ...}                 several clauses: AND
    clause    := "field": scalar               equality, same as {"$eq": scalar}
               | "field": {op: operand, ...}   several ops: AND (range ops share one Range)
               | "$and": [where, ...]          non-empty list
               | "$or":  [where, ...]          non-empty list
               | "$not": where
    op        := "$eq" | "$ne"                 scalar (str, int, float, bool)
               | "$gt" | "$gte" | "$lt" | "$lte"   number (int or float, not bool)
               | "$in" | "$nin"                non-empty list of scalars
               | "$exists"                     bool

Semantics are the server's (see ``FieldCondition`` in types.proto): numbers
compare by value across int and float; on a list-of-strings field ``$eq`` and
``$in`` match any element; ``$ne``/``$nin`` match points that lack the field;
``$gt``... match numeric fields only.
"""
from shoal.v1 import types_pb2

from .values import check_finite, check_int64, scalar_to_value, _scalar_kind

__all__ = ["where_to_filter", "MAX_DEPTH"]

#: The server rejects filters nested deeper than this.
MAX_DEPTH = 32

_RANGE_OPS = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
_FIELD_OPS = {"$eq", "$ne", "$in", "$nin", "$exists", *_RANGE_OPS}
_LOGICAL_OPS = {"$and", "$or", "$not"}


def where_to_filter(where):
    """The ``types_pb2.Filter`` for a where dict; None for ``None`` or ``{}`` (no filter)."""
    if where is None:
        return None
    if isinstance(where, types_pb2.Filter):
        return where
    if isinstance(where, dict) and not where:
        return None
    return _where(where, "where", 1)


def _where(where, path, depth):
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: filters nest at most {MAX_DEPTH} levels deep")
    if not isinstance(where, dict):
        raise ValueError(f"{path}: expected a dict, got {type(where).__name__} {where!r}")
    if not where:
        raise ValueError(f"{path}: an empty dict is not a filter")
    clauses = []
    for key, value in where.items():
        clauses += _clause(key, value, f"{path}[{key!r}]", depth)
    return _all_of(clauses)


def _clause(key, value, path, depth):
    """The filters (to AND together) of one key of a where dict."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"{path}: field names must be non-empty strings")
    if key in ("$and", "$or"):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{path}: expects a non-empty list of where dicts, got {value!r}")
        children = [_where(child, f"{path}[{i}]", depth + 1) for i, child in enumerate(value)]
        return [types_pb2.Filter(**{"all_of" if key == "$and" else "any_of": types_pb2.FilterList(filters=children)})]
    if key == "$not":
        return [types_pb2.Filter(negate=_where(value, path, depth + 1))]
    if key.startswith("$"):
        raise ValueError(f"{path}: unknown operator {key!r} (logical operators: $and, $or, $not)")
    if isinstance(value, dict):
        return _field_ops(key, value, path)
    return [_condition(key, eq=_scalar(value, path, "a bare value"))]


def _field_ops(field, ops, path):
    if not ops:
        raise ValueError(f"{path}: an empty operator dict; use e.g. {{'$eq': value}}")
    conditions = []
    bounds = {}
    for op, operand in ops.items():
        where = f"{path}[{op!r}]"
        if op not in _FIELD_OPS:
            hint = " (logical operators go outside the field: {'$not': {field: ...}})" if op in _LOGICAL_OPS else ""
            raise ValueError(f"{where}: unknown operator {op!r}; expected one of {sorted(_FIELD_OPS)}{hint}")
        if op in _RANGE_OPS:
            bounds[_RANGE_OPS[op]] = _number(operand, where)
        elif op in ("$eq", "$ne"):
            conditions.append(_condition(field, **{op[1:]: _scalar(operand, where, op)}))
        elif op in ("$in", "$nin"):
            conditions.append(_condition(field, **{"is_in" if op == "$in" else "not_in": _scalar_list(operand, where)}))
        else:  # $exists
            if not isinstance(operand, bool):
                raise ValueError(f"{where}: expects true or false, got {operand!r}")
            conditions.append(_condition(field, exists=operand))
    if bounds:
        conditions.insert(0, _condition(field, range=types_pb2.Range(**bounds)))
    return conditions


def _condition(field, **op):
    return types_pb2.Filter(condition=types_pb2.FieldCondition(field=field, **op))


def _all_of(filters):
    return filters[0] if len(filters) == 1 else types_pb2.Filter(all_of=types_pb2.FilterList(filters=filters))


def _scalar(value, where, what):
    if isinstance(value, (list, tuple, set, dict)):
        raise ValueError(f"{where}: {what} must be a str, int, float or bool, got {value!r}"
                         + (" (to match any of several values use $in)" if not isinstance(value, dict) else ""))
    return scalar_to_value(value, where)


def _scalar_list(values, where):
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{where}: expects a non-empty list of values, got {values!r}")
    return types_pb2.ValueList(values=[_scalar(v, f"{where}[{i}]", "each value") for i, v in enumerate(values)])


def _number(value, where):
    kind = _scalar_kind(value)
    if kind == "int":
        return types_pb2.Number(int_value=check_int64(value, where))
    if kind == "float":
        return types_pb2.Number(double_value=check_finite(value, where))
    raise ValueError(f"{where}: a range bound must be an int or a float, got {value!r}")

"""Rows written or read with Core statements, handed on as the ORM objects a query would have
loaded. The hot paths (a submission, a worker's claim and finish) use Core statements built
once: the ORM's unit of work and loading cost more CPU than the database spent on them."""
from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state

T = TypeVar("T")


@cache
def _shape(model: type) -> tuple[dict[str, str], dict[str, None]]:
    """The model's attribute per column key, and the attributes a row that leaves their column
    out has as NULL: no default at all (a server default, SQL expression or autoincrement value
    is the database's to tell: those attributes stay unloaded, read when first used)."""
    mapper, table = model.__mapper__, model.__table__
    names = {column.key: mapper.get_property_by_column(column).key for column in table.c}
    nulls = {names[column.key]: None for column in table.c
             if column.default is None and column.server_default is None and column is not table.autoincrement_column}
    return names, nulls


def as_loaded(session: Session, model: type[T], values: dict[str, Any], instance: T | None = None) -> T:
    """The ORM object of a row, as if a query had loaded it: in the session, nothing pending, no
    SQL. `values`: by column key, a whole row (a RETURNING) or what an INSERT sent (its
    `last_inserted_params()`, Python-side defaults included). `instance`: a new object of the
    model to use (its own values are these). The values go straight into the object's dict, as
    the ORM's loader puts them (through the constructor they cost as much as the query saved);
    relationships load lazily unless set with `set_committed_value`."""
    names, nulls = _shape(model)
    if instance is None:
        instance = model.__mapper__.class_manager.new_instance()
    instance.__dict__.update({**nulls, **{names[key]: value for key, value in values.items()}})
    make_transient_to_detached(instance)  # SQLAlchemy's documented way to "loaded" without SQL
    if instance_state(instance).key in session.identity_map:  # this session has the row already
        return session.merge(instance, load=False)
    session.add(instance)
    return instance

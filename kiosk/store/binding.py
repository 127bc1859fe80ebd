"""Models bound to one database: a subclass of each template model, per store.

peewee binds a model class to one database. A store made of subclasses of the template
models (``Meta.database`` set to its own connection) lets two stores live in one process
(two kiosks in a test, a server thread and a test) without rebinding anything: each
store's classes know their database, and the templates stay unbound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from peewee import Database, ForeignKeyField, Model

M = TypeVar("M", bound=Model)


def bound(
    template: type[M], db: Database, targets: Mapping[type[Any], type[Any]] | None = None
) -> type[M]:
    """A subclass of ``template`` whose database is ``db``, with the template's table.

    Each foreign key of the template is made again to point to the bound subclass of its
    target found in ``targets`` (template → bound model), with the same column, backref
    and ``ON DELETE``: ``registration.account`` and ``account.registrations`` then stay
    within the store. The template's own classes and backrefs are left untouched.
    """
    targets = targets or {}
    meta = type("Meta", (), {"database": db, "table_name": template._meta.table_name})
    attrs: dict[str, Any] = {
        "Meta": meta,
        "__module__": template.__module__,
        "__qualname__": template.__qualname__,
    }
    for name, field in template._meta.fields.items():
        if not isinstance(field, ForeignKeyField):
            continue
        target = targets.get(field.rel_model)
        if target is None:
            raise ValueError(
                f"{template.__name__}.{name} refers to {field.rel_model.__name__}, "
                "which must be bound first"
            )
        attrs[name] = ForeignKeyField(
            target,
            field=field.rel_field.name,
            backref=field.backref,
            on_delete=field.on_delete,
            on_update=field.on_update,
            column_name=field.column_name,
            null=field.null,
            index=field.index,
            unique=field.unique,
            lazy_load=field.lazy_load,
        )
    made: Any = type(template.__name__, (template,), attrs)
    # A missing row of a bound model is still its template's DoesNotExist.
    missing: Any = template
    made.DoesNotExist = type(
        f"{template.__name__}DoesNotExist",
        (missing.DoesNotExist,),
        {"__module__": template.__module__},
    )
    return cast("type[M]", made)

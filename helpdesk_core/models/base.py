"""Declarative base, naming convention for constraints, reusable column types."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, MetaData, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_Status = TypeVar("_Status", bound=enum.StrEnum)


class StatusColumn(TypeDecorator[_Status], Generic[_Status]):
    """A :class:`~enum.StrEnum` stored as its value in a ``VARCHAR(20)``: the database holds the
    plain string (``"queued"``), Python gets the member back, and a value that is not a member is
    refused before it reaches the database."""

    impl = String(20)
    cache_ok = True

    def __init__(self, enum_class: type[_Status]) -> None:
        super().__init__()
        self.enum_class = enum_class

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> _Status | None:
        return None if value is None else self.enum_class(value)


intpk = Annotated[int, mapped_column(Integer, primary_key=True)]
email_str = Annotated[str, mapped_column(String(320))]
#: the department a row belongs to (deleted with it)
department_fk = Annotated[int, mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))]
created_at = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow, nullable=False)]


class DepartmentRow:
    """Mixin of a table whose rows belong to one department: an integer key ``id`` and
    ``department_id`` (the row is deleted with its department), the first two columns of the
    table, as the migrations create them."""

    id: Mapped[intpk] = mapped_column(sort_order=-2)
    department_id: Mapped[department_fk] = mapped_column(sort_order=-1)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}

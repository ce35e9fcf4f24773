from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class entry(_message.Message):
    __slots__ = ("key", "value", "revision", "is_default", "description", "type", "allowed", "source", "default_value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    revision: int
    is_default: bool
    description: str
    type: str
    allowed: _containers.RepeatedScalarFieldContainer[str]
    source: str
    default_value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., revision: _Optional[int] = ..., is_default: _Optional[bool] = ..., description: _Optional[str] = ..., type: _Optional[str] = ..., allowed: _Optional[_Iterable[str]] = ..., source: _Optional[str] = ..., default_value: _Optional[str] = ...) -> None: ...

class list_request(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class list_response(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[entry]
    def __init__(self, entries: _Optional[_Iterable[_Union[entry, _Mapping]]] = ...) -> None: ...

class get_request(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class set_request(_message.Message):
    __slots__ = ("key", "value", "expected_revision")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    expected_revision: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class unset_request(_message.Message):
    __slots__ = ("key", "expected_revision")
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    key: str
    expected_revision: int
    def __init__(self, key: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class position(_message.Message):
    __slots__ = ("name", "line", "column", "offset")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    name: str
    line: int
    column: int
    offset: int
    def __init__(self, name: _Optional[str] = ..., line: _Optional[int] = ..., column: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class location(_message.Message):
    __slots__ = ("item_type", "item_name", "position")
    ITEM_TYPE_FIELD_NUMBER: _ClassVar[int]
    ITEM_NAME_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    item_type: str
    item_name: str
    position: position
    def __init__(self, item_type: _Optional[str] = ..., item_name: _Optional[str] = ..., position: _Optional[_Union[position, _Mapping]] = ...) -> None: ...

class load_message(_message.Message):
    __slots__ = ("code", "codedesc", "message", "item_type", "item_name", "locations", "snippet")
    CODE_FIELD_NUMBER: _ClassVar[int]
    CODEDESC_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ITEM_TYPE_FIELD_NUMBER: _ClassVar[int]
    ITEM_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    code: str
    codedesc: str
    message: str
    item_type: str
    item_name: str
    locations: _containers.RepeatedCompositeFieldContainer[location]
    snippet: str
    def __init__(self, code: _Optional[str] = ..., codedesc: _Optional[str] = ..., message: _Optional[str] = ..., item_type: _Optional[str] = ..., item_name: _Optional[str] = ..., locations: _Optional[_Iterable[_Union[location, _Mapping]]] = ..., snippet: _Optional[str] = ...) -> None: ...

class load_result(_message.Message):
    __slots__ = ("name", "successful", "errors", "warnings", "schema_valid", "schema_warnings")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VALID_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_WARNINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    successful: bool
    errors: _containers.RepeatedCompositeFieldContainer[load_message]
    warnings: _containers.RepeatedCompositeFieldContainer[load_message]
    schema_valid: bool
    schema_warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., successful: _Optional[bool] = ..., errors: _Optional[_Iterable[_Union[load_message, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[load_message, _Mapping]]] = ..., schema_valid: _Optional[bool] = ..., schema_warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class worker_revision(_message.Message):
    __slots__ = ("worker", "revision", "host", "config_revision", "state")
    WORKER_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    CONFIG_REVISION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    worker: str
    revision: int
    host: str
    config_revision: int
    state: str
    def __init__(self, worker: _Optional[str] = ..., revision: _Optional[int] = ..., host: _Optional[str] = ..., config_revision: _Optional[int] = ..., state: _Optional[str] = ...) -> None: ...

class rule_info(_message.Message):
    __slots__ = ("name", "file", "source", "priority", "tags", "enabled", "event_types", "description", "loaded")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    name: str
    file: str
    source: str
    priority: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    enabled: bool
    event_types: _containers.RepeatedScalarFieldContainer[str]
    description: str
    loaded: bool
    def __init__(self, name: _Optional[str] = ..., file: _Optional[str] = ..., source: _Optional[str] = ..., priority: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., enabled: _Optional[bool] = ..., event_types: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., loaded: _Optional[bool] = ...) -> None: ...

class rules_file(_message.Message):
    __slots__ = ("name", "content", "revision", "sha256", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: str
    revision: int
    sha256: str
    size: int
    def __init__(self, name: _Optional[str] = ..., content: _Optional[str] = ..., revision: _Optional[int] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class list_request(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class list_response(_message.Message):
    __slots__ = ("files", "rules", "revision", "workers")
    FILES_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[rules_file]
    rules: _containers.RepeatedCompositeFieldContainer[rule_info]
    revision: int
    workers: _containers.RepeatedCompositeFieldContainer[worker_revision]
    def __init__(self, files: _Optional[_Iterable[_Union[rules_file, _Mapping]]] = ..., rules: _Optional[_Iterable[_Union[rule_info, _Mapping]]] = ..., revision: _Optional[int] = ..., workers: _Optional[_Iterable[_Union[worker_revision, _Mapping]]] = ...) -> None: ...

class get_request(_message.Message):
    __slots__ = ("name", "revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    revision: int
    def __init__(self, name: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class put_request(_message.Message):
    __slots__ = ("name", "content", "expected_revision", "before")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: str
    expected_revision: int
    before: str
    def __init__(self, name: _Optional[str] = ..., content: _Optional[str] = ..., expected_revision: _Optional[int] = ..., before: _Optional[str] = ...) -> None: ...

class delete_request(_message.Message):
    __slots__ = ("name", "expected_revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    expected_revision: int
    def __init__(self, name: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class select_request(_message.Message):
    __slots__ = ("name", "name_substring", "tag", "expected_revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_SUBSTRING_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    name_substring: str
    tag: str
    expected_revision: int
    def __init__(self, name: _Optional[str] = ..., name_substring: _Optional[str] = ..., tag: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class change_response(_message.Message):
    __slots__ = ("ok", "revision", "results", "workers", "rules", "load_result_text")
    OK_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    LOAD_RESULT_TEXT_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    revision: int
    results: _containers.RepeatedCompositeFieldContainer[load_result]
    workers: _containers.RepeatedCompositeFieldContainer[worker_revision]
    rules: _containers.RepeatedScalarFieldContainer[str]
    load_result_text: str
    def __init__(self, ok: _Optional[bool] = ..., revision: _Optional[int] = ..., results: _Optional[_Iterable[_Union[load_result, _Mapping]]] = ..., workers: _Optional[_Iterable[_Union[worker_revision, _Mapping]]] = ..., rules: _Optional[_Iterable[str]] = ..., load_result_text: _Optional[str] = ...) -> None: ...

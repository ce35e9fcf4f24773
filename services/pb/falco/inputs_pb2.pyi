import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class event(_message.Message):
    __slots__ = ("id", "source", "time", "hostname", "json", "syscall")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    SYSCALL_FIELD_NUMBER: _ClassVar[int]
    id: str
    source: str
    time: _timestamp_pb2.Timestamp
    hostname: str
    json: str
    syscall: syscall_event
    def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hostname: _Optional[str] = ..., json: _Optional[str] = ..., syscall: _Optional[_Union[syscall_event, _Mapping]] = ...) -> None: ...

class syscall_event(_message.Message):
    __slots__ = ("type", "res", "params", "tid", "pid", "ppid", "comm", "exe", "exepath", "args", "cwd", "uid", "gid", "container_id", "fd_name", "fd_type", "ancestors")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PPID_FIELD_NUMBER: _ClassVar[int]
    COMM_FIELD_NUMBER: _ClassVar[int]
    EXE_FIELD_NUMBER: _ClassVar[int]
    EXEPATH_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    CWD_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    FD_NAME_FIELD_NUMBER: _ClassVar[int]
    FD_TYPE_FIELD_NUMBER: _ClassVar[int]
    ANCESTORS_FIELD_NUMBER: _ClassVar[int]
    type: str
    res: int
    params: _containers.ScalarMap[str, str]
    tid: int
    pid: int
    ppid: int
    comm: str
    exe: str
    exepath: str
    args: _containers.RepeatedScalarFieldContainer[str]
    cwd: str
    uid: int
    gid: int
    container_id: str
    fd_name: str
    fd_type: str
    ancestors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[str] = ..., res: _Optional[int] = ..., params: _Optional[_Mapping[str, str]] = ..., tid: _Optional[int] = ..., pid: _Optional[int] = ..., ppid: _Optional[int] = ..., comm: _Optional[str] = ..., exe: _Optional[str] = ..., exepath: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., cwd: _Optional[str] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., container_id: _Optional[str] = ..., fd_name: _Optional[str] = ..., fd_type: _Optional[str] = ..., ancestors: _Optional[_Iterable[str]] = ...) -> None: ...

class ack(_message.Message):
    __slots__ = ("id", "accepted", "seq", "error", "count", "producer")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_FIELD_NUMBER: _ClassVar[int]
    id: str
    accepted: bool
    seq: int
    error: str
    count: int
    producer: str
    def __init__(self, id: _Optional[str] = ..., accepted: _Optional[bool] = ..., seq: _Optional[int] = ..., error: _Optional[str] = ..., count: _Optional[int] = ..., producer: _Optional[str] = ...) -> None: ...

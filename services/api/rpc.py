"""What every handler shares: request parsing with a proper status, rich error details, handler tables.

Handlers receive raw bytes (identity deserializer) and parse them here, so a malformed message is
INVALID_ARGUMENT with the parser's reason rather than gRPC's generic "exception deserializing".
Responses that are already serialized (alerts) pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.any_pb2 import Any as AnyPb
from google.protobuf.message import DecodeError, Message

from tiercel.pb.falco import status_pb2

M = TypeVar("M", bound=Message)

STATUS_DETAILS_KEY = "grpc-status-details-bin"


def _identity(b: bytes) -> bytes:
    return b


async def parse(cls: type[M], data: bytes, context: grpc.aio.ServicerContext) -> M:
    """Decode a request, aborting with INVALID_ARGUMENT when it is not a valid `cls`."""
    try:
        return cls.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"malformed {cls.DESCRIPTOR.full_name} message: {e or 'cannot decode'}")
        raise  # unreachable: abort raises


def details_metadata(code: grpc.StatusCode, message: str, *details: Message) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata carrying a rich status (google.rpc.Status layout) with `details`."""
    st = status_pb2.status(code=code.value[0], message=message)
    for d in details:
        a = AnyPb()
        a.Pack(d)
        st.details.append(a)
    return ((STATUS_DETAILS_KEY, st.SerializeToString()),)


async def abort_with(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str,
                     *details: Message) -> None:
    await context.abort(code, message, trailing_metadata=details_metadata(code, message, *details))


def unpack_details(trailing: Any, cls: type[M]) -> list[M]:
    """Client side: the `cls` messages in a call's rich status (empty when there are none)."""
    out: list[M] = []
    for key, value in trailing or ():
        if key == STATUS_DETAILS_KEY:
            st = status_pb2.status.FromString(value)
            for a in st.details:
                m = cls()
                if a.Unpack(m):
                    out.append(m)
    return out


def unary_unary(fn: Callable, resp: type[Message] | None = None) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=_identity,
        response_serializer=resp.SerializeToString if resp else _identity)


def unary_stream(fn: Callable, resp: type[Message] | None = None) -> grpc.RpcMethodHandler:
    return grpc.unary_stream_rpc_method_handler(
        fn, request_deserializer=_identity,
        response_serializer=resp.SerializeToString if resp else _identity)


def stream_stream(fn: Callable, resp: type[Message] | None = None) -> grpc.RpcMethodHandler:
    return grpc.stream_stream_rpc_method_handler(
        fn, request_deserializer=_identity,
        response_serializer=resp.SerializeToString if resp else _identity)

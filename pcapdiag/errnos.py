"""Errno names and numbers per platform: the only place errno numbers appear.

Sources (see ../shared/docs/errno-semantics.md section 4 for the full table):
- Linux: include/uapi/asm-generic/errno-base.h and errno.h (x86-64, arm64 and most others).
- FreeBSD: sys/sys/errno.h.  macOS: xnu bsd/sys/errno.h.
- Windows: Winsock error codes from winerror.h (WSAE*), the values Winsock applications see.
"""

from __future__ import annotations

from typing import Final

PLATFORMS: Final = ("linux", "freebsd", "macos", "windows")

# name -> (number, usual message as strerror(3) / FormatMessage prints it)
_LINUX: Final[dict[str, tuple[int, str]]] = {
    "EACCES": (13, "Permission denied"),
    "EPIPE": (32, "Broken pipe"),
    "ENONET": (64, "Machine is not on the network"),
    "EPROTO": (71, "Protocol error"),
    "EMSGSIZE": (90, "Message too long"),
    "ENOPROTOOPT": (92, "Protocol not available"),
    "EOPNOTSUPP": (95, "Operation not supported"),
    "ENETDOWN": (100, "Network is down"),
    "ENETUNREACH": (101, "Network is unreachable"),
    "ENETRESET": (102, "Network dropped connection on reset"),
    "ECONNABORTED": (103, "Software caused connection abort"),
    "ECONNRESET": (104, "Connection reset by peer"),
    "ENOTCONN": (107, "Transport endpoint is not connected"),
    "ESHUTDOWN": (108, "Cannot send after transport endpoint shutdown"),
    "ETIMEDOUT": (110, "Connection timed out"),
    "ECONNREFUSED": (111, "Connection refused"),
    "EHOSTDOWN": (112, "Host is down"),
    "EHOSTUNREACH": (113, "No route to host"),
}

# FreeBSD and macOS share the 4.4BSD numbering for every name used here except EPROTO.
_BSD_COMMON: Final[dict[str, tuple[int, str]]] = {
    "EACCES": (13, "Permission denied"),
    "EPIPE": (32, "Broken pipe"),
    "EMSGSIZE": (40, "Message too long"),
    "ENOPROTOOPT": (42, "Protocol not available"),
    "EOPNOTSUPP": (45, "Operation not supported"),
    "ENETDOWN": (50, "Network is down"),
    "ENETUNREACH": (51, "Network is unreachable"),
    "ENETRESET": (52, "Network dropped connection on reset"),
    "ECONNABORTED": (53, "Software caused connection abort"),
    "ECONNRESET": (54, "Connection reset by peer"),
    "ENOTCONN": (57, "Socket is not connected"),
    "ESHUTDOWN": (58, "Can't send after socket shutdown"),
    "ETIMEDOUT": (60, "Operation timed out"),
    "ECONNREFUSED": (61, "Connection refused"),
    "EHOSTDOWN": (64, "Host is down"),
    "EHOSTUNREACH": (65, "No route to host"),
}
_FREEBSD: Final = {**_BSD_COMMON, "EPROTO": (92, "Protocol error")}
_MACOS: Final = {**_BSD_COMMON, "EPROTO": (100, "Protocol error")}

# Winsock has its own names; messages abridged from Microsoft's "Windows Sockets Error Codes".
_WINDOWS: Final[dict[str, tuple[int, str]]] = {
    "WSAEACCES": (10013, "An attempt was made to access a socket in a forbidden way"),
    "WSAEMSGSIZE": (10040, "Message too long"),
    "WSAENOPROTOOPT": (10042, "Bad protocol option"),
    "WSAENETDOWN": (10050, "Network is down"),
    "WSAENETUNREACH": (
        10051,
        "A socket operation was attempted to an unreachable network",
    ),
    "WSAENETRESET": (10052, "The connection was broken due to keep-alive activity"),
    "WSAECONNABORTED": (
        10053,
        "An established connection was aborted by the software in your host machine",
    ),
    "WSAECONNRESET": (
        10054,
        "An existing connection was forcibly closed by the remote host",
    ),
    "WSAENOTCONN": (10057, "Socket is not connected"),
    "WSAESHUTDOWN": (10058, "Cannot send after socket shutdown"),
    "WSAETIMEDOUT": (10060, "Connection timed out"),
    "WSAECONNREFUSED": (
        10061,
        "No connection could be made because the target machine actively refused it",
    ),
    "WSAEHOSTDOWN": (10064, "Host is down"),
    "WSAEHOSTUNREACH": (
        10065,
        "A socket operation was attempted to an unreachable host",
    ),
}

ERRNO: Final[dict[str, dict[str, tuple[int, str]]]] = {
    "linux": _LINUX,
    "freebsd": _FREEBSD,
    "macos": _MACOS,
    "windows": _WINDOWS,
}

ALL_NAMES: Final = frozenset(name for table in ERRNO.values() for name in table)


def errno_number(platform: str, name: str) -> int:
    """Number of errno `name` on `platform`; KeyError if the platform does not define it."""
    return ERRNO[platform][name][0]


def errno_message(platform: str, name: str) -> str:
    return ERRNO[platform][name][1]


def is_defined(platform: str, name: str) -> bool:
    return name in ERRNO[platform]

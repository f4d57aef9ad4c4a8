"""A faster encoder and decoder compiled from the same declaration.

`schema.py` derives, for one message version, a tree of constructs
(protocol/constructs.py; every version test already resolved). This module
walks that tree once and generates plain Python functions for it: consecutive fixed-width
fields become one `struct` call, arrays of structs a loop over a per-struct
function, compact lengths a table lookup. Nothing is written by hand per API:
the generated code is derived from the declaration, like the constructs.

The generated code is a fast path only. It checks everything the constructs
check and, on anything unexpected (bad input, a value that does not fit, a
truncated buffer, an unknown construct), it gives up by raising an exception;
`MessageCodec` then runs the constructs themselves from the start, which
raise the exact error they always raised. So a message that the fast path
encodes or decodes gives the same bytes or the same object as the constructs,
and every error is still the constructs' own.
"""

from __future__ import annotations

import io
import struct
import uuid
from collections.abc import Callable
from typing import Any

from . import constructs as c
from .constructs import Container, Sealed
from .primitives import KArray, KBytes, KRecordView, KString, _Boolean, _Fixed, _Uuid, _UVarInt, write_uvarint

__all__ = ["compile_decoder", "compile_encoder"]

#: a compact length (or a small unsigned varint) as bytes, without a call
_UV = [bytes([i]) for i in range(128)]
_NULL_COMPACT = b"\x00"
_NULL16 = struct.pack(">h", -1)
_NULL32 = struct.pack(">i", -1)
_I16 = struct.Struct(">h").pack
_I32 = struct.Struct(">i").pack


class GiveUp(Exception):
    """The fast path cannot handle this message: the constructs must."""


#: arrays of numbers up to this length get a cached struct
_CACHED_LENGTHS = 256


def _array_packer(ch: str) -> Callable[[Any], bytes]:
    """``pack(values)``: a list of fixed-width numbers, one struct per length (cached when short)."""
    packers: dict[int, Callable[..., bytes]] = {}

    def pack(values: Any) -> bytes:
        n = len(values)
        p = packers.get(n)
        if p is None:
            p = struct.Struct(f">{n}{ch}").pack
            if n < _CACHED_LENGTHS:
                packers[n] = p
        return p(*values)

    return pack


def _array_unpacker(ch: str) -> Callable[[bytes, int, int], list]:
    """``unpack(buf, pos, n)``: `n` fixed-width numbers as a list, one struct per length (cached when short)."""
    unpackers: dict[int, Callable[..., tuple]] = {}

    def unpack(buf: bytes, pos: int, n: int) -> list:
        u = unpackers.get(n)
        if u is None:
            u = struct.Struct(f">{n}{ch}").unpack_from
            if n < _CACHED_LENGTHS:  # a length a client sends must not grow a cache
                unpackers[n] = u
        return list(u(buf, pos))

    return unpack


def _uvarint(n: int) -> bytes:
    return _UV[n] if 0 <= n < 128 else write_uvarint(n)


def _read_uvarint(buf: bytes, pos: int, max_bytes: int, limit: int) -> tuple[int, int]:
    result = 0
    shift = 0
    for _ in range(max_bytes):
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            if result >= limit:
                raise GiveUp
            return result, pos
        shift += 7
    raise GiveUp


def _fixed_char(con: c.Construct) -> str | None:
    if isinstance(con, _Fixed):
        return con._struct.format[-1]
    if isinstance(con, _Boolean):
        return "?"
    return None


class _Gen:
    """Source lines and the names they refer to."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.names: dict[str, Any] = {
            "GiveUp": GiveUp,
            "Container": Container,
            "UV": _UV,
            "uvarint": _uvarint,
            "read_uvarint": _read_uvarint,
            "NULL_COMPACT": _NULL_COMPACT,
            "NULL16": _NULL16,
            "NULL32": _NULL32,
            "I16": _I16,
            "I32": _I32,
            "I16u": struct.Struct(">h").unpack_from,
            "I32u": struct.Struct(">i").unpack_from,
            "UUID": uuid.UUID,
            "ZERO_UUID": uuid.UUID(int=0),
            "BytesIO": io.BytesIO,
            "dict": dict,
            "list": list,
            "len": len,
            "range": range,
            "type": type,
            "str": str,
            "bytes": bytes,
            "memoryview": memoryview,
            "sum": sum,
            "map": map,
            "sorted": sorted,
            "Struct": struct.Struct,
        }
        self.lines: list[str] = []
        self.functions: dict[int, str] = {}  # id(construct) -> function name
        self._counter = 0

    def name(self, obj: Any, hint: str) -> str:
        self._counter += 1
        n = f"{hint}{self._counter}"
        self.names[n] = obj
        return n

    def var(self, hint: str = "v") -> str:
        self._counter += 1
        return f"{hint}{self._counter}"

    def compile(self) -> dict[str, Any]:
        namespace = dict(self.names)
        exec(compile("\n".join(self.lines), f"<kstub codec {self.prefix}>", "exec"), namespace)
        return namespace


# --- encoder ---------------------------------------------------------------------


class _EncGen(_Gen):
    def struct_function(self, con: c.Construct) -> str:
        """The name of a function ``f(obj, w)`` that writes struct `con` with `w`."""
        if id(con) in self.functions:
            return self.functions[id(con)]
        fname = f"enc_{len(self.functions)}"
        self.functions[id(con)] = fname
        body: list[str] = []
        # a Sealed part: its bytes for this struct of this version, encoded at its first use
        key = self.name(object(), "K")
        body.append("if type(obj) is Sealed:")
        body.append(f"    data = obj.encoded.get({key})")
        body.append(f"    if data is None: data = obj.encoded[{key}] = seal({fname}, obj)")
        body.append("    w(data)")
        body.append("    return")
        body.append("if not isinstance(obj, dict): raise GiveUp")
        body.append("get = obj.get")
        run: list[tuple[str, str]] = []  # (format char, variable) of pending fixed-width fields

        def flush() -> None:
            if run:
                packer = self.name(struct.Struct(">" + "".join(ch for ch, _ in run)).pack, "P")
                body.append(f"w({packer}({', '.join(v for _, v in run)}))")
                run.clear()

        for fname_, fcon, make, _path in con.fields:
            v = self.var()
            mk = self.name(make, "mk")
            body.append(f"{v} = get({fname_!r}, MISSING)")
            body.append(f"if {v} is MISSING: {v} = {mk}()")
            ch = _fixed_char(fcon)
            if ch is not None:
                run.append((ch, v))
                continue
            flush()
            body.extend(self.value(fcon, v))
        flush()
        if con.tagged is not None:
            body.extend(self.tags(con))
        self.lines.append(f"def {fname}(obj, w):")
        self.lines.extend("    " + line for line in body)
        self.lines.append("")
        return fname

    def tags(self, con: c.Construct) -> list[str]:
        out = ["if get('_unknown_tags'):"]
        slow = self.name(con, "S")
        out.append(f"    b = BytesIO(); {slow}._build_tags(obj, b, None); w(b.getvalue())")
        if not con.tagged:
            out.append("else: w(NULL_COMPACT)")
            return out
        out.append("else:")
        out.append("    tagged = []")
        for tag in sorted(con.tagged):
            name, tcon, make = con.tagged[tag]
            v = self.var("t")
            mk = self.name(make, "mk")
            out.append(f"    {v} = get({name!r})")
            out.append(f"    if {v} is not None and not ({v} == {mk}()):")
            out.append("        parts = []; pw = parts.append")
            out.extend("        " + line for line in self.value(tcon, v, "pw"))
            out.append("        data = b''.join(parts)")
            out.append(f"        tagged.append(uvarint({tag}) + uvarint(len(data)) + data)")
        out.append("    w(uvarint(len(tagged)))")
        out.append("    for t in tagged: w(t)")
        return out

    def value(self, con: c.Construct, v: str, w: str = "w") -> list[str]:
        """Lines that write value `v` of construct `con` with `w`."""
        ch = _fixed_char(con)
        if ch is not None:
            packer = self.name(struct.Struct(">" + ch).pack, "P")
            return [f"{w}({packer}({v}))"]
        if isinstance(con, _Uuid):
            return [f"{w}(({v} if {v} is not None else ZERO_UUID).bytes)"]
        if isinstance(con, KString):
            out = [f"if {v} is None:"]
            out.append(f"    {w}({self._null(con)})")
            out.append("else:")
            out.append(f"    d = {v}.encode('utf-8')")
            if con.compact:
                out.append(f"    {w}(uvarint(len(d) + 1))")
            else:
                out.append("    if len(d) > 0x7FFF: raise GiveUp")
                out.append(f"    {w}(I16(len(d)))")
            out.append(f"    {w}(d)")
            return out
        if isinstance(con, KBytes):
            out = [f"if {v} is None:"]
            out.append(f"    {w}({self._null(con)})")
            out.append(f"elif type({v}) is list:")
            out.append(f"    {w}({self._size(con, f'sum(map(len, {v}))')})")
            out.append(f"    for part in {v}: {w}(part)")
            out.append("else:")
            out.append(f"    {w}({self._size(con, f'len({v})')})")
            out.append(f"    {w}({v})")
            return out
        if isinstance(con, KArray):
            out = [f"if {v} is None:"]
            out.append(f"    {w}({self._null(con)})")
            out.append("else:")
            out.append(f"    {w}({self._size(con, f'len({v})')})")
            element = con.element
            ch = _fixed_char(element)
            if ch is not None:
                packer = self.name(_array_packer(ch), "A")
                out.append(f"    if {v}: {w}({packer}({v}))")
            elif _is_struct(element):
                fn = self.struct_function(element)
                out.append(f"    for item in {v}: {fn}(item, {w})")
            else:
                item = self.var("i")
                out.append(f"    for {item} in {v}:")
                out.extend("        " + line for line in self.value(element, item, w))
            return out
        if _is_struct(con):
            return [f"{self.struct_function(con)}({v}, {w})"]
        if _is_nullable_struct(con):
            fn = self.struct_function(con.struct)
            return [f"if {v} is None: {w}(b'\\xff')", f"else: {w}(b'\\x01'); {fn}({v}, {w})"]
        # anything else: the construct itself
        slow = self.name(con, "S")
        return [f"b = BytesIO(); {slow}._build({v}, b, None, ''); {w}(b.getvalue())"]

    def _null(self, con: Any) -> str:
        if not con.nullable:
            return "GIVEUP()"
        if con.compact:
            return "NULL_COMPACT"
        return "NULL16" if con.prefix.length == 2 else "NULL32"

    def _size(self, con: Any, n: str) -> str:
        if con.compact:
            return f"uvarint({n} + 1)"
        return f"I16({n})" if con.prefix.length == 2 else f"I32({n})"


def _giveup() -> bytes:
    raise GiveUp


def _is_struct(con: c.Construct) -> bool:
    from .schema import _KStruct

    return isinstance(con, _KStruct)


def _is_nullable_struct(con: c.Construct) -> bool:
    from .schema import _NullableStruct

    return isinstance(con, _NullableStruct)


def _seal(fn: Callable[[Any, Callable[[bytes], Any]], None], obj: Sealed) -> bytes:
    """`obj` encoded by struct function `fn`, as a plain dict (not looked up as sealed again)."""
    parts: list[bytes] = []
    fn(dict(obj), parts.append)
    return b"".join(parts)


def compile_encoder(root: c.Construct, label: str, missing: Any) -> Callable[[Any], bytes]:
    """``encode(obj) -> bytes`` for the struct `root`; raises (anything) when the constructs must do it."""
    gen = _EncGen(label)
    gen.names["MISSING"] = missing
    gen.names["GIVEUP"] = _giveup
    gen.names["Sealed"] = Sealed
    gen.names["seal"] = _seal
    fn = gen.struct_function(root)
    gen.lines += ["def encode(obj):", "    parts = []", f"    {fn}(obj, parts.append)", "    return b''.join(parts)"]
    return gen.compile()["encode"]


# --- decoder ---------------------------------------------------------------------


class _DecGen(_Gen):
    def struct_function(self, con: c.Construct) -> str:
        """The name of a function ``f(buf, pos) -> (obj, pos)`` that reads struct `con`."""
        if id(con) in self.functions:
            return self.functions[id(con)]
        fname = f"dec_{len(self.functions)}"
        self.functions[id(con)] = fname
        body = ["obj = Container()"]
        run: list[tuple[str, str]] = []  # (format char, field name)

        def flush() -> None:
            if run:
                s = struct.Struct(">" + "".join(ch for ch, _ in run))
                unpack = self.name(s.unpack_from, "U")
                vs = [self.var() for _ in run]
                body.append(f"{', '.join(vs)}, = {unpack}(buf, pos)")
                body.append(f"pos += {s.size}")
                body.extend(f"obj[{name!r}] = {v}" for (_, name), v in zip(run, vs, strict=True))
                run.clear()

        for name, fcon, _make, _path in con.fields:
            ch = _fixed_char(fcon)
            if ch is not None:
                run.append((ch, name))
                continue
            flush()
            v = self.var()
            body.extend(self.value(fcon, v))
            body.append(f"obj[{name!r}] = {v}")
        flush()
        for name, make in con.absent:
            body.append(f"obj[{name!r}] = {self.name(make, 'mk')}()")
        if con.tagged is not None:
            for _, (name, _tcon, make) in con.tagged.items():
                body.append(f"obj[{name!r}] = {self.name(make, 'mk')}()")
            table = {tag: (name, self.value_function(tcon)) for tag, (name, tcon, _) in con.tagged.items()}
            body.append("if buf[pos] == 0: pos += 1")  # no tagged fields (the usual case)
            body.append(f"else: pos = read_tags(buf, pos, obj, {self.name(table, 'T')})")
        body.append("return obj, pos")
        self.lines.append(f"def {fname}(buf, pos):")
        self.lines.extend("    " + line for line in body)
        self.lines.append("")
        return fname

    def value_function(self, con: c.Construct) -> Callable[[bytes], Any]:
        """A function reading one (tagged) value of `con` from the whole of a buffer."""
        fname = f"val_{self.var('')}"
        body = self.value(con, "v")  # first: it may add the functions of nested structs to `lines`
        self.lines.append(f"def {fname}(buf):")
        self.lines.append("    pos = 0")
        self.lines.extend("    " + line for line in body)
        self.lines.append("    return v")
        self.lines.append("")
        # resolved after compilation: the table holds the name until then
        return _Late(fname)  # type: ignore[return-value]

    def _read_size(self, con: Any, n: str) -> list[str]:
        """Lines setting `n` to the length that follows (None for null), giving up on invalid ones."""
        if con.compact:
            out = [
                f"{n} = buf[pos]; pos += 1",
                f"if {n} > 127: {n}, pos = read_uvarint(buf, pos - 1, 5, 1 << 32)",
                f"{n} -= 1",
            ]
        else:
            unpack = "I16u" if con.prefix.length == 2 else "I32u"
            size = con.prefix.length
            out = [f"{n}, = {unpack}(buf, pos); pos += {size}"]
        if con.nullable:
            out.append(f"if {n} < 0:")
            out.append(f"    if {n} != -1: raise GiveUp")
            out.append(f"    {n} = None")
        else:
            out.append(f"if {n} < 0: raise GiveUp")
        return out

    def value(self, con: c.Construct, v: str) -> list[str]:
        """Lines that read a value of `con` at `pos` into `v` and advance `pos`."""
        ch = _fixed_char(con)
        if ch is not None:
            s = struct.Struct(">" + ch)
            return [f"{v}, = {self.name(s.unpack_from, 'U')}(buf, pos); pos += {s.size}"]
        if isinstance(con, _Uuid):
            return [
                "end = pos + 16",
                "if end > len(buf): raise GiveUp",
                f"{v} = UUID(bytes=bytes(buf[pos:end])); pos = end",
            ]
        if isinstance(con, _UVarInt):
            return [f"{v}, pos = read_uvarint(buf, pos, {con.max_bytes}, {con.limit})"]
        if isinstance(con, (KString, KBytes)):
            n = self.var("n")
            out = self._read_size(con, n)
            out.append(f"if {n} is None: {v} = None" if con.nullable else "if False: pass")
            out.append("else:")
            out.append(f"    end = pos + {n}")
            out.append("    if end > len(buf): raise GiveUp")
            if isinstance(con, KString):
                out.append(f"    {v} = buf[pos:end].decode('utf-8'); pos = end")
            elif isinstance(con, KRecordView):
                out.append(f"    {v} = memoryview(buf)[pos:end]; pos = end")
            else:
                out.append(f"    {v} = bytes(buf[pos:end]); pos = end")  # bytes from a bytearray too
            return out
        if isinstance(con, KArray):
            n = self.var("n")
            out = self._read_size(con, n)
            out.append(f"if {n} is None: {v} = None" if con.nullable else "if False: pass")
            out.append("else:")
            element = con.element
            ch = _fixed_char(element)
            if ch is not None:
                size = struct.calcsize(">" + ch)
                out.append(f"    end = pos + {n} * {size}")
                out.append("    if end > len(buf): raise GiveUp")
                unpacker = self.name(_array_unpacker(ch), "A")
                out.append(f"    {v} = {unpacker}(buf, pos, {n}) if {n} else []; pos = end")
            elif _is_struct(element):
                fn = self.struct_function(element)
                out.append(f"    {v} = []; append = {v}.append")
                out.append(f"    for _ in range({n}):")
                out.append(f"        item, pos = {fn}(buf, pos)")
                out.append("        append(item)")
            else:
                item = self.var("i")
                out.append(f"    {v} = []")
                out.append(f"    for _ in range({n}):")
                out.extend("        " + line for line in self.value(element, item))
                out.append(f"        {v}.append({item})")
            return out
        if _is_struct(con):
            return [f"{v}, pos = {self.struct_function(con)}(buf, pos)"]
        if _is_nullable_struct(con):
            fn = self.struct_function(con.struct)
            return [
                "marker, = I8u(buf, pos); pos += 1",
                f"if marker < 0: {v} = None",
                f"else: {v}, pos = {fn}(buf, pos)",
            ]
        raise GiveUp  # not compiled: the whole message stays with the constructs


class _Late(str):
    """A generated function's name, looked up once the module is compiled."""


def _read_tags(buf: bytes, pos: int, obj: Container, table: dict[int, tuple[str, Any]]) -> int:
    count = buf[pos]
    pos += 1
    if count > 127:
        count, pos = _read_uvarint(buf, pos - 1, 5, 1 << 32)
    last = -1
    for _ in range(count):
        tag = buf[pos]
        pos += 1
        if tag > 127:
            tag, pos = _read_uvarint(buf, pos - 1, 5, 1 << 32)
        size = buf[pos]
        pos += 1
        if size > 127:
            size, pos = _read_uvarint(buf, pos - 1, 5, 1 << 32)
        end = pos + size
        if end > len(buf) or tag <= last:
            raise GiveUp
        last = tag
        data = bytes(buf[pos:end])
        pos = end
        known = table.get(tag)
        if known is None:
            obj.setdefault("_unknown_tags", {})[tag] = data
        else:
            obj[known[0]] = known[1](data)
    return pos


def compile_decoder(root: c.Construct, label: str) -> Callable[[bytes, int], tuple[Any, int]]:
    """``decode(buf, pos) -> (obj, end)`` for the struct `root`.

    `buf` is `bytes`, or a `bytearray` (a request frame received in pieces): the values are the
    same either way (bytes fields are `bytes`), except that record data, a view of `buf`, is
    then writable.

    Raises `GiveUp` at compile time if the tree holds a construct it does not
    know, and (anything) at run time when the constructs must decode instead.
    """
    gen = _DecGen(label)
    gen.names["read_tags"] = _read_tags
    gen.names["I8u"] = struct.Struct(">b").unpack_from
    fn = gen.struct_function(root)
    namespace = gen.compile()
    for value in gen.names.values():
        if isinstance(value, dict):
            for tag, (name, late) in list(value.items()):
                if isinstance(late, _Late):
                    value[tag] = (name, namespace[late])
    return namespace[fn]

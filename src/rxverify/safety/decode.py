"""Decoding before scanning: every text a server could read out of a request, as it would read it.

The guard scans texts, not bytes, so a request is first taken apart the way a receiving stack
would take it apart: the URL (percent-encoding applied any number of times, `+` as a space in a
query, userinfo), every header (Basic credentials, bearer tokens and JWT payloads, any other
base64 or base64url token), and the body by its Content-Encoding (gzip, deflate, br; any other
is refused), its charset (UTF-8, UTF-16, UTF-32, with a BOM or a charset parameter) and its
media type: JSON (escapes decoded; numbers as integers, floats and exponents), form data,
multipart (each part, with its own transfer encoding and media type), XML and SOAP (entities,
numeric character references, CDATA, text split by comments), plain text. Base64 tokens found
in any of these are decoded and read again.

A body it cannot read (a stream, a file object, bytes of an unknown media type or encoding, a
multipart body without a boundary) raises Unreadable: the guard refuses it rather than send it
unread. Decoding only what the media type and encoding call for keeps the load-test hot path
cheap: a JSON body without escapes or fractions, or an XML body without entities, comments or
CDATA, is read as it stands.
"""

from __future__ import annotations

import binascii
import contextlib
import email.parser
import email.policy
import html
import json
import re
import threading
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

MAX_DECODED = 16 * 1024 * 1024  # a body that inflates beyond this is refused (a decompression bomb)
MAX_PERCENT_ROUNDS = 8  # percent-decoding applied more often than this is refused
_REMEMBERED_TEXT = 4_096  # longer tokens are decoded afresh, not remembered
MAX_DEPTH = 4  # base64 inside base64 inside a multipart part ...: deeper is refused
# an identity is at least 10 characters written, so at least 14 in base64 (unpadded)
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{14,}={0,2}")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # no text holds these: decoded noise
_JSON_NEEDS_PARSE = re.compile(r"\\|\d[.eE]")  # escapes, fractions, exponents: the raw text is not enough
TEXT_TYPES = ("text/",)
JSON_TYPES = ("application/json",)
XML_TYPES = ("application/xml", "text/xml", "application/soap+xml")
FORM_TYPE = "application/x-www-form-urlencoded"


class Unreadable(Exception):
    """A request part the guard cannot read, so it must not be sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Places = list[tuple[str, str]]  # (where, text): every text to scan


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """The lower-case media type and its parameters of a Content-Type value."""
    if not content_type:
        return "", {}
    kind, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for piece in rest.split(";"):
        name, eq, value = piece.strip().partition("=")
        if eq:
            params[name.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if str(key).lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


# ---- URL ----


def percent_decodings(text: str, plus_is_space: bool) -> list[str]:
    """`text` and every further percent-decoding of it, until nothing changes.

    `+` is a space in form-encoded text (a query, a form body): in the first decoding, where the
    standard puts it. A `+` that a decoding produced (from `%2B`) stays a `+` in later rounds, or a
    centenarian's `YYMMDD+NNNN`, properly encoded, would read as someone born a century later.
    """
    seen = [text]
    if plus_is_space and "+" in text:
        seen.append(unquote_plus(text))
    current = seen[-1]
    for _ in range(MAX_PERCENT_ROUNDS):
        if "%" not in current:
            return seen
        decoded = unquote(current)
        if decoded == current:
            return seen
        seen.append(decoded)
        current = decoded
    raise Unreadable(f"percent-encoded more than {MAX_PERCENT_ROUNDS} times")


def url_places(url: str) -> Places:
    """The path, the query and any userinfo of `url`, decoded."""
    parts = urlsplit(url)
    places: Places = [("path", text) for text in percent_decodings(parts.path, False)]
    if parts.query:
        places += [("query", text) for text in percent_decodings(parts.query, True)]
    if parts.fragment:
        places += [("fragment", text) for text in percent_decodings(parts.fragment, True)]
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        places += [("userinfo", text) for text in percent_decodings(userinfo, False)]
    return places


# ---- base64 ----


_URLSAFE = bytes.maketrans(b"-_", b"+/")
_BASE64_ONLY = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def _b64(token: str) -> bytes | None:
    # base64.b64decode(padded, altchars, validate=True), without its wrappers (the load path decodes
    # each token that holds a fresh UUID): the URL-safe alphabet when "-" or "_" is in the token
    stripped = token.rstrip("=")
    if len(stripped) % 4 == 1 or not stripped.isascii():
        return None  # no base64 text is one character past a whole group
    data = (stripped + "=" * (-len(stripped) % 4)).encode("ascii")
    if "-" in token or "_" in token:
        data = data.translate(_URLSAFE)
    if not _BASE64_ONLY.fullmatch(data):
        return None
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        return None


def _as_text(raw: bytes) -> str | None:
    """`raw` as text when it reads as text (a decoded token), else None (random bytes)."""
    if b"\x00" in raw:  # UTF-16 text has NUL bytes; nothing else that is text does
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError:
            return None
        return text if text.replace("\n", "").replace("\r", "").replace("\t", "").isprintable() else None
    if _CONTROL.search(raw):
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _token_text(token: str) -> str | None:
    """A base64/base64url token decoded (and inflated, when compressed) when it reads as text, else None."""
    raw = _b64(token)
    if raw is None:
        return None
    if raw[:2] == b"\x1f\x8b" or raw[:1] in (b"\x78",):
        with contextlib.suppress(Unreadable):  # not compressed after all: read as it is
            raw = _inflate(raw, "gzip" if raw[:2] == b"\x1f\x8b" else "deflate")
    return _as_text(raw)


_remembered_token_text = lru_cache(maxsize=65_536)(_token_text)  # the same tokens recur request after request


_REMEMBERED_READING = 4_096  # texts up to this long have their base64 reading remembered (4,096 of them)


def base64_places(where: str, text: str, depth: int, skip: tuple[str, ...] = ()) -> Places:
    """Every base64/base64url token in `text` that decodes to text (or to a compressed body), decoded and read.

    Tokens holding one of `skip` are left out (a template's placeholders: BodyTemplate reads them).
    The reading of a text is remembered: the texts of an assertion (its signature, its certificates)
    recur in every envelope of a caller, whatever else differs.
    """
    if len(text) < 14:  # shorter than any token that can hold an identity
        return []
    if len(text) <= _REMEMBERED_READING:
        return list(_remembered_base64_places(where, text, depth, skip))
    return _base64_places(where, text, depth, skip)


@lru_cache(maxsize=4_096)
def _remembered_base64_places(where: str, text: str, depth: int, skip: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(_base64_places(where, text, depth, skip))


def _base64_places(where: str, text: str, depth: int, skip: tuple[str, ...]) -> Places:
    places: Places = []
    for token in _B64_TOKEN.findall(text):
        if skip and any(s in token for s in skip):
            continue
        decoded = _remembered_token_text(token) if len(token) <= _REMEMBERED_TEXT else _token_text(token)
        if decoded is None:
            continue
        places.append((f"{where} (base64)", decoded))
        places += _content_places(f"{where} (base64)", decoded, _sniff(decoded), depth + 1)
    return places


def _sniff(text: str) -> str:
    stripped = text.lstrip("\ufeff \r\n\t")
    if stripped[:1] in ("{", "["):
        return "application/json"
    if stripped[:1] == "<":
        return "application/xml"
    return "text/plain"


# ---- headers ----


def header_places(headers: Mapping[str, Any]) -> Places:
    """Every header value, percent-decoded, with its credentials and tokens decoded."""
    places: Places = []
    for name, value in headers.items():
        where = f"header {name}"
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        places += [(where, t) for t in percent_decodings(text, False)]
        places += base64_places(where, text, 0)
    return places


# ---- bodies ----


def _inflate(data: bytes, coding: str) -> bytes:
    try:
        if coding in ("gzip", "x-gzip"):
            out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, MAX_DECODED + 1)
        elif coding == "deflate":
            try:
                out = zlib.decompressobj().decompress(data, MAX_DECODED + 1)
            except zlib.error:  # raw deflate, as some stacks send it
                out = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, MAX_DECODED + 1)
        elif coding == "br":
            import brotli  # locust's dependency; the one maintained binding

            out = brotli.decompress(data)
        else:
            raise Unreadable(f"a body with Content-Encoding {coding!r}")
    except (zlib.error, OSError) as exc:
        raise Unreadable(f"a {coding} body that does not decompress ({exc})") from None
    except Exception as exc:
        if type(exc).__name__ == "error":  # brotli.error
            raise Unreadable(f"a br body that does not decompress ({exc})") from None
        raise
    if len(out) > MAX_DECODED:
        raise Unreadable(f"a {coding} body larger than {MAX_DECODED} bytes once decompressed")
    return out


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def body_texts(raw: bytes, charset: str | None) -> list[str]:
    """The body as text, in every reading a server could give it (declared charset, BOM, UTF-8, UTF-16/32)."""
    texts: list[str] = []
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            texts.append(raw[len(bom) :].decode(encoding, "replace"))
            break
    if charset:
        try:
            texts.append(raw.decode(charset, "replace"))
        except LookupError:
            raise Unreadable(f"a body in the unknown charset {charset!r}") from None
    if not texts:
        texts.append(raw.decode("utf-8", "replace"))
    if b"\x00" in raw:
        # NUL bytes: a server could read the body as UTF-16 or UTF-32 even without a BOM
        texts += [raw.decode(enc, "ignore") for enc in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")]
    return list(dict.fromkeys(texts))


def _is_text_bytes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def body_places(body: Any, headers: Mapping[str, Any], depth: int = 0, skip: tuple[str, ...] = ()) -> Places:
    """Every text of a request body, by its Content-Encoding, charset and media type (`skip`: base64_places')."""
    if body is None or body == b"" or body == "":
        return []
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    if not isinstance(body, bytes | str):
        raise Unreadable(f"a streamed or file body ({type(body).__name__})")
    kind, params = media_type(_header(headers, "content-type"))
    if isinstance(body, str):
        texts = [body]
    else:
        raw = body
        coding = (_header(headers, "content-encoding") or "").strip().lower()
        for step in reversed([c.strip() for c in coding.split(",") if c.strip() and c.strip() != "identity"]):
            raw = _inflate(raw, step)
        if not _readable_type(kind) and not (kind == "" and _is_text_bytes(raw)):
            raise Unreadable(f"a body of media type {kind or '(none)'!r} the guard cannot read")
        if kind.startswith("multipart/"):
            return _multipart_places(raw, kind, params, depth)
        texts = body_texts(raw, params.get("charset"))
    places: Places = []
    for text in texts:
        places.append(("body", text))
        places += _content_places("body", text, kind or _sniff(text), depth, skip)
    return places


def _readable_type(kind: str) -> bool:
    return (
        kind.startswith(TEXT_TYPES)
        or kind in JSON_TYPES
        or kind.endswith("+json")
        or kind in XML_TYPES
        or kind.endswith("+xml")
        or kind == FORM_TYPE
        or kind.startswith("multipart/")
    )


def _content_places(where: str, text: str, kind: str, depth: int, skip: tuple[str, ...] = ()) -> Places:
    """What a parser of `kind` reads out of `text` beyond the text itself (which the caller scans)."""
    if depth > MAX_DEPTH:
        raise Unreadable(f"encodings nested more than {MAX_DEPTH} deep")
    places: Places = []
    if kind in JSON_TYPES or kind.endswith("+json"):
        if _JSON_NEEDS_PARSE.search(text):
            places += [(where, t) for t in json_texts(text)]
    elif kind in XML_TYPES or kind.endswith("+xml"):
        # always parsed: entities, character references, CDATA, comments and child elements can all
        # split or hide digits that a receiving stack reads as one value
        places += [(where, t) for t in xml_texts(text)]
    elif kind == FORM_TYPE:
        for name, value in parse_qsl(text, keep_blank_values=True):
            places += [(where, name), (where, value)]
    if "%" in text or (kind == FORM_TYPE and "+" in text):
        places += [(where, t) for t in percent_decodings(text, True)[1:]]
    places += base64_places(where, text, depth, skip)
    for extra_where, extra in list(places):  # tokens inside what the parser read out
        if extra is not text and extra_where == where:
            places += base64_places(where, extra, depth + 1, skip)
    return places


def json_texts(text: str) -> Iterator[str]:
    """The strings, keys and numbers (as integers where integral) of a JSON document; the raw text if not JSON."""
    try:
        document = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, InvalidOperation):
        yield html.unescape(text)
        return
    yield from _walk(document)


def _walk(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Decimal):
        if node.is_finite():
            yield str(node)
            if node == node.to_integral_value() and abs(node.adjusted()) < 64:
                yield str(int(node))
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


_PARSERS = threading.local()


def _xml_parser() -> Any:
    """This thread's XML parser (an lxml parser is not for two threads at once; making one per body costs a third)."""
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        from lxml import etree

        # internal entities are what a receiving parser expands; external ones are never fetched
        parser = etree.XMLParser(resolve_entities="internal", no_network=True, load_dtd=False, huge_tree=False)
        _PARSERS.parser = parser
    return parser


def xml_texts(text: str) -> list[str]:
    """Every text node, attribute value and element's whole text of an XML document (entities resolved), once each.

    One walk over the tree: an element's whole text (its text, its descendants' and their tails, as
    `itertext` joins them across comments and processing instructions) is the run of text pieces
    gathered between its start and its end, so no subtree is walked twice.
    """
    from lxml import etree

    try:
        root = etree.fromstring(text.encode("utf-8"), _xml_parser())
    except etree.XMLSyntaxError:
        return [html.unescape(text)]  # not XML: what a lenient server would read
    pieces: list[str] = []  # the document's text in order: what itertext reads
    texts: dict[str, None] = {}  # ordered and distinct
    if "&" in text:  # entity nodes may remain (external ones, never fetched), which iterwalk does not visit
        _walk_xml_nodes(root, pieces, texts)
        return list(texts)
    starts: list[int] = []  # where each open element's text begins in `pieces`
    for event, node in etree.iterwalk(root, events=("start", "end", "comment", "pi")):
        if event == "start":
            starts.append(len(pieces))
            if node.text:
                pieces.append(node.text)
            for value in node.attrib.values():
                texts[str(value)] = None
            continue
        if event == "end":  # the element's whole text, then its tail (which is its parent's text)
            texts["".join(pieces[starts.pop() :])] = None
            if node.tail:
                texts[node.tail] = None
        if node.tail:  # an element's, a comment's or a processing instruction's
            pieces.append(node.tail)
    return list(texts)


def _walk_xml_nodes(root: Any, pieces: list[str], texts: dict[str, None]) -> None:
    """xml_texts' walk over every kind of node (elements, comments, processing instructions, entities)."""
    stack: list[tuple[Any, int]] = [(root, -1)]  # (node, -1) to open it; (element, first piece) to close it
    while stack:
        node, start = stack.pop()
        if start >= 0:  # the element ends: its whole text, then its tail (which belongs to its parent's)
            texts["".join(pieces[start:])] = None
            if node.tail:
                pieces.append(node.tail)
                texts[node.tail] = None
            continue
        if not isinstance(node.tag, str):  # not an element: only its tail is text
            if node.tail:
                pieces.append(node.tail)
            continue
        stack.append((node, len(pieces)))
        if node.text:
            pieces.append(node.text)
        for value in node.attrib.values():
            texts[str(value)] = None
        stack.extend((child, -1) for child in reversed(node))


def _multipart_places(raw: bytes, kind: str, params: dict[str, str], depth: int) -> Places:
    boundary = params.get("boundary")
    if not boundary:
        raise Unreadable("a multipart body without a boundary")
    head = f'Content-Type: {kind}; boundary="{boundary}"\r\nMIME-Version: 1.0\r\n\r\n'.encode()
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + raw)
    if not message.is_multipart():
        raise Unreadable("a multipart body that does not parse")
    places: Places = []
    for part in message.walk():
        if part.is_multipart():
            continue
        for name, value in part.items():
            places.append((f"multipart header {name}", str(value)))
        payload = part.get_payload(decode=True)  # base64 and quoted-printable undone
        if not isinstance(payload, bytes):
            continue
        part_headers = {"content-type": part.get("content-type", "text/plain")}
        if part.get("content-encoding"):
            part_headers["content-encoding"] = str(part["content-encoding"])
        places += [("multipart part", t) for _, t in body_places(payload, part_headers, depth + 1)]
    return places


# ---- bodies that differ only in their UUIDs ----

# A UUID that is a whole XML text node (a SOAP header's requestId, a resource id): the one part of
# the load path's envelopes that differs from request to request.
_UUID_TEXT_NODE = re.compile(r">([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})<")
_MARKER_PREFIX = "ffffffff-ffff-ffff-ffff-"


def _numbered(prefix: str, letters: str, length: int, i: int) -> str:
    """`prefix` and `i` written in `length` of `letters` (base 5): the i-th placeholder of a kind."""
    written = ""
    for _ in range(length):
        i, digit = divmod(i, 5)
        written = letters[digit] + written
    return prefix + written


def _marker(i: int) -> str:
    """The i-th placeholder UUID: hex letters where a UUID has hex digits, its hyphens where it has them."""
    return _numbered(_MARKER_PREFIX, "abcde", 12, i)


def _with_placeholders(text: str, found: list[re.Match[str]], markers: tuple[str, ...]) -> str:
    """`text` with each match's first group replaced by its placeholder."""
    pieces: list[str] = []
    done = 0
    for marker, m in zip(markers, found, strict=True):
        pieces += (text[done : m.start(1)], marker)
        done = m.end(1)
    pieces.append(text[done:])
    return "".join(pieces)


@dataclass(frozen=True)
class BodyTemplate:
    """The reading of an XML body whose UUID text nodes were replaced by placeholders, for every body like it.

    Every reader of a body (the XML parser, the identity scanner's UUID masking, the base64
    tokenizer) treats a hex character as it treats any other hex character in those places: so a
    body that differs from another only in such UUIDs is read alike, except the base64 tokens that
    hold a UUID, which `places` reads afresh for each body. A template whose placeholders the
    scanner would not mask whole (a UUID run into other hex text) is not `exact`: its bodies are
    read in full.
    """

    markers: tuple[str, ...]
    places: Places  # the placeholder body's reading, without the tokens that hold a placeholder
    marker_tokens: tuple[tuple[str, str, int], ...]  # (where, token with placeholders, depth): decoded per body
    exact: bool
    # specialise's split of `places`, by its placeholders (found once)
    _split: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[list[int], bool]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def read(cls, canonical: bytes, headers: Mapping[str, Any], markers: tuple[str, ...]) -> BodyTemplate:
        """Read the placeholder body (Unreadable as body_places)."""
        places = body_places(canonical, headers, skip=markers)
        raw = canonical.decode("utf-8")
        tokens: dict[tuple[str, str, int], None] = {}
        exact = _masked_whole([text for _, text in places], markers)
        for where, text in places:
            if not any(m in text for m in markers):
                continue
            if where == "body":  # the texts base64_places tokenized, each at its depth
                depth = 0 if text == raw else 1
                for token in _B64_TOKEN.findall(text):
                    if any(m in token for m in markers):
                        tokens[(where, token, depth)] = None
        return cls(markers, places, tuple(tokens), exact)

    def specialise(self, digit_markers: tuple[str, ...], digits: list[str]) -> BodyTemplate:
        """The template of the bodies whose 12-digit text nodes hold `digits` where this one has `digit_markers`.

        Read once for all the bodies alike but for their identities (`digit_template`): the XML parser and
        the base64 tokenizer treat a digit in a text node as they treat the placeholder's letter there,
        so the specialised reading is this one with the digits written in, and the tokens that held
        only digit placeholders decoded now (those that hold a UUID placeholder too stay per body).
        What that reading names is scanned afresh by the guard (every text that held a digit placeholder
        is new); `exact` is judged again on the texts as they now are.
        """
        def written(text: str) -> str:
            for marker, value in zip(digit_markers, digits, strict=True):
                if marker in text:
                    text = text.replace(marker, value)
            return text

        uuid_markers = tuple(m for m in self.markers if m not in digit_markers)
        holding, exact = self._digit_places(digit_markers, uuid_markers)
        places: Places = list(self.places)
        for i in holding:  # only the texts that hold a digit placeholder change
            where, text = places[i]
            places[i] = (where, written(text))
        tokens: dict[tuple[str, str, int], None] = {}
        for where, token, depth in self.marker_tokens:
            token = written(token)
            if any(m in token for m in uuid_markers):
                tokens[(where, token, depth)] = None
                continue
            decoded = _remembered_token_text(token) if len(token) <= _REMEMBERED_TEXT else _token_text(token)
            if decoded is not None:
                places.append((f"{where} (base64)", decoded))
                places += _content_places(f"{where} (base64)", decoded, _sniff(decoded), depth + 1)
        # judged again: the texts that changed, and the decoded tokens (the rest were judged once)
        exact = exact and _masked_whole([places[i][1] for i in holding], uuid_markers)
        exact = exact and _masked_whole([text for _, text in places[len(self.places) :]], uuid_markers)
        return BodyTemplate(uuid_markers, places, tuple(tokens), exact)

    def _digit_places(self, digit_markers: tuple[str, ...], uuid_markers: tuple[str, ...]) -> tuple[list[int], bool]:
        """(which of `places` hold a digit placeholder, whether the UUID placeholders of the others are masked
        whole): the same for every specialisation, found once."""
        key = (digit_markers, uuid_markers)
        known = self._split.get(key)
        if known is None:
            holding = [i for i, (_, text) in enumerate(self.places) if any(m in text for m in digit_markers)]
            held = set(holding)
            others = [text for i, (_, text) in enumerate(self.places) if i not in held]
            known = (holding, _masked_whole(others, uuid_markers))
            self._split[key] = known
        return known

    def places_of(self, uuids: list[str]) -> Places:
        """The reading of the body whose UUIDs (in order) the placeholders stand for."""
        extra = self.extra_places(uuids)
        return self.places + extra if extra else self.places

    def extra_places(self, uuids: list[str]) -> Places:
        """What the reading of the body whose UUIDs the placeholders stand for adds to the template's `places`.

        A UUID's characters are all base64 characters, so the tokens that hold it are where the
        template's hold its placeholder: those are decoded, with the UUID, for this body.
        """
        extra: Places = []
        decodings: dict[str, str | None] = {}  # a token read at two depths is decoded once
        for where, token, depth in self.marker_tokens:
            for marker, uuid in zip(self.markers, uuids, strict=True):
                token = token.replace(marker, uuid)
            if token not in decodings:
                decodings[token] = _token_text(token)
            decoded = decodings[token]
            if decoded is not None:
                extra.append((f"{where} (base64)", decoded))
                extra += _content_places(f"{where} (base64)", decoded, _sniff(decoded), depth + 1)
        return extra


_MARKERS = tuple(_marker(i) for i in range(8))


def _masked_whole(texts: list[str], markers: tuple[str, ...]) -> bool:
    """Whether the identity scanner masks every placeholder UUID in `texts` whole (as it would the UUID)."""
    from rxverify.safety.identity import mask_uuids, normalise

    for text in texts:
        if not any(m in text for m in markers):
            continue
        masked = mask_uuids(normalise(text))
        for m in markers:
            at = text.find(m)
            while at >= 0:
                if masked[at : at + len(m)] != "#" * len(m):
                    return False
                at = text.find(m, at + 1)
    return True


_XML_DECLARED_ENCODING = re.compile(r"""\A<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


def utf8_xml(body: bytes, text: str) -> bool:
    """Whether an XML body (`text`: its bytes, latin-1) is UTF-8 and its declaration, if any, says so."""
    if not text.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    declared = _XML_DECLARED_ENCODING.match(text)
    return declared is None or declared.group(1).lower() in ("utf-8", "utf8")


def uuid_template(text: str) -> tuple[str, tuple[str, ...], list[str]] | None:
    """(the body with its UUID text nodes replaced by placeholders, the placeholders, the UUIDs), or None.

    None when the body is not plainly written: entity or character references, comments, CDATA
    or a DOCTYPE, percent signs or NUL bytes (a reader could join or decode a UUID's characters
    with its neighbours'), or placeholder-like text outside the UUIDs.
    """
    # a placeholder must be found only where a UUID was: a marker is found whole (its run of eight f's,
    # then a hyphen, cannot start earlier in a run of f's), so only the marker prefix itself could mislead:
    # anywhere, a UUID that starts with it too (the placeholders of a body's tokens are replaced in turn)
    if "&" in text or "<!" in text or "%" in text or "\x00" in text or _MARKER_PREFIX in text:
        return None
    found = list(_UUID_TEXT_NODE.finditer(text))
    if not found:
        return None
    markers = _MARKERS[: len(found)] if len(found) <= len(_MARKERS) else tuple(_marker(i) for i in range(len(found)))
    return _with_placeholders(text, found, markers), markers, [m.group(1) for m in found]


# A 12-digit text node (a personnummer in an envelope): the part of the load path's envelopes that
# differs from patient to patient. Its placeholder: letters only (no hex digit, so no UUID masking
# reaches into one), base64 characters as digits are, as long as the digits.
_DIGIT_TEXT_NODE = re.compile(r">([0-9]{12})<")
_DIGIT_MARKER_PREFIX = "zqzqzq"


def _digit_marker(i: int) -> str:
    return _numbered(_DIGIT_MARKER_PREFIX, "ghijk", 6, i)


def digit_template(canonical: str) -> tuple[str, tuple[str, ...], list[str]] | None:
    """(`canonical` with its 12-digit text nodes replaced by placeholders, the placeholders, the digits), or None.

    `canonical` is a body `uuid_template` made (plainly written: no references, comments, CDATA,
    percent signs or NUL bytes); None when it has no such node, or the placeholders' prefix anywhere.
    """
    if _DIGIT_MARKER_PREFIX in canonical:
        return None
    found = list(_DIGIT_TEXT_NODE.finditer(canonical))
    if not found or len(found) > 5**6:
        return None
    markers = tuple(_digit_marker(i) for i in range(len(found)))
    return _with_placeholders(canonical, found, markers), markers, [m.group(1) for m in found]


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UUID_LENGTH = 36
V = TypeVar("V")


class TemplateIndex(Generic[V]):
    """What is known of each body template (`uuid_template`), found for a body without reading it.

    A body of a known template is that template's bytes with UUIDs where its placeholders are, so it
    is found by its length and last bytes (the tail after its last UUID), then compared with the
    template piece by piece (bytes compared, nothing decoded) and its UUID places checked to hold
    UUIDs that do not start with the placeholder prefix. Such a body is the body `uuid_template`
    reads into that template and those UUIDs: outside the UUID places its bytes are the template's,
    which held no other UUID text node, no reference, comment, percent sign, NUL or placeholder
    prefix; a UUID place holds hex digits and hyphens only, between the template's ">" and "<".
    """

    TAIL = 128  # bytes after the last UUID that key a template (a template with fewer is found by reading)
    BUCKET = 32  # templates remembered under one key (same length and tail: other callers, other patients)

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._values: dict[tuple[str | None, str], V] = {}
        self._by_tail: dict[tuple[str | None, int, bytes], list[tuple[tuple[tuple[int, bytes], ...], V]]] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, key: tuple[str | None, str]) -> V:
        return self._values[key]

    def values(self) -> list[V]:
        """What is known of each template."""
        return list(self._values.values())

    def get(self, content_type: str | None, canonical: str) -> V | None:
        """What is known of the template `canonical` (a body's bytes, latin-1, placeholders for its UUIDs)."""
        return self._values.get((content_type, canonical))

    def add(self, content_type: str | None, canonical: str, markers: tuple[str, ...], value: V) -> None:
        """Remember `value` for a template; the memory starts over when it holds `limit` templates."""
        if len(self._values) >= self.limit:
            self._values.clear()
            self._by_tail.clear()
        self._values[(content_type, canonical)] = value
        raw = canonical.encode("latin-1")
        pieces: list[tuple[int, bytes]] = []
        done = 0
        for marker in markers:  # each placeholder occurs once, in order
            at = canonical.index(marker, done)
            pieces.append((done, raw[done:at]))
            done = at + _UUID_LENGTH
        if len(raw) - done < self.TAIL:
            return
        pieces.append((done, raw[done:]))
        bucket = self._by_tail.setdefault((content_type, len(raw), raw[-self.TAIL :]), [])
        if len(bucket) >= self.BUCKET:
            del bucket[0]
        bucket.append((tuple(pieces), value))

    def match(self, content_type: str | None, body: bytes) -> tuple[V, list[str]] | None:
        """(what is known of the template `body` reads into, its UUIDs in order), or None when none is known."""
        bucket = self._by_tail.get((content_type, len(body), body[-self.TAIL :]))
        if not bucket:
            return None
        for pieces, value in bucket:
            if not all(body.startswith(piece, at) for at, piece in pieces):
                continue
            uuids = [
                body[at + len(piece) : at + len(piece) + _UUID_LENGTH].decode("latin-1") for at, piece in pieces[:-1]
            ]
            if all(_UUID.fullmatch(u) and not u.startswith(_MARKER_PREFIX) for u in uuids):
                return value, uuids
        return None


def request_places(url: str, headers: Mapping[str, Any], body: Any) -> tuple[Places, Places]:
    """(the texts that can name patients: URL and body; the headers' texts), decoded; Unreadable if a part is not."""
    return url_places(url) + body_places(body, headers), header_places(headers)

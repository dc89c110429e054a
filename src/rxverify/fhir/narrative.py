"""The rules of R4 narrative.html for Narrative.div (what the invariants txt-1 and txt-2 ask of htmlChecks()).

- json.html: "The xhtml root element needs to be a <div> in the xhtml namespace"; narrative.html:
  the JSON string holds the div itself ("<?xml ...><div>text</div>" is not legal).
- "The XHTML is contained in general XML so there is no support for HTML entities like &nbsp;
  or &copy; etc. Unicode characters SHALL be used instead": it must be well-formed XML with
  only XML's own entities.
- "The contents of the div element are an XHTML fragment that SHALL contain only the basic HTML
  formatting elements described in chapters 7-11 (except section 4 of chapter 9) and 15 of the
  HTML 4.0 standard, <a> elements (either name or href), images and internally contained style
  attributes. The XHTML content SHALL NOT contain a head, a body element, external stylesheet
  references, deprecated elements, scripts, forms, base/link/xlink, frames, iframes, objects or
  event related attributes (e.g. onClick)." (txt-1)
- "The div element SHALL have some non-whitespace content (text or an image)." (txt-2)

The element list below is HTML 4.0 chapters 7 (div, span, headings, address), 8 (bdo), 9 without
9.4 (phrase elements, quotations, sub/sup, p, br, pre; not ins/del), 10 (lists, without the
deprecated dir and menu), 11 (tables) and 15 (tt i b big small hr; not the deprecated font,
basefont, center, s, strike, u), plus a and img.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import lru_cache

XHTML_NS = "http://www.w3.org/1999/xhtml"
ALLOWED_ELEMENTS = frozenset(
    {
        "div", "span", "h1", "h2", "h3", "h4", "h5", "h6", "address", "bdo",
        "em", "strong", "dfn", "code", "samp", "kbd", "var", "cite", "abbr", "acronym",
        "blockquote", "q", "sub", "sup", "p", "br", "pre",
        "ul", "ol", "li", "dl", "dt", "dd",
        "table", "caption", "thead", "tfoot", "tbody", "colgroup", "col", "tr", "th", "td",
        "tt", "i", "b", "big", "small", "hr",
        "a", "img",
    }
)  # fmt: skip
# Attributes of those elements in HTML 4.0 (core, i18n, the elements' own); no event attributes.
ALLOWED_ATTRIBUTES = frozenset(
    {
        "id", "class", "style", "title", "lang", "dir", "xml:lang",
        "href", "name", "hreflang", "type", "rel", "rev", "charset", "shape", "coords", "tabindex", "accesskey",
        "src", "alt", "longdesc", "width", "height", "border", "hspace", "vspace", "usemap", "ismap", "align",
        "summary", "frame", "rules", "cellspacing", "cellpadding", "abbr", "axis", "headers", "scope", "rowspan",
        "colspan", "char", "charoff", "valign", "span", "cite", "datetime", "start", "value", "compact", "clear",
        "noshade", "size", "nowrap", "bgcolor",
    }
)  # fmt: skip
_ENTITY = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)([A-Za-z][A-Za-z0-9]*);")


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return None, tag


def _attribute_name(name: str) -> str:
    namespace, local = _local(name)
    if namespace == "http://www.w3.org/XML/1998/namespace":
        return f"xml:{local}"
    return local if namespace is None else f"{{{namespace}}}{local}"


RULES = "txt-1"  # the elements, attributes and form of the XHTML
CONTENT = "txt-2"  # some non-whitespace content


@lru_cache(maxsize=512)
def problems(div: str) -> tuple[tuple[str, str], ...]:
    """(rule, what) for each way an xhtml value breaks the narrative rules; empty when it meets them.

    R4 gives txt-1 and txt-2 the same expression, htmlChecks(); their texts split the rules
    (txt-1: "only the basic html formatting elements and attributes", txt-2: "some
    non-whitespace content"), and each finding names the one it breaks.
    """
    if div.lstrip().startswith(("<?", "<!")):
        return ((RULES, "the narrative is the <div> itself: no XML declaration, DOCTYPE or processing instruction"),)
    entity = _ENTITY.search(div)
    if entity:
        return ((RULES, f"HTML entity &{entity.group(1)}; is not XML: use the Unicode character"),)
    try:
        root = ET.fromstring(div)
    except ET.ParseError as exc:
        return ((RULES, f"not well-formed XHTML ({exc})"),)
    namespace, name = _local(root.tag)
    if name != "div" or namespace != XHTML_NS:
        return ((RULES, f"the root element must be a div in the namespace {XHTML_NS}, found {root.tag}"),)
    found: list[str] = []
    has_content = bool((root.text or "").strip())
    for element in root.iter():
        namespace, name = _local(element.tag)
        if namespace != XHTML_NS:
            found.append(f"element {element.tag} is not in the XHTML namespace")
        elif name not in ALLOWED_ELEMENTS:
            found.append(f"element <{name}> is not allowed in narrative")
        for attribute in element.attrib:
            shown = _attribute_name(attribute)
            if shown.lower().startswith("on"):
                found.append(f"event attribute {shown} on <{name}> is not allowed")
            elif shown not in ALLOWED_ATTRIBUTES:
                found.append(f"attribute {shown} on <{name}> is not allowed")
        if element is not root:
            has_content = has_content or name == "img" or bool((element.text or "").strip())
        has_content = has_content or bool((element.tail or "").strip())
    href_problems = [
        f"<a href> with a script URL ({element.get('href')})"
        for element in root.iter(f"{{{XHTML_NS}}}a")
        if (element.get("href") or "").strip().lower().startswith(("javascript:", "vbscript:"))
    ]
    found += href_problems
    out = [(RULES, text) for text in found]
    if not has_content:
        out.append((CONTENT, "the div has no non-whitespace content (text or an image)"))
    return tuple(out)

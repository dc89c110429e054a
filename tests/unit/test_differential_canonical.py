"""The differential's canonical reading of SOAP answers: blind to prefixes, whitespace and attribute
order; it sees local names, namespaces and the order of children."""

from __future__ import annotations

from rxverify.contracts.riv import load_riv
from rxverify.differential import Exchange, Noise, aliased, canonical, compare
from rxverify.legacy.client import LegacyClient

from .conftest import CONTRACTS

NS = "urn:riv:se.apotekensservice:axs:HamtaExpeditionsIdResponder:1"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def _answer(body: str, env_prefix: str = "soap") -> object:
    client = LegacyClient(None, "", load_riv(CONTRACTS), None)
    e = env_prefix
    xml = f'<{e}:Envelope xmlns:{e}="{ENV}"><{e}:Body>{body}</{e}:Body></{e}:Envelope>'
    return canonical(client.read("HamtaExpeditionsId", 200, "text/xml", xml.encode()))


def _differ(a: object, b: object) -> list[str]:
    return [d.path for d in compare([Exchange("s", "HamtaExpeditionsId", 200, a)],
                                    [Exchange("s", "HamtaExpeditionsId", 200, b)], Noise(frozenset()))]


def test_prefixes_whitespace_and_attribute_order_are_not_differences() -> None:
    one = _answer(f'<r:HamtaExpeditionsIdResponse xmlns:r="{NS}" a="1" b="2"><r:expeditionsId>e1</r:expeditionsId>'
                  "<r:expeditionsId>e2</r:expeditionsId></r:HamtaExpeditionsIdResponse>")
    other = _answer(f'\n  <HamtaExpeditionsIdResponse b="2" a="1" xmlns="{NS}">\n'
                    "    <expeditionsId>e1</expeditionsId>\n    <expeditionsId>e2</expeditionsId>\n"
                    "  </HamtaExpeditionsIdResponse>\n", env_prefix="s")
    assert _differ(one, other) == []


def test_a_namespace_a_name_and_an_order_are_differences() -> None:
    base = f'<r:HamtaExpeditionsIdResponse xmlns:r="{NS}"><r:expeditionsId>e1</r:expeditionsId><r:x>y</r:x>' \
           "</r:HamtaExpeditionsIdResponse>"
    assert _differ(_answer(base), _answer(base.replace(NS, NS[:-1] + "2"))) == ["@ns"]
    assert "expeditionsIdn" in _differ(_answer(base), _answer(base.replace("expeditionsId>", "expeditionsIdn>")))
    first, second = "<r:expeditionsId>e1</r:expeditionsId>", "<r:x>y</r:x>"
    swapped = base.replace(first + second, second + first)
    assert _differ(_answer(base), _answer(swapped)) == ["#order"]


def test_no_element_that_may_repeat_is_a_length_of_zero() -> None:
    none = _answer(f'<r:HamtaExpeditionsIdResponse xmlns:r="{NS}"/>')
    two = _answer(f'<r:HamtaExpeditionsIdResponse xmlns:r="{NS}"><r:expeditionsId>e1</r:expeditionsId>'
                  "<r:expeditionsId>e2</r:expeditionsId></r:HamtaExpeditionsIdResponse>")
    assert none["expeditionsId"] == []
    [length] = [d for d in compare([Exchange("s", "HamtaExpeditionsId", 200, none)],
                                   [Exchange("s", "HamtaExpeditionsId", 200, two)], Noise(frozenset()))
                if d.path == "expeditionsId#len"]
    assert (length.old, length.new) == (0, 2)


def test_ids_compared_by_their_place_show_a_changed_order() -> None:
    """Ids differ between any two platforms, so raw they are learned as noise and a list in another order
    goes unseen; aliased by their place in the run (`<ordination 1>`), the order is a difference."""
    def lf(*ids: str) -> list[Exchange]:
        return [Exchange("s", "HamtaLakemedelsforteckning", 200, {"post": [{"ordinationsId": i} for i in ids]})]

    old, secondary, new = lf("a1", "a2"), lf("b1", "b2"), lf("c2", "c1")  # new lists them the other way round
    raw = Noise(frozenset())
    raw.learn(old, secondary)
    assert compare(old, new, raw) == []  # what the differential saw before: the order hidden as noise
    places = ({"a1": "<ordination 1>", "a2": "<ordination 2>"}, {"b1": "<ordination 1>", "b2": "<ordination 2>"},
              {"c1": "<ordination 1>", "c2": "<ordination 2>"})
    old, secondary, new = ([Exchange(e.step, e.operation, e.status, aliased(e.body, a)) for e in lane]
                           for lane, a in zip((old, secondary, new), places, strict=True))
    noise = Noise(frozenset())
    noise.learn(old, secondary)
    assert [d.path for d in compare(old, new, noise)] == ["post[0].ordinationsId", "post[1].ordinationsId"]
    assert compare(old, secondary, noise) == []

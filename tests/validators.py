"""Feed validators used by the tests: RFC 4287 RELAX NG + its Schematron rules (evaluated as
XPath; they use the pre-ISO namespace lxml's isoschematron does not read), JSON Feed 1.1 JSON
Schema with format checks, and feedparser."""

from __future__ import annotations

import functools
import json
from typing import Any

import feedparser
import jsonschema
from lxml import etree

from conftest import DATA

ATOM_NS = {"atom": "http://www.w3.org/2005/Atom"}
OLD_SCHEMATRON = "{http://www.ascc.net/xml/schematron}"


@functools.cache
def _atom_schema() -> tuple[etree.RelaxNG, list[tuple[str, str, str]]]:
    tree = etree.parse(str(DATA / "atom.rng"))
    rules = [(rule.get("context"), a.get("test"), (a.text or "").strip())
             for rule in tree.iter(f"{OLD_SCHEMATRON}rule") for a in rule]
    return etree.RelaxNG(tree), rules


def validate_atom(body: bytes) -> None:
    schema, rules = _atom_schema()
    doc = etree.fromstring(body)
    if not schema.validate(doc):
        raise AssertionError(f"Atom RELAX NG: {schema.error_log}")
    assert rules, "no Schematron rules were read"
    for context, test, message in rules:
        for node in doc.xpath(f"//{context}" if doc.tag != "{%s}%s" % (
                ATOM_NS["atom"], context.split(":")[1]) else f"/{context}", namespaces=ATOM_NS):
            if not node.xpath(f"boolean({test})", namespaces=ATOM_NS):
                raise AssertionError(f"Atom Schematron: {message}")


@functools.cache
def _json_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((DATA / "jsonfeed-1.1.schema.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def validate_json_feed(body: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(body)
    errors = list(_json_validator().iter_errors(data))
    if errors:
        raise AssertionError("JSON Feed schema: " + "; ".join(e.message for e in errors[:5]))
    return data


def parse_ok(body: bytes) -> Any:
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed

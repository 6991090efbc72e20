#!/usr/bin/env python3
"""Check a pytest JUnit XML report (``--junitxml``) for unexpected skips.

Lists every skipped test with its reason and exits 1 when a skip reason does not start
with an allowed prefix, or when no test actually ran. Expected failures (xfail) are
listed but not judged. Stdlib only.

Usage: python .ci/check_skips.py report.xml
"""

from __future__ import annotations

import argparse
import ast
import sys
import xml.etree.ElementTree as ET

ALLOWED_PREFIXES = ("no GPU", "no full TensorRT", "no nvcc", "no ../shared")


def _strip_skipped(text: str) -> str:
    text = text.strip()
    if text.startswith("Skipped:"):
        text = text[len("Skipped:") :].strip()
    return text


def skip_reason(elem: ET.Element) -> str:
    """Return the reason of a ``<skipped>`` element, without a leading ``Skipped:``.

    A module-level ``pytest.skip`` is written as ``message="collection skipped"`` with the
    text ``('path', line, 'Skipped: reason')``; the reason is taken from that tuple.
    """
    message = elem.get("message") or ""
    body = (elem.text or "").strip()
    if message == "collection skipped" and body:
        try:
            parsed = ast.literal_eval(body)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, tuple) and parsed and isinstance(parsed[-1], str):
            return _strip_skipped(parsed[-1])
        return _strip_skipped(body)
    if not message and body:
        # Fall back to the body, which pytest writes as "path:line: reason".
        parts = body.split(": ", 1)
        return _strip_skipped(parts[1] if len(parts) == 2 else body)
    return _strip_skipped(message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit_xml", help="JUnit XML file written by pytest --junitxml")
    args = parser.parse_args(argv)

    try:
        root = ET.parse(args.junit_xml).getroot()
    except (OSError, ET.ParseError) as exc:
        print(f"error: cannot read {args.junit_xml}: {exc}", file=sys.stderr)
        return 2

    total = skipped = bad = xfailed = 0
    for case in root.iter("testcase"):
        total += 1
        elem = case.find("skipped")
        if elem is None:
            continue
        cls = case.get("classname") or ""
        test_id = f"{cls}::{case.get('name', '?')}" if cls else case.get("name", "?")
        reason = skip_reason(elem)
        if elem.get("type") == "pytest.xfail":
            xfailed += 1
            print(f"XFAIL {test_id}: {reason}")
            continue
        skipped += 1
        ok = reason.startswith(ALLOWED_PREFIXES)
        if not ok:
            bad += 1
        print(f"SKIP  {test_id}: {reason}" + ("" if ok else "  <-- NOT ALLOWED"))

    ran = total - skipped
    status = "allowed" if bad == 0 else f"{bad} NOT allowed"
    extra = f", {xfailed} xfailed" if xfailed else ""
    print(f"{total} tests, {skipped} skipped ({status}){extra}")

    rc = 0
    if bad:
        allowed = ", ".join(repr(p) for p in ALLOWED_PREFIXES)
        print(f"FAIL: {bad} skip reason(s) do not start with one of {allowed}")
        rc = 1
    if ran == 0:
        print("FAIL: report shows 0 tests run")
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""docs/aws-behaviour.md: its section numbers exist wherever code, tests and lessons cite them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "aws-behaviour.md"
CITATION = re.compile(r"aws-behaviour\.md\s+((?:§\s?\d+(?:\.\d+)?a?(?:[-–]\d+(?:\.\d+)?)?"
                      r"(?:,?\s*(?:and\s+)?)?)+)")


def _sections() -> set[str]:
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?a?)\.? ", DOC.read_text(), re.MULTILINE))


def test_the_doc_keeps_the_shared_section_numbers() -> None:
    sections = _sections()
    assert {"1", "2", "3", "4", "5", "6", "7", "8"} <= sections
    assert {"1.1", "1.2", "1.5", "1.7", "2.2", "2.3", "3.1", "3.2", "3.3", "3.4", "4.1", "4.2",
            "4.3", "4.3a", "4.4", "6.3", "7.2", "7.4"} <= sections


def test_every_citation_names_an_existing_section() -> None:
    sections = _sections()
    cited: dict[str, set[str]] = {}
    for path in [*ROOT.glob("helpers/**/*.py"), *ROOT.glob("tests/*.py"),
                 *ROOT.glob("solutions/*.ipynb"), ROOT / "README.md"]:
        for match in CITATION.finditer(path.read_text()):
            for number in re.findall(r"§\s?(\d+(?:\.\d+)?a?)", match[1]):
                cited.setdefault(number, set()).add(path.name)
    assert cited, "no citation found: the pattern is wrong"
    missing = {number: sorted(files) for number, files in cited.items()
               if number not in sections}
    assert missing == {}


def test_every_link_reference_used_is_defined() -> None:
    text = DOC.read_text()
    defined = set(re.findall(r"^\[([a-z0-9-]+)\]: https://", text, re.MULTILINE))
    used = set(re.findall(r"\[([a-z0-9-]+)\](?!:)", text))
    assert used <= defined

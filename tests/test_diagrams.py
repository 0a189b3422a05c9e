"""Diagrams: Mermaid for JupyterLab, the same picture as SVG for exports (helpers.diagrams)."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

from helpers.diagrams import Flowchart, SequenceDiagram
from helpers.display import Redactor
from helpers.gateway.display import sequence_diagram
from helpers.gateway.eventlog import EventLog

ROOT = Path(__file__).resolve().parents[1]


def _alice_to_bob() -> EventLog:
    """The log of lesson 05's first push: Alice's message makes a function push to Bob."""
    log = EventLog()
    log.record(0, "message", "A", route="sendmessage", body='{"data": "hi"}', request_id="r",
               function="chat-sendmessage")
    log.record(0, "send", "B", via="push", body="alice: hi")
    log.record(0, "invoke", "A", route="sendmessage", function="chat-sendmessage", outcome="ok",
               result={"statusCode": 200}, logs=[], error=None)
    return log


def test_a_push_is_drawn_as_the_functions_call_then_the_frame_before_it_returns():
    redactor = Redactor()
    redactor.name("A", "alice")
    redactor.name("B", "bob")
    source = sequence_diagram(_alice_to_bob().entries(), redactor=redactor,
                              title="sendmessage: Alice to Bob").mermaid()
    assert source.splitlines() == [
        "sequenceDiagram",
        "    title sendmessage: Alice to Bob",
        "    participant c1 as alice",
        "    participant c2 as bob",
        "    participant gw as API Gateway",
        "    participant fn1 as λ chat-sendmessage",
        '    c1->>gw: {"data": "hi"}',
        "    gw->>fn1: sendmessage event",
        "    fn1->>gw: post_to_connection(bob)",
        "    gw-->>c2: alice: hi (pushed)",
        "    fn1-->>gw: returns statusCode 200",
    ]


def test_a_push_from_outside_any_invocation_comes_from_your_code():
    log = EventLog()
    log.record(0, "send", "B", via="push", body="a note")
    log.record(0, "manage", "C", op="post", status=410)
    diagram = sequence_diagram(log.entries(), redactor=Redactor())
    assert diagram.participants["you"] == "your code"
    assert "    you->>gw: post_to_connection(conn-2)" in diagram.mermaid()
    assert "    gw--xyou: 410 GoneException" in diagram.mermaid()


def test_display_bundle_gives_jupyterlab_mermaid_and_exports_svg():
    bundle = sequence_diagram(_alice_to_bob().entries(), redactor=Redactor())._repr_mimebundle_()
    assert set(bundle) == {"text/vnd.mermaid", "image/svg+xml", "text/plain"}
    assert bundle["text/plain"] == bundle["text/vnd.mermaid"]
    svg = ET.fromstring(bundle["image/svg+xml"])  # well-formed XML
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert texts[:4] == ["conn-1", "conn-2", "API Gateway", "λ chat-sendmessage"]
    assert "alice: hi (pushed)" in texts


def test_labels_are_escaped_and_safe_for_mermaid():
    diagram = SequenceDiagram(title="a: <b> & c")
    diagram.participant("x", "x")
    diagram.participant("y", "y")
    diagram.arrow("call", "x", "y", 'say "<hi>"; #1')
    assert "x->>y: say \"<hi>\", 1" in diagram.mermaid()
    ET.fromstring(diagram.svg())


def test_flowchart_draws_rows_and_labelled_arrows():
    chart = Flowchart(rows=[["route", "integration", "function"]],
                      edges=[("route", "integration", "target"), ("integration", "function", "")])
    assert chart.mermaid().splitlines()[1:] == [
        '    n0["route"]', '    n1["integration"]', '    n2["function"]',
        "    n0 -->|target| n1", "    n1 --> n2"]
    svg = ET.fromstring(chart.svg())
    assert len(list(svg.iter("{http://www.w3.org/2000/svg}line"))) == 2


@pytest.mark.parametrize("folder", ["solutions", "notebooks"])
def test_no_markdown_cell_needs_mermaid_from_the_network(folder):
    """A ```mermaid fence in Markdown renders in JupyterLab only; exports load Mermaid from a
    CDN. Diagrams come from `helpers.diagrams` instead, which carry their own SVG."""
    fenced = [f"{path.name} cell {i}" for path in sorted((ROOT / folder).glob("*.ipynb"))
              for i, cell in enumerate(json.loads(path.read_text())["cells"])
              if "```mermaid" in "".join(cell["source"])]
    assert fenced == []


def test_html_export_of_lesson_05_draws_its_diagram_offline():
    from nbconvert import HTMLExporter

    notebook = nbformat.read(ROOT / "solutions" / "05_pushing_messages.ipynb", as_version=4)
    html, _ = HTMLExporter().from_notebook_node(notebook)
    images = re.findall(r'data-mime-type="image/svg\+xml".*?src="data:image/svg\+xml;base64,'
                        r'([^"]+)"', html, flags=re.S)
    assert len(images) == 1
    assert "post_to_connection(bob)" in base64.b64decode(images[0]).decode()
    assert 'class="mermaid"' not in html  # nothing for the CDN script to draw


def test_log_table_shows_each_line_of_a_traceback():
    from helpers.gateway.display import event_table

    log = EventLog()
    log.record(0, "invoke", "A", route="$default", function="boom", outcome="error",
               error="KeyError: 'x'", result=None, logs=[
                   "START RequestId: 1", "[ERROR] KeyError: 'x'\nTraceback (most recent call "
                   'last):\n  File "/var/task/lambda_function.py", line 5, in lambda_handler',
                   "END RequestId: 1"])
    detail = event_table(log.entries(), redactor=Redactor(), logs=True).rows[0][2]
    assert detail.splitlines()[1:] == [
        "    [ERROR] KeyError: 'x'", "    Traceback (most recent call last):",
        '      File "/var/task/lambda_function.py", line 5, in lambda_handler']

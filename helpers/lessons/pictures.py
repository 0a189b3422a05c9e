"""The series' fixed pictures: what a WebSocket API is made of, and how its parts connect.

Drawn with `helpers.diagrams`, so JupyterLab shows Mermaid and exports show the same SVG.
"""

from __future__ import annotations

from helpers.diagrams import Flowchart, SequenceDiagram


def architecture() -> SequenceDiagram:
    """A chat backend on AWS, one message's round trip: who talks to whom, in order."""
    d = SequenceDiagram(title="A WebSocket chat on AWS")
    for ident, label in [("a", "client A"), ("gw", "API Gateway"), ("fn", "Lambda function"),
                         ("db", "DynamoDB table"), ("b", "client B")]:
        d.participant(ident, label)
    d.arrow("call", "a", "gw", "connect (wss://.../dev)")
    d.arrow("call", "gw", "fn", "$connect event")
    d.arrow("call", "fn", "db", "put_item(connectionId)")
    d.arrow("reply", "gw", "a", "101: the socket is open")
    d.arrow("call", "a", "gw", '{"action": "sendmessage", ...}')
    d.arrow("call", "gw", "fn", "sendmessage event")
    d.arrow("call", "fn", "db", "scan() / query(): who is here?")
    d.arrow("call", "fn", "gw", "post_to_connection(B)  (@connections)")
    d.arrow("reply", "gw", "b", "the message, pushed")
    return d


def api_parts() -> Flowchart:
    """What `create_api` & co. build: routes point at integrations, integrations at
    functions; a deployment freezes them, a stage serves a deployment at a URL."""
    return Flowchart(
        title="The parts of a WebSocket API",
        rows=[["route ($connect, sendmessage, ...)", "integration (AWS_PROXY)",
               "Lambda function"],
              ["stage (dev)", "deployment (a snapshot)", "routes and integrations"]],
        edges=[("route ($connect, sendmessage, ...)", "integration (AWS_PROXY)",
                "Target"),
               ("integration (AWS_PROXY)", "Lambda function", "IntegrationUri"),
               ("stage (dev)", "deployment (a snapshot)", "DeploymentId"),
               ("deployment (a snapshot)", "routes and integrations", "copies")],
    )

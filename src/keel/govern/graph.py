"""The lineage graph: typed nodes (a request, a prediction, a deployment, a model version, a run, a dataset version,
a raw source, an alias) joined by named relations, as the lineage queries return it.

>>> g = LineageGraph()
>>> root = g.add("dataset_version", "orders@2", "orders@2", rows=10)
>>> parent = g.add("dataset_version", "orders@1", "orders@1")
>>> g.link(root, parent, "derived from")
>>> g.depths() == {root: 0, parent: 1}
True
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NODE_KINDS", "Edge", "LineageGraph", "Node"]

NODE_KINDS: tuple[str, ...] = (
    "request", "prediction", "deployment", "deployment_change", "alias", "model_version", "run", "dataset_version",
    "source", "label_project", "assessment", "privacy_spend",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Node:
    """One thing in the lineage: ``key`` (``kind:id``) is unique in its graph; ``attrs`` are JSON values."""

    kind: str
    id: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The node's key in its graph, ``"<kind>:<id>"`` (e.g. ``"run:3f2a..."``)."""
        return f"{self.kind}:{self.id}"

    def to_json(self) -> dict[str, Any]:
        """The node as JSON-ready data: key, kind, id, label and attrs."""
        return {"key": self.key, "kind": self.kind, "id": self.id, "label": self.label, "attrs": self.attrs}


@dataclass(frozen=True, slots=True)
class Edge:
    """``source`` -> ``target`` (node keys), read as "source <relation> target": "model_version trained on dataset"."""

    source: str
    target: str
    relation: str

    def to_json(self) -> dict[str, str]:
        """The edge as JSON-ready data: source, target and relation."""
        return {"source": self.source, "target": self.target, "relation": self.relation}


class LineageGraph:
    """Nodes by key (insertion order kept) and edges; the first node added is the root the queries start from."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self._edge_set: set[tuple[str, str, str]] = set()

    @property
    def root(self) -> str | None:
        """The key of the first node added, where the queries start; None for an empty graph."""
        return next(iter(self.nodes), None)

    def add(self, kind: str, id: str, label: str, /, **attrs: Any) -> str:
        """Add a node (a second add of the same key merges its attrs into the first) and return its key."""
        node = Node(kind, str(id), label, dict(attrs))
        existing = self.nodes.get(node.key)
        if existing is not None:
            existing.attrs.update({k: v for k, v in attrs.items() if k not in existing.attrs})
            return existing.key
        self.nodes[node.key] = node
        return node.key

    def link(self, source: str, target: str, relation: str) -> None:
        """Add ``source -> target`` once (both must be nodes of this graph)."""
        if source not in self.nodes or target not in self.nodes:
            raise KeyError(f"no node {source if source not in self.nodes else target!r} in the graph")
        if (source, target, relation) not in self._edge_set:
            self._edge_set.add((source, target, relation))
            self.edges.append(Edge(source, target, relation))

    def of_kind(self, kind: str) -> list[Node]:
        """The nodes of one kind (``"run"``, ``"dataset_version"``, ...), in the order they were added."""
        return [n for n in self.nodes.values() if n.kind == kind]

    def targets(self, key: str, relation: str | None = None) -> list[Node]:
        """The nodes ``key`` points to (by ``relation`` when given), in the order they were linked."""
        return [self.nodes[e.target] for e in self.edges if e.source == key and relation in (None, e.relation)]

    def sources(self, key: str, relation: str | None = None) -> list[Node]:
        """The nodes pointing to ``key``."""
        return [self.nodes[e.source] for e in self.edges if e.target == key and relation in (None, e.relation)]

    def depths(self) -> dict[str, int]:
        """Each node's distance from the root along the edges (breadth first); nodes not reached get one more than
        the deepest, so that a drawing still shows them."""
        root = self.root
        if root is None:
            return {}
        out = {root: 0}
        queue = deque([root])
        outgoing: dict[str, list[str]] = {}
        for e in self.edges:
            outgoing.setdefault(e.source, []).append(e.target)
        while queue:
            key = queue.popleft()
            for target in outgoing.get(key, ()):
                if target not in out:
                    out[target] = out[key] + 1
                    queue.append(target)
        last = max(out.values()) + 1
        return {key: out.get(key, last) for key in self.nodes}

    def to_json(self) -> dict[str, Any]:
        """The graph as JSON-ready data: ``{"root": key, "nodes": [...], "edges": [...]}``."""
        return {
            "root": self.root,
            "nodes": [n.to_json() for n in self.nodes.values()],
            "edges": [e.to_json() for e in self.edges],
        }

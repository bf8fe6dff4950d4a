"""The pipeline as pure data: nodes (step calls) and the edges their inputs imply.

Runners read a ``Dag``; they never see the Python function that built it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from keel.core.errors import InvalidArgument
from keel.core.errors import PipelineCycle as PipelineCycle  # defined in the one error tree


@dataclass
class Node:
    """One call of a step inside a pipeline: its arguments may reference other nodes' outputs."""

    id: str
    step: Any  # keel.pipelines.steps.Step
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    deps: set[str] = field(default_factory=set)


@dataclass
class Dag:
    """A pipeline as data: its step calls by node id (each with the ids it depends on) and what the pipeline
    function returned. ``Pipeline.build(...)`` makes one without running anything."""

    nodes: dict[str, Node] = field(default_factory=dict)
    output: Any = None  # what the pipeline function returned (may reference node outputs)

    def add(self, node: Node) -> Node:
        """Add a step call and return it; ``InvalidArgument`` when its id is taken already."""
        if node.id in self.nodes:
            raise InvalidArgument.for_field("node id", node.id, "a name not used by another step call")
        self.nodes[node.id] = node
        return node

    def add_edge(self, upstream: str, downstream: str) -> None:
        """Make ``downstream`` wait for ``upstream`` (edges normally come from data dependencies)."""
        for name in (upstream, downstream):
            if name not in self.nodes:
                raise InvalidArgument.for_field("step", name, f"one of {', '.join(self.nodes)}")
        self.nodes[downstream].deps.add(upstream)

    def order(self) -> list[str]:
        """Node ids in a dependency order; ``PipelineCycle`` names a cycle if there is one."""
        indegree = {n: len(node.deps) for n, node in self.nodes.items()}
        children: dict[str, list[str]] = {n: [] for n in self.nodes}
        for n, node in self.nodes.items():
            for d in node.deps:
                if d not in self.nodes:
                    raise InvalidArgument(f"step {n!r} depends on {d!r}, which is not in the pipeline")
                children[d].append(n)
        ready = [n for n, k in indegree.items() if k == 0]
        out: list[str] = []
        while ready:
            n = ready.pop(0)
            out.append(n)
            for c in children[n]:
                indegree[c] -= 1
                if indegree[c] == 0:
                    ready.append(c)
        if len(out) != len(self.nodes):
            cycle = self._find_cycle({n for n in self.nodes if n not in out})
            raise PipelineCycle(f"the pipeline has a cycle: {' -> '.join(cycle)}; steps must form a DAG")
        return out

    def _find_cycle(self, candidates: set[str]) -> list[str]:
        path: list[str] = []
        on_path: set[str] = set()
        seen: set[str] = set()

        def visit(n: str) -> list[str] | None:
            path.append(n)
            on_path.add(n)
            for d in sorted(self.nodes[n].deps):
                if d in on_path:
                    return [*path[path.index(d) :], d]
                if d not in seen and d in candidates:
                    found = visit(d)
                    if found:
                        return found
            on_path.discard(path.pop())
            seen.add(n)
            return None

        for start in sorted(candidates):
            found = visit(start)
            if found:
                return list(reversed(found))
        return sorted(candidates)

    def downstream(self, node_id: str) -> set[str]:
        """Every node that depends, directly or not, on ``node_id``."""
        out: set[str] = set()
        frontier = [node_id]
        while frontier:
            current = frontier.pop()
            for n, node in self.nodes.items():
                if current in node.deps and n not in out:
                    out.add(n)
                    frontier.append(n)
        return out

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes[n] for n in self.order())

    def __len__(self) -> int:
        return len(self.nodes)

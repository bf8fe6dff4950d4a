"""The deployment store interface: named routes to registered models and the history of every change.

Contract (checked by ``keel.testing.deployment_contract`` on SQLite, PostgreSQL and REST): one transaction per
call; the routes are checked in ``keel.core.deployment_records`` (model URIs, weights, no model routed twice)
and bad input writes nothing; every change (creation included) appends one history row in the transaction that
makes it, with who, when, why and the routes before and after; raises only ``keel.core.errors`` types.

A deployment that routes an alias (``models:/churn@production``) follows it: the model store's ``move_alias``
records an ``alias`` change on it and bumps its ``updated_at``, in the transaction of the move.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from keel.core.deployments import Deployment, DeploymentChange

__all__ = ["DeploymentStore"]


class DeploymentStore(abc.ABC):
    @abc.abstractmethod
    def create(
        self,
        name: str,
        primary: str,
        *,
        shadows: Sequence[str] = (),
        canaries: Sequence[tuple[str, float]] = (),
        sticky_key: str | None = None,
        actor: str = "",
        reason: str = "",
    ) -> Deployment:
        """A new deployment (``Conflict`` when the name is taken), recorded as a ``create`` change."""

    @abc.abstractmethod
    def get(self, name: str) -> Deployment:
        """Raises ``NotFound``."""

    @abc.abstractmethod
    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""

    @abc.abstractmethod
    def set_routes(
        self,
        name: str,
        *,
        primary: str | None = None,
        shadows: Sequence[str] | None = None,
        canaries: Sequence[tuple[str, float]] | None = None,
        sticky_key: str | None = None,
        expected_updated_at: int | None = None,
        actor: str = "",
        reason: str = "",
    ) -> DeploymentChange:
        """Change the routes in one transaction and record the change (None leaves a route as it is;
        ``sticky_key=""`` removes it). ``Conflict`` when ``expected_updated_at`` is given and the deployment changed
        since (compare-and-swap); ``InvalidArgument`` for bad routes or a call that changes nothing."""

    @abc.abstractmethod
    def history(self, name: str) -> list[DeploymentChange]:
        """Every change, oldest first."""

    @abc.abstractmethod
    def rollback(
        self, name: str, *, expected_updated_at: int | None = None, actor: str = "", reason: str = ""
    ) -> DeploymentChange:
        """The primary before the last change of primary becomes the primary again (in one transaction, recorded
        as ``rollback``); shadows and canaries stay, less that model. When the last such change is an ``alias`` move
        of the primary's alias, the primary is pinned to the version the alias named before the move
        (``models:/churn/3``): the deployment stops following the alias until a route names it again.
        ``NotFound`` when there is none."""

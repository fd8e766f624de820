"""Automatic device management (``/configurations``), as IoT Hub applies it.

A configuration has a target condition, a priority and content. Device configurations
(``content.deviceContent``) target device twins with a WHERE condition; module
configurations (``content.moduleContent``) target module twins with ``FROM
devices.modules WHERE ...``. Each key of the content is a ``properties.desired.<path>``
and its value goes to that desired path.

Of the configurations that target a twin, the one with the highest priority wins, and of
equal priorities the one created last (IoT Hub's documented rule). The winner's content
is written once, when it becomes the twin's winner, through the core's twin write path
(version, ``$version``, the device's desired notification). The twin's
``configurations`` field says, per targeting configuration, ``Applied`` (the winner) or
``Targeted``, which is what the metric queries read (``configurations.[[id]].status``).
Like IoT Hub, a twin that stops being targeted keeps the desired values it was given.

When a twin or its identity changes, that twin is evaluated again at once (a few
condition checks). When a configuration is created, changed or deleted, every twin of
its kind is evaluated again by :meth:`Configurations.run`, a bounded batch per loop turn.

Edge deployments (``content.modulesContent``) target IoT Edge devices by their device
twin and write module twins (``$edgeAgent``, ``$edgeHub``, custom modules): the base
deployment that wins plus the layered ones above it (see :mod:`.edge_deployments`),
with their status on the ``$edgeAgent`` twin's ``configurations``.
``POST /devices/{id}/applyConfigurationContent`` applies content to one edge device
(:meth:`Configurations.apply_to_edge_device`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twin_explorer.localhub.core import edge_deployments as edge
from twin_explorer.localhub.core.identity import check_if_match, validate_id
from twin_explorer.localhub.core.query import (
    Expr,
    QuerySyntaxError,
    matches,
    parse,
)
from twin_explorer.localhub.core.querying import where_sql
from twin_explorer.localhub.core.twins import check_service_patch
from twin_explorer.localhub.core.twinview import CONFIGURATIONS_KEY
from twin_explorer.localhub.errors import HubError, argument_invalid
from twin_explorer.localhub.store.configurations import ConfigurationTable
from twin_explorer.localhub.store.reader import BackgroundReader

if TYPE_CHECKING:
    from twin_explorer.localhub.core.context import CoreContext
    from twin_explorer.localhub.core.registry import Registry
    from twin_explorer.localhub.core.twins import Twins

logger = logging.getLogger(__name__)

DESIRED_PREFIX = "properties.desired"
APPLIED, TARGETED = "Applied", "Targeted"
SWEEP_BATCH = 200  # twins evaluated per loop turn after a configuration changed
DEFAULT_TOP = 20
MAX_TOP = 100
_MODULES_FROM = re.compile(r"^\s*FROM\s+devices\.modules\s+WHERE\s+", re.IGNORECASE)
_UPDATABLE = ("targetCondition", "priority", "labels", "metrics")


def configuration_not_found(config_id: str) -> HubError:
    return HubError(
        404, "ConfigurationNotFound", 404001, f"Configuration {config_id!r} does not exist."
    )


def configuration_exists(config_id: str) -> HubError:
    return HubError(
        409,
        "ConfigurationAlreadyExists",
        409001,
        f"A configuration with id {config_id!r} already exists; update it with If-Match.",
    )


@dataclass(frozen=True)
class Target:
    """Which twins a configuration targets: ``kind`` device, module or edge (edge
    devices' twins); None: an empty condition targets no twin."""

    kind: str | None
    where: Expr | None = None
    everything: bool = False

    def matches(self, doc: dict[str, Any]) -> bool:
        return self.everything or matches(self.where, doc)


def _kind(content: object) -> str:
    if not isinstance(content, dict):
        raise argument_invalid("content must be a JSON object.")
    present = [k for k in ("deviceContent", "moduleContent", "modulesContent") if content.get(k)]
    if len(present) != 1:
        raise argument_invalid(
            "content must hold exactly one of deviceContent, moduleContent or modulesContent."
        )
    return {"deviceContent": "device", "moduleContent": "module", "modulesContent": "edge"}[
        present[0]
    ]


def desired_patch(section: object, what: str) -> dict[str, Any]:
    """``{"properties.desired.a.b": v, ...}`` as ``{"properties": {"desired": {"a": {"b": v}}}}``;
    ``"properties.desired": {...}`` is the whole desired section."""
    if not isinstance(section, dict):
        raise argument_invalid(f"{what} must be a JSON object.")
    desired: dict[str, Any] = {}
    for key, value in section.items():
        if key == DESIRED_PREFIX:
            if not isinstance(value, dict):
                raise argument_invalid(f"{what}[{key!r}] must be a JSON object.")
            desired.update(value)
            continue
        if not key.startswith(DESIRED_PREFIX + ".") or not key[len(DESIRED_PREFIX) + 1 :]:
            raise argument_invalid(
                f"{what} key {key!r} must be a path under properties.desired, such as "
                "'properties.desired.settings'."
            )
        *parents, leaf = key[len(DESIRED_PREFIX) + 1 :].split(".")
        node = desired
        for name in parents:
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise argument_invalid(f"{what} sets {key!r} below a value.")
            node = child
        node[leaf] = value
    return {"properties": {"desired": desired}}


def _condition(text: str, collection: str) -> Expr | None:
    try:
        return parse(f"SELECT * FROM {collection} WHERE {text}").where
    except QuerySyntaxError as exc:
        raise argument_invalid(f"Invalid targetCondition: {exc}") from None


def target_of(doc: dict[str, Any]) -> Target:
    kind = _kind(doc.get("content"))
    text = (doc.get("targetCondition") or "").strip()
    if not text:
        return Target(None)
    if kind == "module":
        found = _MODULES_FROM.match(text)
        if found is None:
            raise argument_invalid(
                "A module configuration's targetCondition starts with 'FROM devices.modules WHERE'."
            )
        return Target("module", _condition(text[found.end() :], "devices.modules"))
    if kind != "edge":
        kind = "device"
    if text == "*":
        return Target(kind, everything=True)
    return Target(kind, _condition(text, "devices"))


def _check_metric_queries(metrics: object) -> dict[str, str]:
    if metrics is None:
        return {}
    queries = metrics.get("queries") if isinstance(metrics, dict) else None
    if queries is None:
        return {}
    if not isinstance(queries, dict) or not all(isinstance(q, str) for q in queries.values()):
        raise argument_invalid("metrics.queries must map names to query strings.")
    for name, text in queries.items():
        error = query_error(text)
        if error is not None:
            raise argument_invalid(f"Invalid metric query {name!r}: {error}")
    return dict(queries)


def query_error(text: str) -> str | None:
    try:
        parse(text)
    except QuerySyntaxError as exc:
        return str(exc)
    return None


@dataclass
class _Config:
    created_ns: int
    doc: dict[str, Any]
    target: Target
    patch: dict[str, Any] | None
    base: bool = False  # an edge deployment: base (else layered)
    modules: dict[str, dict[str, Any]] | None = None  # edge: module id -> whole/paths

    @property
    def id(self) -> str:
        return self.doc["id"]

    @property
    def rank(self) -> tuple[int, int]:
        return (self.doc.get("priority") or 0, self.created_ns)


class Configurations:
    """Configurations of one hub and their application to twins."""

    def __init__(
        self,
        ctx: CoreContext,
        twins: Twins,
        registry: Registry,
        open_reader: Callable[[], sqlite3.Connection],
    ) -> None:
        self.ctx = ctx
        self.table = ConfigurationTable(ctx.store.conn)
        self._twins = twins
        self._registry = registry
        self._reader = BackgroundReader(open_reader)
        self._configs: dict[str, _Config] = {}
        for created_ns, doc in self.table.all():
            self._configs[doc["id"]] = self._loaded(created_ns, doc)
        self._applying = False
        self._sweeps: set[str] = set()  # kinds of twin to evaluate again
        self._wake: asyncio.Event | None = None
        ctx.on_twin_written(self._twin_written)

    @staticmethod
    def _loaded(created_ns: int, doc: dict[str, Any]) -> _Config:
        target = target_of(doc)
        content = doc["content"]
        section = content.get("deviceContent") or content.get("moduleContent")
        patch = desired_patch(section, "content") if section else None
        modules = content.get("modulesContent")
        if not modules:
            return _Config(created_ns, doc, target, patch)
        if not isinstance(modules, dict):
            raise argument_invalid("content.modulesContent must be a JSON object.")
        base = edge.is_base(modules)
        sections = {}
        for module_id, section in modules.items():
            validate_id(module_id, "module id")
            what = f"modulesContent[{module_id!r}]"
            paths = desired_patch(section, what)["properties"]["desired"]
            whole = None
            if not base and edge.DESIRED in section:
                whole = section[edge.DESIRED]
                rest = {k: v for k, v in section.items() if k != edge.DESIRED}
                paths = desired_patch(rest, what)["properties"]["desired"]
            sections[module_id] = {"whole": whole, "paths": paths}
        return _Config(created_ns, doc, target, None, base, sections)

    # -- the service surface ------------------------------------------------------------

    def put(self, config_id: str, body: object, if_match: str | None) -> tuple[dict, bool]:
        """PUT /configurations/{id}: create (no If-Match) or update; (configuration,
        created)."""
        validate_id(config_id, "configuration id")
        if not isinstance(body, dict):
            raise argument_invalid("The configuration must be a JSON object.")
        if body.get("id") not in (None, config_id):
            raise argument_invalid(
                f"The id in the body ({body['id']!r}) differs from the one in the path."
            )
        priority = body.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
            raise argument_invalid("priority must be a whole number, 0 or more.")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise argument_invalid("labels must map names to strings.")
        queries = _check_metric_queries(body.get("metrics"))
        now_ns, now = self.ctx.now_ns(), self.ctx.now()
        current = self._configs.get(config_id)
        if current is None:
            if if_match is not None:
                raise configuration_not_found(config_id)
            doc = {
                "id": config_id,
                "schemaVersion": body.get("schemaVersion") or "1.0",
                "labels": labels,
                "content": body.get("content"),
                "targetCondition": body.get("targetCondition") or "",
                "createdTimeUtc": now,
                "lastUpdatedTimeUtc": now,
                "priority": priority,
                "metrics": {"queries": queries},
            }
            created_ns = now_ns
        else:
            if if_match is None:
                raise configuration_exists(config_id)
            check_if_match(if_match, current.doc["etag"], "configuration")
            if body.get("content") is not None and body["content"] != current.doc["content"]:
                raise argument_invalid(
                    "A configuration's content cannot change once it is created; create a "
                    "new configuration instead."
                )
            doc = {**current.doc, "lastUpdatedTimeUtc": now}
            doc.update(
                targetCondition=body.get("targetCondition") or "",
                priority=priority,
                labels=labels,
                metrics={"queries": queries},
            )
            created_ns = current.created_ns
        config = self._loaded(created_ns, doc)  # validates content and target
        if current is None and config.patch is not None:
            check_service_patch(config.patch)
        with self.ctx.store.transaction():
            doc["etag"] = self.ctx.next_etag()
            self.table.put(config_id, created_ns, doc)
        self._configs[config_id] = config
        self._sweep(config, current)
        return self._response(config), current is None

    def get(self, config_id: str) -> dict[str, Any]:
        config = self._configs.get(config_id)
        if config is None:
            raise configuration_not_found(config_id)
        return self._response(config)

    def list(self, top: int | None) -> list[dict[str, Any]]:
        count = DEFAULT_TOP if top is None else max(1, min(top, MAX_TOP))
        ordered = sorted(self._configs.values(), key=lambda c: (c.created_ns, c.id))
        return [self._response(config) for config in ordered[:count]]

    def delete(self, config_id: str, if_match: str | None) -> None:
        current = self._configs.get(config_id)
        if current is None:
            raise configuration_not_found(config_id)
        check_if_match(if_match, current.doc["etag"], "configuration")
        with self.ctx.store.transaction():
            self.table.delete(config_id)
        del self._configs[config_id]
        self._sweep(None, current)

    def targeting(self, device_id: str, module_id: str | None = None) -> dict[str, str]:
        """The configurations that target a twin: id -> Applied / Targeted."""
        doc = self._twins.get_twin(device_id, module_id)
        return {key: value["status"] for key, value in doc.get(CONFIGURATIONS_KEY, {}).items()}

    def _response(self, config: _Config) -> dict[str, Any]:
        doc = config.doc
        return {
            **doc,
            "systemMetrics": {"results": {}, "queries": self._system_queries(config)},
            "metrics": {"results": {}, "queries": doc["metrics"]["queries"]},
        }

    @staticmethod
    def _system_queries(config: _Config) -> dict[str, str]:
        target, config_id = config.target, config.id
        applied = f"configurations.[[{config_id}]].status = '{APPLIED}'"
        if target.kind == "module":
            condition = _MODULES_FROM.sub("", config.doc["targetCondition"])
            select = "SELECT deviceId, moduleId FROM devices.modules WHERE"
            return {"targetedCount": f"{select} {condition}", "appliedCount": f"{select} {applied}"}
        if target.kind == "device":
            condition = config.doc["targetCondition"]
            where = "" if target.everything else f" WHERE {condition}"
            return {
                "targetedCount": f"SELECT deviceId FROM devices{where}",
                "appliedCount": f"SELECT deviceId FROM devices WHERE {applied}",
            }
        if target.kind == "edge":
            return edge.system_queries(config_id, config.doc["targetCondition"])
        return {}

    async def with_metrics(self, response: dict[str, Any]) -> dict[str, Any]:
        """The configuration with its system and custom metrics counted now (on a
        worker thread: a metric query can scan every twin)."""
        for section in ("systemMetrics", "metrics"):
            results = {}
            for name, text in response[section]["queries"].items():
                results[name] = await self._count(text)
            response[section] = {**response[section], "results": results}
        return response

    async def _count(self, text: str) -> int:
        try:
            query = parse(text)
        except QuerySyntaxError:
            return 0
        is_module = int(query.collection == "devices.modules")
        where, params = where_sql(query.where, modules=bool(is_module))
        rows = await self._reader.rows(
            f"SELECT COUNT(*) FROM twins WHERE is_module = ? AND ({where})", (is_module, *params)
        )
        return int(rows[0][0])

    def test_queries(self, body: object) -> dict[str, Any]:
        """POST /configurations/testQueries: what is wrong with each query, if anything."""
        if not isinstance(body, dict):
            raise argument_invalid("The request must be a JSON object.")
        condition = body.get("targetCondition") or ""
        condition_error = ""
        if condition.strip() and condition.strip() != "*":
            found = _MODULES_FROM.match(condition)
            collection = "devices.modules" if found else "devices"
            text = condition[found.end() :] if found else condition
            condition_error = query_error(f"SELECT * FROM {collection} WHERE {text}") or ""
        metric_errors = {}
        for name, text in (body.get("customMetricQueries") or {}).items():
            error = query_error(text) if isinstance(text, str) else "not a string"
            if error:
                metric_errors[name] = error
        return {"targetConditionError": condition_error, "customMetricQueryErrors": metric_errors}

    def apply_to_edge_device(self, device_id: str, content: object) -> None:
        """POST /devices/{id}/applyConfigurationContent: each module of
        ``modulesContent`` ($edgeAgent, $edgeHub, custom modules) gets its desired
        properties replaced; missing module identities are created, as IoT Edge does."""
        device = self._registry.get_device(device_id)
        if not device.get("capabilities", {}).get("iotEdge"):
            raise argument_invalid(
                f"Device {device_id!r} is not an IoT Edge device; configuration content "
                "applies only to IoT Edge devices."
            )
        if not isinstance(content, dict) or not isinstance(content.get("modulesContent"), dict):
            raise argument_invalid("The content must hold a modulesContent object.")
        modules = {
            module_id: desired_patch(section, f"modulesContent[{module_id!r}]")
            for module_id, section in content["modulesContent"].items()
        }
        device_patch = None
        if content.get("deviceContent"):
            device_patch = desired_patch(content["deviceContent"], "deviceContent")
        with self.ctx.store.transaction():
            for module_id, patch in modules.items():
                validate_id(module_id, "module id")
                self._write_module_desired(device_id, module_id, patch["properties"]["desired"])
            if device_patch is not None:
                self._twins.patch_twin(device_id, None, device_patch, None)

    # -- applying ---------------------------------------------------------------------

    def _twin_written(self, device_id: str, module_id: str | None) -> None:
        if self._applying or not self._configs:
            return
        self._evaluate(device_id, module_id)
        if module_id is None and any(c.target.kind == "edge" for c in self._configs.values()):
            self._evaluate_edge(device_id)

    def _evaluate(self, device_id: str, module_id: str | None) -> None:
        """Bring one twin's configurations (status and content) up to date."""
        doc = self.ctx.store.get_twin_doc(device_id, module_id or "")
        if doc is None:
            return
        kind = "module" if module_id else "device"
        targeting = [
            c for c in self._configs.values() if c.target.kind == kind and c.target.matches(doc)
        ]
        winner = max(targeting, key=lambda c: c.rank, default=None)
        wanted = {c.id: {"status": APPLIED if c is winner else TARGETED} for c in targeting}
        current, others = self._split_statuses(doc, module_id, "module")
        if wanted == current:
            return
        self._applying = True
        try:
            with self.ctx.store.transaction():
                was_applied = current.get(winner.id, {}).get("status") if winner else None
                if winner is not None and winner.patch is not None and was_applied != APPLIED:
                    self._twins.patch_twin(device_id, module_id, winner.patch, None)
                    doc = self.ctx.store.get_twin_doc(device_id, module_id or "")
                    assert doc is not None
                self._save_statuses(device_id, module_id, doc, {**others, **wanted})
        except HubError as error:  # a twin the content cannot go into (over its limits)
            logger.warning(
                "configuration %s not applied to %s: %s", winner and winner.id, device_id, error
            )
        finally:
            self._applying = False

    def _split_statuses(
        self, doc: dict[str, Any], module_id: str | None, kind: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``configurations`` entries one kind of configuration manages on a twin, and
        the rest: the ``$edgeAgent`` twin holds both module configurations and edge
        deployments (the edge side also clears entries of deleted configurations)."""
        current = doc.get(CONFIGURATIONS_KEY, {})
        if module_id != edge.EDGE_AGENT:
            return current, {}
        module_ids = {c.id for c in self._configs.values() if c.target.kind == "module"}
        mine = {k: v for k, v in current.items() if (k in module_ids) == (kind == "module")}
        return mine, {k: v for k, v in current.items() if k not in mine}

    def _save_statuses(
        self, device_id: str, module_id: str | None, doc: dict[str, Any], statuses: dict
    ) -> None:
        if statuses:
            doc[CONFIGURATIONS_KEY] = statuses
        else:
            doc.pop(CONFIGURATIONS_KEY, None)
        self.ctx.store.save_twin(device_id, module_id or "", doc)

    def _evaluate_edge(self, device_id: str) -> None:
        """Bring an edge device's deployments (status and module twins) up to date."""
        doc = self.ctx.store.get_twin_doc(device_id, "")
        if doc is None:
            return
        targeting = []
        if doc.get("capabilities", {}).get("iotEdge"):
            edges = (c for c in self._configs.values() if c.target.kind == "edge")
            targeting = [c for c in edges if c.target.matches(doc)]
        base = max((c for c in targeting if c.base), key=lambda c: c.rank, default=None)
        layers = []
        if base is not None:
            floor = base.doc.get("priority") or 0
            layers = sorted(
                (c for c in targeting if not c.base and (c.doc.get("priority") or 0) > floor),
                key=lambda c: c.rank,
            )
        applied = [base, *layers] if base is not None else []
        wanted = {c.id: {"status": APPLIED if c in applied else TARGETED} for c in targeting}
        agent = self.ctx.store.get_twin_doc(device_id, edge.EDGE_AGENT)
        current, _ = self._split_statuses(agent or {}, edge.EDGE_AGENT, "edge")
        if wanted == current:
            return
        was_applied = {k for k, v in current.items() if v.get("status") == APPLIED}
        self._applying = True
        try:
            with self.ctx.store.transaction():
                if applied and {c.id for c in applied} != was_applied:
                    assert base is not None and base.modules is not None
                    composed = edge.compose(base.modules, [c.modules or {} for c in layers])
                    for module_id, desired in composed.items():
                        self._write_module_desired(device_id, module_id, desired)
                self._ensure_module(device_id, edge.EDGE_AGENT)
                agent = self.ctx.store.get_twin_doc(device_id, edge.EDGE_AGENT)
                assert agent is not None
                _, others = self._split_statuses(agent, edge.EDGE_AGENT, "edge")
                self._save_statuses(device_id, edge.EDGE_AGENT, agent, {**others, **wanted})
        except HubError as error:  # a module twin the content cannot go into
            logger.warning("edge deployments not applied to %s: %s", device_id, error)
        finally:
            self._applying = False

    def _ensure_module(self, device_id: str, module_id: str) -> None:
        """IoT Edge modules named in a deployment get module identities, as on IoT Hub."""
        if self.ctx.store.get_module(device_id, module_id) is None:
            body = {"authentication": {"type": "sas", "symmetricKey": {}}}
            self._registry.put_module(device_id, module_id, body, None)

    def _write_module_desired(self, device_id: str, module_id: str, desired: dict) -> None:
        """Replace a module twin's desired properties (tags kept), creating the module."""
        self._ensure_module(device_id, module_id)
        tags = self._twins.get_twin(device_id, module_id)["tags"]
        body = {"tags": tags, "properties": {"desired": desired}}
        self._twins.replace_twin(device_id, module_id, body, None)

    def _sweep(self, config: _Config | None, previous: _Config | None) -> None:
        for item in (config, previous):
            if item is not None and item.target.kind is not None:
                self._sweeps.add(item.target.kind)
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Evaluate every twin of a kind again after its configurations changed, a batch
        per loop turn; also once at start (configurations made while the hub was down
        cannot exist, but a changed hub file can)."""
        self._wake = asyncio.Event()
        self._sweeps.update(c.target.kind for c in self._configs.values() if c.target.kind)
        try:
            while True:
                while self._sweeps:
                    kind = self._sweeps.pop()
                    await self._evaluate_all(kind)
                self._wake.clear()
                if not self._sweeps:
                    await self._wake.wait()
        finally:
            self._wake = None
            self._reader.close()

    async def _evaluate_all(self, kind: str) -> None:
        is_module = int(kind == "module")  # edge deployments target device twins
        after = ("", "")
        while True:
            rows = await self._reader.rows(
                "SELECT device_id, module_id FROM twins WHERE is_module = ?"
                " AND (device_id, module_id) > (?, ?) ORDER BY is_module, device_id, module_id"
                " LIMIT ?",
                (is_module, *after, SWEEP_BATCH),
            )
            with self.ctx.store.transaction():  # one commit a batch
                for device_id, module_id in rows:
                    with contextlib.suppress(HubError):
                        if kind == "edge":
                            self._evaluate_edge(device_id)
                        else:
                            self._evaluate(device_id, module_id or None)
            if len(rows) < SWEEP_BATCH:
                return
            after = rows[-1]
            await asyncio.sleep(0)

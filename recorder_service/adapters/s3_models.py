"""botocore's data files, loaded lean for the one S3 client the service keeps.

A stock botocore session parses its JSON data with `OrderedDict` for every object and keeps
what it loaded for the life of the process: `endpoints.json` (every AWS service in every
partition, 6.6 MB of dicts), the whole S3 model (~100 operations, 2.9 MB) and its endpoint
rule set. The service calls four S3 operations. `lean_session()` gives a botocore session
whose loader reads the same files into plain dicts (ordered as well since Python 3.7),
keeps only the services in `ENDPOINT_SERVICES` in each partition's endpoint table, and only
`S3_OPERATIONS` (with every shape they reach) in the S3 model. Measured: idle RSS of `serve`
9.3 MB smaller (docs/performance.md, "Memory").

What it changes for callers: the S3 client has the methods in `S3_OPERATIONS` and no others
(an `AttributeError` for any other: add the operation here when storage.py calls a new one);
the endpoint, region and signing name of S3 and of the credential chain's STS/SSO clients
resolve exactly as with the stock data (tests/integration/test_s3_models.py compares them for
every region of every partition).
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

from aiobotocore.session import AioSession, get_session
from botocore.loaders import JSONFileLoader, create_loader

# What storage.py calls (generate_presigned_url signs a GetObject).
S3_OPERATIONS = frozenset({"GetObject", "HeadBucket", "HeadObject", "DeleteObject"})
# S3, and what the standard credential chain may create a client for (assume-role and web
# identity: STS; IAM Identity Center: SSO, SSO-OIDC). The image keeps the same models.
ENDPOINT_SERVICES = frozenset({"s3", "sts", "sso", "oidc", "portal.sso"})

_S3_MODEL = os.path.join("s3", "2006-03-01", "service-2")


def _read(file_path: str) -> bytes | None:
    """The file as botocore looks for it: `<path>.json`, else `<path>.json.gz`."""
    if os.path.isfile(file_path + ".json"):
        with open(file_path + ".json", "rb") as fp:
            return fp.read()
    if os.path.isfile(file_path + ".json.gz"):
        with gzip.open(file_path + ".json.gz", "rb") as gz:
            return gz.read()
    return None


def trim_endpoints(data: dict[str, Any], services: frozenset[str] = ENDPOINT_SERVICES) -> dict[str, Any]:
    """endpoints.json with each partition's `services` reduced to `services`; the partitions'
    regions, defaults and hostnames stay whole."""
    for partition in data.get("partitions", []):
        partition["services"] = {
            name: spec for name, spec in partition.get("services", {}).items() if name in services
        }
    return data


def trim_service_model(data: dict[str, Any], operations: frozenset[str]) -> dict[str, Any]:
    """A service model with only `operations` and the shapes they reach (input, output,
    errors, and every member, list member, map key and value, transitively)."""
    kept_ops = {name: op for name, op in data["operations"].items() if name in operations}
    shapes: dict[str, Any] = data["shapes"]
    reached: set[str] = set()
    todo: list[str] = []

    def refer(ref: object) -> None:
        if isinstance(ref, dict) and "shape" in ref:
            todo.append(ref["shape"])

    for op in kept_ops.values():
        refer(op.get("input"))
        refer(op.get("output"))
        for error in op.get("errors", []):
            refer(error)
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        shape = shapes[name]
        for field in ("member", "key", "value"):
            refer(shape.get(field))
        for member in shape.get("members", {}).values():
            refer(member)
    data["operations"] = kept_ops
    data["shapes"] = {name: shape for name, shape in shapes.items() if name in reached}
    return data


class LeanJSONFileLoader(JSONFileLoader):
    """JSONFileLoader with plain dicts, trimming the endpoint table and the S3 model."""

    def load_file(self, file_path: str) -> Any:
        raw = _read(file_path)
        if raw is None:
            return None
        data = json.loads(raw.decode("utf-8"))
        if os.path.basename(file_path) == "endpoints":
            return trim_endpoints(data)
        if file_path.endswith(_S3_MODEL):
            return trim_service_model(data, S3_OPERATIONS)
        return data


def lean_session() -> AioSession:
    """A botocore session (aiobotocore) whose data loader reads through LeanJSONFileLoader; the
    loader is botocore's own (`create_loader`: AWS_DATA_PATH honoured as botocore does)."""
    session = get_session()
    loader = create_loader(session.get_config_variable("data_path"))
    loader.file_loader = LeanJSONFileLoader()
    session.register_component("data_loader", loader)
    return session

"""adapters/s3_models.py: botocore's data loaded lean resolves S3 and the credential chain's
clients exactly as the stock data does, and the S3 model keeps every shape of the operations
the service calls. Offline: endpoint resolution and presigning need no network."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any, Literal

import botocore
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.model import Shape

from recorder_service.adapters.s3_models import (
    S3_OPERATIONS,
    LeanJSONFileLoader,
    lean_session,
    trim_endpoints,
    trim_service_model,
)
from recorder_service.adapters.storage import RecordingStorage

AKID, SECRET = "AKIDEXAMPLE", "secret"
Service = Literal["s3", "sts", "sso", "sso-oidc"]
DATA = os.path.join(os.path.dirname(botocore.__file__), "data")


def _stock_endpoints() -> dict[str, Any]:
    with open(os.path.join(DATA, "endpoints.json"), "rb") as fp:
        data: dict[str, Any] = json.loads(fp.read())
    return data


def _regions() -> list[str]:
    return sorted({r for p in _stock_endpoints()["partitions"] for r in p["regions"]})


@pytest.fixture(scope="module")
def sessions() -> tuple[AioSession, AioSession]:
    return get_session(), lean_session()


async def _describe(session: AioSession, service: Service, region: str) -> dict[str, object]:
    """What a client resolves to: its endpoint, region, and the credential scope it signs with."""
    async with session.create_client(
        service,
        region_name=region,
        config=AioConfig(signature_version="s3v4"),
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
    ) as client:
        out: dict[str, object] = {"endpoint": client.meta.endpoint_url, "region": client.meta.region_name}
        if service == "s3":
            url = await client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            # AKID/date/region/service/aws4_request: all but the date.
            scope = query["X-Amz-Credential"][0].split("/")
            out["scope"] = [scope[0], *scope[2:]]
            out["host"] = urllib.parse.urlsplit(url).netloc
        return out


@pytest.mark.parametrize("service", ["s3", "sts"])
async def test_every_region_of_every_partition_resolves_as_with_the_stock_data(
    sessions: tuple[AioSession, AioSession], service: Service
) -> None:
    stock, lean = sessions
    regions = _regions()
    assert len(regions) > 30
    for region in regions:
        assert await _describe(lean, service, region) == await _describe(stock, service, region), region


@pytest.mark.parametrize("service", ["sso", "sso-oidc"])
async def test_the_credential_chains_sso_clients_resolve_as_with_the_stock_data(
    sessions: tuple[AioSession, AioSession], service: Service
) -> None:
    stock, lean = sessions
    for region in ("us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"):
        assert await _describe(lean, service, region) == await _describe(stock, service, region), region


def _shape(shape: Shape | None, seen: frozenset[str] = frozenset()) -> object:
    """A shape as plain data, recursively (a recursive shape stops at its own name)."""
    if shape is None:
        return None
    if shape.name in seen:
        return shape.name
    seen = seen | {shape.name}
    out: dict[str, object] = {
        "name": shape.name,
        "type": shape.type_name,
        "serialization": shape.serialization,
    }
    for field in ("member", "key", "value"):
        sub = getattr(shape, field, None)
        if isinstance(sub, Shape):
            out[field] = _shape(sub, seen)
    members = getattr(shape, "members", None)
    if members is not None:
        out["members"] = {name: _shape(m, seen) for name, m in members.items()}
    return out


async def test_the_s3_model_keeps_the_service_operations_whole_and_nothing_else(
    sessions: tuple[AioSession, AioSession],
) -> None:
    stock, lean = sessions
    async with (
        stock.create_client(
            "s3", region_name="us-east-1", aws_access_key_id=AKID, aws_secret_access_key=SECRET
        ) as full,
        lean.create_client(
            "s3", region_name="us-east-1", aws_access_key_id=AKID, aws_secret_access_key=SECRET
        ) as trimmed,
    ):
        assert set(trimmed.meta.service_model.operation_names) == S3_OPERATIONS
        assert set(full.meta.service_model.operation_names) > S3_OPERATIONS
        for name in sorted(S3_OPERATIONS):
            ours = trimmed.meta.service_model.operation_model(name)
            theirs = full.meta.service_model.operation_model(name)
            assert _shape(ours.input_shape) == _shape(theirs.input_shape), name
            assert _shape(ours.output_shape) == _shape(theirs.output_shape), name
            assert [_shape(e) for e in ours.error_shapes] == [_shape(e) for e in theirs.error_shapes], name
            assert ours.http == theirs.http, name
        # Any other operation is not there at all (add it to S3_OPERATIONS when storage.py needs it).
        assert not hasattr(trimmed, "put_object") and hasattr(full, "put_object")


def test_trimming_keeps_only_what_is_reached() -> None:
    model = {
        "operations": {
            "Keep": {"input": {"shape": "In"}, "output": {"shape": "Out"}, "errors": [{"shape": "Err"}]},
            "Drop": {"input": {"shape": "DropIn"}},
        },
        "shapes": {
            "In": {"type": "structure", "members": {"Tags": {"shape": "TagList"}}},
            "TagList": {"type": "list", "member": {"shape": "Tag"}},
            "Tag": {"type": "map", "key": {"shape": "K"}, "value": {"shape": "Tag"}},
            "K": {"type": "string"},
            "Out": {"type": "structure", "members": {}},
            "Err": {"type": "structure", "members": {}},
            "DropIn": {"type": "structure", "members": {"X": {"shape": "K"}}},
            "Unused": {"type": "string"},
        },
    }
    trimmed = trim_service_model(model, frozenset({"Keep"}))
    assert set(trimmed["operations"]) == {"Keep"}
    assert set(trimmed["shapes"]) == {"In", "TagList", "Tag", "K", "Out", "Err"}

    endpoints = {
        "partitions": [{"partition": "aws", "regions": {"r": {}}, "services": {"s3": {}, "ec2": {}}}]
    }
    assert trim_endpoints(endpoints)["partitions"] == [
        {"partition": "aws", "regions": {"r": {}}, "services": {"s3": {}}}
    ]


def test_the_lean_loader_reads_plain_dicts_and_leaves_other_files_whole() -> None:
    loader = LeanJSONFileLoader()
    retry = loader.load_file(os.path.join(DATA, "_retry"))
    assert type(retry) is dict and retry  # not an OrderedDict
    endpoints = loader.load_file(os.path.join(DATA, "endpoints"))
    services = {s for p in endpoints["partitions"] for s in p["services"]}
    assert services <= {"s3", "sts", "sso", "oidc", "portal.sso"} and "s3" in services
    assert loader.load_file(os.path.join(DATA, "no-such-file")) is None


@pytest.fixture
async def storage_client() -> AsyncIterator[Any]:
    async with RecordingStorage.open(bucket="b", region="eu-west-1", endpoint_url=None) as storage:
        yield storage._client


async def test_the_services_s3_client_is_the_lean_one(storage_client: Any) -> None:
    assert set(storage_client.meta.service_model.operation_names) == S3_OPERATIONS

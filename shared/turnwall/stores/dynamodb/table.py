"""The sessions table as template.yaml defines it, in the shapes boto3 takes.

template.yaml is the one source of truth for the table: tests, local runs and the
`turnwall` CLI build their tables from its ``SessionsTable`` resource instead of
repeating the schema, so the deployed table and the tested one cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

import yaml

from turnwall.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import CreateTableInputTypeDef

# shared/turnwall/stores/dynamodb/table.py -> the repository root.
DEFAULT_TEMPLATE_PATH: Final = Path(__file__).resolve().parents[4] / "template.yaml"
TABLE_RESOURCE: Final = "SessionsTable"

# CloudFormation property -> create_table argument, for those with the same shape in both.
_SAME_SHAPE: Final = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "LocalSecondaryIndexes",
    "TableClass",
    "DeletionProtectionEnabled",
)
_INDEX_FIELDS: Final = (
    "IndexName",
    "KeySchema",
    "Projection",
    "ProvisionedThroughput",
    "OnDemandThroughput",
)


class CloudFormationLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation short-form tags (``!Ref``, ``!Sub``,
    ``!If``, ``!GetAtt``, ...) as their long JSON forms (``{"Ref": ...}``,
    ``{"Fn::Sub": ...}``), so a template loads as CloudFormation itself sees it."""


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


class TableSpec(NamedTuple):
    """What it takes to build the sessions table with boto3."""

    create_table_kwargs: CreateTableInputTypeDef
    ttl_attribute: str | None
    point_in_time_recovery: bool


def load_template(template_path: Path | None = None) -> dict[str, Any]:
    """Parse a SAM/CloudFormation template, short-form tags included.

    Raises:
        ConfigurationError: the file is missing or is not a template.
    """
    path = template_path or DEFAULT_TEMPLATE_PATH
    try:
        with path.open(encoding="utf-8") as stream:
            template = yaml.load(stream, Loader=CloudFormationLoader)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the template {str(path)!r}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise ConfigurationError(f"{str(path)!r} has no Resources section")
    return template


def table_spec(table_name: str, template_path: Path | None = None) -> TableSpec:
    """The `create_table` arguments (for `table_name`) and TTL attribute of SessionsTable.

    Raises:
        ConfigurationError: the template has no usable SessionsTable resource.
    """
    resource = load_template(template_path)["Resources"].get(TABLE_RESOURCE)
    if not isinstance(resource, dict) or resource.get("Type") != "AWS::DynamoDB::Table":
        raise ConfigurationError(f"the template has no AWS::DynamoDB::Table {TABLE_RESOURCE}")
    properties: Mapping[str, Any] = resource.get("Properties") or {}

    kwargs: dict[str, Any] = {"TableName": table_name}
    for name in _SAME_SHAPE:
        if name in properties:
            kwargs[name] = _literal(properties[name], name)
    if "GlobalSecondaryIndexes" in properties:
        kwargs["GlobalSecondaryIndexes"] = [
            {field: index[field] for field in _INDEX_FIELDS if field in index}
            for index in _literal(properties["GlobalSecondaryIndexes"], "GlobalSecondaryIndexes")
        ]
    stream = _literal(properties.get("StreamSpecification"), "StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    sse = _literal(properties.get("SSESpecification"), "SSESpecification")
    if sse:
        kwargs["SSESpecification"] = {
            "Enabled": bool(sse.get("SSEEnabled", False)),
            **{key: sse[key] for key in ("SSEType", "KMSMasterKeyId") if key in sse},
        }

    ttl = _literal(properties.get("TimeToLiveSpecification"), "TimeToLiveSpecification")
    recovery = _literal(
        properties.get("PointInTimeRecoverySpecification"), "PointInTimeRecoverySpecification"
    )
    return TableSpec(
        create_table_kwargs=cast("CreateTableInputTypeDef", kwargs),
        ttl_attribute=str(ttl["AttributeName"]) if ttl and ttl.get("Enabled") else None,
        point_in_time_recovery=bool(recovery and recovery.get("PointInTimeRecoveryEnabled")),
    )


def create_table_from_template(
    client: DynamoDBClient, table_name: str, template_path: Path | None = None
) -> TableSpec:
    """Create the sessions table as the template defines it, wait for it, enable TTL.

    Point-in-time recovery is a property of the deployed stack and is left to it.

    Raises:
        ConfigurationError: the template has no usable SessionsTable resource.
    """
    spec = table_spec(table_name, template_path)
    client.create_table(**spec.create_table_kwargs)
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    if spec.ttl_attribute is not None:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"AttributeName": spec.ttl_attribute, "Enabled": True},
        )
    return spec


def _literal(value: Any, name: str) -> Any:
    """`value` itself, refusing what only CloudFormation can resolve (!Ref, !If, ...)."""
    if isinstance(value, dict):
        intrinsic = [key for key in value if key == "Ref" or str(key).startswith("Fn::")]
        if intrinsic:
            raise ConfigurationError(
                f"{TABLE_RESOURCE}.{name} uses {intrinsic[0]}; only literal values can be "
                "turned into create_table arguments"
            )
        for item in value.values():
            _literal(item, name)
    elif isinstance(value, list):
        for item in value:
            _literal(item, name)
    return value

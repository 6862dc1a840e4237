"""Validation of custom resources against the vendored CRD schemas (schemas/crds/)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import yaml

from tests.deploy.manifests import SCHEMAS_DIR, Manifest, qualified_name

CRD_DIR = SCHEMAS_DIR / "crds"


def to_json_schema(node: Any) -> Any:
    """An OpenAPI v3 structural schema as a JSON schema that rejects unknown fields.

    The API server drops (or, with strict field validation, rejects) fields a CRD does not
    declare; JSON Schema accepts them unless told otherwise, so every object that declares
    its properties gets `additionalProperties: false`, except where the CRD preserves
    unknown fields. `x-kubernetes-*` keywords are ignored by JSON Schema validators.
    """
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: to_json_schema(value) for key, value in node.items()}
    if (
        "properties" in converted
        and "additionalProperties" not in converted
        and not converted.get("x-kubernetes-preserve-unknown-fields")
    ):
        converted["additionalProperties"] = False
    return converted


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON schema, for every vendored CRD version."""
    schemas = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        api_version = f"{document['group']}/{document['version']}"
        schemas[(api_version, document["kind"])] = to_json_schema(document["openAPIV3Schema"])
    return schemas


def is_custom_resource(obj: Manifest) -> bool:
    return (obj["apiVersion"], obj["kind"]) in crd_schemas()


def crd_validation_errors(obj: Manifest) -> list[str]:
    schema = crd_schemas()[(obj["apiVersion"], obj["kind"])]
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{qualified_name(obj)}: {'.'.join(str(p) for p in error.absolute_path) or '<root>'}: "
        f"{error.message}"
        for error in sorted(validator.iter_errors(obj), key=lambda e: str(list(e.absolute_path)))
    ]

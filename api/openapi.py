"""The OpenAPI document, kept as YAML beside the code it describes."""
from functools import lru_cache
from pathlib import Path

import yaml
from flask import Blueprint

from api.auth import authenticate

bp = Blueprint("openapi", __name__, url_prefix="/v1")
bp.before_request(authenticate)


@lru_cache(maxsize=1)
def document() -> dict:
    return yaml.safe_load((Path(__file__).with_name("openapi.yaml")).read_text())


@bp.get("/openapi.json")
def openapi():
    return document()

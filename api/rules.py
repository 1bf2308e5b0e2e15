from flask import Blueprint

from api import context
from api.auth import authenticate, require

bp = Blueprint("rules", __name__, url_prefix="/v1")
bp.before_request(authenticate)


@bp.get("/rules")
@require("read")
def list_rules():
    return {"rules": [
        {"name": r.name, "version": r.version, "document_type": r.document_type,
         "description": r.description, "fields": r.fields_schema,
         "checks": [{"id": c.id, "outcome": c.outcome, "message": c.message} for c in r.checks]}
        for r in sorted(context.rules().values(), key=lambda r: r.name)
    ]}

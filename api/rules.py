from flask import Blueprint

from api import context
from api.auth import authenticate, principal, require
from docket import policies
from docket.policies import rule_json

bp = Blueprint("rules", __name__, url_prefix="/v1")
bp.before_request(authenticate)


@bp.get("/rules")
@require("read")
def list_rules():
    """The caller's tenant's active version of each policy (its own, else the built-in)."""
    builtins = context.rules()
    # From the database, not the submissions' cache: not a hot route, and like every other it
    # answers 503 while the database is down.
    active = policies.active_rules(context.db(), principal().tenant_id, builtins)
    return {"rules": [
        {**rule_json(r), "builtin": builtins.get(r.name) is r} for r in sorted(active.values(), key=lambda r: r.name)
    ]}

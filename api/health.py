from flask import Blueprint
from sqlalchemy import text

from api import context

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    context.db().execute(text("SELECT 1"))
    return {"status": "ok", "rules": sorted(context.rules())}

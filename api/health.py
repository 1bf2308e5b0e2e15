from flask import Blueprint
from sqlalchemy import text

from api import context
from api.problems import database_unavailable
from docket import database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 while the database answers; 503 `database_unavailable` (problem+json, Retry-After)
    naming the database as what is down, while it does not."""
    try:
        context.db().execute(text("SELECT 1"))
    except Exception as exc:
        if not database.unavailable(exc):
            raise
        return database_unavailable("The database cannot be reached.", checks={"database": "down"})
    return {"status": "ok", "checks": {"database": "up"}, "rules": sorted(context.rules())}

"""`docket fx`: exchange rates for converting totals into the policy's currency (docket/fx.py)."""
from __future__ import annotations

import getpass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from docket.config import Settings


def _session():
    from db.migrate import upgrade
    from db.session import session_scope

    settings = Settings.from_env()
    upgrade(settings.database_url)
    return session_scope(settings.database_url)


def _default_quote() -> str:
    """The built-in expense policy's cap currency (what fixed rates are usually quoted in)."""
    from docket import fx
    from docket.rules import default_rules_dir, load_rules

    rule = load_rules(Settings.from_env().rules_dir or default_rules_dir()).get("expense_policy")
    return (fx.policy_currency(rule) if rule is not None else None) or "EUR"


@click.group("fx")
def fx_group() -> None:
    """Exchange rates: ECB reference rates and tenants' fixed rates."""


@fx_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def fx_import(file: Path) -> None:
    """Load euro reference rates from FILE (the ECB's eurofxref-hist.csv, or its .zip). They take
    precedence over the history shipped with Docket for the days they cover."""
    from docket import fx

    try:
        text = fx.read_rates_file(file)
        with _session() as session:
            done = fx.import_rates(session, text)
            session.commit()
    except fx.RatesFileError as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    click.echo(f"imported {done['rates']} rates for {done['days']} days ({done['first']} to {done['last']}), "
               f"{len(done['currencies'])} currencies")


@fx_group.command("set-rate")
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--from", "valid_from", default=None, help="First date the rate applies (YYYY-MM-DD); default: always.")
@click.option("--to", "quote", default=None, help="The currency RATE is in (default: the expense policy's cap currency).")
@click.argument("currency")
@click.argument("rate")
def fx_set_rate(tenant: str, valid_from: str | None, quote: str | None, currency: str, rate: str) -> None:
    """A tenant's fixed rate: 1 CURRENCY = RATE (in --to), from --from until a newer one. Fixed
    rates take precedence over reference rates."""
    from docket import fx
    from docket.tenants import ensure_tenant

    try:
        value = Decimal(rate)
        start = date.fromisoformat(valid_from) if valid_from else None
    except (InvalidOperation, ValueError):
        raise click.UsageError("RATE is a number and --from a date (YYYY-MM-DD)") from None
    quote = (quote or _default_quote()).upper()
    with _session() as session:
        ensure_tenant(session, tenant)
        try:
            row = fx.set_fixed_rate(session, tenant, currency, quote, value, start,
                                    created_by=f"cli ({getpass.getuser()})")
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        session.commit()
        click.echo(f"tenant {tenant}: 1 {row.currency} = {row.rate} {row.quote} "
                   f"from {row.valid_from.isoformat() if row.valid_from else 'always'}")


@fx_group.command("rates")
@click.option("--tenant", required=True, help="Tenant id.")
def fx_rates(tenant: str) -> None:
    """List a tenant's fixed rates, newest first."""
    from sqlalchemy import select

    from db.models import FxFixedRate

    with _session() as session:
        rows = session.scalars(select(FxFixedRate).where(FxFixedRate.tenant_id == tenant)
                               .order_by(FxFixedRate.id.desc()))
        for row in rows:
            click.echo(f"1 {row.currency} = {row.rate} {row.quote} from "
                       f"{row.valid_from.isoformat() if row.valid_from else 'always'} ({row.created_by})")

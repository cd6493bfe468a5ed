"""``ketfaq staff``: the accounts that sign in to the console at ``/staff``."""

from __future__ import annotations

from typing import Annotated

import typer

from ketfaq.settings import get_settings

__all__ = ["staff_app"]

staff_app = typer.Typer(help="Staff accounts for the console at /staff.", no_args_is_help=True)


@staff_app.command("add")
def staff_add(name: Annotated[str, typer.Argument(help="Their sign-in name (letters, digits, . - _).")]) -> None:
    """Create a staff account, or set a new password (asked twice, never echoed or stored in clear)."""
    from ketfaq.staff.accounts import MIN_PASSWORD

    password = typer.prompt(f"Password for {name} (at least {MIN_PASSWORD} characters)", hide_input=True,
                            confirmation_prompt=True)
    try:
        _store().add(name, password)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _store().audit("(shell)", "set the password of", name)
    typer.echo(f"staff account {name} ready: sign in at /staff/login")


@staff_app.command("list")
def staff_list() -> None:
    """The staff accounts."""

    for name in _store().names():
        typer.echo(name)


@staff_app.command("remove")
def staff_remove(name: Annotated[str, typer.Argument(help="The account to delete.")]) -> None:
    """Delete a staff account (and sign it out everywhere)."""

    store = _store()
    if not store.remove(name):
        typer.echo(f"error: no staff account {name}", err=True)
        raise typer.Exit(2)
    store.audit("(shell)", "removed the account of", name)
    typer.echo(f"removed {name}")


def _store():  # type: ignore[no-untyped-def]
    from ketfaq.staff.accounts import StaffStore

    settings = get_settings()
    return StaffStore(settings.db_path, url=settings.database_url)

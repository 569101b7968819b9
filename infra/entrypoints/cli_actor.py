"""The command line as an edge: whatever a ``shop`` command saves (``users
create-admin``, ``seed catalog``; on ``dlq replay`` a policy names itself) names the
command as its actor: ``system``, ``cli:shop <command>``. Set by ``shop``'s callback
in the main thread, for the command's run; the HTTP requests ``shop run`` serves and
the background loops it starts name their own."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

from commands import actors
from domain.actors import Actor


def command_path(root: Any, argv: Sequence[str]) -> str:
    """``shop users create-admin`` for ``argv`` = ``users create-admin --email ...``:
    the leading words that name a command of the group before them, so that no
    option's value (a password) is ever taken."""
    names = ["shop"]
    command = root
    for word in argv:
        command = getattr(command, "commands", {}).get(word)
        if command is None:
            break
        names.append(word)
    return " ".join(names)


def act_as_command_line(ctx: typer.Context) -> None:
    """``shop``'s callback: the command acts as the command line, until it ends. The
    callback runs before the subcommand is chosen, hence the process's arguments."""
    actor = Actor.system(f"cli:{command_path(ctx.command, sys.argv[1:])}")
    token = actors.set_source(lambda: actor)
    ctx.call_on_close(lambda: actors.reset_source(token))

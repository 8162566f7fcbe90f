"""Options accepted wherever users put them: before or after a subcommand.

argparse binds an option to the parser that defines it, so ``sessions --store X list`` works and
``sessions list --store X`` is refused (and the other way round for options of the subcommands).
``options_anywhere`` walks the finished parser tree and, for each command with subcommands, gives
every subcommand the command's own options and gives the command the options that all its
subcommands share. The copies default to ``argparse.SUPPRESS``, so a value given at one level is never
overwritten by the other level's default.
"""

from __future__ import annotations

import argparse
import copy

_NOT_COPIED = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's own optional arguments that carry a value (no help, version or subcommands)."""
    return [a for a in parser._actions if a.option_strings and not isinstance(a, _NOT_COPIED)]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sp in a.choices.values():
                out.setdefault(str(id(sp)), sp)  # aliases name one parser
    return out


def _has(parser: argparse.ArgumentParser, action: argparse.Action) -> bool:
    return any(s in parser._option_string_actions for s in action.option_strings)


def _add_copy(parser: argparse.ArgumentParser, action: argparse.Action, default) -> None:
    c = copy.copy(action)
    c.default = default
    c.required = False
    parser._add_action(c)


def _shared(subs: list[argparse.ArgumentParser]) -> list[argparse.Action]:
    """Options every subcommand has, with one destination and default, none of them required."""
    out = []
    for a in _options(subs[0]):
        same = [next((b for b in _options(sp) if b.option_strings == a.option_strings), None) for sp in subs]
        if all(b is not None and b.dest == a.dest and b.default == a.default and not b.required for b in same):
            out.append(a)
    return out


def options_anywhere(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make every command's options work before and after its subcommand, through the whole tree."""
    subs = list(_subcommands(parser).values())
    if not subs:
        return parser
    for a in _shared(subs):
        if not _has(parser, a):
            _add_copy(parser, a, a.default)
            for sp in subs:  # the command now holds the default; a subcommand's copy only holds a given value
                next(b for b in _options(sp) if b.option_strings == a.option_strings).default = argparse.SUPPRESS
    own = [a for a in _options(parser)]
    for sp in subs:
        for a in own:
            if not _has(sp, a):
                _add_copy(sp, a, argparse.SUPPRESS)
        options_anywhere(sp)
    return parser

"""The pseudonym rule for person ids: the one check of every path that files something under a person
(the CLI's ``--person``, the app's person field, cohort manifests, the store itself). Light: no
pyarrow or numba, so the command line can check before anything heavy loads."""

from __future__ import annotations

import re

from monitor.errors import StoreError

PERSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def check_person(person: str) -> str:
    """``person`` when it is a pseudonym: 1–40 letters, digits, '-', '_' or '.', starting with a letter
    or digit. No spaces, so a full name such as "John Smith" is refused with the reason; the rule
    cannot tell a single name from a code, so use codes (docs/app.md, "People")."""
    if not isinstance(person, str) or not PERSON_ID.match(person):
        raise StoreError(f"person id must be a pseudonym, not a name: 1–40 letters, digits, '-', '_' or '.' "
                         f"(no spaces), got {person!r}")
    return person

"""The ``facemonitor`` command line: one module per command group, each adding its own parser and
running its command; errors become one ``error:`` line and exit code 2.

May import: everything.
"""

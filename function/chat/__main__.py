"""``python -m function.chat --markdown``: print the grammar and option table of the docs."""

from __future__ import annotations

import sys

from function.chat.commands import markdown


def main(argv: list[str]) -> int:
    """Print ``markdown()`` for ``--markdown``; anything else is a usage error."""
    if argv != ["--markdown"]:
        print("usage: python -m function.chat --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

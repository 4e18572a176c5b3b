"""Frames of ``get --watch`` as bytes for the terminal (pure).

On a terminal each frame repaints the screen in place; anywhere else (a pipe, a file, a CI log)
frames are appended one after another, separated by a blank line, with no escape codes.
"""

from __future__ import annotations

from collections.abc import Sequence

HOME = "\x1b[H"  # cursor to the top-left corner
CLEAR_SCREEN = "\x1b[2J"
CLEAR_TO_EOL = "\x1b[K"
CLEAR_BELOW = "\x1b[J"


def frame(lines: Sequence[str], *, tty: bool, first: bool) -> str:
    """The text that shows ``lines`` as one frame.

    On a terminal, the first frame clears the screen; later ones overwrite the previous frame
    line by line and clear what is left below it, which does not flicker the way clearing
    the whole screen before every frame does.
    """
    if not tty:
        return ("" if first else "\n") + "".join(f"{line}\n" for line in lines)
    body = "".join(f"{line}{CLEAR_TO_EOL}\n" for line in lines)
    return (CLEAR_SCREEN if first else "") + HOME + body + CLEAR_BELOW

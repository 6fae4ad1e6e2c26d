"""The King James Bible as a text corpus (``"kjv"``), from Debian's ``bible-kjv`` package.

``bible -f "Gen1:1-Rev22:21"`` prints the whole book (31,102 verses, about 820,000 words), one verse a
line after its reference (``Ge1:1 In the beginning ...``). It is written once into attnscope's cache as
a ``.txt`` file of one paragraph per chapter (1,189), its verses joined by spaces on one line and
without their references, so that spaCy finds the sentences the text has: a KJV sentence often runs
over several verses ("... to give light upon the earth, / And to rule over the day ..."), which one
paragraph per verse would cut. Line ``2n - 1`` of the file is the n-th chapter of the passage, and
sentence ids (``kjv-<chapter>-<sentence>``) count chapters from the passage's first.

``"kjv:<passage>"`` takes a passage in ``bible``'s own reference syntax (``"kjv:John1:1-John1:51"``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from ..cache import cache_root
from ..errors import CorpusError
from ..files import atomic_file

WHOLE = "Gen1:1-Rev22:21"
"""The whole Bible, as a ``bible`` passage."""
VERSE = re.compile(r"(\d?[A-Za-z]+)(\d+):(\d+) (.*)")
"""One line of ``bible -f``: book abbreviation, chapter, verse, text."""
INSTALL = (
    "the King James Bible corpus needs the `bible` command of Debian's bible-kjv package; "
    "install it with `apt-get install bible-kjv` (or index a .txt file of your own)"
)


def is_kjv_spec(spec: str) -> bool:
    """Whether ``spec`` names the King James Bible: ``"kjv"`` or ``"kjv:<passage>"``."""
    name = spec.strip().lower()
    return name == "kjv" or name.startswith("kjv:")


def kjv_passage(spec: str) -> str:
    """The ``bible`` passage of a kjv spec: the whole book for ``"kjv"``."""
    _, _, passage = spec.strip().partition(":")
    passage = passage.strip()
    if spec.strip().lower() != "kjv" and not passage:
        raise CorpusError(f"{spec!r} names no passage; expected 'kjv' or 'kjv:<passage>', e.g. 'kjv:John1:1-John1:51'")
    return passage or WHOLE


def kjv_name(spec: str) -> str:
    """The corpus name: ``kjv``, or ``kjv:<passage>`` for a part of it."""
    passage = kjv_passage(spec)
    return "kjv" if passage == WHOLE else f"kjv:{passage}"


def kjv_file(passage: str = WHOLE, cache_dir: Path | None = None) -> Path:
    """The cached ``kjv.txt`` of ``passage`` (one paragraph per chapter), written on first use.

    Raises `CorpusError` when ``bible`` is not installed or prints no verse for ``passage``.
    """
    key = "all" if passage == WHOLE else re.sub(r"[^A-Za-z0-9]+", "_", passage).strip("_")
    key += "-" + hashlib.sha256(passage.encode("utf-8")).hexdigest()[:8]
    path = (cache_dir or cache_root() / "kjv") / key / "kjv.txt"
    if path.is_file():
        return path
    text = chapters_text(bible_verses(passage), passage)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as out:
        out.write(text)
    return path


def bible_verses(passage: str) -> str:
    """What ``bible -f <passage>`` prints: one verse a line."""
    program = shutil.which("bible")
    if program is None:
        raise CorpusError(f"`bible` was not found on PATH: {INSTALL}")
    environment = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # -f wraps lines at COLUMNS
    try:
        done = subprocess.run(
            [program, "-f", passage], capture_output=True, text=True, env=environment, timeout=120, check=False
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise CorpusError(f"`bible -f {passage}` failed ({error}): {INSTALL}") from None
    if done.returncode != 0 or done.stderr.strip():
        said = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()[0][:200]
        raise CorpusError(f"`bible -f {passage}` failed: {said}; expected a passage such as 'John1:1-John1:51'")
    return done.stdout


def chapters_text(verses: str, passage: str) -> str:
    """``bible -f`` output as text: each chapter's verses on one line, references dropped, a blank line
    between chapters."""
    chapters: list[list[str]] = []
    current = None
    for line in verses.splitlines():
        match = VERSE.fullmatch(line.strip())
        if match is None:
            if line.strip() and chapters:  # a verse continued on the next line
                chapters[-1][-1] += " " + line.strip()
            continue
        chapter = (match[1], match[2])
        if chapter != current:
            chapters.append([])
            current = chapter
        chapters[-1].append(match[4].strip())
    if not chapters:
        raise CorpusError(f"`bible -f {passage}` printed no verse; expected a passage such as 'John1:1-John1:51'")
    return "\n\n".join(" ".join(verses) for verses in chapters) + "\n"

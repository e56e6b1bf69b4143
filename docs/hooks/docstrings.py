"""MkDocs hook: parallelrun's docstrings read as plain text in a terminal (``help()``), with a
few reStructuredText habits that Markdown shows literally; the API pages drop them.

- ``:class:`JobResult``` (any ``:role:``) becomes the code span alone;
- a paragraph ending in ``::`` (the code block that follows) ends in one colon.
"""

from __future__ import annotations

import re

# after Markdown: ":class:<code>X</code>"
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj|py:\w+):(?=<code>)")
_DOUBLE_COLON = re.compile(r"::(?=</p>)")


def on_page_content(html: str, page, **kwargs) -> str:
    return _DOUBLE_COLON.sub(":", _ROLE.sub("", html))

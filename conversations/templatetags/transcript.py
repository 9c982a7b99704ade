"""The transcript's text in a page whose script reads it back (a share link's page): the
server-rendered element is both what a browser without JavaScript shows and the only copy of
the markdown source the script draws from."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Within an element's content only "&" and "<" start markup (">" too, by habit). A carriage
# return is written as a reference: the HTML parser turns CR and CRLF in the page's bytes into
# LF, but not one made by a reference, so the element's textContent is the text exactly.
_SOURCE_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


@register.filter(is_safe=True)
def source_text(text: str) -> SafeString:
    """``text`` as the content of an element (never an attribute) whose ``textContent`` is
    ``text`` exactly; shown as written under ``white-space: pre-wrap``."""
    return mark_safe(str(text).translate(_SOURCE_ESCAPES))  # noqa: S308 - escaped above

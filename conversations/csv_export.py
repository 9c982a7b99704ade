"""The CSV downloads (the ledger's, the audit log's), sent as their rows are read.

A 90-day export of a busy ledger is far larger than a page: built whole in the worker (as an
``HttpResponse`` was) it held every row's text at once, and sent nothing until the last row was
read, long enough for a proxy to give up. Under ASGI Django sends a ``StreamingHttpResponse``
over an *async* iterator part by part, as it is produced; over a sync iterator it first
collects every part into a list, which is the whole file again. So the rows are read here a
batch at a time from a server-side cursor (``QuerySet.iterator``), each batch on the request's
own thread (``sync_to_async``, thread-sensitive: the cursor lives on that thread's connection),
and each batch's lines are sent before the next is read.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import models
from django.http import StreamingHttpResponse
from django.utils import timezone

#: Rows read (and lines sent) at a time.
BATCH_ROWS = 2000

# A text cell starting with one of these is a formula to a spreadsheet (a title such as
# =HYPERLINK(...) would run when staff open the export): such cells get a leading quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Row = TypeVar("Row", bound=models.Model)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        # In the deployment's time zone, as the admin shows it and as days and months are
        # counted (in UTC a call late in the evening was dated the next day), offset included.
        return timezone.localtime(value).isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class _Lines:
    """What ``csv.writer`` writes to: each row comes back as its line of text."""

    def write(self, line: str) -> str:
        return line


def stream_csv(
    filename: str,
    header: Sequence[str],
    rows: models.QuerySet[Row],
    columns: Callable[[Row], Sequence[Any]],
) -> StreamingHttpResponse:
    """A download of ``rows`` (in their query's order), one line each: ``columns`` gives a
    row's cells, in ``header``'s order. Only the related rows the query selects may be read
    there (``select_related``): it runs on the cursor's thread, a batch at a time."""
    response = StreamingHttpResponse(_lines(header, rows, columns), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


async def _lines(
    header: Sequence[str], rows: models.QuerySet[Row], columns: Callable[[Row], Sequence[Any]]
) -> AsyncIterator[str]:
    writer = csv.writer(_Lines())
    yield writer.writerow(header)
    cursor: Iterator[Row] = await sync_to_async(rows.iterator)(chunk_size=BATCH_ROWS)

    def next_batch() -> str:
        return "".join(
            writer.writerow([_cell(value) for value in columns(row)])
            for row in islice(cursor, BATCH_ROWS)
        )

    try:
        while batch := await sync_to_async(next_batch)():
            yield batch
    finally:
        # Also when the client leaves mid-way: the server-side cursor is closed on its thread.
        await sync_to_async(cursor.close)()  # type: ignore[attr-defined]

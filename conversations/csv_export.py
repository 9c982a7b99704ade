"""The CSV downloads (the ledger's, the audit log's), sent as their rows are read.

A 90-day export of a busy ledger is far larger than a page: built whole in the worker (as an
``HttpResponse`` was) it held every row's text at once, and sent nothing until the last row was
read, long enough for a proxy to give up. Under ASGI Django sends a ``StreamingHttpResponse``
over an *async* iterator part by part, as it is produced; over a sync iterator it first
collects every part into a list, which is the whole file again. So the rows are read here a
batch at a time from a server-side cursor (``QuerySet.iterator``), each batch on the request's
own thread (``sync_to_async``, thread-sensitive: the cursor lives on that thread's connection),
and each batch's lines are sent before the next is read.

Outside a transaction Django declares the cursor WITH HOLD, so PostgreSQL computes the whole
result when the first batch is asked for (in its own memory, or temporary files past
``work_mem``), not in the worker: the lines then come as fast as the worker writes them.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any, Generic, TypeVar, cast

from asgiref.sync import sync_to_async
from django.db import models
from django.http import StreamingHttpResponse
from django.utils import timezone

#: Rows read (and lines sent) at a time.
BATCH_ROWS = 2000

# A text cell starting with one of these is a formula to a spreadsheet (a title such as
# =HYPERLINK(...) would run when staff open the export): such cells get a leading quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _formula_like(text: str) -> bool:
    """Whether a spreadsheet may take ``text`` for a formula: it starts with one of
    :data:`_FORMULA_STARTS`, or does once its leading whitespace is gone. LibreOffice Calc's
    CSV import with "Trim spaces" ticked (an option it remembers) reads `` =1+1`` as the
    formula ``=1+1``, as OWASP's CSV injection guidance warns. The full-width forms (U+FF1D
    and the like) stay text there, and OWASP does not list them: not quoted."""
    return text.startswith(_FORMULA_STARTS) or text.lstrip().startswith(_FORMULA_STARTS)


Row = TypeVar("Row", bound=models.Model)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        # In the deployment's time zone, as the admin shows it and as days and months are
        # counted (in UTC a call late in the evening was dated the next day), offset included.
        return timezone.localtime(value).isoformat()
    if isinstance(value, Decimal):
        # Written out ("0.00000000"): a cost of nothing was "0E-8", a hundred-millionth "1E-8".
        return format(value, "f")
    if isinstance(value, str) and _formula_like(value):
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
    response = StreamingHttpResponse(_CsvLines(header, rows, columns), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class _CsvLines(Generic[Row]):
    """A download's lines: iterated asynchronously, a batch of rows read at a time on the
    request's thread; closed by Django once the response ends (``HttpResponse.close``, on that
    thread too), also when the client leaves mid-way. The server-side cursor is closed there,
    before the request's connection goes back to the pool: left to the garbage collector, it
    was closed whenever that came, from whichever thread, on a connection by then another's."""

    def __init__(
        self,
        header: Sequence[str],
        rows: models.QuerySet[Row],
        columns: Callable[[Row], Sequence[Any]],
    ) -> None:
        self.header, self.rows, self.columns = header, rows, columns
        self.writer = csv.writer(_Lines())
        self.cursor: Generator[Row] | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        yield self.writer.writerow(self.header)
        while batch := await sync_to_async(self._next_batch)():
            yield batch

    def _next_batch(self) -> str:
        if self.cursor is None:
            self.cursor = cast("Generator[Row]", self.rows.iterator(chunk_size=BATCH_ROWS))
        return "".join(
            self.writer.writerow([_cell(value) for value in self.columns(row)])
            for row in islice(self.cursor, BATCH_ROWS)
        )

    def close(self) -> None:
        if self.cursor is not None:
            self.cursor.close()

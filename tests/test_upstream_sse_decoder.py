"""The SSE decoder turns arbitrary byte reads into exactly the events the server sent."""

from __future__ import annotations

import json
import random

import pytest

from conversations.upstream.sse import LineTooLong, SSEDecoder


def feed_in_pieces(data: bytes, sizes: list[int]) -> tuple[list[str], SSEDecoder]:
    decoder = SSEDecoder()
    out: list[str] = []
    position = 0
    for size in sizes:
        out += decoder.feed(data[position : position + size])
        position += size
    out += decoder.feed(data[position:])
    return out, decoder


def test_it_reassembles_a_utf8_character_split_across_reads() -> None:
    payload = json.dumps({"content": "日本語 🚀 ok"}, ensure_ascii=False)
    data = f"data: {payload}\n\n".encode()
    rocket = data.index("🚀".encode())
    for cut in range(rocket + 1, rocket + 4):  # inside the 4-byte rocket
        decoder = SSEDecoder()
        events = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert events == [payload]
        assert json.loads(events[0])["content"] == "日本語 🚀 ok"


def test_it_yields_the_same_events_whatever_the_read_sizes() -> None:
    payloads = [json.dumps({"n": n, "text": "é" * n}) for n in range(40)]
    data = b"".join(f"data: {p}\n\n".encode() for p in payloads) + b"data: [DONE]\n\n"
    rng = random.Random(7)
    for _ in range(50):
        sizes = [rng.randint(1, 37) for _ in range(len(data))]
        events, decoder = feed_in_pieces(data, sizes)
        assert events == payloads
        assert decoder.done


def test_it_reads_byte_by_byte() -> None:
    data = b': keep-alive\n\ndata: {"a":1}\n\ndata: [DONE]\n\n'
    events, decoder = feed_in_pieces(data, [1] * len(data))
    assert events == ['{"a":1}']
    assert decoder.done


def test_it_accepts_crlf_and_cr_line_endings() -> None:
    crlf = b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\ndata: [DONE]\r\n\r\n'
    cr = b'data: {"a":1}\r\rdata: {"b":2}\r\rdata: [DONE]\r\r'
    for data in (crlf, cr):
        decoder = SSEDecoder()
        assert decoder.feed(data) == ['{"a":1}', '{"b":2}']
        assert decoder.done


def test_a_crlf_split_between_two_reads_counts_as_one_line_end() -> None:
    data = b"data: first\r\ndata: second\r\n\r\n"
    cut = data.index(b"\r\n") + 1  # between CR and LF
    decoder = SSEDecoder()
    events = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
    assert events == ["first\nsecond"]


def test_several_data_lines_in_one_event_are_joined_with_newlines() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\ndata:two\ndata: three\n\n") == ["one\ntwo\nthree"]


def test_comments_and_blank_lines_are_ignored_even_in_floods() -> None:
    flood = b": keep-alive\n\n" * 5000 + b"\n\n\n"
    data = flood + b'data: {"x":1}\n\n' + flood + b"data: [DONE]\n\n"
    events, decoder = feed_in_pieces(data, [13] * (len(data) // 13))
    assert events == ['{"x":1}']
    assert decoder.comments == 10000
    assert decoder.done


def test_other_fields_are_ignored_and_a_field_without_colon_is_a_name() -> None:
    decoder = SSEDecoder()
    data = b"event: message\nid: 7\nretry: 10\ndata\ndata: x\n\n"
    # A bare "data" line is a data field with an empty value.
    assert decoder.feed(data) == ["\nx"]


def test_an_empty_data_field_dispatches_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data:\n\ndata: \n\n") == []


def test_a_one_megabyte_line_is_read_whole() -> None:
    text = "a" * (1024 * 1024)
    payload = json.dumps({"content": text})
    data = f"data: {payload}\n\ndata: [DONE]\n\n".encode()
    events, decoder = feed_in_pieces(data, [16384] * (len(data) // 16384))
    assert len(events) == 1
    assert json.loads(events[0])["content"] == text
    assert decoder.done


def test_a_line_over_the_limit_is_refused() -> None:
    decoder = SSEDecoder(max_line_bytes=1000)
    decoder.feed(b"data: " + b"a" * 900)
    with pytest.raises(LineTooLong):
        decoder.feed(b"a" * 200)


def test_events_after_done_are_ignored() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b'data: {"a":1}\n\ndata: [DONE]\n\ndata: {"late":1}\n\n')
    assert events == ['{"a":1}']
    assert decoder.done
    assert decoder.feed(b'data: {"later":2}\n\n') == []


def test_an_event_without_its_blank_line_is_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a":1}\n') == []
    assert not decoder.done

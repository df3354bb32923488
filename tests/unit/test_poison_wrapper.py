"""Writing a poison message: the wrapper always fits a queue message and never cuts the original."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.messages import QUEUE_MESSAGE_BYTES
from shared.queues import poison_body
from tests.support import BOUNDED

REASONS = st.text(max_size=200)  # lone surrogates included: a reason is written as valid UTF-8
ORIGINALS = st.one_of(
    st.text(max_size=2000),  # lone surrogates included: no UTF-8, so base64
    st.binary(max_size=2000),
    # Up to a full queue message (what the host can deliver), in characters that quote long or not.
    st.builds(
        lambda char, n: char * min(n, QUEUE_MESSAGE_BYTES // len(char.encode())),
        st.sampled_from(['"', "\\", "\x00", "é", "🗂", "x"]),
        st.integers(0, QUEUE_MESSAGE_BYTES),
    ),
    st.integers(QUEUE_MESSAGE_BYTES - 64, QUEUE_MESSAGE_BYTES).map(lambda n: b"\xff" * n),
)


def original_of(body: str | bytes) -> bytes:
    """What a reader gets back from the poison queue: the wrapper's original, or the body itself."""
    if isinstance(body, bytes):
        return body
    wrapper = json.loads(body)
    if "messageBase64" in wrapper:
        return base64.b64decode(wrapper["messageBase64"], validate=True)
    text: str = wrapper["message"]
    return text.encode("utf-8")


def as_bytes(original: str | bytes) -> bytes:
    return original.encode("utf-8", "surrogatepass") if isinstance(original, str) else original


@BOUNDED
@given(reason=REASONS, original=ORIGINALS)
def test_the_poison_body_fits_a_queue_message_and_gives_back_the_whole_original(
    reason: str, original: str | bytes
) -> None:
    body = poison_body(reason=reason, original=original)

    data = body.encode("utf-8") if isinstance(body, str) else body
    assert len(data) <= QUEUE_MESSAGE_BYTES  # 64 KiB once base64-encoded
    assert original_of(body) == as_bytes(original)


def test_utf8_text_that_fits_is_quoted_as_the_message_field() -> None:
    body = poison_body(reason="unparseable: x", original="not json é")

    assert json.loads(body) == {"reason": "unparseable: x", "message": "not json é"}


@pytest.mark.parametrize("original", [b"\xff\xfe", "cut \ud83d"], ids=["not-utf8", "lone-surrogate"])
def test_an_original_that_is_not_utf8_text_is_carried_as_base64(original: str | bytes) -> None:
    body = poison_body(reason="unparseable: not UTF-8", original=original)

    assert isinstance(body, str)
    assert set(json.loads(body)) == {"reason", "messageBase64"}
    assert base64.b64decode(json.loads(body)["messageBase64"]) == as_bytes(original)


def test_text_whose_quoting_would_not_fit_is_carried_as_base64_not_cut() -> None:
    original = '"' * 30_000  # 60,000 bytes once quoted, 40,000 in base64

    body = poison_body(reason="unparseable: x", original=original)

    assert base64.b64decode(json.loads(body)["messageBase64"]).decode() == original


def test_a_lone_surrogate_in_the_reason_is_written_as_the_replacement_character() -> None:
    body = poison_body(reason="invalid-job-id: job id '\ud83d' is not a UUID", original="x")

    assert json.loads(body)["reason"] == "invalid-job-id: job id '\ufffd' is not a UUID"

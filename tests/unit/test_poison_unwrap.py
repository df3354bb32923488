"""Reading a poison message back: the app's wrapper gives the original, anything else is the original."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from shared.poison import unwrap_poison
from shared.queues import poison_body
from tests.support import BOUNDED

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)


@BOUNDED
@given(TEXT, TEXT)
def test_the_apps_wrapper_unwraps_to_the_original_text_and_reason(reason: str, original: str) -> None:
    body = poison_body(reason=reason, original=original)
    assert isinstance(body, str)  # short text: the JSON-quoted form
    assert unwrap_poison(body.encode()) == (
        original.encode(),
        reason,
    )


@BOUNDED
@given(
    st.binary(max_size=100)
    | st.dictionaries(st.sampled_from(["reason", "message", "jobId"]), TEXT | st.integers()).map(
        lambda body: json.dumps(body).encode()
    )
)
def test_anything_but_the_wrapper_is_the_original_as_it_is(content: bytes) -> None:
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    is_wrapper = (
        isinstance(body, dict)
        and body.keys() == {"reason", "message"}
        and all(isinstance(v, str) for v in body.values())
    )

    assert unwrap_poison(content)[0] == (body["message"].encode() if is_wrapper else content)
    assert (unwrap_poison(content)[1] is None) == (not is_wrapper)

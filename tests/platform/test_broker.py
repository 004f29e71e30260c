"""The embedded broker never shows a consumer a message that is still being written."""

from __future__ import annotations

import os

from kombu import Connection

import owt.broker


def test_a_message_appears_whole_under_its_consumable_name(tmp_path, monkeypatch):
    seen_while_writing = []
    replace = os.replace

    def watching_replace(source: str, target: str) -> None:
        seen_while_writing.extend(os.listdir(tmp_path))
        replace(source, target)

    monkeypatch.setattr(owt.broker.os, "replace", watching_replace)
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "store_processed": False}
    with Connection("filesystem://localhost/", transport_options=options) as connection:
        assert isinstance(connection.transport, owt.broker.Transport)
        queue = connection.SimpleQueue("data")
        queue.put({"task": "x"})
        # While it was written only the dot-name existed, which the consumer skips.
        assert seen_while_writing and all(name.startswith(".") for name in seen_while_writing)
        message = queue.get(timeout=2)
        assert message.payload == {"task": "x"}
        message.ack()
        queue.close()

"""The embedded broker never shows a consumer a message that is still being written."""

from __future__ import annotations

import os
import uuid

from kombu import Connection

import owt.broker


def test_a_message_appears_whole_under_its_consumable_name(tmp_path, monkeypatch):
    seen_while_writing = []
    replace = os.replace
    queue_folder, control_folder = tmp_path / "queue", tmp_path / "control"
    queue_folder.mkdir()
    control_folder.mkdir()

    def watching_replace(source: str, target: str) -> None:
        seen_while_writing.extend(os.listdir(queue_folder))
        replace(source, target)

    monkeypatch.setattr(owt.broker.os, "replace", watching_replace)
    # Every folder the transport keeps is this test's own (kombu's default control folder is
    # "control" in the working directory, which other processes of the suite may share).
    options = {
        "data_folder_in": str(queue_folder),
        "data_folder_out": str(queue_folder),
        "control_folder": str(control_folder),
        "store_processed": False,
    }
    with Connection("filesystem://localhost/", transport_options=options) as connection:
        assert isinstance(connection.transport, owt.broker.Transport)
        # A name of its own: kombu keeps declared bindings per process, so a queue name that
        # an earlier test of the suite declared (in another folder) would not be bound here.
        queue = connection.SimpleQueue(f"broker-test-{uuid.uuid4().hex}")
        queue.put({"task": "x"})
        # While it was written only the dot-name existed, which the consumer skips.
        assert seen_while_writing and all(name.startswith(".") for name in seen_while_writing)
        message = queue.get(timeout=2)
        assert message.payload == {"task": "x"}
        message.ack()
        queue.close()

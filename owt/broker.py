"""The embedded broker: kombu's filesystem transport, with messages written atomically.

kombu writes a message file in place (``open`` + ``write``, an advisory ``flock`` the reader
never takes) while a consumer of the same folder moves and reads every ``*.msg`` it lists: a
consumer that lists a file being written reads half a message, and the worker stops with
"Unrecoverable error: JSONDecodeError" (seen when a media worker announced webhooks to the data
queue while the data worker polled it). Here a message is written under a dot-name the
consumer ignores and renamed into place, which POSIX makes atomic.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """``filesystem://`` broker URLs use this transport from now on (in this process)."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"

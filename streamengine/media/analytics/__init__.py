"""Analytics algorithms (OWT spec 5.8): plugins that look at a stream's video frame by frame.

An algorithm is a class, made with no arguments for each analytics job, with
``process(frame: av.VideoFrame) -> tuple[av.VideoFrame, list[dict]]``: the frame to publish
(usually the input with an overlay) and the events it saw in this frame (JSON objects with
a ``type``). ``process`` runs in a worker thread, one frame at a time; frames that arrive
meanwhile are dropped, so a slow algorithm lowers the output's frame rate, not its latency.

The registry is keyed by algorithm id (OWT's are 32 hex digits). The built-ins are
registered here; another package adds its own through the entry-point group
``owt.analytics`` (entry-point name: the id, object: the class)::

    [project.entry-points."owt.analytics"]
    "5e1f0a8e2d6b4c3f9a7e8d6c5b4a3f21" = "my_package.faces:FaceBlur"

A class may name readable ``aliases`` (a tuple of strings) requests may use instead of the id.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Protocol

import av

from streamengine.media.analytics.brightness import BrightnessMeter
from streamengine.media.analytics.motion import MotionDetector
from streamengine.media.analytics.transcode import Transcode

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "owt.analytics"
BUILTINS: dict[str, type] = {cls.id: cls for cls in (MotionDetector, BrightnessMeter, Transcode)}


class Algorithm(Protocol):
    def process(self, frame: av.VideoFrame) -> tuple[av.VideoFrame, list[dict]]: ...


class UnknownAlgorithm(LookupError):
    """No algorithm has that id or alias; the message lists the known ones."""


def algorithms() -> dict[str, type]:
    """Every algorithm by id: the built-ins, then the installed plugins (a plugin cannot replace a built-in)."""
    found = dict(BUILTINS)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found:
            logger.warning("analytics plugin %s: id %s is taken, ignored", entry.value, entry.name)
            continue
        try:
            found[entry.name] = entry.load()
        except Exception:  # a broken plugin must not take the others (or the REST API) down
            logger.exception("analytics plugin %s (%s) failed to load", entry.name, entry.value)
    return found


def describe(known: dict[str, type]) -> str:
    """``id (alias, …)`` for each algorithm: what an unknown-algorithm error lists."""
    return ", ".join(
        f"{algorithm_id} ({', '.join(aliases)})" if (aliases := getattr(cls, "aliases", ())) else algorithm_id
        for algorithm_id, cls in known.items()
    )


def resolve(name: str) -> str:
    """The id of the algorithm ``name`` names (its id, or one of its aliases, in any case)."""
    known = algorithms()
    if name in known:
        return name
    wanted = name.lower()
    for algorithm_id, cls in known.items():
        if wanted == algorithm_id.lower() or wanted in (alias.lower() for alias in getattr(cls, "aliases", ())):
            return algorithm_id
    raise UnknownAlgorithm(f"unknown algorithm {name!r}; known: {describe(known)}")


def create(name: str) -> Algorithm:
    """A new instance of the algorithm ``name`` (id or alias) for one job."""
    return algorithms()[resolve(name)]()

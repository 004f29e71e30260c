"""The media job kinds a worker can run: importing this registers each ``JobRunner``."""

from streamengine.jobs.recording import RecordingJob

__all__ = ["RecordingJob"]

"""The media job kinds a worker can run: importing this registers each ``JobRunner``."""

from streamengine.jobs.recording import RecordingJob
from streamengine.jobs.streaming_in import StreamingInJob

__all__ = ["RecordingJob", "StreamingInJob"]

"""The media job kinds a worker can run: importing this registers each ``JobRunner``."""

from streamengine.jobs.analytics import AnalyticsJob
from streamengine.jobs.mixing import AudioSelectingJob, MixingJob
from streamengine.jobs.recording import RecordingJob
from streamengine.jobs.sip import SipAgentJob, SipCallJob
from streamengine.jobs.streaming_in import StreamingInJob
from streamengine.jobs.streaming_out import StreamingOutJob

__all__ = [
    "AnalyticsJob",
    "AudioSelectingJob",
    "MixingJob",
    "RecordingJob",
    "SipAgentJob",
    "SipCallJob",
    "StreamingInJob",
    "StreamingOutJob",
]

"""RTP-level forwarding on top of aiortc (pinned: ``aiortc==1.16.0``).

The publisher's RTP packets go to every subscriber as they arrive: no depacketizing, no
re-packetizing, no per-subscriber queue or task. Per subscriber only the header changes
(its SSRC, payload type, sequence numbers, timestamps and header extensions) and SRTP
protects the packet once, for its transport.

aiortc has no public API for this either; the private names it uses (checked at start-up
by ``passthrough.check_aiortc_internals``):

* receive: ``RTCRtpReceiver._handle_rtp_packet(packet, arrival_time_ms)``, which the DTLS
  transport calls for every decrypted packet of the receiver: :func:`tap_rtp` wraps it on
  the receiver instance, so the packet is forwarded before aiortc's own handling (NACKs
  to the publisher, jitter buffer, the frame tap) runs as before;
* send: ``RTCDtlsTransport._send_rtp(data)`` (SRTP protect + send), the subscriber's
  ``RTCRtpSender._ssrc`` / ``_rtx_ssrc`` (announced in the answer), and, overridden on the
  sender instance, ``_retransmit(seq)`` (a subscriber's NACK, answered from the
  publication's packet history) and ``_send_rtcp(packets)`` (its sender reports describe
  what was forwarded).
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket

H264_STAP_A, H264_FU_A = 24, 28
H264_IDR, H264_SPS = 5, 7


def is_keyframe_start(codec: str, payload: bytes) -> bool:
    """Whether an RTP payload is the first packet of a frame a decoder can start at.

    VP8 (RFC 7741): the start of partition 0 (S=1, PID=0) whose VP8 header has P=0.
    H.264 (RFC 6184): a NAL unit (single, in a STAP-A, or the start of an FU-A) that is an
    SPS (which precedes an IDR) or an IDR slice. Audio: every packet.
    """
    if codec == "vp8":
        if len(payload) < 2 or payload[0] & 0x1F != 0x10:  # S=1, PID=0
            return False
        pos = 1
        if payload[0] & 0x80:  # X: extension octet
            ext = payload[1]
            pos = 2
            if ext & 0x80:  # I: picture id, 7 or 15 bits
                pos += 2 if len(payload) > 2 and payload[2] & 0x80 else 1
            if ext & 0x40:  # L: TL0PICIDX
                pos += 1
            if ext & 0x30:  # T or K: TID/Y/KEYIDX
                pos += 1
        return len(payload) > pos and not payload[pos] & 0x01
    if codec == "h264":
        if not payload:
            return False
        nal = payload[0] & 0x1F
        if nal == H264_FU_A:
            return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in (H264_IDR, H264_SPS)
        if nal == H264_STAP_A:
            pos = 1
            while pos + 2 < len(payload):
                size = int.from_bytes(payload[pos : pos + 2], "big")
                if payload[pos + 2] & 0x1F in (H264_IDR, H264_SPS):
                    return True
                pos += 2 + size
            return False
        return nal in (H264_IDR, H264_SPS)
    return True


def tap_rtp(receiver: RTCRtpReceiver, on_packet: Callable[[RtpPacket], object], *, then_receive: bool) -> None:
    """Hand every RTP packet the receiver gets (decrypted, parsed) to ``on_packet`` first.

    ``then_receive``: aiortc's own handling follows (RTCP statistics, NACKs, jitter buffer,
    frames); otherwise the packet ends here (a benchmark's cheap receiver). ``on_packet``
    may be a coroutine function; it is awaited before aiortc's handling.
    """
    original = receiver._handle_rtp_packet

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        result = on_packet(packet)
        if result is not None:
            await result
        if then_receive:
            await original(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]

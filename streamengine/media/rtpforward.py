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

import asyncio
import logging
import struct
import time
from collections.abc import Callable

import av
from aiortc import RTCDtlsTransport, RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender
from aiortc.clock import current_ntp_time
from aiortc.codecs import get_encoder, is_rtx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket, RtpPacket, unwrap_rtx
from aiortc.utils import random16, random32

from streamengine.media.passthrough import CLOCK_RATES, KEYFRAME_RETRY_SECONDS

logger = logging.getLogger(__name__)

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
        try:
            result = on_packet(packet)
            if result is not None:
                await result
        except Exception:  # the publisher's transport must not end over one packet
            logger.exception("RTP tap failed for a packet")
        if then_receive:
            await original(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


# --- sources: what subscribers are fed from -----------------------------------------------------

# Packets a video source keeps for retransmissions (a subscriber's NACK): 3 s at 1.5 Mbps.
HISTORY_PACKETS = 512
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)


def abs_send_time() -> bytes:
    """Now as the abs-send-time header extension (6.18 fixed-point seconds, 24 bits)."""
    return (int((time.time() + NTP_EPOCH_OFFSET) * (1 << 18)) & 0xFFFFFF).to_bytes(3, "big")


class RtpSource:
    """The RTP packets of one published track, or of one transcoded form, as subscribers get them.

    Each media packet is kept in a ring (video) so a subscriber's NACK can be answered, then
    forwarded to every attached :class:`RtpForwarder`. ``active`` False (the publisher muted
    the track) stops forwarding; the packets are still kept.
    """

    def __init__(self, kind: str, codec: str, request_keyframe: Callable[[], None]) -> None:
        self.kind = kind
        self.codec = codec
        self.clock_rate = CLOCK_RATES[kind]
        self.request_keyframe = request_keyframe
        self.forwarders: tuple[RtpForwarder, ...] = ()
        self.history: list[RtpPacket | None] = [None] * (HISTORY_PACKETS if kind == "video" else 0)
        self.active = True
        self.packets = 0

    def attach(self, forwarder: RtpForwarder) -> None:
        if forwarder not in self.forwarders:
            self.forwarders = (*self.forwarders, forwarder)

    def detach(self, forwarder: RtpForwarder) -> None:
        self.forwarders = tuple(f for f in self.forwarders if f is not forwarder)

    def packet(self, sequence_number: int) -> RtpPacket | None:
        """The kept packet with this sequence number, if it is still in the history."""
        if not self.history:
            return None
        packet = self.history[sequence_number % len(self.history)]
        return packet if packet is not None and packet.sequence_number == sequence_number else None

    async def feed(self, packet: RtpPacket) -> None:
        self.packets += 1
        if self.history:
            self.history[packet.sequence_number % len(self.history)] = packet
        if not self.active or not self.forwarders:
            return
        keyframe = is_keyframe_start(self.codec, packet.payload)
        sent_at = abs_send_time()
        for forwarder in self.forwarders:
            try:
                await forwarder.forward(packet, keyframe, sent_at)
            except Exception:  # one subscriber's failure must not stop the others
                if not forwarder.failed:
                    logger.exception("forwarding to a subscriber failed (logged once per subscriber)")
                forwarder.failed = True


def publish_rtp(receiver: RTCRtpReceiver, codecs: list[RTCRtpCodecParameters], source: RtpSource) -> None:
    """Feed ``source`` with the receiver's packets of the source's codec, retransmissions
    (RTX) unwrapped, before aiortc handles them (NACKs upstream, jitter buffer, frames)."""
    media = {c.payloadType for c in codecs if c.mimeType.split("/")[1].lower() == source.codec}
    rtx = {c.payloadType: c.parameters.get("apt") for c in codecs if is_rtx(c) and c.parameters.get("apt") in media}
    media_ssrc: int | None = None  # one encoding per track: simulcast publications are refused

    async def on_packet(packet: RtpPacket) -> None:
        nonlocal media_ssrc
        if packet.payload_type in media:
            media_ssrc = packet.ssrc
            await source.feed(packet)
        elif packet.payload_type in rtx and len(packet.payload) >= 2 and media_ssrc is not None:
            await source.feed(unwrap_rtx(packet, payload_type=rtx[packet.payload_type], ssrc=media_ssrc))

    tap_rtp(receiver, on_packet, then_receive=True)


class Packetizer:
    """Encoded frames made into RTP packets once, for an :class:`RtpSource` (a transcoded form)."""

    def __init__(self, codec: str, source: RtpSource) -> None:
        # aiortc's encoder for the codec, used only to packetize (``Encoder.pack``): it opens no codec.
        codec_parameters = RTCRtpCodecParameters(f"{source.kind}/{codec}", source.clock_rate, payloadType=96)
        self.encoder = get_encoder(codec_parameters)
        self.source = source
        self.sequence_number = random16()
        self.ssrc = random32()

    async def send(self, packet: av.Packet) -> None:
        payloads, timestamp = self.encoder.pack(packet)
        for index, payload in enumerate(payloads):
            rtp = RtpPacket(
                payload_type=96,
                marker=int(index == len(payloads) - 1),
                sequence_number=self.sequence_number,
                timestamp=timestamp & 0xFFFFFFFF,
                ssrc=self.ssrc,
                payload=payload,
            )
            self.sequence_number = (self.sequence_number + 1) & 0xFFFF
            await self.source.feed(rtp)


# --- forwarders: one per subscriber's sender ---------------------------------------------------


class RtpForwarder(MediaStreamTrack):
    """A subscriber's sender, fed with the RTP packets of an :class:`RtpSource`.

    The sender's own RTP loop idles on :meth:`recv` (nothing to encode or packetize); each
    packet is rewritten here for this subscriber and SRTP-protected by its transport:
    SSRC and payload type are the sender's, sequence numbers and timestamps continue across
    pauses and source switches (a new segment starts at a keyframe, one past the last
    number sent and as much later as wall time passed), header extensions are this
    transport's (mid, abs-send-time, audio level). The subscriber's NACKs are answered
    from the source's history (as RTX when negotiated), its sender reports describe what
    was forwarded, its PLI/FIR go to the source's publisher (``route_keyframe_requests``).

    The sender keeps its forwarder for its lifetime, so numbering stays continuous; it
    :meth:`hand_over` to a track the sender encodes (a transcoded audio) and
    :meth:`take_over` again.
    """

    def __init__(self, kind: str, sender: RTCRtpSender) -> None:
        super().__init__()
        self.kind = kind
        self.sender = sender
        self.clock_rate = CLOCK_RATES[kind]
        self.source: RtpSource | None = None
        self.attached = False
        # What feeds ``source``: None, the publisher's track; else a ``transcode.SharedEncoding``.
        self.feed: object | None = None
        self.paused = False
        self.waiting_keyframe = True
        self.retry: asyncio.TimerHandle | None = None
        self.successor: MediaStreamTrack | None = None
        self.released = asyncio.Event()
        # Negotiated: the sender's parameters, once aiortc starts it (``send``).
        self.payload_type: int | None = None
        self.rtx_payload_type: int | None = None
        self.ssrc = sender._ssrc
        self.rtx_ssrc = sender._rtx_ssrc
        self.transport: RTCDtlsTransport | None = None
        self.extension_ids: dict[str, int] = {}
        self.mid_element = b""
        # Numbering: segment offsets and the newest packet sent.
        self.seq_offset = self.ts_offset = 0
        self.first_in = 0
        self.last_seq: int | None = None
        self.last_ts = 0
        self.last_time = 0.0
        self.rtx_seq = random16()
        # Counters (sender reports and stats).
        self.packets = self.octets = self.forwarded = self.dropped = self.retransmitted = 0
        self.failed = False  # a packet could not be forwarded (logged once)
        self._capture_parameters()

    # -- negotiation --------------------------------------------------------------------

    def _capture_parameters(self) -> None:
        sender = self.sender
        start = sender.send

        async def send(parameters: RTCRtpSendParameters) -> None:
            if self.payload_type is None:
                self._configure(parameters)
            await start(parameters)

        sender.send = send  # type: ignore[method-assign]

    def _configure(self, parameters: RTCRtpSendParameters) -> None:
        codec = parameters.codecs[0]
        self.payload_type = codec.payloadType
        self.rtx_payload_type = next(
            (c.payloadType for c in parameters.codecs if is_rtx(c) and c.parameters.get("apt") == codec.payloadType),
            None,
        )
        self.extension_ids = {EXTENSIONS[e.uri]: e.id for e in parameters.headerExtensions if e.uri in EXTENSIONS}
        if any(i > 14 for i in self.extension_ids.values()):  # one-byte header elements only
            self.extension_ids = {k: i for k, i in self.extension_ids.items() if i <= 14}
        if "mid" in self.extension_ids and parameters.muxId:
            mid = parameters.muxId.encode()
            self.mid_element = bytes([self.extension_ids["mid"] << 4 | len(mid) - 1]) + mid
        self.transport = self.sender.transport

    # -- the sender's track ---------------------------------------------------------------

    async def recv(self) -> av.Packet:
        await self.released.wait()
        if self.successor is not None:
            return await self.successor.recv()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self.detach()
        self.released.set()

    def take_over(self) -> None:
        """Become (again) what the sender sends: its RTP loop idles, its NACKs and reports are ours."""
        self.successor = None
        self.released.clear()
        self.sender.replaceTrack(self)
        self.sender._retransmit = self.retransmit  # type: ignore[method-assign]
        self.sender._send_rtcp = self._send_rtcp  # type: ignore[method-assign]

    def hand_over(self, successor: MediaStreamTrack) -> None:
        """The sender now encodes ``successor``: the ``recv`` it waits on returns its frames."""
        self.detach()
        self.sender.__dict__.pop("_retransmit", None)
        self.sender.__dict__.pop("_send_rtcp", None)
        self.successor = successor
        self.released.set()

    # -- source ---------------------------------------------------------------------------

    def retarget(self, source: RtpSource, feed: object | None = None) -> None:
        """Forward ``source`` from the next :meth:`start` on (from one of its keyframes)."""
        self.detach()
        self.source, self.feed = source, feed

    def start(self) -> None:
        if self.source is not None and self.readyState == "live":
            self.source.attach(self)
            self.attached = True
            self.cut_to_keyframe()

    def detach(self) -> None:
        if self.source is not None:
            self.source.detach(self)
        self.attached = False
        self._cancel_retry()

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if paused:
            self._cancel_retry()
        else:
            self.cut_to_keyframe()

    def cut_to_keyframe(self) -> None:
        """Forward nothing until the next keyframe (asked for, again every second until it comes)."""
        self.waiting_keyframe = True
        if self.kind == "video":
            self._retry_keyframe()

    def _retry_keyframe(self) -> None:
        self.retry = None
        if self.waiting_keyframe and self.attached and not self.paused and self.source is not None:
            self.source.request_keyframe()
            self.retry = asyncio.get_running_loop().call_later(KEYFRAME_RETRY_SECONDS, self._retry_keyframe)

    def _cancel_retry(self) -> None:
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None

    # -- packets --------------------------------------------------------------------------

    async def forward(self, packet: RtpPacket, keyframe: bool, sent_at: bytes) -> None:
        if self.paused or self.payload_type is None:
            return
        seq = packet.sequence_number
        if self.waiting_keyframe:
            if not keyframe:
                self.dropped += 1
                return
            self._begin_segment(packet)
        elif (seq - self.first_in) & 0xFFFF >= 0x8000:
            return  # from before this segment (reordered across a switch)
        out_seq = (seq + self.seq_offset) & 0xFFFF
        out_ts = (packet.timestamp + self.ts_offset) & 0xFFFFFFFF
        if (out_seq - self.last_seq) & 0xFFFF < 0x8000:  # the newest so far
            self.last_seq, self.last_ts, self.last_time = out_seq, out_ts, time.monotonic()
        self.packets += 1
        self.octets += len(packet.payload)
        if packet.marker or self.kind == "audio":
            self.forwarded += 1
        await self._send(packet, self.payload_type, out_seq, out_ts, self.ssrc, packet.payload, sent_at)

    def _begin_segment(self, packet: RtpPacket) -> None:
        if self.last_seq is None:
            next_seq, next_ts = random16() % 32768, random32()  # as aiortc's sender starts
        else:
            elapsed = round((time.monotonic() - self.last_time) * self.clock_rate)
            next_seq, next_ts = self.last_seq + 1, self.last_ts + max(1, elapsed)
        self.seq_offset = (next_seq - packet.sequence_number) & 0xFFFF
        self.ts_offset = (next_ts - packet.timestamp) & 0xFFFFFFFF
        self.first_in = packet.sequence_number
        self.last_seq = (next_seq - 1) & 0xFFFF
        self.waiting_keyframe = False
        self._cancel_retry()

    async def retransmit(self, sequence_number: int) -> None:
        """A subscriber's NACK (``RTCRtpSender._retransmit``): resend from the source's history."""
        if self.source is None or self.waiting_keyframe or self.payload_type is None or self.last_seq is None:
            return
        if (self.last_seq - sequence_number) & 0xFFFF >= 0x8000:
            return  # never sent
        seq = (sequence_number - self.seq_offset) & 0xFFFF
        if (seq - self.first_in) & 0xFFFF >= 0x8000:
            return  # before this segment
        packet = self.source.packet(seq)
        if packet is None:
            return
        out_ts = (packet.timestamp + self.ts_offset) & 0xFFFFFFFF
        self.retransmitted += 1
        if self.rtx_payload_type is None:
            await self._send(packet, self.payload_type, sequence_number, out_ts, self.ssrc, packet.payload, b"")
        else:
            payload = sequence_number.to_bytes(2, "big") + packet.payload
            self.rtx_seq = (self.rtx_seq + 1) & 0xFFFF
            await self._send(packet, self.rtx_payload_type, self.rtx_seq, out_ts, self.rtx_ssrc, payload, b"")

    async def _send(
        self, packet: RtpPacket, payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, sent_at: bytes
    ) -> None:
        elements = self.mid_element
        ids = self.extension_ids
        if sent_at and "abs_send_time" in ids:
            elements += bytes([ids["abs_send_time"] << 4 | 2]) + sent_at
        level = packet.extensions.audio_level
        if level is not None and "audio_level" in ids:
            elements += bytes([ids["audio_level"] << 4, (0x80 if level[0] else 0) | level[1] & 0x7F])
        first = 0x80
        if elements:
            first |= 0x10
            elements += b"\x00" * (-len(elements) % 4)
            extension = b"\xbe\xde" + (len(elements) // 4).to_bytes(2, "big") + elements
        else:
            extension = b""
        padding = b""
        if packet.padding_size:
            first |= 0x20
            padding = bytes(packet.padding_size - 1) + bytes([packet.padding_size])
        header = RTP_HEADER.pack(first, packet.marker << 7 | payload_type, seq, timestamp, ssrc)
        try:  # noqa: SIM105 (per packet: a try costs nothing, contextlib.suppress builds an object)
            await self.transport._send_rtp(header + extension + payload + padding)
        except ConnectionError:
            pass  # the subscriber's transport is closing

    async def _send_rtcp(self, packets: list) -> None:
        """The sender's RTCP (``RTCRtpSender._send_rtcp``), its reports describing what we sent."""
        for packet in packets:
            if isinstance(packet, RtcpSrPacket) and self.packets:
                elapsed = round((time.monotonic() - self.last_time) * self.clock_rate)
                packet.sender_info = RtcpSenderInfo(
                    ntp_timestamp=current_ntp_time(),
                    rtp_timestamp=(self.last_ts + elapsed) & 0xFFFFFFFF,
                    packet_count=self.packets & 0xFFFFFFFF,
                    octet_count=self.octets & 0xFFFFFFFF,
                )
        await RTCRtpSender._send_rtcp(self.sender, packets)


RTP_HEADER = struct.Struct("!BBHII")
EXTENSIONS = {
    "urn:ietf:params:rtp-hdrext:sdes:mid": "mid",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": "abs_send_time",
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level": "audio_level",
}

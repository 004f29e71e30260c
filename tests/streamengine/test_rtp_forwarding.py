"""RTP-level forwarding (``streamengine/media/rtpforward.py``): per-subscriber rewriting.

The forwarders here drive real aiortc senders whose DTLS transport is a stand-in that
keeps what would be SRTP-protected and sent; the last test forwards over real WebRTC.
"""

from __future__ import annotations

import asyncio
import itertools

import av
import pytest
from aiortc import RTCRtpSender
from aiortc.codecs.vpx import vp8_depayload
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
)

from streamengine.client import SyntheticVideoTrack
from streamengine.media.rtpforward import HISTORY_PACKETS, RtpForwarder, RtpSource, is_keyframe_start, publish_rtp
from tests.streamengine.helpers import eventually

VP8, RTX = 97, 98
KEY, DELTA, MIDDLE = b"\x10\x00\x00\x00", b"\x10\x01\x00\x00", b"\x00\xaa\xbb"
EXTENSIONS = [
    RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
    RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
]


class Wire:
    """A subscriber's DTLS transport, connected: keeps the packets it would protect and send."""

    state = "connected"

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)

    def _register_rtp_sender(self, sender, parameters) -> None:
        pass

    def _unregister_rtp_sender(self, sender) -> None:
        pass

    def rtp(self) -> list[RtpPacket]:
        """The RTP packets sent so far (not the RTCP), header extensions read as negotiated."""
        extensions = HeaderExtensionsMap()
        extensions.configure(RTCRtpSendParameters(headerExtensions=EXTENSIONS))
        return [RtpPacket.parse(data, extensions) for data in self.sent if not 192 <= data[1] <= 223]


async def subscriber(*, rtx: bool = True, mid: str = "1") -> tuple[RtpForwarder, Wire]:
    wire = Wire()
    sender = RTCRtpSender("video", wire)  # type: ignore[arg-type]
    forwarder = RtpForwarder("video", sender)
    codecs = [RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=VP8)]
    if rtx:
        codecs.append(
            RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=RTX, parameters={"apt": VP8})
        )
    forwarder.take_over()
    await sender.send(RTCRtpSendParameters(codecs=codecs, headerExtensions=EXTENSIONS, muxId=mid))
    return forwarder, wire


def source(requests: list | None = None) -> RtpSource:
    return RtpSource("video", "vp8", lambda: requests.append(1) if requests is not None else None)


def packet(seq: int, timestamp: int, payload: bytes, *, ssrc: int = 1111, marker: int = 1) -> RtpPacket:
    return RtpPacket(
        payload_type=100, marker=marker, sequence_number=seq, timestamp=timestamp, ssrc=ssrc, payload=payload
    )


async def stop(*forwarders: RtpForwarder) -> None:
    for forwarder in forwarders:
        forwarder.stop()
        await forwarder.sender.stop()


@pytest.fixture(autouse=True)
def forward_rtp(settings):
    """The live tests here are about RTP forwarding, whatever MEDIA_FORWARD_RTP the run has."""
    settings.MEDIA_FORWARD_RTP = True


def test_keyframe_start_on_the_rtp_payload():
    assert is_keyframe_start("vp8", KEY) and not is_keyframe_start("vp8", DELTA)
    assert not is_keyframe_start("vp8", b"\x00\x00")  # not the start of partition 0
    # X=1, I=1 with a 15-bit picture id (M=1), then the VP8 header: keyframe / not.
    assert is_keyframe_start("vp8", b"\x90\x80\x81\x23\x00\x9d")
    assert not is_keyframe_start("vp8", b"\x90\x80\x81\x23\x01\x9d")
    # X=1, I=1 (7-bit), L=1, T=1: three more octets before the VP8 header.
    assert is_keyframe_start("vp8", b"\x90\xe0\x05\x01\x40\x00")
    # H.264: IDR and SPS NAL units, alone, in a STAP-A, or starting an FU-A.
    assert is_keyframe_start("h264", b"\x65\x88") and is_keyframe_start("h264", b"\x67\x42")
    assert is_keyframe_start("h264", b"\x78\x00\x02\x67\x42\x00\x02\x68\xce")
    assert is_keyframe_start("h264", b"\x7c\x85\x88") and not is_keyframe_start("h264", b"\x7c\x05\x88")
    assert not is_keyframe_start("h264", b"\x41\x9a") and not is_keyframe_start("h264", b"\x7c\x81\x9a")
    assert is_keyframe_start("opus", b"\xfc")


async def test_each_subscriber_gets_its_own_ssrc_payload_type_and_numbering():
    feed = source()
    (first, first_wire), (second, second_wire) = await subscriber(mid="a"), await subscriber(mid="b")
    for forwarder in (first, second):
        forwarder.retarget(feed)
        forwarder.start()
    for index, payload in enumerate([DELTA, KEY, MIDDLE, DELTA]):
        await feed.feed(packet(500 + index, 3000 * index, payload))
    for forwarder, wire, mid in ((first, first_wire, "a"), (second, second_wire, "b")):
        sent = wire.rtp()
        # The delta before the first keyframe is not forwarded: decoding starts at a keyframe.
        assert [p.payload for p in sent] == [KEY, MIDDLE, DELTA]
        assert {p.ssrc for p in sent} == {forwarder.sender._ssrc} and {p.payload_type for p in sent} == {VP8}
        assert [(p.sequence_number - sent[0].sequence_number) % 65536 for p in sent] == [0, 1, 2]
        assert [(p.timestamp - sent[0].timestamp) % 2**32 for p in sent] == [0, 3000, 6000]
        assert {p.extensions.mid for p in sent} == {mid} and all(p.extensions.abs_send_time is not None for p in sent)
    assert first.sender._ssrc != second.sender._ssrc
    await stop(first, second)


async def test_a_failing_subscriber_does_not_stop_the_others(caplog):
    feed = source()
    (broken, _), (healthy, wire) = await subscriber(), await subscriber()
    for forwarder in (broken, healthy):
        forwarder.retarget(feed)
        forwarder.start()

    async def fail(*args) -> None:
        raise RuntimeError("boom")

    broken._send = fail
    for seq in (1, 2):
        await feed.feed(packet(seq, seq * 3000, KEY))
    assert len(wire.rtp()) == 2 and broken.failed
    assert caplog.text.count("forwarding to a subscriber failed") == 1  # once, not per packet
    await stop(broken, healthy)


async def test_source_switch_keeps_sequence_numbers_and_timestamps_continuous():
    requests: list = []
    camera, screen = source(), source(requests)
    forwarder, wire = await subscriber()
    forwarder.retarget(camera)
    forwarder.start()
    await camera.feed(packet(100, 90000, KEY))
    await camera.feed(packet(101, 93000, DELTA))
    before = wire.rtp()[-1]
    forwarder.retarget(screen)  # subscription-control update: another publication
    forwarder.start()
    assert requests == [1]  # the new source is asked for a keyframe at once
    await camera.feed(packet(102, 96000, DELTA))  # no longer forwarded
    await asyncio.sleep(0.05)
    await screen.feed(packet(40000, 7_000_000, DELTA, ssrc=2222))  # not a keyframe: dropped
    await screen.feed(packet(40001, 7_003_000, KEY, ssrc=2222))
    await screen.feed(packet(40002, 7_006_000, DELTA, ssrc=2222))
    after = wire.rtp()[2:]
    assert [p.payload for p in after] == [KEY, DELTA]
    # One stream for the subscriber: same SSRC, the next sequence number, later timestamps
    # (by at least the time that passed: 50 ms = 4500 ticks at 90 kHz).
    assert {p.ssrc for p in after} == {before.ssrc}
    assert [p.sequence_number for p in after] == [
        (before.sequence_number + 1) % 65536,
        (before.sequence_number + 2) % 65536,
    ]
    assert 4500 <= (after[0].timestamp - before.timestamp) % 2**32 < 90000
    assert (after[1].timestamp - after[0].timestamp) % 2**32 == 3000
    await stop(forwarder)


async def test_pause_then_play_resumes_at_a_keyframe_it_asks_for():
    requests: list = []
    feed = source(requests)
    forwarder, wire = await subscriber()
    forwarder.retarget(feed)
    forwarder.start()
    await feed.feed(packet(1, 0, KEY))
    forwarder.set_paused(True)
    await feed.feed(packet(2, 3000, DELTA))
    await feed.feed(packet(3, 6000, KEY))  # paused: even a keyframe is not sent
    assert len(wire.rtp()) == 1
    asked = len(requests)
    forwarder.set_paused(False)
    assert len(requests) == asked + 1
    await feed.feed(packet(4, 9000, DELTA))
    await feed.feed(packet(5, 12000, KEY))
    sent = wire.rtp()
    assert [p.payload for p in sent] == [KEY, KEY]
    assert (sent[1].sequence_number - sent[0].sequence_number) % 65536 == 1  # no gap for what was held back
    # A muted publication (stream-control pause) forwards nothing until played at a keyframe.
    feed.active = False
    await feed.feed(packet(6, 15000, KEY))
    assert len(wire.rtp()) == 2
    await stop(forwarder)


@pytest.mark.parametrize("rtx", [True, False])
async def test_nack_is_answered_from_the_publication_history(rtx):
    feed = source()
    forwarder, wire = await subscriber(rtx=rtx)
    forwarder.retarget(feed)
    forwarder.start()
    for seq in range(60000, 60010):
        await feed.feed(packet(seq % 65536, seq * 3000, KEY if seq == 60000 else DELTA))
    sent = wire.rtp()
    lost = sent[4]
    # The subscriber's NACK reaches the sender (as aiortc routes it), which asks the forwarder.
    nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=forwarder.sender._ssrc)
    nack.lost = [lost.sequence_number, (sent[-1].sequence_number + 5) % 65536]  # the second was never sent
    await forwarder.sender._handle_rtcp_packet(nack)
    again = wire.rtp()[len(sent) :]
    assert len(again) == 1 and forwarder.retransmitted == 1
    resent = again[0]
    if rtx:  # RFC 4588: the RTX stream, the original sequence number first in the payload
        assert resent.payload_type == RTX and resent.ssrc == forwarder.sender._rtx_ssrc
        assert resent.payload == lost.sequence_number.to_bytes(2, "big") + lost.payload
    else:
        assert (resent.payload_type, resent.ssrc, resent.sequence_number) == (VP8, lost.ssrc, lost.sequence_number)
        assert resent.payload == lost.payload
    assert resent.timestamp == lost.timestamp
    # Gone from the history (it keeps the newest packets only): nothing to resend.
    for seq in range(60010, 60010 + HISTORY_PACKETS):
        await feed.feed(packet(seq % 65536, seq * 3000, DELTA))
    await forwarder.retransmit(lost.sequence_number)
    assert forwarder.retransmitted == 1
    await stop(forwarder)


async def test_publisher_retransmissions_are_unwrapped_into_the_history():
    """The publisher's RTX (its answer to the node's NACKs) fills the publication's history
    and reaches subscribers as the original packet; aiortc still gets every packet."""

    class Receiver:
        def __init__(self) -> None:
            self.handled: list[RtpPacket] = []

        async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
            self.handled.append(packet)

    codecs = [
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96),
        RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}),
        RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=100),
    ]
    receiver, feed = Receiver(), source()
    forwarder, wire = await subscriber()
    forwarder.retarget(feed)
    forwarder.start()
    publish_rtp(receiver, codecs, feed)  # type: ignore[arg-type]
    media = RtpPacket(payload_type=96, marker=1, sequence_number=10, timestamp=0, ssrc=111, payload=KEY)
    other_codec = RtpPacket(payload_type=100, sequence_number=1, ssrc=333, payload=b"\x65")
    rtx = RtpPacket(payload_type=97, marker=1, sequence_number=5, timestamp=3000, ssrc=222, payload=b"\x00\x0b" + DELTA)
    padding = RtpPacket(payload_type=97, sequence_number=6, ssrc=222)  # bandwidth probing: nothing to forward
    for p in (media, other_codec, rtx, padding):
        await receiver._handle_rtp_packet(p, arrival_time_ms=0)
    assert receiver.handled == [media, other_codec, rtx, padding]
    kept = feed.packet(11)
    assert (kept.ssrc, kept.payload_type, kept.payload, kept.timestamp) == (111, 96, DELTA, 3000)
    assert [p.payload for p in wire.rtp()] == [KEY, DELTA] and feed.packets == 2
    await stop(forwarder)


async def test_sender_reports_describe_the_forwarded_stream():
    feed = source()
    forwarder, wire = await subscriber()
    forwarder.retarget(feed)
    forwarder.start()
    await feed.feed(packet(7, 1000, KEY))
    last = wire.rtp()[-1]
    report = RtcpSrPacket(ssrc=forwarder.sender._ssrc, sender_info=RtcpSenderInfo(0, 0, 0, 0))
    await forwarder.sender._send_rtcp([report])  # what the sender's RTCP loop does every second
    info = report.sender_info
    assert info.packet_count == 1 and info.octet_count == len(KEY) and info.ntp_timestamp > 0
    assert 0 <= (info.rtp_timestamp - last.timestamp) % 2**32 < 9000
    await stop(forwarder)


def decoded_sizes(packets: list[RtpPacket]) -> list[tuple[int, int]]:
    """Every frame's size, decoding the packets in order (reassembled at marker bits)."""
    decoder = av.CodecContext.create("vp8", "r")
    sizes, frame = [], b""
    for p in packets:
        frame += vp8_depayload(p.payload)
        if p.marker:
            sizes += [(f.width, f.height) for f in decoder.decode(av.Packet(frame))]
            frame = b""
    return sizes


@pytest.mark.media
async def test_source_switch_over_webrtc_is_one_decodable_stream(pair):
    """A subscriber switched to another publication (``subscription-control update``) keeps
    one SSRC and gap-free sequence numbers, and decodes the new source from a keyframe on."""
    alice, bob = pair.alice, pair.bob
    camera = await alice.publish([SyntheticVideoTrack()])
    screen = await alice.publish([SyntheticVideoTrack(320, 240)])
    received: list[RtpPacket] = []
    session = await bob.subscribe(camera.id, audio=False, rtp=lambda kind, p: received.append(p))
    await eventually(lambda: len(received) > 20, db=False)
    assert is_keyframe_start("vp8", received[0].payload)  # a new subscriber starts at a keyframe
    update = {"id": session.id, "operation": "update", "data": {"video": {"from": screen.id}}}
    await bob.request("subscription-control", update)
    await eventually(lambda: (320, 240) in decoded_sizes(received), timeout=15, db=False)
    await asyncio.sleep(0.3)
    packets = list(received)
    assert {p.ssrc for p in packets} == {packets[0].ssrc}
    assert {(b.sequence_number - a.sequence_number) % 65536 for a, b in itertools.pairwise(packets)} == {1}
    assert all(
        0 < (b.timestamp - a.timestamp) % 2**32 < 90000
        for a, b in itertools.pairwise(packets)
        if b.timestamp != a.timestamp
    )
    # Every frame decodes: the camera's, then the screen's from its keyframe on.
    sizes = decoded_sizes(packets)
    switch = sizes.index((320, 240))
    assert set(sizes[:switch]) == {(640, 480)} and set(sizes[switch:]) == {(320, 240)}


@pytest.mark.media
async def test_a_packet_lost_on_the_way_to_a_subscriber_is_resent_from_the_history(published_pair):
    """Real WebRTC: one packet to bob is lost; his receiver NACKs it and the node resends it
    from the publication's history, as RTX (bob's answer negotiated it)."""
    from streamengine.node import ensure_embedded_node

    transceiver = published_pair.subscription.pc.getTransceivers()[0]
    rtx = next(c.payloadType for c in transceiver._codecs if c.mimeType.lower() == "video/rtx")
    handle = transceiver.receiver._handle_rtp_packet
    dropped: list[RtpPacket] = []
    resent: list[RtpPacket] = []

    async def lossy(packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type == rtx:
            resent.append(packet)
        elif not dropped and not packet.marker:
            dropped.append(packet)
            return  # lost on the way
        await handle(packet, arrival_time_ms=arrival_time_ms)

    transceiver.receiver._handle_rtp_packet = lossy
    await eventually(lambda: resent, db=False)
    assert int.from_bytes(resent[0].payload[:2], "big") == dropped[0].sequence_number
    assert resent[0].payload[2:] == dropped[0].payload
    assert (await ensure_embedded_node()).sfu.stats()["retransmitted_packets"] >= 1


def test_the_node_sizes_its_udp_receive_buffers():
    """aioice sizes each ICE socket from ``aioice.turn.UDP_SOCKET_BUFFER_SIZE`` when gathering."""
    import aioice.turn

    from streamengine.media.ice import use_receive_buffer

    def size() -> int:
        return aioice.turn.UDP_SOCKET_BUFFER_SIZE

    before = size()  # a media node started by an earlier test may have set it
    try:
        use_receive_buffer(4 * 1024 * 1024)
        assert size() == 4 * 1024 * 1024
        use_receive_buffer(0)
        assert size() == 256 * 1024  # aioice's own
    finally:
        aioice.turn.UDP_SOCKET_BUFFER_SIZE = before

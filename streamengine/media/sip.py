"""SIP calls on PJSIP (PJSUA2, the ``pjsua2-python`` wheel): signaling, RTP and codecs are PJSIP's.

PJSIP is not thread-safe towards Python callers and wants the threads that call it known to
it, so each process runs **one** :class:`SipStack`: a dedicated thread that owns the
``pj.Endpoint``, polls its events (``libHandleEvents``) and runs every call into PJSIP that
the asyncio side hands it (:meth:`SipStack.run`). Callbacks (call state, incoming calls,
DTMF, registration) are passed back to the asyncio loop of whoever owns the call.

Audio: PJSIP's conference bridge runs at 16 kHz mono (G.711 is resampled by PJSIP from 8 kHz,
G.722 is native) on a null sound device. Each call is bridged to a :class:`PcmPort`, an
``AudioMediaPort`` whose callbacks (on PJSIP's clock thread, every 20 ms) hand received PCM to
the asyncio side and take what it wrote to be sent. The asyncio side converts between that and
the room's 48 kHz with PyAV's ``AudioResampler`` (``streamengine.jobs.sip``).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import functools
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

logger = logging.getLogger(__name__)

CLOCK_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = CLOCK_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2  # s16 mono
# What the room side may have written ahead of PJSIP's clock: more is old audio, dropped.
MAX_OUTBOUND_BYTES = FRAME_BYTES * 10
SILENCE = bytes(FRAME_BYTES)
PREBUFFER_BYTES = FRAME_BYTES * 3
POLL_MS = 10


def _vector_reader() -> Callable[[Any], bytes]:
    """The bytes of a SWIG ``ByteVector``. SWIG copies a vector element by element (0.3 ms a
    frame, twice per call every 20 ms), so read libstdc++'s ``std::vector`` (begin, end
    pointers) directly when that layout checks out, else fall back to the slow copy."""

    def fast(vector: Any) -> bytes:
        begin, end = (ctypes.c_size_t * 2).from_address(int(vector.this))
        return ctypes.string_at(begin, end - begin)

    probe = pj.MediaFrame()
    sample = bytes(range(256)) * 3
    probe.buf = pj.ByteVector(sample)
    try:
        if fast(probe.buf) == sample:
            return fast
    except (TypeError, ValueError, OSError):
        pass
    return lambda vector: bytes(vector)


vector_bytes = _vector_reader()


@dataclass(frozen=True)
class SipStackConfig:
    bind_address: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    public_address: str = ""  # the address written into SIP/SDP when it differs from bind_address
    user_agent: str = "OWT media platform"
    log_level: int = 1


@dataclass
class CallEvent:
    """What happened to a call: ``state`` (calling, ringing, connected, ended, with the SIP
    status and reason once ended), ``dtmf`` (a digit), ``media`` (audio flows)."""

    type: str
    value: str = ""
    code: int = 0
    reason: str = ""


class PcmBuffer:
    """Audio to send to a call, written by the asyncio side, read by PJSIP's clock thread."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.lock = threading.Lock()
        self.underruns = 0
        self.dry = True

    def write(self, pcm: bytes) -> None:
        """Beyond ``MAX_OUTBOUND_BYTES`` ahead the oldest audio is dropped (latency stays bounded)."""
        with self.lock:
            self.pending += pcm
            if len(self.pending) > MAX_OUTBOUND_BYTES:
                del self.pending[: len(self.pending) - MAX_OUTBOUND_BYTES]

    def clear(self) -> None:
        with self.lock:
            self.pending.clear()

    def take(self) -> bytes:
        """The next 20 ms; after running dry, silence until ``PREBUFFER_BYTES`` are there again
        (the room's audio arrives in bursts when the worker is busy: one gap, not many)."""
        with self.lock:
            if len(self.pending) < (PREBUFFER_BYTES if self.dry else FRAME_BYTES):
                self.underruns += not self.dry
                self.dry = True
                return SILENCE
            self.dry = False
            pcm = bytes(self.pending[:FRAME_BYTES])
            del self.pending[:FRAME_BYTES]
            return pcm


class PcmPort(pj.AudioMediaPort):
    """One call's audio at PJSIP's bridge, as 16 kHz s16 mono bytes, both ways."""

    def __init__(self, outbound: PcmBuffer, on_received: Callable[[bytes], None]) -> None:
        super().__init__()
        self.outbound = outbound
        self.on_received = on_received
        audio = pj.MediaFormatAudio()
        audio.init(pj.PJMEDIA_FORMAT_PCM, CLOCK_RATE, 1, FRAME_MS * 1000, 16)
        self.createPort("call", audio)

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (PJSUA2's name)
        pcm = self.outbound.take()
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(pcm)
        frame.size = len(pcm)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (PJSUA2's name)
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
            self.on_received(vector_bytes(frame.buf))


@dataclass
class CallHooks:
    """Where a call's news goes (called on PJSIP's threads: hand them to your loop thread-safely)."""

    on_event: Callable[[CallEvent], None]
    on_pcm: Callable[[bytes], None]
    outbound: PcmBuffer


class SipCall(pj.Call):
    """A PJSUA2 call bridged to a :class:`PcmPort` once its audio is active."""

    def __init__(self, stack: SipStack, key: int, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.stack = stack
        self.key = key
        self.hooks: CallHooks | None = None
        self.port: PcmPort | None = None
        self.bridged_slot = pj.PJSUA_INVALID_ID
        self.ended = False

    def emit(self, event: CallEvent) -> None:
        if self.hooks is not None:
            try:
                self.hooks.on_event(event)
            except RuntimeError:  # its owner's loop has closed (a process exiting): nobody to tell
                logger.debug("SIP call event %s after its owner left", event)

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        info = self.getInfo()
        state = info.state
        if state == pj.PJSIP_INV_STATE_CALLING:
            self.emit(CallEvent("state", "calling"))
        elif state == pj.PJSIP_INV_STATE_EARLY and info.lastStatusCode in (180, 183):
            self.emit(CallEvent("state", "ringing", info.lastStatusCode))
        elif state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.emit(CallEvent("state", "connected", info.lastStatusCode))
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.ended:
            self.ended = True
            # Dropped here, on the SIP thread, after this callback returns (PJSUA2's advice).
            self.stack.calls.pop(self.key, None)
            self.emit(CallEvent("state", "ended", info.lastStatusCode, info.lastReason))

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        """Bridge the call's audio to our port; again whenever a re-INVITE recreates the stream
        (a new conference slot: softphones often re-INVITE right after answering)."""
        if self.hooks is None:
            return
        info = self.getInfo()  # held: its media vector's items point into it
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                audio = self.getAudioMedia(index)
                if audio.getPortId() == self.bridged_slot:
                    return
                if self.port is None:
                    self.port = PcmPort(self.hooks.outbound, self.hooks.on_pcm)
                audio.startTransmit(self.port)
                self.port.startTransmit(audio)
                self.bridged_slot = audio.getPortId()
                self.emit(CallEvent("media", self.codec()))
                return

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        method = "rfc2833" if prm.method == pj.PJSUA_DTMF_METHOD_RFC2833 else "sip-info"
        self.emit(CallEvent("dtmf", prm.digit, reason=method))

    def codec(self) -> str:
        """The audio codec in use (``PCMA/8000``)."""
        try:
            info = self.getStreamInfo(0)
        except pj.Error:
            return ""
        return f"{info.codecName}/{info.codecClockRate}"


class SipAccount(pj.Account):
    """A local identity (``sip:user@host``), registered with a SIP server when one is given."""

    def __init__(
        self,
        stack: SipStack,
        on_incoming: Callable[[int, str, str], None] | None,
        on_registration: Callable[[int, str], None] | None,
    ) -> None:
        super().__init__()
        self.stack = stack
        self.on_incoming = on_incoming
        self.on_registration = on_registration

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        key = next(self.stack.keys)
        call = SipCall(self.stack, key, self, prm.callId)
        self.stack.calls[key] = call
        if self.on_incoming is None:
            self.stack.sip_hangup(key, pj.PJSIP_SC_NOT_FOUND)
            return
        info = call.getInfo()
        self.on_incoming(key, info.remoteUri, info.localUri)

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802
        if self.on_registration is not None:
            self.on_registration(prm.code, prm.reason)


class SipStack:
    """The process's PJSIP: one thread owns the endpoint and runs every call into it.

    Methods named ``sip_*`` run on the SIP thread (through :meth:`call` from the loop).
    """

    _instance: SipStack | None = None
    _lock = threading.Lock()

    @classmethod
    def get(cls, config: SipStackConfig) -> SipStack:
        """The running stack (started with ``config`` by the first caller in this process)."""
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls(config)
            return cls._instance

    def __init__(self, config: SipStackConfig) -> None:
        self.config = config
        self.commands: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future]] = queue.Queue()
        self.ready: concurrent.futures.Future[tuple[str, int]] = concurrent.futures.Future()
        self.keys = itertools.count(1)
        self.calls: dict[int, SipCall] = {}
        self.accounts: dict[int, SipAccount] = {}
        self.running = True
        self.thread = threading.Thread(target=self._main, name="pjsip", daemon=True)
        self.thread.start()
        self.address, self.port = self.ready.result(timeout=10)
        atexit.register(self.shutdown)

    def _main(self) -> None:
        try:
            endpoint = self._start()
        except BaseException as exc:
            self.ready.set_exception(exc)
            return
        while self.running:
            endpoint.libHandleEvents(POLL_MS)
            while True:
                try:
                    command, future = self.commands.get_nowait()
                except queue.Empty:
                    break
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(command())
                    except BaseException as exc:
                        future.set_exception(exc)
                del command, future  # dropped on this thread
        self.calls.clear()
        self.accounts.clear()
        endpoint.libDestroy()

    def _start(self) -> pj.Endpoint:
        endpoint = pj.Endpoint()
        endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0  # events are polled by this thread: callbacks run here
        config.uaConfig.mainThreadOnly = False
        config.uaConfig.userAgent = self.config.user_agent
        config.logConfig.level = self.config.log_level
        config.logConfig.consoleLevel = self.config.log_level
        config.medConfig.clockRate = CLOCK_RATE
        config.medConfig.sndClockRate = CLOCK_RATE
        config.medConfig.channelCount = 1
        config.medConfig.audioFramePtime = FRAME_MS
        config.medConfig.ecTailLen = 0  # no echo canceller: there is no loudspeaker
        endpoint.libInit(config)
        transport = pj.TransportConfig()
        transport.boundAddress = self.config.bind_address
        transport.port = self.config.port
        if self.config.public_address:
            transport.publicAddress = self.config.public_address
        transport_id = endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        endpoint.libStart()
        endpoint.audDevManager().setNullDev()
        host, port = endpoint.transportGetInfo(transport_id).localName.rsplit(":", 1)
        self.endpoint = endpoint
        self.ready.set_result((host, int(port)))
        return endpoint

    def shutdown(self) -> None:
        """Hang up and free everything on the SIP thread (at exit: never from another thread)."""
        if self.running and self.thread.is_alive():

            def stop() -> None:
                self.endpoint.hangupAllCalls()
                self.running = False

            with contextlib.suppress(concurrent.futures.TimeoutError):
                self.run(stop).result(timeout=2)
            self.thread.join(timeout=3)

    def run(self, command: Callable[[], Any]) -> concurrent.futures.Future:
        """Run ``command`` on the SIP thread; its result (or exception) in the future."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.commands.put((command, future))
        return future

    async def call(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.wrap_future(self.run(functools.partial(command, *args, **kwargs)))

    def _media_transport(self) -> pj.TransportConfig:
        """Where calls' RTP binds: the SIP address, ports from 40000 up (PJSIP finds free ones)."""
        config = pj.TransportConfig()
        config.boundAddress = self.config.bind_address
        config.port = 40000
        config.portRange = 10000
        if self.config.public_address:
            config.publicAddress = self.config.public_address
        return config

    # Run on the SIP thread.

    def sip_add_account(
        self,
        *,
        user: str,
        server: str = "",
        username: str = "",
        password: str = "",
        register: bool = False,
        on_incoming: Callable[[int, str, str], None] | None = None,
        on_registration: Callable[[int, str], None] | None = None,
    ) -> int:
        """An account's key: ``sip:user@server`` (digest credentials for that server's
        challenges; ``register``: registered there), else the local ``sip:user@<this address>``.
        ``on_incoming(call key, caller, callee)``: a call came in (answer or hang up by its key)."""
        key = next(self.keys)
        account = SipAccount(self, on_incoming, on_registration)
        config = pj.AccountConfig()
        config.idUri = f"sip:{user}@{server or f'{self.config.public_address or self.address}:{self.port}'}"
        if server and register:
            config.regConfig.registrarUri = f"sip:{server}"
            config.regConfig.timeoutSec = 300
        else:
            config.regConfig.registerOnAdd = False
        if password:
            config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", username or user, 0, password))
        config.mediaConfig.transportConfig = self._media_transport()
        account.create(config, True)
        self.accounts[key] = account
        return key

    def sip_remove_account(self, key: int) -> None:
        account = self.accounts.pop(key, None)
        if account is not None:
            account.shutdown()

    def sip_dial(self, account_key: int, uri: str, hooks: CallHooks) -> int:
        """Call ``uri`` from the account; the call's key."""
        key = next(self.keys)
        call = SipCall(self, key, self.accounts[account_key])
        call.hooks = hooks
        self.calls[key] = call
        try:
            call.makeCall(uri, pj.CallOpParam(True))
        except pj.Error:
            self.calls.pop(key, None)
            raise
        return key

    def sip_answer(self, key: int, hooks: CallHooks, code: int = 200) -> None:
        call = self.calls.get(key)
        if call is None:
            raise LookupError("the call has ended")
        call.hooks = hooks
        answer = pj.CallOpParam(True)
        answer.statusCode = code
        call.answer(answer)

    def sip_hangup(self, key: int, code: int = 0) -> None:
        """End the call (on the SIP thread): CANCEL, BYE or a final answer ``code`` as it stands."""
        call = self.calls.get(key)
        if call is None or call.ended:
            return
        param = pj.CallOpParam(True)
        if code:
            param.statusCode = code
        try:
            call.hangup(param)
        except pj.Error as exc:
            logger.warning("SIP hang-up failed: %s", exc.info())

    def sip_send_dtmf(self, key: int, digits: str) -> None:
        call = self.calls.get(key)
        if call is not None:
            call.dialDtmf(digits)

    def sip_stats(self, key: int) -> dict:
        call = self.calls.get(key)
        return {"codec": call.codec()} if call is not None else {}

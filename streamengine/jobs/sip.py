"""SIP call job (spec 5.7): a phone call bridged into the room, audio both ways.

One job per call. A dial-out job calls ``peerURI`` as the room's SIP account (the room's
``sip`` username and server, answering that server's digest challenges with its password;
else a local ``sip:<room>@<worker>`` identity). A dial-in job is a call the room's SIP
agent (:class:`SipAgentJob`) took: it runs in the agent's process and answers the call.
The call's state (``calling``, ``ringing``, ``connected``, ``ended`` with the SIP status) is
in ``progress.call``; so are the DTMF digits received (RFC 2833 or SIP INFO).

Once connected, the callee's audio is published into the room as a stream (``info.type
"sip"``, id = the call's id: announced, mixable and recordable like any stream), and the job
subscribes to ``media.audio.from`` (decoded; the room's mixed stream by default) for what
the callee hears; ``PATCH /output/media/audio/from`` switches it live. PJSIP works at 16 kHz
mono (``streamengine.media.sip``); PyAV's ``AudioResampler`` converts to and from the
room's 48 kHz, aiortc encodes and decodes Opus.

The call ends the job: hung up by either side, busy, refused, not answered within
``SIP_NO_ANSWER_SECONDS``, or ``DELETE`` (the job's stop hangs up). A call that never
connected fails the job with the reason; one that did finishes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import re
import time

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from channels.db import database_sync_to_async as sync_to_async
from django.conf import settings

from owt.crypto import decrypt
from streamengine.client import Session
from streamengine.exceptions import JobNotFound
from streamengine.jobs.analytics import offer_newest
from streamengine.jobs.requests import sip_dial_in_spec
from streamengine.jobs.runtime import JobFailed, JobRunner, run_held
from streamengine.jobs.services import SIP_AGENT_JOB_COST, job_create_held, job_stop, worker_name
from streamengine.jobs.subscriptions import SubscribingJob
from streamengine.media.sip import CLOCK_RATE, CallEvent, CallHooks, PcmBuffer, SipStack, SipStackConfig
from streamengine.models import Domain
from streamengine.selectors import domain_streams

logger = logging.getLogger(__name__)

ROOM_RATE = 48000
ROOM_CLOCK = fractions.Fraction(1, ROOM_RATE)
RECENT_DTMF = 20
# SIP final answers that mean the callee would not take the call (not a failure of ours).
BUSY = {486, 600}
DECLINED = {603}
NO_ANSWER = {408, 480, 487}
HANGUP_WAIT_SECONDS = 3.0


def sip_stack() -> SipStack:
    """This process's SIP stack (started by the first SIP job the process runs)."""
    return SipStack.get(
        SipStackConfig(
            bind_address=settings.SIP_BIND_ADDRESS,
            port=settings.SIP_PORT,
            public_address=settings.SIP_PUBLIC_ADDRESS,
        )
    )


def room_sip_account(domain_id: str) -> dict:
    """The room's ``sip`` settings, password decrypted: ``{sipServer, username, password}`` or {}."""
    domain = Domain.objects.filter(id=domain_id).first()
    sip = dict((domain.config.get("sip") or {}) if domain else {})
    password = sip.get("password")
    if isinstance(password, dict):  # encrypted at rest (docs/security.md)
        sip["password"] = decrypt(password["encrypted"])
    return sip if sip.get("sipServer") or sip.get("username") else {}


def ended_outcome(event: CallEvent, connected: bool) -> tuple[str, str]:
    """(the call's final state, the job's failure or "") from the call's last SIP status."""
    described = f"{event.code} {event.reason}".strip()
    if connected:
        return "hungup", ""
    if event.code in BUSY:
        return "busy", f"busy ({described})"
    if event.code in DECLINED:
        return "declined", f"declined ({described})"
    if event.code in NO_ANSWER:
        return "no-answer", f"no answer ({described})"
    return "failed", f"call failed ({described})"


class SipAudioTrack(MediaStreamTrack):
    """The callee's audio as the published track: PJSIP's 16 kHz frames resampled to 48 kHz."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.frames: asyncio.Queue[av.AudioFrame] = asyncio.Queue(maxsize=10)
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=ROOM_RATE)
        self.samples = 0
        self.dropped = 0

    def feed(self, pcm: bytes) -> None:
        """One 20 ms frame from the call (on the loop)."""
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.sample_rate = CLOCK_RATE
        frame.planes[0].update(pcm)
        for resampled in self.resampler.resample(frame):
            resampled.pts, resampled.time_base = self.samples, ROOM_CLOCK
            self.samples += resampled.samples
            self.dropped += offer_newest(self.frames, resampled)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        return await self.frames.get()


class SipCallJob(SubscribingJob):
    kind = "sip"
    # G.711 ↔ 16 kHz in PJSIP, 16 ↔ 48 kHz resampling, one Opus decode and one encode:
    # 0.14–0.16 core measured per call (bench sip, docs/sip.md).
    cost = 0.15
    encoded = False

    async def start(self) -> None:
        self._init_sources()
        self.stack = await asyncio.to_thread(sip_stack)
        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self.outbound = PcmBuffer()
        self.track = SipAudioTrack()
        self.hooks = CallHooks(
            on_event=lambda event: self.loop.call_soon_threadsafe(self.events.put_nowait, event),
            on_pcm=lambda pcm: self.loop.call_soon_threadsafe(self.track.feed, pcm),
            outbound=self.outbound,
        )
        self.resampler = self._out_resampler()
        self.call: dict = {"state": "calling", "peer": self.spec["peerURI"], "dtmf": []}
        self.connected = False
        self.stopping = False
        self.account: int | None = None
        self.key: int | None = None
        self.publication: Session | None = None
        if self.spec["type"] == "dial-in":
            await self._answer()
        else:
            await self._dial()
        self.pumps.append(asyncio.create_task(self._follow()))

    async def _answer(self) -> None:
        """A call the room's SIP agent took in this process (``SipAgentJob``): answer it."""
        if self.spec.get("worker") != worker_name():
            raise JobFailed(f"the call was on {self.spec.get('worker')}, which is gone")
        self.call["state"] = "ringing"
        try:
            await self.stack.call(self.stack.sip_answer, self.spec["call"], self.hooks)
        except LookupError as exc:
            raise JobFailed("the caller hung up before the call was answered") from exc
        self.key = self.spec["call"]
        self.deadline = time.monotonic() + settings.SIP_NO_ANSWER_SECONDS  # for the caller's ACK

    async def _dial(self) -> None:
        sip = await sync_to_async(room_sip_account)(self.job.domain_id)
        try:
            self.account = await self.stack.call(
                self.stack.sip_add_account,
                user=sip.get("username") or self.job.domain_id,
                server=sip.get("sipServer", ""),
                password=sip.get("password", ""),
            )
            self.key = await self.stack.call(self.stack.sip_dial, self.account, self.spec["peerURI"], self.hooks)
        except Exception as exc:
            raise JobFailed(f"cannot call {self.spec['peerURI']}: {exc}") from exc
        self.deadline = time.monotonic() + settings.SIP_NO_ANSWER_SECONDS

    async def _follow(self) -> None:
        """The call's events, in order: state changes, media, DTMF; the no-answer timeout."""
        while True:
            timeout = None if self.connected else max(self.deadline - time.monotonic(), 0)
            try:
                event = await asyncio.wait_for(self.events.get(), timeout)
            except TimeoutError:
                self.call["timeout"] = True
                await self.stack.call(self.stack.sip_hangup, self.key)
                self.deadline = time.monotonic() + HANGUP_WAIT_SECONDS
                continue
            if event.type == "state":
                await self._on_state(event)
            elif event.type == "media":
                self.call["codec"] = event.value
            elif event.type == "dtmf":
                self.call["dtmf"] = [*self.call["dtmf"], {"digit": event.value, "at": round(time.time(), 3)}][
                    -RECENT_DTMF:
                ]
                self.call["dtmf_received"] = self.call.get("dtmf_received", 0) + 1

    async def _on_state(self, event: CallEvent) -> None:
        if event.value == "ended":
            state, failure = ended_outcome(event, self.connected)
            if self.stopping:
                state, failure = "hungup", ""  # by us (DELETE)
            elif self.call.get("timeout") and not self.connected:
                state, failure = "no-answer", f"no answer within {settings.SIP_NO_ANSWER_SECONDS:g} s"
            self.call.update(state=state, code=event.code, reason=event.reason)
            self.result["ended"] = f"call {state} ({event.code} {event.reason})".strip()
            self.end(failure)
            return
        self.call["state"] = event.value
        if event.code:
            self.call["code"] = event.code
        if event.value == "connected" and not self.connected:
            self.connected = True
            self.call["connected_at"] = round(time.time(), 3)
            try:
                await self._bridge()
            except JobFailed as exc:
                await self.stack.call(self.stack.sip_hangup, self.key)
                self.end(str(exc))

    async def _bridge(self) -> None:
        """Connected: the callee's audio becomes a stream, the room's audio goes to the callee."""
        try:
            self.publication = await self.client.publish(
                [self.track], attributes={"sip": self.spec["peerURI"], "type": self.spec["type"]}
            )
        except Exception as exc:
            raise JobFailed(f"cannot publish the call's audio: {exc}") from exc
        self.result["stream"] = self.publication.id
        await self._subscribe(self.spec["media"])
        self._record_subscription()

    def _record_subscription(self) -> None:
        if self.sessions.get("audio"):
            self.result["subscription"] = self.sessions["audio"].id

    async def reconfigure(self, spec: dict) -> None:
        if not self.connected:  # subscribed once the call connects
            self.spec = spec
            return
        await self._switch_sources(spec)
        self._record_subscription()

    def _out_resampler(self) -> av.AudioResampler:
        return av.AudioResampler(format="s16", layout="mono", rate=CLOCK_RATE)

    def _restart_track(self, kind: str) -> None:
        self.outbound.clear()
        self.resampler = self._out_resampler()

    async def _pump(self, session: Session, kinds: list[str]) -> None:
        """What the callee hears: the subscribed audio at 16 kHz mono into PJSIP's buffer."""
        track = session.tracks["audio"]
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return  # that source ended; the callee hears silence until another is chosen
            if self.sessions.get("audio") is not session:
                return  # switched away (PATCH)
            for resampled in self.resampler.resample(frame):
                self.outbound.write(bytes(resampled.planes[0])[: resampled.samples * 2])

    def progress(self) -> dict:
        if self.publication is not None and self.publication.pc.connectionState in ("failed", "closed"):
            self.result["ended"] = "the call's stream was unpublished"
            self.end()
        return {
            **super().progress(),
            "call": dict(self.call),
            "audio": {
                "received": self.track.samples,
                "dropped": self.track.dropped,
                "underruns": self.outbound.underruns,
            },
        }

    async def stop(self) -> None:
        self.stopping = True
        if self.key is not None and not self.finished.done():
            await self.stack.call(self.stack.sip_hangup, self.key)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.finished), HANGUP_WAIT_SECONDS)
        await self._stop_pumps()
        self.track.stop()
        if self.account is not None:
            await self.stack.call(self.stack.sip_remove_account, self.account)
        for session in {id(s): s for s in self.sessions.values()}.values():
            with contextlib.suppress(Exception):
                await self.client.unsubscribe(session)
        if self.publication is not None:
            with contextlib.suppress(Exception):
                await self.client.unpublish(self.publication)


def plain_uri(header: str) -> str:
    """``"Bob" <sip:bob@host>`` → ``sip:bob@host``."""
    bracketed = re.search(r"<([^>]*)>", header)
    return (bracketed[1] if bracketed else header).strip()


def uri_user(uri: str) -> str:
    """``sip:bob@host:5060;transport=udp`` → ``bob``."""
    return plain_uri(uri).split(":", 1)[-1].split("@", 1)[0] if "@" in uri else ""


class SipAgentJob(JobRunner):
    """A room's SIP agent (dial-in): registers the room's account with its ``sipServer`` and
    answers calls to it (and to the numbers ``SIP_DIAL_IN_ROOMS`` leads to the room).

    Each call answered becomes a ``sip`` job of type ``dial-in``, created already held by this
    process (``job_create_held``) and run on this loop beside the agent (``run_held``): a PJSIP
    call cannot move to another process. Its REST view, PATCH and DELETE are a dial-out's.
    The agent stopping (the room's settings changed, the room deleted) hangs its calls up.
    """

    kind = "sip-agent"
    cost = SIP_AGENT_JOB_COST

    async def start(self) -> None:
        self.stack = await asyncio.to_thread(sip_stack)
        self.loop = asyncio.get_running_loop()
        self.worker = worker_name()
        self.calls: dict[str, asyncio.Task] = {}
        self.accounts: list[int] = []
        self.registration: dict = {}
        self.answered = self.refused = 0
        sip = await sync_to_async(room_sip_account)(self.job.domain_id)
        users = [sip["username"]] if sip.get("username") else []
        users += [number for number in self.spec.get("numbers", []) if number not in users]
        try:
            for user in users:
                own = user == sip.get("username")  # the room's account; numbers are local identities
                self.accounts.append(
                    await self.stack.call(
                        self.stack.sip_add_account,
                        user=user,
                        server=sip.get("sipServer", "") if own else "",
                        password=sip.get("password", "") if own else "",
                        register=own and bool(sip.get("sipServer")),
                        on_incoming=lambda key, caller, callee, user=user: self._incoming(user, key, caller, callee),
                        on_registration=self._registered,
                    )
                )
        except Exception as exc:
            raise JobFailed(f"cannot listen for SIP calls: {exc}") from exc
        # Where callers reach this agent without a registrar.
        self.result["contacts"] = [f"sip:{user}@{self.stack.address}:{self.stack.port}" for user in users]

    def _registered(self, code: int, reason: str) -> None:
        """On the SIP thread: the registrar's answer."""
        self.loop.call_soon_threadsafe(
            self.registration.update, {"code": code, "reason": reason, "at": round(time.time(), 3)}
        )

    def _incoming(self, user: str, key: int, caller: str, callee: str) -> None:
        """On the SIP thread: a call to one of the agent's accounts (PJSIP falls back to the
        first account for unknown users: those are refused)."""
        if uri_user(callee) != user:
            self.stack.sip_hangup(key, 404)
            return
        try:
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self._take(key, caller, callee)))
        except RuntimeError:  # the agent's loop has closed
            self.stack.sip_hangup(key, 480)

    async def _take(self, key: int, caller: str, callee: str) -> None:
        """The call becomes a job held here; refused (403) if the room has no ``sip`` role."""
        try:
            job = await sync_to_async(self._call_job)(key, plain_uri(caller), plain_uri(callee))
        except Exception:
            logger.exception("SIP agent %s: cannot take a call from %s", self.job.id, caller)
            job = None
        if job is None:
            self.refused += 1
            await self.stack.call(self.stack.sip_hangup, key, 403)
            return
        self.answered += 1
        task = asyncio.create_task(run_held(job, self.worker))
        self.calls[job.id] = task
        task.add_done_callback(lambda _: self.calls.pop(job.id, None))

    def _call_job(self, key: int, caller: str, callee: str):
        domain = Domain.objects.filter(id=self.job.domain_id).first()
        if domain is None or domain.role("sip") is None:
            return None
        streams = {p.id: p for p in domain_streams(domain_id=domain.id)}
        spec = sip_dial_in_spec(
            caller=caller, callee=callee, streams=streams, call=key, worker=self.worker, agent=self.job.id
        )
        return job_create_held(
            domain_id=domain.id, kind=SipCallJob.kind, spec=spec, cost=SipCallJob.cost, worker=self.worker
        )

    def progress(self) -> dict:
        return {
            **super().progress(),
            "registration": dict(self.registration),
            "calls": len(self.calls),
            "answered": self.answered,
            "refused": self.refused,
        }

    async def stop(self) -> None:
        """Hang up the calls (their jobs stop within a heartbeat), then leave the accounts."""
        for job_id in list(self.calls):
            with contextlib.suppress(JobNotFound):
                await sync_to_async(job_stop)(job_id=job_id, reason="the room's SIP agent stopped")
        if self.calls:
            _, late = await asyncio.wait(list(self.calls.values()), timeout=HANGUP_WAIT_SECONDS * 2)
            for task in late:
                task.cancel()
        for account in self.accounts:
            await self.stack.call(self.stack.sip_remove_account, account)

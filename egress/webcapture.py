"""Capture a web page as decoded media: the source of a web ("freestyle") egress task.

:class:`WebPageCapture` renders a URL in the system Chromium (Playwright drives it, never a
downloaded browser) on a private Xvfb display exactly the requested size, grabs that display
with PyAV's x11grab at the requested frame rate, and records the page's sound from a private
PulseAudio null sink (``parec`` on its monitor). It yields PyAV frames ready for
``streamengine.media.live_output.LiveOutput``:

* ``("video", av.VideoFrame)``: yuv420p, ``pts`` in 1/90000 s on ``time.monotonic()`` from
  the moment the page had loaded;
* ``("audio", av.AudioFrame)``: s16 stereo 48 kHz, 20 ms each, gapless ``pts`` in samples on
  the same origin.

Why x11grab + PulseAudio and not CDP ``Page.startScreencast``: measured in docs/egress.md
(``python -m bench egress_web``): the screencast costs about three times the CPU (every frame
is JPEG-encoded by the browser, base64'd twice through the Playwright driver and decoded
here), delivers a variable rate that follows the page's repaints, and brings no audio.

Isolation: each capture has its own temporary directory (Chromium profile and HOME, the
PulseAudio socket and state), its own X display (Xvfb picks a free number itself:
``-displayfd``) and its own Playwright driver, so captures on one machine never share
anything. Every helper process runs in its own process group with ``PR_SET_PDEATHSIG``
(``setpriv``), so it dies with the thread that started it even if this process is killed;
:meth:`WebPageCapture.stop` kills the groups and anything still naming the temporary
directory (Chromium's zygotes and renderers).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import av
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

CHROMIUM = "/usr/bin/chromium"
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms per audio frame, as WebRTC and the encoder's queue expect
AUDIO_BYTES = AUDIO_SAMPLES * 2 * 2  # s16 stereo
VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
QUEUE_SECONDS = 2.0  # frames the consumer has not taken for this long are dropped
STOP_GRACE_SECONDS = 2.0
# Chromium shrinks a window that would fill the whole screen by a pixel, and makes none
# narrower than 500 px: the window is at least that wide on a screen a little larger, the page
# is emulated at exactly the requested size in its top-left corner, and that corner is grabbed.
SCREEN_MARGIN = 16
MIN_WINDOW_WIDTH = 500
MAX_SIZE = 3840

# Chromium itself reaches nothing: no background, component, sync or QUIC traffic; only the
# page's own requests leave it. Sound plays without a user gesture (nobody clicks in a recorder).
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-breakpad",
    "--disable-session-crashed-bubble",
    "--noerrdialogs",
    "--hide-scrollbars",
    "--test-type",  # no "unsupported command-line flag" bar over the page
    # A page that is a WebRTC room viewer (the default freestyle page) reaches the media node
    # with its real host candidates, loopback included (a recorder, not a user to protect).
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
# WebGL in software (SwiftShader through ANGLE), or no 3D APIs and no GPU process at all.
WEBGL_ARGS = ["--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-gpu-compositing"]
NO_WEBGL_ARGS = ["--disable-gpu", "--disable-3d-apis", "--disable-webgl", "--disable-webgl2"]


class WebCaptureFailed(Exception):
    """The page, the browser or the capture could not start, or stopped on its own."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def browser_args(*, webgl: bool, audio: bool) -> list[str]:
    """Chromium's switches for a capture (also the benchmark's headless screencast)."""
    return BROWSER_ARGS + (WEBGL_ARGS if webgl else NO_WEBGL_ARGS) + ([] if audio else ["--mute-audio"])


class _Child:
    """A helper process in its own process group that dies with the thread that started it."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log

    @classmethod
    async def start(
        cls, name: str, argv: list[str], *, log: Path, env: dict | None = None, pass_fds: tuple = (), stdout=None
    ) -> _Child:
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                "setpriv",
                "--pdeathsig",
                "KILL",
                "--",
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout if stdout is not None else asyncio.subprocess.DEVNULL,
                stderr=stderr,
                env=env,
                pass_fds=pass_fds,
                start_new_session=True,
            )
        return cls(name, process, log)

    def why(self) -> str:
        """The last line the process wrote to stderr (what a failure says)."""
        with contextlib.suppress(OSError):
            lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
            if lines:
                return f": {lines[-1].strip()}"
        return ""

    async def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), STOP_GRACE_SECONDS)
                return


def _read_line(fd: int) -> bytes:
    """Up to the newline or EOF. (Xvfb writes the number and its newline in two writes and
    dies if the pipe is closed in between.)"""
    data = b""
    while not data.endswith(b"\n") and (chunk := os.read(fd, 32)):
        data += chunk
    return data


def _kill_processes_naming(marker: str) -> None:
    """SIGKILL every process whose command line contains ``marker`` (our temporary directory)."""
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


class WebPageCapture:
    """One page rendered and captured; ``start()``, iterate ``frames()``, ``stop()``."""

    def __init__(
        self,
        url: str,
        *,
        width: int,
        height: int,
        framerate: int,
        webgl: bool,
        audio: bool = True,
        load_timeout: float = 20.0,
    ) -> None:
        if not (16 <= width <= MAX_SIZE and 16 <= height <= MAX_SIZE) or width % 2 or height % 2:
            raise ValueError(f"width and height must be even, 16 … {MAX_SIZE}: {width}x{height}")
        if not 1 <= framerate <= 60:
            raise ValueError(f"framerate must be 1 … 60: {framerate}")
        self.url = url
        self.width, self.height, self.framerate = width, height, framerate
        self.webgl, self.audio = webgl, audio
        self.load_timeout = load_timeout
        self.page_status: dict = {"status": "new"}
        self.frame_counts = {"video": 0, "audio": 0}
        self.dropped = 0
        self.failure = ""
        self._recent_video: collections.deque[float] = collections.deque(maxlen=2 * framerate)
        self._queue: asyncio.Queue = asyncio.Queue()
        self._queue_limit = int(QUEUE_SECONDS * (framerate + AUDIO_RATE / AUDIO_SAMPLES))
        self._children: list[_Child] = []
        self._tasks: list[asyncio.Task] = []
        self.workdir: Path | None = None  # our temporary directory (profile, sockets, logs)
        self._playwright = None
        self._context = None
        self._cdp = None
        self._grabber: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._started = False
        self._stopping = False
        self._stopped = False

    async def __aenter__(self) -> WebPageCapture:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    # Starting.

    async def start(self) -> None:
        """Start the display, the sound server, the browser; load the page; start capturing.
        Raises :class:`WebCaptureFailed` (everything started so far is stopped again)."""
        if self._started:
            raise RuntimeError("a WebPageCapture starts once")
        self._started = True
        self._loop = asyncio.get_running_loop()
        self.workdir = Path(tempfile.mkdtemp(prefix="owt-webcapture-"))
        try:
            display = await self._start_display()
            pulse = await self._start_sound() if self.audio else None
            if pulse is not None:
                # Recording from now on (parec takes a second to start): sound from the moment
                # the page has loaded; what plays before is dropped.
                await self._start_recording_sound(pulse)
            page = await self._start_browser(display, pulse)
            await self._load(page)
            self._t0 = time.monotonic()
            self._grabber = threading.Thread(target=self._grab, args=(display,), name="webcapture-x11grab", daemon=True)
            self._grabber.start()
        except BaseException as exc:
            failure = self.failure  # a helper that died says more than what failed after it
            await self.stop()
            if failure and isinstance(exc, WebCaptureFailed):
                raise WebCaptureFailed(failure) from exc
            raise
        if self.failure:
            await self.stop()
            raise WebCaptureFailed(self.failure)

    async def _start_display(self) -> str:
        read_end, write_end = os.pipe()
        try:
            xvfb = await self._spawn(
                "Xvfb",
                [
                    "Xvfb",
                    "-displayfd",
                    str(write_end),
                    "-screen",
                    "0",
                    f"{max(self.width, MIN_WINDOW_WIDTH) + SCREEN_MARGIN}x{self.height + SCREEN_MARGIN}x24",
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ],
                pass_fds=(write_end,),
            )
            os.close(write_end)
            write_end = -1
            # Xvfb writes the display number it took once it accepts connections (EOF: it died).
            number = await asyncio.wait_for(asyncio.to_thread(_read_line, read_end), 15)
        except OSError as exc:  # TimeoutError included
            raise WebCaptureFailed(f"cannot start Xvfb: {str(exc) or 'no display within 15 s'}") from exc
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
        if not number.strip():
            raise WebCaptureFailed(f"Xvfb exited at start{xvfb.why()}")
        return f":{number.decode().strip()}"

    async def _start_sound(self) -> str:
        """A PulseAudio server of our own with one null sink; returns its server string."""
        socket_path = self.workdir / "pulse.sock"
        pulse = await self._spawn(
            "pulseaudio",
            [
                "pulseaudio",
                "-n",  # no default.pa: only the two modules below
                "--daemonize=no",
                "--use-pid-file=no",
                "--exit-idle-time=-1",
                "--realtime=no",
                "--high-priority=no",
                "--log-target=stderr",
                "--log-level=error",
                "-L",
                f"module-null-sink sink_name=capture format=s16le rate={AUDIO_RATE} channels=2",
                "-L",
                f"module-native-protocol-unix socket={socket_path} auth-anonymous=1",
            ],
            env=self._private_env(),
        )
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            if pulse.process.returncode is not None or time.monotonic() > deadline:
                raise WebCaptureFailed(f"cannot start PulseAudio{pulse.why()}")
            await asyncio.sleep(0.05)
        return f"unix:{socket_path}"

    def _private_env(self, **extra: str) -> dict:
        """The environment of our processes: HOME and XDG folders in our temporary directory, so
        PulseAudio's state and Chromium's caches and NSS database are ours alone."""
        tmp = str(self.workdir)
        env = dict(os.environ, HOME=tmp, XDG_RUNTIME_DIR=tmp, XDG_CONFIG_HOME=tmp, XDG_CACHE_HOME=tmp)
        env.pop("PULSE_SERVER", None)
        env.update(extra)
        return env

    async def _start_browser(self, display: str, pulse: str | None) -> Page:
        profile = self.workdir / "profile"
        # A fresh profile that never offers to translate the page (a bar over the recording).
        (profile / "Default").mkdir(parents=True)
        (profile / "Default" / "Preferences").write_text(json.dumps({"translate": {"enabled": False}}))
        env = self._private_env(DISPLAY=display, **({"PULSE_SERVER": pulse} if pulse else {}))
        args = browser_args(webgl=self.webgl, audio=self.audio) + [
            "--kiosk",
            f"--window-size={max(self.width, MIN_WINDOW_WIDTH)},{self.height}",
            "--window-position=0,0",
        ]
        self.page_status = {"status": "launching"}
        try:
            self._playwright = await async_playwright().start()
            self._context = await self._playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                headless=False,
                env=env,
                args=args,
                no_viewport=True,  # the window keeps its kiosk size; the page's is emulated below
                ignore_default_args=["--enable-automation"],  # its info bar would be recorded
                timeout=30000,
            )
        except PlaywrightError as exc:
            raise WebCaptureFailed(f"cannot start Chromium: {exc.message.splitlines()[0]}") from exc
        self._context.on("close", lambda _: self._fail("the browser exited"))
        page = self._context.pages[0] if self._context.pages else await self._context.new_page()
        page.on("crash", lambda _: self._fail("the page crashed"))
        # The override lasts as long as this session: it is kept open (self._cdp) until stop.
        self._cdp = await self._context.new_cdp_session(page)
        await self._cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        return page

    async def _load(self, page: Page) -> None:
        self.page_status = {"status": "loading"}
        try:
            response = await page.goto(self.url, wait_until="load", timeout=self.load_timeout * 1000)
        except PlaywrightTimeout as exc:
            self.page_status = {"status": "failed", "error": f"not loaded within {self.load_timeout:g} s"}
            raise WebCaptureFailed(f"cannot load {self.url}: not loaded within {self.load_timeout:g} s") from exc
        except PlaywrightError as exc:
            # Chromium's net error names the cause: net::ERR_CONNECTION_REFUSED, ERR_NAME_NOT_RESOLVED …
            error = exc.message.splitlines()[0].removeprefix("Page.goto: ")
            self.page_status = {"status": "failed", "error": error}
            raise WebCaptureFailed(f"cannot load {self.url}: {error}") from exc
        status = response.status if response is not None else None
        self.page_status = {"status": "loaded", "http_status": status}
        if status is not None and status >= 400:
            self.page_status = {"status": "failed", "http_status": status, "error": f"HTTP {status}"}
            raise WebCaptureFailed(f"cannot load {self.url}: HTTP {status}")

    async def _start_recording_sound(self, pulse: str) -> None:
        parec = await self._spawn(
            "parec",
            [
                "parec",
                f"--server={pulse}",
                "--device=capture.monitor",
                "--format=s16le",
                f"--rate={AUDIO_RATE}",
                "--channels=2",
                "--raw",
                "--latency-msec=20",
            ],
            env=self._private_env(),
            stdout=asyncio.subprocess.PIPE,
        )
        self._tasks.append(asyncio.create_task(self._read_sound(parec)))

    async def _spawn(self, name: str, argv: list[str], **kwargs) -> _Child:
        try:
            child = await _Child.start(name, argv, log=self.workdir / f"{name}.log", **kwargs)
        except OSError as exc:
            raise WebCaptureFailed(f"cannot start {name}: {exc}") from exc
        self._children.append(child)
        self._tasks.append(asyncio.create_task(self._watch(child)))
        return child

    async def _watch(self, child: _Child) -> None:
        code = await child.process.wait()
        how = f"was killed ({signal.Signals(-code).name})" if code < 0 else f"exited with status {code}{child.why()}"
        self._fail(f"{child.name} {how}")

    # Capturing.

    def _grab(self, display: str) -> None:
        """The grabber thread: x11grab paces itself to the frame rate; each frame is converted
        to yuv420p here, off the event loop (which stays responsive: p99 lag ~11 ms at 720p30,
        docs/egress.md)."""
        try:
            container = av.open(
                display,
                format="x11grab",
                options={
                    "video_size": f"{self.width}x{self.height}",
                    "framerate": str(self.framerate),
                    "draw_mouse": "0",
                },
            )
        except (av.FFmpegError, OSError) as exc:
            self._loop.call_soon_threadsafe(self._fail, f"cannot grab display {display}: {exc}")
            return
        try:
            for frame in container.decode(video=0):
                if self._stopping:
                    break
                pts = round((time.monotonic() - self._t0) / VIDEO_TIME_BASE)
                picture = frame.reformat(format="yuv420p")
                picture.pts, picture.time_base = pts, VIDEO_TIME_BASE
                self._loop.call_soon_threadsafe(self._offer, "video", picture)
        except (av.FFmpegError, OSError) as exc:
            self._loop.call_soon_threadsafe(self._fail, f"display {display} lost: {exc}")
        finally:
            container.close()

    async def _read_sound(self, parec: _Child) -> None:
        stream = parec.process.stdout
        origin: float | None = None  # monotonic time of the first sample
        samples = 0  # since the first: the sound is gapless, so its own count is its clock
        try:
            while True:
                data = await stream.readexactly(AUDIO_BYTES)
                if origin is None:
                    origin = time.monotonic() - AUDIO_SAMPLES / AUDIO_RATE
                pts = round((origin - self._t0) * AUDIO_RATE) + samples
                samples += AUDIO_SAMPLES
                if not self._t0 or pts < 0:
                    continue  # played before the page had loaded
                frame = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_SAMPLES)
                frame.planes[0].update(data)
                frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, pts, AUDIO_TIME_BASE
                self._offer("audio", frame)
        except asyncio.IncompleteReadError:
            pass  # parec ended: its watcher reports why

    def _offer(self, kind: str, frame: av.frame.Frame) -> None:
        if self._stopping:
            return
        if self._queue.qsize() >= self._queue_limit:
            self.dropped += 1  # the consumer (the encoder) is not keeping up
            return
        self._queue.put_nowait((kind, frame))

    def _fail(self, reason: str) -> None:
        """A part stopped on its own: the capture ends and ``frames()`` raises."""
        if self._stopping:
            return
        self._stopping = True
        self.failure = reason
        if self.page_status.get("status") in ("loaded", "loading", "launching"):
            self.page_status = {**self.page_status, "status": "failed", "error": reason}
        self._queue.put_nowait(WebCaptureFailed(reason))

    async def frames(self) -> AsyncIterator[tuple[str, av.frame.Frame]]:
        """``("video" | "audio", frame)`` until :meth:`stop`; raises :class:`WebCaptureFailed`
        when the browser, the page or a helper process ends on its own."""
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, WebCaptureFailed):
                raise item
            kind = item[0]
            self.frame_counts[kind] += 1
            if kind == "video":
                self._recent_video.append(time.monotonic())
            yield item

    def progress(self) -> dict:
        recent = self._recent_video
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
        elapsed = time.monotonic() - self._t0 if self._t0 else 0.0
        return {
            "fps": round(fps, 2),
            "frames": dict(self.frame_counts),
            "dropped": self.dropped,
            "seconds": round(elapsed, 3),
            "page": dict(self.page_status),
        }

    # Stopping.

    async def stop(self) -> None:
        """Stop capturing and kill every process this capture started. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping = True
        if self.page_status.get("status") == "loaded":
            self.page_status = {**self.page_status, "status": "closed"}
        if self._grabber is not None:
            await asyncio.to_thread(self._grabber.join)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(PlaywrightError, TimeoutError):
            if self._context is not None:
                await asyncio.wait_for(self._context.close(), 10)
        with contextlib.suppress(PlaywrightError, TimeoutError):
            if self._playwright is not None:
                await asyncio.wait_for(self._playwright.stop(), 10)
        for child in reversed(self._children):
            await child.stop()
        if self.workdir is not None:
            _kill_processes_naming(str(self.workdir))
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._queue.put_nowait(None)

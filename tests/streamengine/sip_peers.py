"""Real SIP peers for the SIP tests, on loopback: sipp (scripted UAS scenarios) and baresip.

Also the tone check both directions use: the Goertzel power of one frequency against the
signal's total power.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import socket
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from owt.localserver import free_port

SCENARIOS = Path(__file__).parent / "sip"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tone_share(samples: np.ndarray, rate: int, frequency: float) -> float:
    """How much of the signal's power is at ``frequency`` (Goertzel), 0…1."""
    samples = samples.astype(np.float64)
    if not len(samples) or not np.any(samples):
        return 0.0
    n = len(samples)
    k = round(n * frequency / rate)
    coefficient = 2 * math.cos(2 * math.pi * k / n)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coefficient * s1 - s2, s1
    power = s2 * s2 + s1 * s1 - coefficient * s1 * s2
    return float(power / (np.sum(samples * samples) * n / 2))


def tone_blocks(samples: np.ndarray, rate: int, frequency: float, block_seconds: float = 0.1) -> float:
    """The share of the signal's non-silent 100 ms blocks in which ``frequency`` dominates
    (> half the power): a tone with a few gaps (a loaded machine) still counts as that tone."""
    size = int(rate * block_seconds)
    blocks = [samples[i : i + size] for i in range(0, len(samples) - size + 1, size)]
    loud = [block for block in blocks if np.abs(block).max() > 500]
    if not loud:
        return 0.0
    return sum(tone_share(block, rate, frequency) > 0.5 for block in loud) / len(loud)


def tone_sequence(samples: np.ndarray, rate: int, frequencies: list[float], block_seconds: float = 0.1) -> list[float]:
    """Which of ``frequencies`` dominates each non-silent 100 ms block, in order (blocks with
    none dominating, such as one spanning a switch, left out)."""
    size = int(rate * block_seconds)
    found = []
    for start in range(0, len(samples) - size + 1, size):
        block = samples[start : start + size]
        if np.abs(block).max() > 500:
            found += [f for f in frequencies if tone_share(block, rate, f) > 0.5][:1]
    return found


@contextlib.contextmanager
def sipp_uas(scenario: str, var: Path, *options: str) -> Iterator[tuple[subprocess.Popen, int]]:
    """sipp running ``sip/<scenario>.xml`` once (the callee of one call, or a registrar), and
    its SIP port; ``options``: more of sipp's (a UAC's target and ``-s`` user)."""
    port, media_port = free_udp_port(), free_udp_port()
    log = (var / f"sipp-{scenario}-{port}.log").open("ab")
    command = ["sipp", "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", "127.0.0.1", "-p", str(port)]
    command += ["-mp", str(media_port), "-m", "1", "-nostdin", "-timeout", "60s", *options]
    process = subprocess.Popen(command, stdout=log, stderr=log, cwd=var)
    time.sleep(0.2)
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


# PJSIP offers telephone-event/8000 as payload type 121; sipp's DTMF pcaps carry 101.
PJSIP_DTMF_PAYLOAD_TYPE = 121


def dtmf_pcaps(folder: Path) -> None:
    """sipp's RFC 2833 pcaps of 1 and #, with PJSIP's payload type, as ``dtmf-1.pcap`` and
    ``dtmf-pound.pcap`` in ``folder`` (where sipp runs: its scenarios name them)."""
    for digit, name in (("1", "1"), ("pound", "pound")):
        data = bytearray((Path("/usr/share/sip-tester") / f"dtmf_2833_{digit}.pcap").read_bytes())
        offset = 24  # the pcap file header; then per packet a 16-byte header, Ethernet, IPv4, UDP, RTP
        while offset < len(data):
            length = int.from_bytes(data[offset + 8 : offset + 12], "little")
            rtp = offset + 16 + 14 + 20 + 8
            data[rtp + 1] = (data[rtp + 1] & 0x80) | PJSIP_DTMF_PAYLOAD_TYPE
            offset += 16 + length
        (folder / f"dtmf-{name}.pcap").write_bytes(bytes(data))


def tone_wav(path: Path, frequency: float = 1000.0, seconds: float = 30.0, rate: int = 8000) -> Path:
    """A mono s16 WAV of a sine tone (what baresip plays into its calls)."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (8000 * np.sin(2 * math.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as recorded:
        data = np.frombuffer(recorded.readframes(recorded.getnframes()), dtype="<i2")
        if recorded.getnchannels() > 1:
            data = data[:: recorded.getnchannels()]
        return data, recorded.getframerate()


class Baresip:
    """baresip with a config folder of its own: plays ``source`` (WAV) into its calls and
    records what it hears (``sndfile``: a WAV per call in its folder). ``ctrl_tcp`` takes
    commands (netstring JSON) to dial and hang up; ``auto_answer`` answers calls in."""

    def __init__(self, var: Path, source: Path, *, answer: bool = True) -> None:
        self.folder = var / f"baresip-{free_udp_port()}"
        self.folder.mkdir()
        self.sip_port = free_udp_port()
        self.ctrl_port = free_port()
        config = [
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{self.sip_port}",
            "audio_player aufile,/dev/null",
            f"audio_source aufile,{source}",
            "audio_alert aufile,/dev/null",
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
            f"snd_path {self.folder}",
            "module_path /usr/lib/baresip/modules",
            "module stdio.so",
            "module g711.so",
            "module aufile.so",
            "module sndfile.so",
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            "net_interface 127.0.0.1",
            "rtp_ports 30000-39999",
            "audio_buffer 20-160",
        ]
        (self.folder / "config").write_text("\n".join(config) + "\n")
        answer_mode = ";answermode=auto" if answer else ""
        (self.folder / "accounts").write_text(f"<sip:callee@127.0.0.1>;regint=0{answer_mode}\n")
        self.uri = f"sip:callee@127.0.0.1:{self.sip_port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Baresip:
        assert shutil.which("baresip"), "baresip is not installed (bin/setup --test)"
        log = (self.folder / "baresip.log").open("ab")
        self.process = subprocess.Popen(
            ["baresip", "-f", str(self.folder)], stdin=subprocess.PIPE, stdout=log, stderr=log, cwd=self.folder
        )
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1):
                return self
            assert time.monotonic() < deadline, (self.folder / "baresip.log").read_text()
            time.sleep(0.1)

    def command(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=5) as ctrl:
            ctrl.sendall(f"{len(body)}:".encode() + body + b",")
            ctrl.recv(4096)

    def recordings(self) -> list[Path]:
        return sorted(self.folder.glob("dump-*-dec.wav"))

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        with contextlib.suppress(OSError):
            self.command("quit")
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

// owt-client.js: a small conference client for this platform's signaling (no build step, ES module).
//
// Speaks the OWT client-portal protocol 1.2 over the JSON WebSocket frames of docs/signaling.md:
// login with a room token, publish local tracks, subscribe to remote streams, mute/unmute, text
// messages, and the server notifications (participant, stream, progress, text, drop).
// Each publication and each subscription gets its own RTCPeerConnection (its own transport:
// requests carry no transport.id, so the server creates one named after the session).
//
//   import { ConferenceClient } from "/static/owt/owt-client.js";
//   const client = new ConferenceClient({ iceServers: [] });
//   const info = await client.join(token);
//   const pub = await client.publish(await navigator.mediaDevices.getUserMedia({ audio: true, video: true }));
//   client.addEventListener("streamadded", async (e) => { const sub = await client.subscribe(e.detail); video.srcObject = sub.stream; });

const PROTOCOL = "1.2";
const SDK_VERSION = "5.0";
const SESSION_TIMEOUT_MS = 30000;
// How long to wait for local ICE gathering before sending the offer; later candidates trickle.
const GATHER_WAIT_MS = 2000;

/** Raised when the server acknowledges a request with status "error". */
export class SignalingError extends Error {
  constructor(event, message) {
    super(`${event}: ${message}`);
    this.name = "SignalingError";
    this.event = event;
    this.reason = message;
  }
}

/**
 * A publication or subscription whose media never found a network path to the server: ICE failed,
 * or had not connected when the session timed out. Other session failures are plain Errors.
 */
export class IceError extends Error {
  constructor(message) {
    super(message);
    this.name = "IceError";
  }
}

/** Decode an OWT token string (base64 JSON {tokenId, host, secure, signature}). */
export function decodeToken(token) {
  return JSON.parse(atob(token));
}

/** The signaling URL a token points to: ws(s)://<host>/ws/signaling/. */
export function signalingUrlFromToken(token) {
  const { host, secure } = decodeToken(token);
  return `${secure ? "wss" : "ws"}://${host}/ws/signaling/`;
}

/** The media kinds ("audio", "video") a stream object offers, whatever its protocol form. */
export function streamKinds(stream) {
  const media = (stream && stream.media) || {};
  if (Array.isArray(media.tracks)) return [...new Set(media.tracks.map((t) => t.type))];
  return ["audio", "video"].filter((kind) => media[kind]);
}

/** One WebSocket with request/ack matching and notification events ("notification", "close"). */
export class SignalingChannel extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
  }

  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`Cannot connect to ${this.url}`));
      ws.onmessage = (message) => this._onFrame(message.data);
      ws.onclose = (event) => {
        for (const { reject: fail, event: name } of this.pending.values()) {
          fail(new SignalingError(name, "Connection closed"));
        }
        this.pending.clear();
        this.dispatchEvent(new CustomEvent("close", { detail: { code: event.code } }));
      };
    });
  }

  request(event, data) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new SignalingError(event, "Not connected"));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, event });
      this.ws.send(JSON.stringify({ type: "request", id, event, data: data === undefined ? null : data }));
    });
  }

  close() {
    if (this.ws) this.ws.close();
  }

  _onFrame(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === "ack") {
      const waiter = this.pending.get(frame.id);
      if (!waiter) return;
      this.pending.delete(frame.id);
      // "success" is the legacy protocol's word for "ok"; accept both like the OWT SDK does.
      if (frame.status === "ok" || frame.status === "success") waiter.resolve(frame.data);
      else waiter.reject(new SignalingError(waiter.event, frame.data));
    } else if (frame.type === "notification") {
      this.dispatchEvent(new CustomEvent("notification", { detail: { event: frame.event, data: frame.data } }));
    }
  }
}

/** What publications and subscriptions share: a peer connection bound to one transport and session. */
class Session extends EventTarget {
  constructor(client, pc) {
    super();
    this.client = client;
    this.pc = pc;
    this.id = null;
    this.transportId = null;
    this.ended = false;
    this._offerSent = false;
    this._ready = null;
    this._readyPromise = new Promise((resolve, reject) => {
      this._ready = { resolve, reject };
    });
    // A failure before anyone awaits is reported by _negotiate, not as an unhandled rejection.
    this._readyPromise.catch(() => {});
    pc.onicecandidate = (event) => {
      // Candidates gathered before the offer went out are already in its SDP.
      if (!event.candidate || !this._offerSent || this.ended) return;
      const { candidate, sdpMid, sdpMLineIndex } = event.candidate;
      this._soac({ type: "candidate", candidate: { candidate: `a=${candidate}`, sdpMid, sdpMLineIndex } });
    };
    pc.addEventListener("iceconnectionstatechange", () => {
      // "failed" is final without an ICE restart, which this client does not do.
      if (pc.iceConnectionState === "failed") this._fail(new IceError("ICE failed"));
    });
  }

  /** Offer, ask the server (`request` with the body `buildData()` makes once mids exist), wait for ready. */
  async _negotiate(request, buildData) {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const ack = await this.client.signaling.request(request, buildData());
    this.id = ack.id;
    this.transportId = ack.transportId || ack.id;
    this.client._sessions.set(this.transportId, this);
    await waitForGathering(this.pc, GATHER_WAIT_MS);
    const offer = this.pc.localDescription;
    this._offerSent = true;
    await this._soac({ type: offer.type, sdp: offer.sdp });
    const timer = setTimeout(() => this._fail(this._timeoutError(request)), SESSION_TIMEOUT_MS);
    try {
      await this._readyPromise;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Why the server never said ready: ICE still not connected is a network problem, not the server's. */
  _timeoutError(request) {
    const ice = this.pc.iceConnectionState;
    if (ice === "connected" || ice === "completed") return new Error(`${request} timed out`);
    return new IceError(`${request} timed out with ICE ${ice}`);
  }

  _soac(signaling) {
    return this.client.signaling.request("soac", { id: this.transportId, signaling }).catch((error) => {
      this._fail(error.message);
    });
  }

  /** A `progress` notification for this transport. */
  async _onProgress(progress) {
    if (progress.status === "soac") {
      const signal = progress.data || {};
      if (signal.type === "answer") {
        await this.pc.setRemoteDescription({ type: "answer", sdp: signal.sdp });
      } else if (signal.type === "candidate" && signal.candidate) {
        const c = signal.candidate;
        const text = typeof c === "string" ? c : c.candidate;
        await this.pc.addIceCandidate({
          candidate: text.replace(/^a=/, ""),
          sdpMid: c.sdpMid,
          sdpMLineIndex: c.sdpMLineIndex,
        });
      }
    } else if (progress.status === "ready" && progress.sessionId) {
      this._ready.resolve();
    } else if (progress.status === "error") {
      this._fail(progress.data || "session failed");
    }
  }

  /** End the session because of `reason` (an Error, or text for a plain Error). */
  _fail(reason) {
    const error = reason instanceof Error ? reason : new Error(String(reason));
    this._ready.reject(error);
    if (!this.ended) this.dispatchEvent(new CustomEvent("error", { detail: { reason: error.message, error } }));
    this._end();
  }

  _end() {
    if (this.ended) return;
    this.ended = true;
    // Ended before ready (leave, a closed socket): negotiation stops now, not at its timeout.
    this._ready.reject(new Error("session ended"));
    this.client._sessions.delete(this.transportId);
    this.pc.close();
    this.dispatchEvent(new Event("ended"));
  }

  getStats() {
    return this.pc.getStats();
  }
}

/** A local stream published to the room. Events: "ended", "error" {reason, error}. */
export class Publication extends Session {
  constructor(client, pc, stream) {
    super(client, pc);
    this.stream = stream;
  }

  /** Stop sending `kind` ("audio", "video" or "av"); others see a stream update. */
  mute(kind = "av") {
    return this.client.signaling.request("stream-control", { id: this.id, operation: "pause", data: kind });
  }

  unmute(kind = "av") {
    return this.client.signaling.request("stream-control", { id: this.id, operation: "play", data: kind });
  }

  async stop() {
    if (this.ended) return;
    try {
      await this.client.signaling.request("unpublish", { id: this.id });
    } finally {
      this._end();
    }
  }
}

/** A remote stream received from the room; `stream` is a MediaStream. Events: "ended", "error" {reason, error}. */
export class Subscription extends Session {
  constructor(client, pc, streamId) {
    super(client, pc);
    this.streamId = streamId;
    this.stream = new MediaStream();
    pc.ontrack = (event) => this.stream.addTrack(event.track);
  }

  mute(kind = "av") {
    return this.client.signaling.request("subscription-control", { id: this.id, operation: "pause", data: kind });
  }

  unmute(kind = "av") {
    return this.client.signaling.request("subscription-control", { id: this.id, operation: "play", data: kind });
  }

  async stop() {
    if (this.ended) return;
    try {
      await this.client.signaling.request("unsubscribe", { id: this.id });
    } finally {
      this._end();
    }
  }
}

/**
 * A participant's connection to one room.
 *
 * Events (CustomEvent, data in `detail`): "participantjoined" {id, user, role}, "participantleft" {id},
 * "streamadded" <stream>, "streamremoved" <stream>, "streamupdated" {id, field, value, stream},
 * "messagereceived" {from, to, message}, "dropped", "serverdisconnected".
 */
export class ConferenceClient extends EventTarget {
  constructor({ iceServers = [] } = {}) {
    super();
    // Never undefined: a browser then needs no STUN server, and tests stay on loopback.
    this.iceServers = iceServers;
    this.signaling = null;
    this.info = null;
    this.participants = new Map();
    this.streams = new Map();
    this._sessions = new Map();
  }

  /** Log in with a room token; `url` defaults to the portal named in the token. Resolves with the LoginResult. */
  async join(token, { url } = {}) {
    if (this.signaling) throw new Error("Already joined");
    this.signaling = new SignalingChannel(url || signalingUrlFromToken(token));
    this.signaling.addEventListener("notification", (event) => this._onNotification(event.detail));
    this.signaling.addEventListener("close", () => this._onClose());
    await this.signaling.connect();
    const userAgent = { sdk: { type: "JavaScript", version: SDK_VERSION }, runtime: { name: navigator.userAgent } };
    try {
      this.info = await this.signaling.request("login", { token, userAgent, protocol: PROTOCOL });
    } catch (error) {
      this.signaling.close();
      this.signaling = null;
      throw error;
    }
    for (const participant of this.info.room.participants || []) this.participants.set(participant.id, participant);
    for (const stream of this.info.room.streams || []) this.streams.set(stream.id, stream);
    return this.info;
  }

  /** Streams of other participants (what a page would subscribe to). */
  remoteStreams() {
    const me = this.info && this.info.id;
    return [...this.streams.values()].filter((stream) => !stream.info || stream.info.owner !== me);
  }

  /** Publish a MediaStream's first audio and video tracks. Resolves once the server has the media. */
  async publish(mediaStream, { attributes = {}, videoSource = "camera", audioSource = "mic" } = {}) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const publication = new Publication(this, pc, mediaStream);
    const tracks = [];
    for (const track of [mediaStream.getAudioTracks()[0], mediaStream.getVideoTracks()[0]]) {
      if (!track) continue;
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [mediaStream] });
      tracks.push({ transceiver, type: track.kind, source: track.kind === "audio" ? audioSource : videoSource });
    }
    if (!tracks.length) throw new Error("Nothing to publish: the stream has no audio or video track");
    const request = () => ({
      media: { tracks: tracks.map((t) => ({ type: t.type, mid: t.transceiver.mid, source: t.source })) },
      attributes,
      transport: { type: "webrtc" },
    });
    await this._run(publication, "publish", request);
    return publication;
  }

  /** Subscribe to a remote stream (object or id). `audio`/`video` false leaves that kind out. */
  async subscribe(streamOrId, { audio = true, video = true } = {}) {
    const stream = typeof streamOrId === "string" ? this.streams.get(streamOrId) : streamOrId;
    if (!stream) throw new Error(`Unknown stream ${streamOrId}`);
    const wanted = streamKinds(stream).filter((kind) => (kind === "audio" ? audio : video));
    if (!wanted.length) throw new Error("Nothing to subscribe to");
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const subscription = new Subscription(this, pc, stream.id);
    const transceivers = wanted.map((kind) => ({ kind, transceiver: pc.addTransceiver(kind, { direction: "recvonly" }) }));
    const request = () => ({
      media: { tracks: transceivers.map((t) => ({ type: t.kind, mid: t.transceiver.mid, from: stream.id })) },
      transport: { type: "webrtc" },
    });
    await this._run(subscription, "subscribe", request);
    return subscription;
  }

  async _run(session, event, buildRequest) {
    if (!this.signaling) {
      session.pc.close();
      throw new Error("Not joined");
    }
    try {
      await session._negotiate(event, buildRequest);
    } catch (error) {
      session._end();
      // The server made a session for the request (ICE failed, timed out): remove it, or it
      // stays listed half-open and a retry leaves two behind.
      if (session.id && this.signaling) {
        const cancel = event === "publish" ? "unpublish" : "unsubscribe";
        await this.signaling.request(cancel, { id: session.id }).catch(() => {});
      }
      throw error;
    }
  }

  /** Send a text message to one participant id or "all". */
  send(message, to = "all") {
    return this.signaling.request("text", { to, message });
  }

  async leave() {
    if (!this.signaling) return;
    for (const session of [...this._sessions.values()]) session._end();
    try {
      await this.signaling.request("logout");
    } finally {
      this.signaling.close();
    }
  }

  _onNotification({ event, data }) {
    if (event === "progress") {
      const session = this._sessions.get(data.id);
      if (session) session._onProgress(data).catch((error) => session._fail(error.message));
    } else if (event === "participant") {
      if (data.action === "join") {
        this.participants.set(data.data.id, data.data);
        this._emit("participantjoined", data.data);
      } else if (data.action === "leave") {
        this.participants.delete(data.data);
        this._emit("participantleft", { id: data.data });
      }
    } else if (event === "stream") {
      this._onStream(data);
    } else if (event === "text") {
      this._emit("messagereceived", data);
    } else if (event === "drop") {
      this._emit("dropped", {});
    }
  }

  _onStream({ id, status, data }) {
    if (status === "add") {
      this.streams.set(id, data);
      this._emit("streamadded", data);
    } else if (status === "remove") {
      const stream = this.streams.get(id) || { id };
      this.streams.delete(id);
      for (const session of [...this._sessions.values()]) {
        if (session instanceof Subscription && session.streamId === id) session._end();
      }
      this._emit("streamremoved", stream);
    } else if (status === "update") {
      const stream = this.streams.get(id);
      if (stream && data && data.field === ".") this.streams.set(id, data.value);
      else if (stream && data) applyTrackStatus(stream, data.field, data.value);
      this._emit("streamupdated", { id, field: data && data.field, value: data && data.value, stream: this.streams.get(id) });
    }
  }

  _onClose() {
    for (const session of [...this._sessions.values()]) session._end();
    this.signaling = null;
    // A refused login closes the socket too; join() already reported that.
    if (this.info) this._emit("serverdisconnected", {});
  }

  _emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }
}

/** Keep a 1.2-form stream's track status in step with an "audio.status"/"video.status" update. */
function applyTrackStatus(stream, field, value) {
  const match = /^(audio|video)\.status$/.exec(field || "");
  if (!match || !stream.media || !Array.isArray(stream.media.tracks)) return;
  for (const track of stream.media.tracks) if (track.type === match[1]) track.status = value;
}

function waitForGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

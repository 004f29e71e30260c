// The OWT JS SDK's conference sequence over socket.io-client, one RTCPeerConnection per
// conference, as owt-client-javascript's conference/channel.js and signaling.js do it:
// the first publish/subscribe sends no transport id, later ones the returned transportId
// and a new offer with every m-line so far; negotiations are chained (one answer at a time);
// local candidates wait until the answer is set; unpublish removes the track without
// renegotiating; unsubscribe stops the receiver's track. The test drives it through
// window.flow (Playwright's evaluate awaits the returned promises).
/* global io */
"use strict";

class SdkFlow {
  constructor() {
    this.pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    this.transportId = undefined;
    this.sessions = new Map(); // session id -> {id, transceivers, ready, fail}
    this.chain = Promise.resolve();
    this.pendingCandidates = [];
    this.streams = new Map(); // stream id -> stream info (login result, stream add)
    this.texts = [];
    this.errors = [];
    this.answered = null;
    this.pc.onicecandidate = (event) => {
      if (!event.candidate) return;
      if (this.pc.signalingState !== "stable" || !this.transportId) this.pendingCandidates.push(event.candidate);
      else this.sendCandidate(event.candidate);
    };
  }

  request(name, data) {
    return new Promise((resolve, reject) => {
      const ack = (status, result) => (status === "ok" || status === "success" ? resolve(result) : reject(new Error(result)));
      if (data === undefined) this.socket.emit(name, ack);
      else this.socket.emit(name, data, ack);
    });
  }

  join(url, token) {
    // signaling.js: io(host, {reconnection, reconnectionAttempts: 10, 'force new connection'}).
    this.socket = io(url, { reconnection: true, reconnectionAttempts: 10, "force new connection": true });
    for (const name of ["participant", "text", "stream", "progress"]) {
      this.socket.on(name, (data) => this.onNotification(name, data));
    }
    const login = { token, userAgent: { sdk: { type: "JavaScript", version: "5.1" } }, protocol: "1.2" };
    return this.request("login", login).then((info) => {
      this.info = info;
      for (const stream of info.room.streams) this.streams.set(stream.id, stream);
      return info.id;
    });
  }

  onNotification(name, data) {
    if (name === "progress") {
      if (data.status === "soac" && data.data.type === "answer") {
        this.pc.setRemoteDescription(data.data).then(
          () => {
            for (const candidate of this.pendingCandidates.splice(0)) this.sendCandidate(candidate);
            if (this.answered) this.answered();
          },
          (error) => this.errors.push(`setRemoteDescription: ${error}`),
        );
      } else if (data.status === "ready" && data.sessionId && this.sessions.has(data.sessionId)) {
        this.sessions.get(data.sessionId).ready();
      } else if (data.status === "error" && this.sessions.has(data.sessionId)) {
        this.sessions.get(data.sessionId).fail(data.data);
      }
    } else if (name === "stream" && data.status === "add") {
      this.streams.set(data.id, data.data);
    } else if (name === "stream" && data.status === "remove") {
      this.streams.delete(data.id);
    } else if (name === "text") {
      this.texts.push(data);
    }
  }

  sendCandidate(candidate) {
    const signaling = {
      type: "candidate",
      candidate: { candidate: `a=${candidate.candidate}`, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex },
    };
    this.request("soac", { id: this.transportId, signaling }).catch((error) => this.errors.push(`candidate: ${error}`));
  }

  negotiate(event, transceivers, data) {
    const run = async () => {
      const offer = await this.pc.createOffer();
      await this.pc.setLocalDescription(offer);
      data.media.tracks.forEach((track, i) => (track.mid = transceivers[i].mid));
      const ack = await this.request(event, { ...data, transport: { id: this.transportId, type: "webrtc" } });
      if (this.transportId && this.transportId !== ack.transportId) throw new Error(`conflict ID ${ack.transportId}`);
      this.transportId = ack.transportId;
      const session = { id: ack.id, transceivers };
      session.done = new Promise((resolve, reject) => {
        session.ready = resolve;
        session.fail = (reason) => reject(new Error(reason));
      });
      this.sessions.set(ack.id, session);
      const answered = new Promise((resolve) => (this.answered = resolve));
      await this.request("soac", { id: this.transportId, signaling: { type: offer.type, sdp: offer.sdp } });
      await answered;
      return session;
    };
    const negotiated = this.chain.then(run);
    this.chain = negotiated.catch(() => undefined);
    return negotiated.then(async (session) => {
      await session.done;
      return { id: session.id, mids: session.transceivers.map((t) => t.mid) };
    });
  }

  async publishCamera() {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    return this.publishStream(stream);
  }

  async publishCanvas() {
    // A second, different source: an animated canvas (as a screen share would be).
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = 240;
    const context = canvas.getContext("2d");
    let frame = 0;
    setInterval(() => {
      context.fillStyle = `hsl(${(frame += 7) % 360}, 80%, 50%)`;
      context.fillRect(0, 0, canvas.width, canvas.height);
    }, 33);
    return this.publishStream(canvas.captureStream(30));
  }

  publishStream(stream) {
    const transceivers = stream.getTracks().map((track) => this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] }));
    const tracks = transceivers.map((t) => ({ type: t.sender.track.kind, source: t.sender.track.kind === "audio" ? "mic" : "camera" }));
    return this.negotiate("publish", transceivers, { media: { tracks }, attributes: {} });
  }

  subscribe(streamId, kinds) {
    const transceivers = kinds.map((kind) => this.pc.addTransceiver(kind, { direction: "recvonly" }));
    const tracks = kinds.map((kind) => ({ type: kind, from: streamId }));
    return this.negotiate("subscribe", transceivers, { media: { tracks } }).then((result) => {
      for (const transceiver of transceivers) {
        if (transceiver.receiver.track.kind !== "video") continue;
        const video = document.createElement("video");
        video.autoplay = video.muted = true;
        video.srcObject = new MediaStream([transceiver.receiver.track]);
        document.body.appendChild(video);
      }
      return result;
    });
  }

  async unpublish(id) {
    await this.request("unpublish", { id });
    for (const transceiver of this.sessions.get(id).transceivers) {
      transceiver.sender.replaceTrack(null);
      if (this.pc.signalingState === "stable") this.pc.removeTrack(transceiver.sender);
    }
    this.sessions.delete(id);
  }

  async unsubscribe(id) {
    await this.request("unsubscribe", { id });
    for (const transceiver of this.sessions.get(id).transceivers) transceiver.receiver.track.stop();
    this.sessions.delete(id);
  }

  update(id, parameters) {
    const video = { parameters: { resolution: undefined, framerate: undefined, bitrate: undefined, keyFrameInterval: undefined, ...parameters } };
    return this.request("subscription-control", { id, operation: "update", data: { video } });
  }

  text(to, message) {
    return this.request("text", { to, message });
  }

  async leave() {
    await this.request("logout");
    this.socket.disconnect();
  }

  // Decoded video frames per receiving m-line (inbound-rtp stats carry the mid).
  async framesDecoded() {
    const byMid = {};
    const report = await this.pc.getStats();
    report.forEach((stats) => {
      if (stats.type === "inbound-rtp" && stats.kind === "video") byMid[stats.mid] = { frames: stats.framesDecoded || 0, width: stats.frameWidth || 0 };
    });
    return byMid;
  }
}

window.flow = new SdkFlow();

// The sample join page: join with a token, publish camera/microphone, subscribe to the other
// streams it is set to watch (every one, the room's mix, each participant's), list participants.
// State is exposed as window.owtDemo for tests and the browser console.
import { ConferenceClient, IceError, SignalingError } from "./owt-client.js";

const config = JSON.parse(document.getElementById("owt-config").textContent);
const $ = (id) => document.getElementById(id);

const demo = {
  client: null,
  publication: null,
  subscriptions: new Map(),
  /** Stream ids being subscribed to: a Retry or a late `streamadded` must not subscribe twice. */
  subscribing: new Set(),
  errors: [],
  /** The failed step on show ({step, message, hint}) or null; Retry runs that step again. */
  failure: null,
  /** Participant id → user name, kept after they leave so the log can still name them. */
  names: new Map(),
  /** Inbound video stats of every subscription: [{streamId, framesDecoded, frameWidth, frameHeight, framesPerSecond}]. */
  async videoStats() {
    const rows = [];
    for (const [streamId, subscription] of this.subscriptions) {
      const report = await subscription.getStats();
      report.forEach((stat) => {
        if (stat.type === "inbound-rtp" && stat.kind === "video") {
          rows.push({
            streamId,
            framesDecoded: stat.framesDecoded || 0,
            frameWidth: stat.frameWidth || 0,
            frameHeight: stat.frameHeight || 0,
            framesPerSecond: stat.framesPerSecond || 0,
          });
        }
      });
    }
    return rows;
  },
};
window.owtDemo = demo;

function log(text) {
  const line = document.createElement("div");
  line.textContent = `${new Date().toISOString().slice(11, 19)} ${text}`;
  $("log").prepend(line);
}

function fail(what, error) {
  const message = `${what}: ${error && error.message ? error.message : error}`;
  demo.errors.push(message);
  log(message);
}

function setStatus(text) {
  $("status").textContent = text;
  document.body.dataset.status = text;
}

/** A participant's user name (ids only where the page never learnt the name). */
function who(id) {
  const name = demo.names.get(id) || id;
  return demo.client && demo.client.info && id === demo.client.info.id ? `${name} (me)` : name;
}

// A stream update in words: a track's status, the stream's measured video (field "."), or a
// mixed stream's layout and active input (by the names of the people in them).
function describeUpdate({ field, value }) {
  if (field === "video.layout" && Array.isArray(value)) {
    return `layout: ${value.map((entry) => streamOwner(entry.stream)).join(", ") || "empty"}`;
  }
  if (field === "activeInput") return `active speaker: ${streamOwner(value)}`;
  if (field !== ".") return `${field} = ${JSON.stringify(value)}`;
  const video = ((value && value.media && value.media.tracks) || []).find((t) => t.type === "video");
  const size = video && video.parameters && video.parameters.resolution;
  const rate = video && video.parameters && video.parameters.framerate;
  return size ? `video ${size.width}x${size.height}${rate ? ` at ${rate} fps` : ""}` : "updated";
}

/** A mixed stream: a view of the room that the MCU composites from the participants' streams. */
function isMix(stream) {
  return Boolean(stream && stream.type === "mixed");
}

function streamLabel(stream) {
  if (isMix(stream)) return `the room's mix (${(stream.info && stream.info.label) || stream.id})`;
  const owner = stream && stream.info && stream.info.owner;
  return owner ? `${who(owner)}'s stream` : `stream ${stream.id}`;
}

/** Whose stream `id` is, in words (a stream id where the page does not know it). */
function streamOwner(id) {
  const stream = demo.client && demo.client.streams.get(id);
  const owner = stream && stream.info && stream.info.owner;
  return owner ? who(owner) : id;
}

/** Whether the page's "watch" choice takes `stream`. */
function watched(stream) {
  const watch = $("watch").value;
  return watch === "all" || (watch === "mix" ? isMix(stream) : watch === "participants" && !isMix(stream));
}

/** What to tell the person about a failed step, and what to try before pressing Retry. */
function explain(step, error) {
  if (error instanceof IceError) {
    return "no network path to the media server: check ICE servers (ICE_SERVERS) / firewall, and MEDIA_HOST_ADDRESSES";
  }
  const reason = error instanceof SignalingError ? error.reason : "";
  if (step === "join") {
    // What decoding a token that is not base64 JSON throws.
    if (error instanceof SyntaxError || (error && error.name === "InvalidCharacterError")) {
      return "that is not a room token: paste the whole token from POST /v1/rooms/{room}/tokens";
    }
    if (error instanceof SignalingError) {
      return "the token was refused: tokens work once and expire within minutes; paste a fresh one (the quick demo's join link mints one)";
    }
    return "cannot reach the portal named in the token: is it running, and is OWT_PORTAL_HOST an address this browser reaches?";
  }
  if (step === "connection") {
    return "join again; the token is used up, so paste a fresh one (the quick demo's join link mints one)";
  }
  if (step === "camera/microphone") return "allow camera/microphone access, or untick what you do not want to publish";
  if (reason === "unauthorized") return "this participant's role may not publish; join with a presenter token";
  return "see the log below; Retry starts the step again on a new peer connection";
}

/** Show the failed step with a hint and a Retry button that runs `retry`; log it as before. */
function showFailure(step, error, retry) {
  fail(step, error);
  const message = `${step} failed: ${error && error.message ? error.message : error}`;
  demo.failure = { step, message, hint: explain(step, error), retry };
  $("failure-message").textContent = message;
  $("failure-hint").textContent = demo.failure.hint;
  $("failure").hidden = false;
  document.body.dataset.failure = step;
}

function clearFailure() {
  demo.failure = null;
  $("failure").hidden = true;
  delete document.body.dataset.failure;
}

function renderParticipants() {
  const list = $("participants");
  list.replaceChildren();
  for (const participant of demo.client.participants.values()) {
    const item = document.createElement("li");
    item.dataset.id = participant.id;
    const me = participant.id === demo.client.info.id ? " (me)" : "";
    item.textContent = `${participant.user} · ${participant.role}${me}`;
    list.append(item);
  }
}

function addVideo(container, id, label, mediaStream, muted) {
  const figure = document.createElement("figure");
  figure.dataset.streamId = id;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  // Autoplay policy: only muted media may start without a click; the page offers unmute buttons.
  video.muted = muted;
  video.srcObject = mediaStream;
  // Not muted (the viewer layout): where the browser refuses sound without a click, muted then.
  if (!muted) {
    video.play().catch(() => {
      video.muted = true;
      video.play().catch(() => {});
    });
  }
  const caption = document.createElement("figcaption");
  caption.textContent = label;
  figure.append(video, caption);
  container.append(figure);
  return figure;
}

function muteButtons(figure, session) {
  for (const kind of ["audio", "video"]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `mute ${kind}`;
    button.dataset.kind = kind;
    let muted = false;
    button.onclick = async () => {
      try {
        await (muted ? session.unmute(kind) : session.mute(kind));
        muted = !muted;
        button.textContent = `${muted ? "unmute" : "mute"} ${kind}`;
      } catch (error) {
        fail(`${kind} ${muted ? "unmute" : "mute"}`, error);
      }
    };
    figure.append(button);
  }
}

async function subscribe(stream) {
  const client = demo.client;
  const pending = demo.subscribing;
  const mine = stream.info && stream.info.owner === client.info.id;
  if (mine || !watched(stream) || demo.subscriptions.has(stream.id) || pending.has(stream.id)) return;
  pending.add(stream.id);
  try {
    const subscription = await client.subscribe(stream);
    // Left or rejoined meanwhile: leave() has closed this connection's sessions.
    if (demo.client !== client) return;
    demo.subscriptions.set(stream.id, subscription);
    const owner = stream.info && stream.info.owner;
    const label = isMix(stream) ? streamLabel(stream) : owner ? who(owner) : stream.id;
    const figure = addVideo($(isMix(stream) ? "mix" : "remote"), stream.id, label, subscription.stream, !config.view);
    muteButtons(figure, subscription);
    subscription.addEventListener("ended", () => {
      demo.subscriptions.delete(stream.id);
      figure.remove();
    });
    subscription.addEventListener("error", (e) =>
      showFailure(`subscription to ${streamLabel(stream)}`, e.detail.error, subscribeAll),
    );
    log(`subscribed to ${streamLabel(stream)}`);
  } catch (error) {
    if (demo.client === client) showFailure(`subscribe to ${streamLabel(stream)}`, error, subscribeAll);
  } finally {
    pending.delete(stream.id);
  }
}

/** Subscribe to every watched remote stream not received yet (the Retry of a failed subscription). */
async function subscribeAll() {
  await Promise.all(demo.client.remoteStreams().map(subscribe));
}

/** Another "watch" choice while joined: stop what it leaves out, subscribe to what it takes. */
async function watchChanged() {
  if (!demo.client || !demo.client.info) return;
  for (const [streamId, subscription] of [...demo.subscriptions]) {
    const stream = demo.client.streams.get(streamId);
    if (stream && !watched(stream)) await subscription.stop().catch((error) => fail("unsubscribe", error));
  }
  await subscribeAll();
}

async function publish() {
  const client = demo.client;
  const audio = $("publish-audio").checked;
  const video = $("publish-video").checked;
  if (!audio && !video) return;
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ audio, video: video ? { width: 640, height: 480 } : false });
  } catch (error) {
    if (demo.client === client) showFailure("camera/microphone", error, publish);
    return;
  }
  const release = () => {
    for (const track of media.getTracks()) track.stop();
  };
  try {
    // A failed publish has closed its own peer connection: a retry starts a new one.
    const publication = await client.publish(media);
    if (demo.client !== client) {
      release();
      return;
    }
    demo.publication = publication;
    const figure = addVideo($("local"), publication.id, "me", media, true);
    muteButtons(figure, publication);
    publication.addEventListener("ended", () => {
      if (demo.publication === publication) demo.publication = null;
      figure.remove();
      release();
    });
    publication.addEventListener("error", (e) => showFailure("publish", e.detail.error, publish));
    log(`published my stream (${[audio && "audio", video && "video"].filter(Boolean).join(" + ")})`);
  } catch (error) {
    release(); // Retry asks for the camera again
    if (demo.client === client) showFailure("publish", error, publish);
  }
}

/** Forget the previous connection's media and close it (a Retry of join starts from nothing). */
async function discardClient() {
  const old = demo.client;
  demo.client = null;
  demo.publication = null;
  demo.subscriptions.clear();
  demo.subscribing = new Set();
  $("local").replaceChildren();
  $("mix").replaceChildren();
  $("remote").replaceChildren();
  if (!old) return;
  try {
    await old.leave();
  } catch {
    // Already disconnected: leave() has closed what was left.
  }
}

async function join(event) {
  if (event) event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  $("join").disabled = true;
  clearFailure();
  await discardClient();
  setStatus("joining");
  const client = new ConferenceClient({ iceServers: config.iceServers || [] });
  demo.client = client;
  // Events of a connection the page has since replaced (Leave, Retry) must not touch the page.
  const on = (name, handler) =>
    client.addEventListener(name, (e) => {
      if (demo.client === client) handler(e);
    });
  on("participantjoined", (e) => {
    demo.names.set(e.detail.id, e.detail.user);
    log(`${e.detail.user} joined`);
    renderParticipants();
  });
  on("participantleft", (e) => {
    log(`${who(e.detail.id)} left`);
    renderParticipants();
  });
  on("streamadded", (e) => subscribe(e.detail));
  on("streamupdated", (e) => log(`${streamLabel(e.detail.stream || e.detail)}: ${describeUpdate(e.detail)}`));
  on("streamremoved", (e) => log(`${streamLabel(e.detail)} removed`));
  on("messagereceived", (e) => log(`${who(e.detail.from)}: ${JSON.stringify(e.detail.message)}`));
  on("dropped", () => setStatus("dropped"));
  on("serverdisconnected", () => {
    const dropped = document.body.dataset.status === "dropped";
    if (!dropped) setStatus("disconnected");
    $("join").disabled = false;
    // Whatever failed before is moot now: the way back is a new join.
    const reason = dropped ? "removed from the room" : "the signaling connection closed";
    showFailure("connection", new Error(reason), join);
  });
  try {
    const info = await client.join(token, { url: config.signalingUrl || undefined });
    demo.names.set(info.id, info.user);
    for (const participant of info.room.participants || []) demo.names.set(participant.id, participant.user);
    setStatus("joined");
    $("me").textContent = `${info.user} (${info.role}) in room ${info.room.id}`;
    renderParticipants();
  } catch (error) {
    showFailure("join", error, join);
    setStatus("failed");
    $("join").disabled = false;
    return;
  }
  await publish();
  await subscribeAll();
}

$("join-form").addEventListener("submit", join);
$("watch").addEventListener("change", watchChanged);
$("leave").addEventListener("click", async () => {
  clearFailure();
  await discardClient();
  setStatus("left");
  $("join").disabled = false;
});
$("retry").addEventListener("click", async () => {
  const failure = demo.failure;
  if (!failure) return;
  clearFailure();
  log(`retrying ${failure.step}`);
  await failure.retry();
});
$("send").addEventListener("click", async () => {
  if (!demo.client) return;
  try {
    await demo.client.send($("message").value);
  } catch (error) {
    fail("text", error);
  }
});

$("watch").value = config.watch || "all";
if (config.publish === false) {
  $("publish-audio").checked = false;
  $("publish-video").checked = false;
}
setStatus("ready");
if (config.autojoin && $("token").value.trim()) join();

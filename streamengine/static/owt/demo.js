// The sample join page: join with a token, publish camera/microphone, subscribe to every other
// stream, list participants. State is exposed as window.owtDemo for tests and the browser console.
import { ConferenceClient } from "./owt-client.js";

const config = JSON.parse(document.getElementById("owt-config").textContent);
const $ = (id) => document.getElementById(id);

const demo = {
  client: null,
  publication: null,
  subscriptions: new Map(),
  errors: [],
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
  if (demo.subscriptions.has(stream.id) || (stream.info && stream.info.owner === demo.client.info.id)) return;
  try {
    const subscription = await demo.client.subscribe(stream);
    demo.subscriptions.set(stream.id, subscription);
    const owner = stream.info && demo.client.participants.get(stream.info.owner);
    const figure = addVideo($("remote"), stream.id, owner ? owner.user : stream.id, subscription.stream, true);
    muteButtons(figure, subscription);
    subscription.addEventListener("ended", () => {
      demo.subscriptions.delete(stream.id);
      figure.remove();
    });
    log(`subscribed to ${stream.id}`);
  } catch (error) {
    fail(`subscribe ${stream.id}`, error);
  }
}

async function publish() {
  const audio = $("publish-audio").checked;
  const video = $("publish-video").checked;
  if (!audio && !video) return;
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ audio, video: video ? { width: 640, height: 480 } : false });
  } catch (error) {
    fail("camera/microphone", error);
    return;
  }
  try {
    demo.publication = await demo.client.publish(media);
    const figure = addVideo($("local"), demo.publication.id, "me", media, true);
    muteButtons(figure, demo.publication);
    log(`published ${demo.publication.id}`);
  } catch (error) {
    fail("publish", error);
  }
}

async function join(event) {
  if (event) event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  $("join").disabled = true;
  setStatus("joining");
  const client = new ConferenceClient({ iceServers: config.iceServers || [] });
  demo.client = client;
  client.addEventListener("participantjoined", (e) => {
    log(`${e.detail.user} joined`);
    renderParticipants();
  });
  client.addEventListener("participantleft", (e) => {
    log(`${e.detail.id} left`);
    renderParticipants();
  });
  client.addEventListener("streamadded", (e) => subscribe(e.detail));
  client.addEventListener("streamupdated", (e) => log(`stream ${e.detail.id} ${e.detail.field} = ${JSON.stringify(e.detail.value)}`));
  client.addEventListener("streamremoved", (e) => log(`stream ${e.detail.id} removed`));
  client.addEventListener("messagereceived", (e) => log(`${e.detail.from}: ${JSON.stringify(e.detail.message)}`));
  client.addEventListener("dropped", () => setStatus("dropped"));
  client.addEventListener("serverdisconnected", () => {
    if (document.body.dataset.status !== "dropped") setStatus("disconnected");
    $("join").disabled = false;
  });
  try {
    const info = await client.join(token, { url: config.signalingUrl || undefined });
    setStatus("joined");
    $("me").textContent = `${info.user} (${info.role}) in room ${info.room.id}`;
    renderParticipants();
  } catch (error) {
    fail("join", error);
    setStatus("failed");
    $("join").disabled = false;
    return;
  }
  await publish();
  for (const stream of client.remoteStreams()) subscribe(stream);
}

$("join-form").addEventListener("submit", join);
$("leave").addEventListener("click", async () => {
  if (demo.client) await demo.client.leave();
  setStatus("left");
});
$("send").addEventListener("click", async () => {
  if (!demo.client) return;
  try {
    await demo.client.send($("message").value);
  } catch (error) {
    fail("text", error);
  }
});

setStatus("ready");
if (config.autojoin && $("token").value.trim()) join();

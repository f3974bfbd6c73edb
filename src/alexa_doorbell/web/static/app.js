// The dashboard page: live view as a KVS VIEWER (official SDK), push-to-talk,
// doorbell button and status. The server presigns the signaling URL; this page
// never sees an AWS secret. State is mirrored on window.dashboard for tests.
"use strict";

const $ = (id) => document.getElementById(id);
const ANSWER_TIMEOUT_MS = 10000;
const state = (window.dashboard = {
  camera: null,
  viewer: { state: "idle", framesDecoded: 0, stats: null, errors: [] },
  talk: { pressed: false, micEnabled: false, error: null },
  lastPress: null,
  status: null,
  timeline: [], // presses, motion and detections, newest first (GET /api/timeline)
  login: false, // the dashboard asks for a password: a 401 means the session ended
});

async function api(method, path) {
  const init = { method, headers: { Accept: "application/json" } };
  if (method === "POST") init.headers["Content-Type"] = "application/json";
  if (method === "POST") init.body = "{}";
  const reply = await fetch(path, init);
  if (reply.status === 401 && state.login) { location.assign("/login"); throw new Error("signed out"); }
  let body = {};
  try { body = await reply.json(); } catch (_) { /* not JSON */ }
  if (!reply.ok && !("ok" in body)) throw new Error(body.error || `${reply.status} ${reply.statusText}`);
  return body;
}

const fmtAge = (at) => {
  if (!at) return "";
  const s = Math.max(0, Date.now() / 1000 - at);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return new Date(at * 1000).toLocaleString();
};
const el = (tag, props = {}, ...kids) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const k of kids) if (k != null) node.append(k);
  return node;
};

// -- live view --------------------------------------------------------------------
class Viewer {
  constructor(endpointId) {
    this.endpointId = endpointId;
    this.pc = null;
    this.client = null;
    this.mic = null;
    this.audioSender = null;
    this.timer = null;
    this.retry = null;
    this.last = null; // previous getStats sample, for rates
    this.closed = false;
  }

  setState(s, note) {
    state.viewer.state = s;
    $("st-state").textContent = s;
    $("overlay").textContent = note === undefined ? "" : note;
  }

  async start() {
    this.t0 = performance.now();
    state.viewer.firstFrameMs = null;
    this.setState("signing", "Asking the server for a viewer URL…");
    let cfg;
    try {
      const direct = new URLSearchParams(location.search).get("direct") === "1" ? "?direct=1" : "";
      cfg = await api("POST", `/api/cameras/${encodeURIComponent(this.endpointId)}/viewer${direct}`);
    } catch (e) {
      return this.fail(`No viewer URL: ${e.message}`);
    }
    if (this.closed) return;
    const pc = (this.pc = new RTCPeerConnection({ iceServers: cfg.iceServers || [] }));
    // Audio both ways (talk-back rides this sender once the microphone is on), video in.
    this.audioSender = pc.addTransceiver("audio", { direction: "sendrecv" }).sender;
    pc.addTransceiver("video", { direction: "recvonly" });
    const stream = new MediaStream();
    $("video").srcObject = stream;
    pc.ontrack = (ev) => {
      stream.addTrack(ev.track);
      $("video").play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      const s = pc.connectionState;
      if (this.pc !== pc) return;
      if (s === "connected") this.setState("connected");
      else if (s === "failed" || s === "closed") this.fail(`Connection ${s}`);
      else if (s === "disconnected") this.setState("disconnected", "Connection interrupted…");
    };

    // On the local cloud the server relays signaling (its certificate is self-made).
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const signedURL = cfg.relayPath ? `${scheme}//${location.host}${cfg.relayPath}` : cfg.signedURL;
    state.viewer.via = cfg.relayPath ? "relay" : "direct";
    const client = (this.client = new KVSWebRTC.SignalingClient({
      channelARN: cfg.channelARN,
      channelEndpoint: cfg.channelEndpoint,
      clientId: cfg.clientId,
      role: KVSWebRTC.Role.VIEWER,
      region: cfg.region,
      // The server's presigned URL (bound to this clientId): no credentials in the page.
      requestSigner: { getSignedURL: async () => signedURL },
      systemClockOffset: 0,
    }));
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && this.client === client) client.sendIceCandidate(candidate);
    };
    const current = () => this.client === client; // events of a torn-down client are stale
    client.on("open", async () => {
      this.setState("offering", "Calling the camera…");
      await pc.setLocalDescription(await pc.createOffer());
      client.sendSdpOffer(pc.localDescription);
      // Signaling holds an offer for a master that is not there: do not wait forever.
      this.noAnswer = setTimeout(() => {
        if (current()) this.fail("No answer from the camera (is its agent running?)");
      }, ANSWER_TIMEOUT_MS);
    });
    client.on("sdpAnswer", async (answer) => {
      clearTimeout(this.noAnswer);
      try {
        await pc.setRemoteDescription(answer);
        this.setState("connecting", "Connecting…");
      } catch (e) {
        // The camera refuses with an answer it cannot use (busy, unusable offer).
        this.fail(`The camera refused the call: ${e.message}`);
      }
    });
    client.on("iceCandidate", (c) => pc.addIceCandidate(c).catch(() => {}));
    client.on("statusResponse", (s) => {
      if (current()) this.fail(`Signaling: ${s.errorType || ""} ${s.description || ""}`);
    });
    client.on("error", (e) => {
      if (!current()) return;
      // A WebSocket failure is a bare Event: name the usual causes instead.
      const why = e && e.message ? e.message
        : "cannot open the signaling WebSocket (its certificate is not trusted, or it is unreachable)";
      this.fail(`Signaling error: ${why}`);
    });
    client.on("close", () => {
      if (current() && state.viewer.state !== "connected") this.fail("Signaling closed");
    });
    this.setState("opening", "Opening signaling…");
    client.open();
    this.timer = setInterval(() => this.sample(), 1000);
  }

  fail(message) {
    if (this.closed) return;
    state.viewer.errors.push(message);
    this.teardown();
    this.setState("failed", `${message}. Retrying in 5 s…`);
    this.retry = setTimeout(() => startViewer(this.endpointId), 5000);
  }

  teardown() {
    clearInterval(this.timer);
    clearTimeout(this.noAnswer);
    this.timer = null;
    const client = this.client;
    this.client = null;
    if (client) try { client.close(); } catch (_) { /* already closed */ }
    if (this.pc) this.pc.close();
    this.pc = null;
    if (this.mic) this.mic.getTracks().forEach((t) => t.stop());
    this.mic = null;
    state.talk.micEnabled = false;
  }

  stop() {
    clearTimeout(this.retry);
    this.teardown();
    this.closed = true;
    $("video").srcObject = null;
    this.setState("stopped", "Stopped.");
  }

  // Push-to-talk: the microphone track exists once, and is enabled only while held.
  async talk(on) {
    state.talk.pressed = on;
    $("talk").setAttribute("aria-pressed", String(on));
    try {
      if (on && !this.mic) {
        this.mic = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        });
        await this.audioSender.replaceTrack(this.mic.getAudioTracks()[0]);
      }
      if (this.mic) for (const t of this.mic.getAudioTracks()) t.enabled = state.talk.pressed;
      state.talk.micEnabled = !!this.mic && state.talk.pressed;
      state.talk.error = null;
    } catch (e) {
      state.talk.error = e.message;
      $("overlay").textContent = `Microphone unavailable: ${e.message}`;
    }
  }

  async sample() {
    if (!this.pc) return;
    const report = await this.pc.getStats();
    let video = null, pair = null, audioOut = null;
    report.forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video") video = r;
      if (r.type === "outbound-rtp" && r.kind === "audio") audioOut = r;
      if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") pair = r;
    });
    const now = performance.now();
    const s = { framesDecoded: 0, bitrateKbps: null, rttMs: null, bufferMs: null, fps: null,
      width: null, height: null, audioPacketsSent: audioOut ? audioOut.packetsSent : 0 };
    if (video) {
      s.framesDecoded = video.framesDecoded || 0;
      s.width = video.frameWidth; s.height = video.frameHeight;
      s.fps = video.framesPerSecond != null ? video.framesPerSecond : null;
      if (this.last && now > this.last.t) {
        s.bitrateKbps = (8 * (video.bytesReceived - this.last.bytes)) / (now - this.last.t);
      }
      if (video.jitterBufferEmittedCount) {
        s.bufferMs = (1000 * video.jitterBufferDelay) / video.jitterBufferEmittedCount;
      }
      this.last = { t: now, bytes: video.bytesReceived };
    }
    if (pair && pair.currentRoundTripTime != null) s.rttMs = 1000 * pair.currentRoundTripTime;
    state.viewer.framesDecoded = s.framesDecoded;
    if (s.framesDecoded > 0 && state.viewer.firstFrameMs == null) {
      // Sampled once a second: an upper bound on the time from "watch" to a picture.
      state.viewer.firstFrameMs = now - this.t0;
    }
    state.viewer.stats = s;
    const ms = (v) => (v == null ? "–" : v < 1 ? "<1 ms" : `${v.toFixed(0)} ms`);
    $("st-latency").textContent = s.rttMs == null && s.bufferMs == null
      ? "–" : `${ms(s.rttMs)} RTT · ${ms(s.bufferMs)} buffer`;
    $("st-bitrate").textContent = s.bitrateKbps == null ? "–" : `${s.bitrateKbps.toFixed(0)} kbit/s`;
    $("st-video").textContent = s.width ? `${s.width}×${s.height}${s.fps ? ` @ ${s.fps} fps` : ""}` : "–";
    const first = state.viewer.firstFrameMs;
    $("st-frames").textContent = first == null
      ? String(s.framesDecoded) : `${s.framesDecoded} (first ≤ ${(first / 1000).toFixed(1)} s)`;
    if (s.framesDecoded > 0 && state.viewer.state === "connected") $("overlay").textContent = "";
  }
}

let viewer = null;
function startViewer(endpointId) {
  if (viewer) viewer.stop();
  viewer = new Viewer(endpointId);
  $("watch").textContent = "Stop";
  viewer.start();
}

// -- doorbell -----------------------------------------------------------------------
async function press() {
  const out = $("press-result");
  $("press").disabled = true;
  out.className = "result";
  out.textContent = "Sending…";
  try {
    const r = await api("POST", `/api/cameras/${encodeURIComponent(state.camera)}/press`);
    state.lastPress = r;
    out.className = `result ${r.ok ? "ok" : "bad"}`;
    const said = !r.ok ? "Not announced"
      : r.status === "debounced" ? "Already rung moments ago" : "Alexa accepted the press";
    out.textContent = `${said}: ${r.status}${r.detail ? ` (${r.detail})` : ""}${r.fix ? `. ${r.fix}` : ""}`;
  } catch (e) {
    state.lastPress = { ok: false, status: "error", detail: e.message };
    out.className = "result bad";
    out.textContent = `Press failed: ${e.message}`;
  } finally {
    $("press").disabled = false;
    refreshStatus();
  }
}

// -- status -------------------------------------------------------------------------
function renderStatus(st) {
  state.status = st;
  $("cloud").textContent = st.cloud === "local" ? "local cloud" : `AWS ${st.region}`;
  $("status-age").textContent = `updated ${new Date(st.generated_at * 1000).toLocaleTimeString()}`;
  $("problems").replaceChildren(...st.problems.map((p) =>
    el("div", {}, el("b", { textContent: p.what }), el("span", { textContent: p.fix }))));
  $("cameras").replaceChildren(...st.cameras.map((c) => {
    const dot = el("span", { className: `dot ${c.online ? "ok" : "bad"}` });
    const last = c.last_session
      ? `last Alexa session ${c.last_session.state.toLowerCase()} ${fmtAge(c.last_session.at)}` : "no Alexa session yet";
    const seen = c.last_report_age == null ? "never reported" : `reported ${c.last_report_age.toFixed(0)} s ago`;
    // The source as the agent on this machine sees it: idle, starting, live or down.
    const src = c.source ? ` · source ${c.source.state}${c.source.state === "down" && c.source.error ? ` (${c.source.error})` : ""}` : "";
    const li = el("li", {}, dot, `${c.friendly_name} `,
      el("b", { className: "conn", textContent: c.online ? "online" : "offline" }),
      el("small", { textContent: `${c.viewers} viewer(s) now · ${last} · ${seen}${src}` }));
    li.dataset.endpointId = c.endpoint_id;
    li.dataset.connectivity = c.connectivity;
    li.dataset.source = c.source ? c.source.state : "";
    return li;
  }));
  $("users").replaceChildren(...(st.users.length ? st.users.map((u) => {
    const good = u.token_health !== "relink needed";
    const exp = u.expires_in > 0 ? `token expires in ${Math.round(u.expires_in / 60)} min` : "token expired (refreshed on next event)";
    const gw = u.last_gateway_status ? ` · last gateway reply ${u.last_gateway_status}` : "";
    return el("li", {}, el("span", { className: `dot ${good ? "ok" : "bad"}` }), `${u.user_id} `,
      el("b", { textContent: u.token_health }), el("small", { textContent: `${u.region} · ${exp}${gw}` }));
  }) : [el("li", { textContent: "No account linked yet." })]));
  const rows = st.events.map((e) => el("tr", {},
    el("td", { textContent: fmtAge(e.at) }), el("td", { textContent: e.name }),
    el("td", { textContent: e.endpoint_id }),
    el("td", { className: e.ok ? "ok" : "bad", textContent: e.status, title: e.detail || "" })));
  $("events").tBodies[0].replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colSpan: 4, textContent: "Nothing sent yet." }))]));
}

let statusBusy = false;
async function refreshStatus() {
  if (statusBusy) return;
  statusBusy = true;
  try { renderStatus(await api("GET", "/api/status")); }
  catch (e) { $("status-age").textContent = `status unavailable: ${e.message}`; }
  finally { statusBusy = false; }
}

// -- at the door --------------------------------------------------------------------
const KIND_TEXT = { press: "Doorbell pressed", motion: "Motion" };
function describe(e) {
  if (e.kind === "detection") {
    const name = e.what.charAt(0).toUpperCase() + e.what.slice(1);
    return `${name} detected${e.score != null ? ` (${Math.round(e.score * 100)} %)` : ""}`;
  }
  return KIND_TEXT[e.kind] || e.kind;
}
function renderTimeline(entries) {
  state.timeline = entries;
  const told = (s) => (s === "202" ? "Alexa told" : s);
  $("timeline").replaceChildren(...(entries.length ? entries.map((e) => {
    const li = el("li", { className: `kind-${e.kind}` },
      e.snapshot ? el("img", { src: e.snapshot, alt: `${describe(e)} at ${e.camera}`, loading: "lazy" }) : null,
      el("div", {}, el("b", { textContent: describe(e) }),
        el("small", { textContent: `${e.camera} · ${fmtAge(e.at)} · ${told(e.status)}` })));
    li.dataset.kind = e.kind;
    li.dataset.status = e.status;
    return li;
  }) : [el("li", { className: "empty", textContent: "Nothing yet: presses, motion and people at the door show here." })]));
}
let timelineBusy = false;
async function refreshTimeline() {
  if (timelineBusy) return;
  timelineBusy = true;
  try { renderTimeline((await api("GET", "/api/timeline?limit=30")).entries); }
  catch (_) { /* shown again on the next refresh */ }
  finally { timelineBusy = false; }
}

// -- wiring -------------------------------------------------------------------------
async function main() {
  const { cameras, login } = await api("GET", "/api/cameras");
  state.login = Boolean(login);
  $("logout").hidden = !state.login;
  const select = $("camera");
  for (const c of cameras) select.append(el("option", { value: c.endpoint_id, textContent: c.friendly_name }));
  const wanted = new URLSearchParams(location.search).get("camera");
  state.camera = cameras.some((c) => c.endpoint_id === wanted) ? wanted : (cameras[0] || {}).endpoint_id;
  select.value = state.camera;
  select.onchange = () => { state.camera = select.value; startViewer(state.camera); };
  $("watch").onclick = () => {
    if (viewer && !viewer.closed) { viewer.stop(); $("watch").textContent = "Watch"; }
    else startViewer(state.camera);
  };
  $("sound").onclick = () => {
    const v = $("video");
    v.muted = !v.muted;
    $("sound").textContent = v.muted ? "Sound off" : "Sound on";
    $("sound").setAttribute("aria-pressed", String(!v.muted));
  };
  const talk = $("talk");
  const down = (e) => { e.preventDefault(); if (viewer) viewer.talk(true); };
  const up = () => { if (viewer && state.talk.pressed) viewer.talk(false); };
  talk.addEventListener("pointerdown", down);
  talk.addEventListener("pointerup", up);
  talk.addEventListener("pointerleave", up);
  talk.addEventListener("pointercancel", up);
  talk.addEventListener("keydown", (e) => { if ((e.key === " " || e.key === "Enter") && !e.repeat) down(e); });
  talk.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") up(); });
  $("press").onclick = press;
  $("press").hidden = !(cameras.find((c) => c.endpoint_id === state.camera) || {}).doorbell;
  refreshStatus();
  setInterval(refreshStatus, 2000);
  refreshTimeline();
  setInterval(refreshTimeline, 3000);
  if (state.camera) startViewer(state.camera);
  else $("overlay").textContent = "No camera configured.";
}

document.addEventListener("DOMContentLoaded", () => main().catch((e) => {
  $("overlay").textContent = `Dashboard failed to start: ${e.message}`;
}));

// Going live (templates/live.html): the microphone, the recorder, the level meter, and the slices of
// what the officer says sent to the daemon, one numbered POST each (docs/api.md, "Going live").
//
// The recorder hands over a slice every SLICE_MS; each is sent as soon as the one before it was taken,
// in order, with the session's CSRF token. A slice the network lost is sent again with the same number
// (the daemon takes it once). The daemon answers 409 `live_ended` once the session has ended for any
// reason (a recall, a timeout): the page then stops the microphone and says why.
//
// `window.loaLive` says where the page is (`state`) and when the microphone opened, the recorder
// started and the first loud sound came (epoch milliseconds), for whoever needs it: the latency test.
"use strict";
(() => {
  const SLICE_MS = 250;
  const RETRY_MS = 500;
  const LOUD = 0.2; // a peak above this is someone speaking (or the test's tone)
  const FORMATS = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];

  const root = document.getElementById("live");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const form = $("live-form"), panel = $("live-panel"), done = $("live-done"), problem = $("live-problem");
  const startButton = $("live-start"), stopButton = $("live-stop"), wait = $("live-wait");
  const reasonBox = $("live-reason-box"), reasonInput = $("live-reason");
  const confirmBox = $("live-confirm"), confirmText = $("live-confirm-text");
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const lang = document.documentElement.lang || "vi";
  const live = (window.loaLive = { state: "idle", sessionId: null, micOpenedAt: null, recorderStartedAt: null,
                                   loudAt: null, sent: 0 });
  const now = () => performance.timeOrigin + performance.now();
  const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

  function word(key, params = {}) {
    const name = "w" + key.split("_").map((p) => p[0].toUpperCase() + p.slice(1)).join("");
    return (root.dataset[name] || key).replace(/\{(\w+)\}/g, (_, k) => (k in params ? String(params[k]) : ""));
  }
  function say(where, text) { where.textContent = text; }
  function fail(text) { say(problem, text); problem.hidden = false; }

  let stream = null, recorder = null, audioContext = null, session = null, confirmation = null;
  let seq = 0, queue = [], sending = false, recorderStopped = false, finishing = false, ticker = null;

  const format = typeof MediaRecorder === "undefined" ? null
    : FORMATS.find((f) => MediaRecorder.isTypeSupported(f)) || "";
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    fail(word("insecure"));
    startButton.disabled = true;
    return;
  }
  if (format === null) {
    fail(word("no_recorder"));
    startButton.disabled = true;
    return;
  }

  function chosenPriority() { return (form.querySelector('input[name="priority"]:checked') || {}).value || "normal"; }
  form.addEventListener("change", () => { reasonBox.hidden = chosenPriority() !== "emergency"; });
  reasonBox.hidden = chosenPriority() !== "emergency";

  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": csrf, "Accept-Language": lang };
    if (body !== undefined && !(body instanceof Blob)) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : body instanceof Blob ? body : JSON.stringify(body),
    });
  }
  async function refusal(resp) {
    try { return (await resp.json()).error || { code: "http_" + resp.status, message: String(resp.status) }; }
    catch (_) { return { code: "http_" + resp.status, message: String(resp.status) }; }
  }

  // ---------------------------------------------------------------- the microphone and the level meter

  async function openMicrophone() {
    say(wait, word("asking_mic"));
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
    live.micOpenedAt = now();
    const Context = window.AudioContext || window.webkitAudioContext;
    if (Context) {
      audioContext = new Context();
      const analyser = audioContext.createAnalyser();
      analyser.fftSize = 1024;
      audioContext.createMediaStreamSource(stream).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      const level = $("live-level");
      const measure = () => {
        if (!audioContext) return;
        analyser.getFloatTimeDomainData(samples);
        let peak = 0;
        for (const s of samples) peak = Math.max(peak, Math.abs(s));
        level.value = Math.min(1, peak);
        if (peak > LOUD && live.recorderStartedAt && !live.loudAt) live.loudAt = now();
        setTimeout(measure, 20);
      };
      measure();
    }
  }

  function closeMicrophone() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if (audioContext) audioContext.close();
    stream = null;
    audioContext = null;
  }

  // ---------------------------------------------------------------- opening the session

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.hidden = true;
    startButton.disabled = true;
    try {
      if (!stream) await openMicrophone();
    } catch (err) {
      say(wait, "");
      fail(word("no_mic", { error: err && err.name ? err.name : String(err) }));
      startButton.disabled = false;
      return;
    }
    await openSession({});
  });

  $("live-confirm-go").addEventListener("click", async () => {
    if (!reasonInput.value.trim()) {
      reasonBox.hidden = false;
      fail(word("confirm_reason"));
      reasonInput.focus();
      return;
    }
    confirmBox.hidden = true;
    await openSession({ confirmation, reason: reasonInput.value });
  });
  $("live-confirm-cancel").addEventListener("click", () => {
    confirmBox.hidden = true;
    startButton.disabled = false;
    closeMicrophone();
  });

  async function openSession(extra) {
    say(wait, word("connecting"));
    const zones = [...form.querySelectorAll('input[name="zones"]:checked')].map((z) => z.value);
    const title = $("live-title").value.trim();
    let resp;
    try {
      resp = await api("POST", "/api/v1/live", {
        zones, priority: chosenPriority(), title: title || null, format: format || "audio/webm", ...extra,
      });
    } catch (err) {
      return refused({ message: word("network") });
    }
    say(wait, "");
    if (resp.status === 201) return onAir(await resp.json());
    const error = await refusal(resp);
    if (error.code === "confirm_emergency") {
      confirmation = error.params.confirmation;
      say(confirmText, error.message);
      confirmBox.hidden = false;
      reasonBox.hidden = false;
      reasonInput.focus();
      return;
    }
    refused(error);
  }

  function refused(error) {
    fail(word("failed", { error: error.message }));
    startButton.disabled = false;
    closeMicrophone();
  }

  // ---------------------------------------------------------------- on air

  function onAir(opened) {
    session = opened;
    live.sessionId = opened.id;
    form.hidden = true;
    panel.hidden = false;
    say($("live-villages"), word("on_air", { villages: opened.village_names.join(", ") }));
    say($("live-listeners"), word("listeners", { n: 0 }));
    recorder = format ? new MediaRecorder(stream, { mimeType: format, audioBitsPerSecond: 32000 })
                      : new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (e) => {
      if (e.data && e.data.size) queue.push(e.data);
      pump();
    });
    recorder.addEventListener("stop", () => { recorderStopped = true; pump(); });
    recorder.start(SLICE_MS);
    live.recorderStartedAt = now();
    live.state = "live";
    const started = Date.now();
    ticker = setInterval(() => {
      const s = Math.floor((Date.now() - started) / 1000);
      say($("live-elapsed"), `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`);
    }, 500);
    stopButton.focus();
  }

  async function pump() {
    if (sending) return;
    sending = true;
    try {
      while (queue.length && live.state !== "ended") {
        let resp;
        try {
          resp = await api("POST", `${session.chunk_url}?seq=${seq}`, queue[0]);
        } catch (err) {
          say($("live-status"), word("network"));
          await sleep(RETRY_MS);
          continue; // the same slice, with the same number
        }
        if (resp.ok) {
          const pulse = await resp.json();
          queue.shift();
          seq = pulse.next_seq;
          live.sent = seq;
          say($("live-status"), "");
          say($("live-listeners"), word("listeners", { n: pulse.listeners }));
          continue;
        }
        const error = await refusal(resp);
        if (error.code === "live_gap" && error.params && error.params.expected < seq) {
          seq = error.params.expected; // the daemon lost count (cannot happen, but never loop on it)
          continue;
        }
        return ended(error.message);
      }
    } finally {
      sending = false;
    }
    if (recorderStopped && live.state === "ending" && !queue.length) finish();
  }

  stopButton.addEventListener("click", () => {
    if (live.state !== "live") return;
    live.state = "ending";
    stopButton.disabled = true;
    say($("live-status"), word("ending"));
    recorder.stop(); // its last slice comes, then "stop": pump() sends what is left, then finish()
  });

  async function finish() {
    if (finishing) return;
    finishing = true;
    let text = "";
    try {
      const resp = await api("POST", `/api/v1/live/${session.id}/end`);
      if (resp.ok) {
        const outcome = await resp.json();
        text = word("ended", { why: outcome.end_text }) + " " + (outcome.recording
          ? word("recorded", { seconds: Math.round(outcome.recording.duration_ms / 1000), id: outcome.id })
          : word("not_recorded"));
      } else {
        text = (await refusal(resp)).message;
      }
    } catch (err) {
      text = word("network");
    }
    ended(text);
  }

  function ended(text) {
    live.state = "ended";
    clearInterval(ticker);
    if (recorder && recorder.state !== "inactive") recorder.stop();
    closeMicrophone();
    panel.hidden = true;
    done.hidden = false;
    say($("live-done-text"), text);
  }

  window.addEventListener("beforeunload", (event) => {
    if (live.state === "live" || live.state === "ending") event.preventDefault();
  });
})();

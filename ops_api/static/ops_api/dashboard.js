/* The live dashboard: follows the push stream (WebSocket, SSE as the fallback transport), applies deltas
   by projection version, and polls only while push is off or lost (contract §9). Panels are server-
   rendered partials swapped in whole; calendar events are patched one by one from push frames. */
"use strict";

(() => {
  const Cal = window.OpsCalendar;
  const config = Cal.config;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const badge = document.querySelector("[data-push-status]");
  const badgeLabel = document.querySelector("[data-push-label]");
  const versionEl = document.querySelector("[data-projection-version]");
  const LOST_TO_POLLING_MS = 4000; // "reconnecting" for this long after a loss, then "polling"
  const pushWanted = config.push_server_enabled && config.push_client_enabled;

  const state = {
    shownVersion: -1,
    appliedSeqAtVersion: Infinity, // frames at the shown version up to this seq are already on screen
    lastSeq: null,
    recent: [], // frames kept for replay over a feed that is older than them
    transport: null,
    transportKind: null,
    wsFailures: 0,
    attempts: 0,
    lostAt: null,
    everUp: false,
    loaded: false,
    pollTimers: null,
    pending: new Map(), // debounced refreshes: name -> timer
    wantVersionAbove: null, // the calendar must show a projection newer than this (see projectionBehind)
    catchUpTries: 0,
  };

  // ---- small helpers ---------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.error)) || `HTTP ${status}`);
      this.status = status;
    }
  }

  async function api(path, method = "GET", body = undefined) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRFToken"] = csrf;
    const response = await fetch(path, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  let toastTimer = null;
  function toast(message, isError = false) {
    const el = document.querySelector("[data-toast]");
    el.textContent = message;
    el.classList.toggle("error", isError);
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, isError ? 6000 : 3000);
  }

  function later(name, fn, ms = 120) {
    if (state.pending.has(name)) return;
    state.pending.set(name, setTimeout(() => { state.pending.delete(name); fn(); }, ms));
  }

  function setVersion(version) {
    state.shownVersion = version;
    versionEl.dataset.projectionVersion = String(version);
    versionEl.textContent = String(version);
  }

  const BADGE_TEXT = {
    connected: "live", reconnecting: "reconnecting…", polling: "push lost · polling", disabled: "push disabled · polling",
  };
  function setPush(status) {
    badge.dataset.pushStatus = status;
    badgeLabel.textContent = BADGE_TEXT[status] + (status === "connected" && state.transportKind === "sse" ? " (SSE)" : "");
  }

  // ---- data loads ------------------------------------------------------------------------------------
  function feedUrl() {
    const params = new URLSearchParams({
      source: "all", view: config.view, start: String(config.start_epoch), end: String(config.end_epoch),
      timezone_name: config.tz,
    });
    return `/api/v1/ops/calendar/events?${params}`;
  }

  let calendarLoad = null;
  let calendarAgain = false;
  function loadCalendar() {
    // One load at a time. A caller that arrives during a load may know of a later change than the load
    // read, so one more load follows it.
    if (calendarLoad) {
      calendarAgain = true;
      return calendarLoad;
    }
    calendarLoad = (async () => {
      try {
        const feed = await api(feedUrl());
        Cal.applyLegend(feed.legend);
        const drawn = Cal.render(feed);
        performance.mark("ops:calendar-drawn"); // read by bench/dashboard.py
        setVersion(feed.version);
        state.appliedSeqAtVersion = Infinity;
        if (state.wantVersionAbove != null) {
          // Still older than a change the log announced: look again shortly (the projector is catching up).
          if (feed.version <= state.wantVersionAbove && state.catchUpTries < 40) {
            state.catchUpTries += 1;
            setTimeout(loadCalendar, 250);
          } else {
            state.wantVersionAbove = null;
            state.catchUpTries = 0;
          }
        }
        state.loaded = true;
        replayRecent();
        Cal.drawNowLine();
        annotateLags();
        const foot = document.querySelector("[data-cal-foot]");
        foot.textContent = `${drawn} events in view · ${(feed.always_running || []).length} always running · ` +
          `${feed.path || ""} path · data as of ${new Date().toLocaleTimeString()}`;
      } catch (error) {
        if (error.status === 403 || error.status === 401) toast("Session ended: reload the page to sign in again.", true);
        else toast(`Calendar: ${error.message}`, true);
      } finally {
        calendarLoad = null;
        if (calendarAgain) {
          calendarAgain = false;
          loadCalendar();
        }
      }
    })();
    return calendarLoad;
  }

  /* The feed names each occurrence's run but not when it started: read the recent runs once per load,
     and single runs as frames name them, to show each run's lag (started − scheduled). */
  async function annotateLags() {
    try {
      const { runs } = await api("/api/v1/cron/runs?limit=500");
      for (const run of runs) Cal.showLag(run.run_id, run.started_at);
    } catch (_) { /* lags are a detail; the calendar stands without them */ }
  }

  async function annotateLag(runId) {
    try {
      const { run } = await api(`/api/v1/cron/runs/${encodeURIComponent(runId)}`);
      Cal.showLag(run.run_id, run.started_at);
    } catch (_) { /* the run's job may be gone: history without a lag */ }
  }

  function keepOpenState(container) {
    const open = Array.from(container.querySelectorAll("[data-job-id] details[open]")).map((d) => d.closest("[data-job-id]").dataset.jobId);
    const times = Array.from(container.querySelectorAll("[data-stasis-entry] [data-reschedule-at]"))
      .filter((input) => input.value).map((input) => [input.closest("[data-stasis-entry]").dataset.stasisEntry, input.value]);
    return () => {
      for (const id of open) {
        const details = container.querySelector(`[data-job-id="${CSS.escape(id)}"] details`);
        if (details) { details.open = true; loadRuns(details); }
      }
      for (const [id, value] of times) {
        const input = container.querySelector(`[data-stasis-entry="${CSS.escape(id)}"] [data-reschedule-at]`);
        if (input) input.value = value;
      }
    };
  }

  async function refreshPanel(name) {
    const container = document.querySelector(`[data-panel="${name}"]`);
    try {
      const response = await fetch(`/dashboard/panels/${name}?tz=${encodeURIComponent(config.tz)}`, { credentials: "same-origin" });
      if (!response.ok) throw new ApiError(response.status, null);
      const html = await response.text();
      const restore = keepOpenState(container);
      container.innerHTML = html;
      restore();
    } catch (error) {
      toast(`${name}: ${error.message}`, true);
    }
  }

  const PANELS = ["health", "stasis", "sessions", "jobs", "notifications"];
  async function reloadAll() {
    await Promise.all([loadCalendar(), ...PANELS.map(refreshPanel)]);
    document.querySelector("[data-refreshed]").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  // ---- push frames -----------------------------------------------------------------------------------
  function remember(frame) {
    state.recent.push(frame);
    if (state.recent.length > 500) state.recent.splice(0, state.recent.length - 500);
  }

  function isNew(frame) {
    const seq = frame.event && frame.event.seq;
    if (frame.projection_version > state.shownVersion) return true;
    return frame.projection_version === state.shownVersion && typeof seq === "number" && seq > state.appliedSeqAtVersion;
  }

  /* A frame read from the event log by the push hub (the projector was slower than its grace) names no
     calendar entries and carries the projection's version from before the event: the calendar must be
     read again once the projection is past that version. */
  function projectionBehind(frame) {
    return !("calendar_entries" in frame) || (frame.event && frame.projection_last_event_seq < frame.event.seq);
  }

  function awaitProjectionAbove(version) {
    state.wantVersionAbove = Math.max(state.wantVersionAbove ?? -1, version);
    later("calendar", loadCalendar, 100);
  }

  function applyFrame(frame) {
    if (projectionBehind(frame)) {
      // The projector adds one version per event, so the event shows from this version on.
      const seq = frame.event ? frame.event.seq : 0;
      const needed = frame.projection_version + Math.max(1, seq - (frame.projection_last_event_seq ?? seq - 1));
      if (state.shownVersion >= needed) return;
      awaitProjectionAbove(needed - 1);
      panelsFor(frame);
      return;
    }
    if (!isNew(frame)) return;
    Cal.patch(frame.calendar_entries || []);
    setVersion(frame.projection_version);
    state.appliedSeqAtVersion = frame.event ? frame.event.seq : Infinity;
    panelsFor(frame);
  }

  function replayRecent() {
    for (const frame of state.recent) applyFrame(frame);
  }

  function panelsFor(frame) {
    const type = (frame.event && frame.event.event_type) || "";
    const entries = frame.calendar_entries || [];
    // The projector sends no entries when an event changed too many (a new dense job): read the window.
    if (frame.calendar_refetch || Cal.touchesAlwaysRunning(entries)) later("calendar", loadCalendar, 150);
    for (const entry of entries) {
      if (entry.run_id && entry.source === "cron" && ["running", "success", "failed"].includes(entry.status)) annotateLag(entry.run_id);
    }
    if (type.startsWith("cron_")) later("jobs", () => refreshPanel("jobs"));
    if (type.startsWith("heartbeat_")) later("sessions", () => refreshPanel("sessions"));
    if (type.startsWith("stasis_") || type === "cron_run_missed") later("stasis", () => refreshPanel("stasis"));
    if (/failed|missed|completed|stasis_entry_resolved/.test(type)) later("notifications", () => refreshPanel("notifications"));
    later("health", () => refreshPanel("health"), 1000);
  }

  function onFrame(frame) {
    if (!frame) return;
    if (frame.kind === "heartbeat") {
      // A keepalive's seq is the stream's position: every event up to it was sent or is not ours.
      if (typeof frame.seq === "number") state.lastSeq = Math.max(state.lastSeq ?? 0, frame.seq);
      return;
    }
    if (frame.kind === "reset") {
      // The server could not resume us: reload the snapshot, then follow from the log's head.
      state.lastSeq = frame.event_bus_seq ?? null;
      state.recent = [];
      reloadAll();
      return;
    }
    if (frame.kind !== "event") return;
    if (frame.event && typeof frame.event.seq === "number") state.lastSeq = Math.max(state.lastSeq ?? 0, frame.event.seq);
    remember(frame);
    if (state.loaded) applyFrame(frame); // before the first load, the frame waits in `recent`
  }

  // ---- transports ------------------------------------------------------------------------------------
  function resumeQuery() {
    return state.lastSeq != null ? `?since_seq=${state.lastSeq}` : "";
  }

  function openWebSocket() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws/ops/scheduling/${resumeQuery()}`);
    let opened = false;
    state.transport = socket;
    socket.onopen = () => { opened = true; state.wsFailures = 0; pushUp("ws"); };
    socket.onmessage = (message) => onFrame(JSON.parse(message.data));
    socket.onclose = (event) => {
      if (state.transport !== socket) return;
      state.transport = null;
      if (event.code === CLOSE_DISABLED) { pushDisabled(); return; }
      if (event.code === CLOSE_UNAUTHORIZED) toast("Session ended: reload the page to sign in again.", true);
      if (!opened) state.wsFailures += 1;
      pushLost();
    };
  }

  function openEventSource() {
    const params = new URLSearchParams(resumeQuery().slice(1));
    params.set("heartbeat_seconds", "20");
    const source = new EventSource(`/api/v1/ops/scheduling/stream?${params}`);
    state.transport = source;
    source.onopen = () => pushUp("sse");
    source.onmessage = (message) => onFrame(JSON.parse(message.data));
    source.onerror = () => {
      if (state.transport !== source) return;
      source.close(); // we reconnect ourselves, with since_seq and backoff
      state.transport = null;
      state.wsFailures = 0; // next time try the WebSocket again
      pushLost();
    };
  }

  const CLOSE_UNAUTHORIZED = 4401;
  const CLOSE_DISABLED = 4503; // the server's UA_SCHED_PUSH_ENABLED=0

  function pushDisabled() {
    setPush("disabled");
    startPolling();
    setTimeout(connect, 60000); // the flag may be turned back on; look again now and then
  }

  function connect() {
    // The WebSocket first; after two failed opens in a row, SSE (proxies that refuse upgrades).
    if (state.wsFailures >= 2 && "EventSource" in window) openEventSource();
    else openWebSocket();
  }

  function pushUp(kind) {
    const resumed = state.everUp;
    state.transportKind = kind;
    state.everUp = true;
    state.attempts = 0;
    state.lostAt = null;
    stopPolling();
    setPush("connected");
    // Subscribed first, then read: a change committed before the subscription is in the snapshot.
    if (!resumed || !state.loaded) reloadAll();
    else later("calendar", reloadAll, 50); // frames since `since_seq` arrive too; the reload covers the rest
  }

  function pushLost() {
    if (!state.lostAt) state.lostAt = Date.now();
    const lostFor = Date.now() - state.lostAt;
    if (lostFor < LOST_TO_POLLING_MS && !state.pollTimers) {
      setPush("reconnecting");
      setTimeout(() => { if (state.lostAt && !state.transport) fallBackToPolling(); }, LOST_TO_POLLING_MS - lostFor + 10);
    } else {
      fallBackToPolling();
    }
    const delay = Math.min(15000, 500 * 2 ** state.attempts) * (0.8 + Math.random() * 0.4);
    state.attempts += 1;
    setTimeout(connect, delay);
  }

  function fallBackToPolling() {
    if (badge.dataset.pushStatus === "connected") return;
    setPush("polling");
    startPolling();
  }

  function startPolling() {
    if (state.pollTimers) return;
    const calendarMs = config.calendar_poll_seconds * 1000;
    const heartbeatMs = config.heartbeat_poll_seconds * 1000;
    state.pollTimers = [
      setInterval(() => { loadCalendar(); ["health", "stasis", "jobs", "notifications"].forEach(refreshPanel); }, calendarMs),
      setInterval(() => refreshPanel("sessions"), heartbeatMs),
    ];
    reloadAll();
  }

  function stopPolling() {
    if (!state.pollTimers) return;
    state.pollTimers.forEach(clearInterval);
    state.pollTimers = null;
  }

  // ---- actions -----------------------------------------------------------------------------------------
  function actionUrl(eventId) {
    return `/api/v1/ops/calendar/events/${encodeURIComponent(eventId)}/action`;
  }

  async function perform(button, work, success) {
    button.disabled = true;
    try {
      const result = await work();
      toast(success(result));
      return result;
    } catch (error) {
      toast(error.message, true);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  async function stasisAction(button) {
    const entry = button.closest("[data-stasis-entry]");
    const body = { action: button.dataset.action };
    const when = entry.querySelector("[data-reschedule-at]");
    if (body.action === "reschedule" && when && when.value) Object.assign(body, { run_at: when.value, timezone: config.tz });
    const done = await perform(button, () => api(actionUrl(entry.dataset.eventId), "POST", body), () => `${body.action.replaceAll("_", " ")}: done`);
    if (done) {
      entry.remove(); // resolved entries leave at once; the push (or the refresh below) confirms
      later("stasis", () => refreshPanel("stasis"), 300);
      later("calendar", loadCalendar, 300);
    }
  }

  async function jobAction(button) {
    const jobId = button.closest("[data-job-id]").dataset.jobId;
    const path = `/api/v1/cron/jobs/${encodeURIComponent(jobId)}`;
    const kind = button.dataset.jobAction;
    const work = kind === "run" ? () => api(`${path}/run`, "POST") : () => api(path, "PATCH", { enabled: kind === "resume" });
    if (await perform(button, work, () => (kind === "run" ? "run queued" : `job ${kind}d`))) later("jobs", () => refreshPanel("jobs"), 200);
  }

  async function loadRuns(details) {
    const jobId = details.closest("[data-job-id]").dataset.jobId;
    const body = details.querySelector("[data-runs-body]");
    const response = await fetch(`/dashboard/jobs/${encodeURIComponent(jobId)}/runs?tz=${encodeURIComponent(config.tz)}`, { credentials: "same-origin" });
    body.innerHTML = response.ok ? await response.text() : "could not load the history";
  }

  function openEvent(el) {
    const event = Cal.eventFor(el);
    if (!event) return;
    const dialog = document.querySelector("[data-event-dialog]");
    dialog.querySelector("[data-ed-title]").textContent = event.title || event.source_ref;
    const rows = [
      ["status", event.status], ["when", `${event.scheduled_at_local || event.scheduled_at_utc} (${event.timezone_display || config.tz})`],
      ["source", `${event.source} ${event.source_ref}`], ["priority", event.category], ["event id", event.event_id],
    ];
    if (event.run_id) rows.push(["run", `${event.run_id} (${event.run_status || ""})`]);
    if (event.description) rows.push(["command", event.description]);
    const dl = dialog.querySelector("[data-ed-body]");
    dl.replaceChildren(...rows.flatMap(([k, v]) => { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v ?? "—"; return [dt, dd]; }));
    const actions = dialog.querySelector("[data-ed-actions]");
    actions.replaceChildren(...(event.actions || []).map((name) => {
      const b = document.createElement("button");
      b.type = "button"; b.className = "btn"; b.dataset.eventAction = typeof name === "string" ? name : name.action;
      b.textContent = b.dataset.eventAction.replaceAll("_", " ");
      return b;
    }));
    const change = document.createElement("button");
    change.type = "button"; change.className = "btn subtle"; change.dataset.changeFor = event.event_id; change.textContent = "Change request…";
    actions.appendChild(change);
    dialog.querySelector("[data-ed-result]").textContent = "";
    dialog.opsEvent = event;
    if (event.run_id && event.source === "cron") showRunLag(dl, event.run_id, event.scheduled_at_epoch);
    dialog.showModal();
  }

  async function showRunLag(dl, runId, scheduled) {
    try {
      const { run } = await api(`/api/v1/cron/runs/${encodeURIComponent(runId)}`);
      const add = (k, v) => { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v; dl.append(dt, dd); };
      if (run.started_at != null) add("lag (started − scheduled)", Cal.lagText({ scheduled_at_epoch: run.scheduled_at ?? scheduled, started_at_epoch: run.started_at }) || "—");
      if (run.error) add("error", run.error);
      if (run.output_preview) add("output", run.output_preview);
    } catch (_) { /* history of a deleted job: nothing more to show */ }
  }

  async function eventAction(button) {
    const dialog = button.closest("dialog");
    const result = dialog.querySelector("[data-ed-result]");
    button.disabled = true;
    try {
      await api(actionUrl(dialog.opsEvent.event_id), "POST", { action: button.dataset.eventAction });
      result.textContent = `${button.dataset.eventAction.replaceAll("_", " ")}: done`;
    } catch (error) {
      result.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  }

  function crBase(eventId) {
    return `/api/v1/ops/calendar/events/${encodeURIComponent(eventId)}/change-request`;
  }

  async function previewChange(form) {
    const eventId = form.querySelector("[data-cr-event]").value.trim();
    const box = form.querySelector("[data-cr-proposal]");
    try {
      const { proposal } = await api(crBase(eventId), "POST", { instruction: form.querySelector("[data-cr-text]").value });
      box.replaceChildren();
      const text = document.createElement("p");
      text.textContent = proposal.summary || proposal.description || JSON.stringify(proposal.changes || proposal);
      const yes = Object.assign(document.createElement("button"), { type: "button", className: "btn primary", textContent: "Confirm" });
      const no = Object.assign(document.createElement("button"), { type: "button", className: "btn", textContent: "Discard" });
      yes.onclick = () => confirmChange(box, eventId, proposal.proposal_id, true);
      no.onclick = () => confirmChange(box, eventId, proposal.proposal_id, false);
      box.append(text, yes, " ", no);
      box.hidden = false;
      yes.focus();
    } catch (error) {
      box.textContent = error.message;
      box.hidden = false;
    }
  }

  async function confirmChange(box, eventId, proposalId, approve) {
    try {
      await api(`${crBase(eventId)}/confirm`, "POST", { proposal_id: proposalId, approve });
      box.textContent = approve ? "Change applied." : "Proposal discarded.";
    } catch (error) {
      box.textContent = error.message;
    }
  }

  document.addEventListener("click", (e) => {
    const target = e.target.closest("button, [data-event-id]");
    if (!target) return;
    if (target.matches('[data-action="refresh"]')) { reloadAll(); return; }
    if (target.closest("[data-stasis-entry]") && target.dataset.action) { stasisAction(target); return; }
    if (target.dataset.jobAction) { jobAction(target); return; }
    if (target.dataset.wakeSession) {
      perform(target, () => api("/api/v1/heartbeat/wake", "POST", { session_id: target.dataset.wakeSession, mode: "now", reason: "dashboard" }), () => "wake requested");
      return;
    }
    if (target.dataset.notificationAction) {
      const path = new URL(target.dataset.url, location.href).pathname; // stay on this host whatever the base URL
      perform(target, () => api(path, "POST", { action: target.dataset.notificationAction }), () => "done");
      return;
    }
    if (target.dataset.eventAction) { eventAction(target); return; }
    if (target.dataset.changeFor) {
      document.querySelector("[data-event-dialog]").close();
      document.querySelector("[data-cr-event]").value = target.dataset.changeFor;
      document.querySelector("[data-cr-text]").focus();
      return;
    }
    if (target.dataset.eventId && target.dataset.status) openEvent(target);
  });

  document.addEventListener("toggle", (e) => {
    if (e.target.matches && e.target.matches("[data-job-history]") && e.target.open) loadRuns(e.target);
  }, true);

  document.querySelector("[data-change-request]").addEventListener("submit", (e) => { e.preventDefault(); previewChange(e.target); });

  // ---- start -------------------------------------------------------------------------------------------
  Cal.drawNowLine();
  Cal.scrollToWorkingHours();
  setInterval(Cal.drawNowLine, 30000); // local clock only: no request
  if (pushWanted) {
    setPush("reconnecting");
    connect();
    // Do not leave the page empty if the socket is slow to open; pushUp reloads again once subscribed.
    setTimeout(() => { if (!state.loaded && !calendarLoad) loadCalendar(); }, 1500);
  } else {
    setPush("disabled");
    startPolling();
  }
})();

/* The calendar time grid: draws the feed's events (contract §6) into the server-rendered day columns and
   patches single events from push frames. Knows nothing about transports; dashboard.js drives it.
   Hooks (contract §9): every event element carries data-event-id and data-status; always-running jobs
   also data-always-running. */
"use strict";

window.OpsCalendar = (() => {
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const grid = document.querySelector(".cal-grid");
  const columns = Array.from(document.querySelectorAll(".day-col"));
  const lane = document.querySelector("[data-always-lane]");
  const firstDayUtc = Date.parse(config.first_day + "T00:00:00Z");
  // Events starting in the same slot of a day share its width; the slot is about one event's height.
  const slotMinutes = config.view === "day" ? 20 : 30;
  const elements = new Map(); // event_id -> element
  const byRun = new Map(); // run_id -> element
  const slots = new Map(); // "day|slot" -> Set of elements
  const localFormat = new Intl.DateTimeFormat("en-CA", {
    timeZone: config.tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });

  function hourPixels() {
    return parseFloat(getComputedStyle(grid).getPropertyValue("--hour")) || 44;
  }

  /* Where an instant falls on the grid, from the feed's local time text ("2026-03-29T01:30:00+01:00")
     or, when absent, from the epoch through Intl in the viewer's zone. */
  function localParts(event) {
    const text = event.scheduled_at_local;
    let y, mo, d, h, mi;
    // Push frames render local times in the server's default zone, the feed in ours: trust only ours.
    if (event.timezone_display === config.tz && typeof text === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(text)) {
      [y, mo, d, h, mi] = [text.slice(0, 4), text.slice(5, 7), text.slice(8, 10), text.slice(11, 13), text.slice(14, 16)].map(Number);
    } else {
      return partsOfEpoch(event.scheduled_at_epoch);
    }
    return { day: Math.round((Date.UTC(y, mo - 1, d) - firstDayUtc) / 86400000), minute: h * 60 + mi };
  }

  function partsOfEpoch(epochSeconds) {
    const parts = Object.fromEntries(localFormat.formatToParts(new Date(epochSeconds * 1000)).map((p) => [p.type, p.value]));
    const day = Math.round((Date.UTC(+parts.year, +parts.month - 1, +parts.day) - firstDayUtc) / 86400000);
    return { day, minute: (+parts.hour) * 60 + (+parts.minute) };
  }

  function clockText(minute) {
    return `${String(Math.floor(minute / 60)).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}`;
  }

  function lagText(event) {
    const started = event.started_at_epoch;
    if (started == null || event.scheduled_at_epoch == null) return "";
    const lag = started - event.scheduled_at_epoch;
    return Math.abs(lag) < 60 ? `${lag >= 0 ? "+" : ""}${lag.toFixed(1)} s` : `${lag >= 0 ? "+" : ""}${(lag / 60).toFixed(1)} min`;
  }

  function buildEvent(event, where) {
    const el = document.createElement("button");
    el.type = "button";
    el.className = `ev st-${event.status} prio-${event.category || "normal"}`;
    el.dataset.eventId = event.event_id;
    el.dataset.status = event.status;
    if (event.run_id && startedByRun.has(event.run_id)) event.started_at_epoch = startedByRun.get(event.run_id);
    el.opsMinute = where.minute;
    label(el, event, where);
    el.style.top = `${(where.minute / 60) * hourPixels()}px`;
    el.opsEvent = event;
    el.opsSlot = `${where.day}|${Math.floor(where.minute / slotMinutes)}`;
    return el;
  }

  function label(el, event, where) {
    const title = event.title || event.source_ref;
    const lag = lagText(event);
    // The position already says when: the label spends its few pixels on what and how late.
    el.textContent = `${title}${lag ? ` · lag ${lag}` : ""}`;
    el.title = `${title} · ${event.status} · ${clockText(where.minute)} ${config.tz}${lag ? ` · lag ${lag} (started − scheduled)` : ""}`;
  }

  function inWindow(event) {
    const at = event.scheduled_at_epoch;
    return typeof at === "number" && at >= config.start_epoch && at < config.end_epoch;
  }

  function layoutSlot(key) {
    const members = Array.from(slots.get(key) || []);
    members.sort((a, b) => (a.opsEvent.scheduled_at_epoch - b.opsEvent.scheduled_at_epoch) || (a.dataset.eventId < b.dataset.eventId ? -1 : 1));
    const width = 100 / Math.max(1, members.length);
    members.forEach((el, i) => {
      el.style.left = `${i * width}%`;
      el.style.width = `calc(${width}% - 1px)`;
    });
  }

  function forget(el) {
    const members = slots.get(el.opsSlot);
    if (members) {
      members.delete(el);
      if (!members.size) slots.delete(el.opsSlot);
    }
    elements.delete(el.dataset.eventId);
    if (el.opsEvent.run_id) byRun.delete(el.opsEvent.run_id);
    el.remove();
    return el.opsSlot;
  }

  function place(event) {
    if (!inWindow(event)) return null;
    const where = localParts(event);
    if (where.day < 0 || where.day >= columns.length) return null;
    const el = buildEvent(event, where);
    elements.set(event.event_id, el);
    if (event.run_id) byRun.set(event.run_id, el);
    if (!slots.has(el.opsSlot)) slots.set(el.opsSlot, new Set());
    slots.get(el.opsSlot).add(el);
    return { el, day: where.day };
  }

  /* A whole feed: clear and redraw, one fragment per column so the browser lays out once. */
  function render(feed) {
    for (const el of elements.values()) el.remove();
    elements.clear();
    byRun.clear();
    slots.clear();
    const fragments = columns.map(() => document.createDocumentFragment());
    for (const event of feed.events || []) {
      if (event.always_running) continue;
      const placed = place(event);
      if (placed) fragments[placed.day].appendChild(placed.el);
    }
    for (const key of slots.keys()) layoutSlot(key);
    fragments.forEach((fragment, i) => columns[i].appendChild(fragment));
    renderAlwaysRunning(feed.always_running || []);
    return elements.size;
  }

  function durationText(seconds) {
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
      if (seconds >= size && seconds % size === 0) return `${seconds / size} ${unit}`;
    }
    return `${seconds} s`;
  }

  function alwaysBand(event) {
    const row = document.createElement("div");
    row.className = "always-band";
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = "always";
    const band = document.createElement("button");
    band.type = "button";
    band.className = `band st-${event.status}`;
    band.dataset.eventId = event.event_id;
    band.dataset.status = event.status;
    band.dataset.alwaysRunning = "";
    const every = event.every_seconds ? ` · every ${durationText(event.every_seconds)}` : "";
    const count = event.occurrences ?? event.occurrence_count ?? event.count;
    band.textContent = `${event.title || event.source_ref}${every}${count ? ` · ${count} runs in view` : ""} · ${event.status}`;
    band.title = "Runs too often to draw one by one: shown as a density band";
    band.opsEvent = event;
    row.append(tag, band);
    return row;
  }

  function renderAlwaysRunning(events) {
    lane.replaceChildren(...events.map(alwaysBand));
    lane.hidden = events.length === 0;
  }

  function upsertAlwaysRunning(event) {
    const existing = lane.querySelector(`[data-always-running][data-event-id="${CSS.escape(event.event_id)}"]`);
    const row = alwaysBand(event);
    if (existing) existing.parentElement.replaceWith(row);
    else lane.appendChild(row);
    lane.hidden = false;
  }

  /* Entries a push frame says changed: replace each one in place (or drop it if it left the window). */
  function patch(entries) {
    const touched = new Set();
    for (const event of entries) {
      if (!event || !event.event_id) continue;
      if (event.always_running) { upsertAlwaysRunning(event); continue; }
      const old = elements.get(event.event_id);
      if (old) touched.add(forget(old));
      if (event.deleted || event.removed) continue;
      const placed = place(event);
      if (!placed) continue;
      columns[placed.day].appendChild(placed.el);
      placed.el.classList.add("flash");
      touched.add(placed.el.opsSlot);
    }
    touched.forEach(layoutSlot);
    return touched.size;
  }

  function drawNowLine() {
    document.querySelectorAll(".now-line").forEach((el) => el.remove());
    const nowSeconds = Date.now() / 1000;
    if (nowSeconds < config.start_epoch || nowSeconds >= config.end_epoch) return;
    const where = partsOfEpoch(nowSeconds);
    if (!columns[where.day]) return;
    const line = document.createElement("div");
    line.className = "now-line";
    line.style.top = `${(where.minute / 60) * hourPixels()}px`;
    line.title = `now ${clockText(where.minute)} ${config.tz}`;
    columns[where.day].appendChild(line);
  }

  function scrollToWorkingHours() {
    const scroller = document.querySelector("[data-cal-scroller]");
    const now = document.querySelector(".now-line");
    const target = now ? now.offsetTop - 120 : 7 * hourPixels();
    scroller.scrollTop = Math.max(0, target);
  }

  function eventFor(el) { return el.opsEvent; }

  /* A run's start time, learnt after the event was drawn: its label gains the lag. */
  const startedByRun = new Map();
  function showLag(runId, startedEpoch) {
    if (!runId || startedEpoch == null) return;
    startedByRun.set(runId, startedEpoch);
    const el = byRun.get(runId);
    if (!el || el.opsEvent.started_at_epoch === startedEpoch) return;
    el.opsEvent.started_at_epoch = startedEpoch;
    label(el, el.opsEvent, { minute: el.opsMinute });
  }

  /* Colours come from the feed's legend (contract §6), as CSS variables the stylesheet mixes into a
     light fill with a strong edge, so dark text keeps its contrast whatever the colour. */
  function applyLegend(legend) {
    if (!legend) return;
    const root = document.documentElement.style;
    for (const [status, colour] of Object.entries(legend.statuses || {})) root.setProperty(`--st-${status}`, colour);
    for (const [category, colour] of Object.entries(legend.categories || {})) root.setProperty(`--cat-${category}`, colour);
  }

  const alwaysRefs = () => new Set(Array.from(lane.querySelectorAll("[data-always-running]")).map((el) => el.opsEvent && el.opsEvent.source_ref));
  function touchesAlwaysRunning(entries) {
    if (!entries.length || lane.hidden) return false;
    const refs = alwaysRefs();
    return entries.some((entry) => refs.has(entry.source_ref));
  }

  return {
    config, render, patch, drawNowLine, scrollToWorkingHours, eventFor, partsOfEpoch, clockText, lagText,
    showLag, applyLegend, touchesAlwaysRunning,
  };
})();

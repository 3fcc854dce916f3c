// pifed dashboard: confirmations for operator actions and the live round on the rounds page.
// No library, nothing from another origin (the Content-Security-Policy allows only 'self').
"use strict";

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (form.classList && form.classList.contains("confirm") && !window.confirm(form.dataset.confirm)) {
    ev.preventDefault();
  }
});

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function renderLive(box, r) {
  box.replaceChildren();
  if (!r) {
    box.append(el("p", { class: "muted" }, "No round in progress."));
    return;
  }
  box.dataset.round = r.id;
  const head = el("p", {}, `Round ${r.id} in progress: ${r.participants.length} participant(s), from v${r.base_version}`);
  box.append(head);
  const ol = el("ol", { class: "timeline live" });
  for (const s of r.stages) {
    const li = el("li", { class: s.state, "data-stage": s.stage }, s.stage + " ");
    if (s.state === "running" && s.seconds != null) li.append(el("small", {}, s.seconds.toFixed(1) + " s"));
    if (s.detail) li.append(el("small", {}, " · " + s.detail));
    ol.append(li);
  }
  box.append(ol);
  if (r.dropped.length) {
    box.append(el("p", { class: "warn" }, "dropped: " + r.dropped.map((d) => `${d.name} (${d.stage})`).join(", ")));
  }
}

async function refreshTable() {
  const holder = document.getElementById("rounds-table");
  if (!holder) return;
  const res = await fetch(holder.dataset.src, { credentials: "same-origin" });
  if (res.ok) {
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const table = doc.getElementById("rounds");
    if (table) holder.replaceChildren(...doc.body.childNodes);
  }
}

function startLive() {
  const box = document.getElementById("live");
  if (!box) return;
  let last = null;
  const tick = async () => {
    try {
      const res = await fetch(box.dataset.poll, { credentials: "same-origin", cache: "no-store" });
      if (res.ok) {
        const body = await res.json();
        renderLive(box, body.round);
        const sig = JSON.stringify([body.round && body.round.id, body.round && body.round.stages.map((s) => s.state), body.counts]);
        if (last !== null && sig !== last) await refreshTable();
        last = sig;
        box.dataset.updated = String(Date.now());
      }
    } catch (e) {
      box.dataset.error = String(e);
    }
    setTimeout(tick, 500);
  };
  tick();
}

document.addEventListener("DOMContentLoaded", startLive);

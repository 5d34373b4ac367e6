/* Operations dashboard: the little behaviour htmx does not cover.
 * Step panels (expand/collapse, jump pills), select-all, confirmations that
 * name the number of jobs, and keeping the operator's view across polling swaps. */
(() => {
  "use strict";

  // Step id -> open?, as the operator left it; re-applied after every poll swap.
  const expanded = new Map();
  let pillsScroll = 0;

  function setExpanded(step, open) {
    const toggle = step.querySelector(".step-toggle");
    const body = step.querySelector(".step-body");
    if (!toggle || !body) return;
    toggle.setAttribute("aria-expanded", String(open));
    body.hidden = !open;
    expanded.set(step.dataset.step, open);
  }

  function flash(text, level) {
    const region = document.getElementById("flash");
    if (!region) return;
    const p = document.createElement("p");
    p.className = "flash flash-" + level;
    p.setAttribute("role", "status");
    p.textContent = text;  // text, never HTML
    region.replaceChildren(p);
  }

  function updateSelectedCount(form) {
    const out = form && form.querySelector("[data-selected-count]");
    if (!out) return;
    const n = form.querySelectorAll("input[name=ids]:checked").length;
    out.textContent = n ? `· ${n} selected` : "";
  }

  document.addEventListener("click", (event) => {
    const target = event.target;
    const toggle = target.closest(".step-toggle");
    if (toggle) {
      setExpanded(toggle.closest(".step"), toggle.getAttribute("aria-expanded") !== "true");
      return;
    }
    if (target.closest("[data-expand-all]")) {
      document.querySelectorAll(".step").forEach((s) => setExpanded(s, true));
      return;
    }
    if (target.closest("[data-collapse-all]")) {
      document.querySelectorAll(".step").forEach((s) => setExpanded(s, false));
      return;
    }
    const pill = target.closest("[data-step-pill]");
    if (pill) {
      const step = document.getElementById("step-" + pill.dataset.stepPill);
      if (!step) return;
      event.preventDefault();
      setExpanded(step, true);
      step.scrollIntoView({ behavior: "smooth", block: "start" });
      history.replaceState(history.state, "", "#" + step.id);
      step.querySelector(".step-toggle").focus({ preventScroll: true });
    }
  });

  document.addEventListener("change", (event) => {
    const box = event.target;
    if (box.matches("[data-select-all]")) {
      box.form.querySelectorAll("input[name=ids]").forEach((cb) => { cb.checked = box.checked; });
    }
    if (box.matches("[data-select-all], input[name=ids]")) updateSelectedCount(box.form);
  });

  // "Requeue (start over): 3 jobs?" — the dialog names how many jobs it will touch.
  document.addEventListener("htmx:confirm", (event) => {
    const elt = event.detail.elt;
    const verb = elt.dataset && elt.dataset.confirmVerb;
    if (!verb) return;
    event.preventDefault();
    const form = elt.closest("form");
    const n = form ? form.querySelectorAll("input[name=ids]:checked, input[type=hidden][name=ids]").length : 0;
    if (n === 0) {
      flash("Select at least one job first.", "warning");
      return;
    }
    if (window.confirm(`${verb}: ${n} job${n === 1 ? "" : "s"}?`)) event.detail.issueRequest(true);
  });

  // Arriving at a failure group from the overview (#group-2): its sample is open.
  const target = location.hash && document.querySelector(location.hash + ".failure-group");
  if (target) target.querySelectorAll("details.sample").forEach((d) => { d.open = true; });

  // Plain forms (no htmx): "Requeue all 1,204 dead jobs of this cause?" before posting.
  document.addEventListener("submit", (event) => {
    const button = event.submitter;
    const question = button && button.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Shareable URLs: drop empty filters ("?status=dead", not "?status=dead&queue=&task=...").
  document.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.verb !== "get" || event.detail.elt.id !== "filters") return;
    const data = event.detail.formData;
    for (const [name, value] of [...data.entries()]) if (value === "") data.delete(name);
  });

  // --- Keeping the reader's place across a swap -----------------------------------
  // A polled page (every hx-trigger="every ...") replaces its content every few
  // seconds. Without this the reader loses their scroll position, the <details>
  // they opened and the control they were on. Recorded just before any swap,
  // put back just after it: the scroll position, open/closed <details> by a
  // stable key (id or data-keep), steps by data-step (`expanded`, above), and
  // focus by the focused element's key, or by its path from the nearest keyed
  // ancestor when it has none (checked by tag and text before it is used, so a
  // reordered list never moves focus to a neighbour).
  let kept = null;

  const keyOf = (el) => el.id ? "#" + el.id : (el.dataset && el.dataset.keep ? "@" + el.dataset.keep : null);

  function findKey(key) {
    if (key[0] === "#") return document.getElementById(key.slice(1));
    for (const el of document.querySelectorAll("[data-keep]")) if (el.dataset.keep === key.slice(1)) return el;
    return null;
  }

  function focusLocator(el) {
    if (!el || el === document.body || !el.closest) return null;
    const anchor = el.closest("[id], [data-keep]");
    if (!anchor) return null;
    const path = [];
    for (let n = el; n !== anchor; n = n.parentElement) path.unshift([...n.parentElement.children].indexOf(n));
    return { anchor: keyOf(anchor), path, tag: el.tagName, text: el.textContent.trim().slice(0, 200) };
  }

  function findLocated(loc) {
    let el = findKey(loc.anchor);
    for (const i of loc.path) el = el && el.children[i];
    if (!el || el.tagName !== loc.tag) return null;
    // Found by its own key: the same control even if its words changed (Pause -> Resume).
    return loc.path.length === 0 || el.textContent.trim().slice(0, 200) === loc.text ? el : null;
  }

  function restoreSteps(root) {
    root.querySelectorAll(".step").forEach((step) => {
      if (expanded.has(step.dataset.step)) setExpanded(step, expanded.get(step.dataset.step));
    });
  }

  // Everything that sets the page's height first, the scroll position last: in the same
  // task as the swap, so no frame is painted in between.
  function restorePlace() {
    if (!kept) return;
    restoreSteps(document);
    kept.details.forEach((open, key) => { const d = findKey(key); if (d && d.tagName === "DETAILS") d.open = open; });
    const pills = document.querySelector(".pills");
    if (pills) pills.scrollLeft = kept.pillsScroll;
    if (kept.focus && document.activeElement !== kept.focused) {
      const el = findLocated(kept.focus);
      if (el) el.focus({ preventScroll: true });
    }
    window.scrollTo(kept.scrollX, kept.scrollY);
  }

  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    const details = new Map();
    if (target) {
      target.querySelectorAll("details").forEach((d) => { const key = keyOf(d); if (key) details.set(key, d.open); });
    }
    const pills = document.querySelector(".pills");
    kept = { scrollX: window.scrollX, scrollY: window.scrollY, details,
             pillsScroll: pills ? pills.scrollLeft : 0,
             focused: document.activeElement, focus: focusLocator(document.activeElement) };
    pillsScroll = kept.pillsScroll;
  });

  document.addEventListener("htmx:load", (event) => {
    restoreSteps(event.detail.elt);
    const pills = event.detail.elt.querySelector(".pills");
    if (pills) pills.scrollLeft = pillsScroll;
  });

  document.addEventListener("htmx:afterSwap", restorePlace);
  // Settling can still move things (htmx swaps attributes in after a short delay).
  document.addEventListener("htmx:afterSettle", () => { restorePlace(); kept = null; });

  // A 403 or 500 is not swapped into the page (see the htmx-config meta): say so instead.
  document.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    flash(`The server refused this (${xhr.status} ${xhr.statusText}).`, "error");
  });
  document.addEventListener("htmx:sendError", () => flash("The server could not be reached.", "error"));

  // Polls only while the tab is visible and nobody is typing into a limits form.
  window.dashboardMayPoll = () => {
    if (document.visibilityState !== "visible") return false;
    const active = document.activeElement;
    return !(active && active.closest && active.closest(".limits-form"));
  };
})();

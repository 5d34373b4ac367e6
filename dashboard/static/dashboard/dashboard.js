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

  document.addEventListener("htmx:beforeSwap", () => {
    const pills = document.querySelector(".pills");
    pillsScroll = pills ? pills.scrollLeft : 0;
  });

  document.addEventListener("htmx:load", (event) => {
    event.detail.elt.querySelectorAll(".step").forEach((step) => {
      if (expanded.has(step.dataset.step)) setExpanded(step, expanded.get(step.dataset.step));
    });
    const pills = event.detail.elt.querySelector(".pills");
    if (pills) pills.scrollLeft = pillsScroll;
  });

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

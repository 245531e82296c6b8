// The pages' few behaviours, in one file (no inline script: the CSP allows 'self' only).
"use strict";

// A choice that other choices depend on redraws the form with them (record forms), in
// place: no page load, so the focus stays on the choice and the keyboard works (one
// ArrowDown on a closed select changes it). Without script, the form's "refresh choices"
// button posts it and the page comes back the same way; that is also the fallback here.
function bindReload(root) {
  for (const el of root.querySelectorAll("select[data-reload]")) {
    el.addEventListener("change", () => redraw(el));
  }
}

async function redraw(el) {
  const form = el.form;
  const button = form.querySelector('button[name="save"][value="0"]');
  if (!button) return;
  const data = new FormData(form);
  data.set("save", "0");
  form.setAttribute("aria-busy", "true");
  try {
    const answer = await fetch(form.action, { method: "POST", body: data, credentials: "same-origin" });
    const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
    const fresh = doc.querySelector("form.record");
    if (!answer.ok || !fresh) throw new Error(`redraw: ${answer.status}`);
    form.replaceChildren(...[...fresh.childNodes].map((n) => document.importNode(n, true)));
    form.removeAttribute("aria-busy");
    bindReload(form);
    const again = form.elements.namedItem(el.name);
    if (again && again.focus) again.focus();
  } catch (error) {
    form.removeAttribute("aria-busy");
    button.click();
  }
}

bindReload(document);

// A form being sent says so and is not sent twice (a slow network, a second tap).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.sending) {
    event.preventDefault();
    return;
  }
  form.dataset.sending = "1";
  form.setAttribute("aria-busy", "true");
  const button = event.submitter;
  if (button) button.classList.add("busy");
  // a page restored from the back/forward cache can be sent again
  window.addEventListener("pageshow", () => {
    delete form.dataset.sending;
    form.removeAttribute("aria-busy");
    if (button) button.classList.remove("busy");
  }, { once: true });
});

// Sort a table by a column: click its header again to reverse (completeness dashboard).
for (const table of document.querySelectorAll("table.sortable")) {
  const heads = [...table.tHead.rows[0].cells];
  heads.forEach((th, col) => {
    const button = th.querySelector("button.sort");
    if (!button) return;
    button.addEventListener("click", () => {
      const dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
      for (const h of heads) if (h.hasAttribute("aria-sort")) h.setAttribute("aria-sort", "none");
      th.setAttribute("aria-sort", dir);
      const body = table.tBodies[0];
      const key = (row) => row.cells[col].dataset.sort;
      const rows = [...body.rows].sort((a, b) => {
        const x = key(a), y = key(b);
        const c = isNaN(x) || isNaN(y) ? x.localeCompare(y, "zh-Hans-CN") : x - y;
        return dir === "ascending" ? c : -c;
      });
      body.append(...rows);
    });
  });
}

// A print button (label sheets).
for (const el of document.querySelectorAll("[data-print]")) {
  el.addEventListener("click", () => window.print());
}

// On a phone a table reads down the screen: each cell labelled with its column's header
// (app.css stacks a .stacked table below 720 px; without script the table scrolls).
for (const table of document.querySelectorAll(".table-wrap > table:not(.nostack)")) {
  const headRow = table.tHead ? table.tHead.rows[0] : table.rows[0];
  if (!headRow || ![...headRow.cells].every((c) => c.tagName === "TH")) continue;
  const labels = [...headRow.cells].map((c) => c.innerText.trim());
  if (!table.tHead) headRow.classList.add("head");
  for (const row of table.rows) {
    if (row === headRow) continue;
    [...row.cells].forEach((cell, i) => {
      if (labels[i] && cell.colSpan === 1) cell.dataset.label = labels[i];
    });
  }
  table.classList.add("stacked");
}

// A printed page says when it was printed (print.css shows the source line).
window.addEventListener("beforeprint", () => {
  const pad = (n) => String(n).padStart(2, "0");
  const d = new Date();
  const at = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  for (const el of document.querySelectorAll("time[data-printed]")) el.textContent = at;
});
